// Command zombi-catbench drives an Iceberg REST catalog over HTTP with
// concurrent keep-alive clients, one operation at a time, and appends one
// CSV row per operation: throughput and latency percentiles. It runs the
// same requests against any REST catalog, so that Zombi and the Apache
// Iceberg reference server can be measured side by side
// (scripts/bench-catalog.sh).
//
//	zombi-catbench -url http://127.0.0.1:8181 -server zombi -run 1 -csv out.csv
//	zombi-catbench -url … -ops contend -clients 16   # 16 writers appending to one table
//	zombi-catbench -summary out.csv                  # medians, ranges and ratios
//
// Operations (-ops, in this order):
//
//	create   create a table (a new name each time)
//	load     loadTable of one of 64 tables
//	load304  the same with If-None-Match: the table's ETag, answered 304
//	commit   append to the client's own table: a snapshot with a manifest
//	         list (written by the tool) made current on main
//	list     list the 64 tables of a namespace
//	contend  every client appends to one table; on 409 it reloads the
//	         table, rebases and retries (no backoff)
//
// Each run uses a fresh namespace, so tables start empty. Only loopback
// targets are allowed: the commit operations write manifest lists into the
// table's (local) location.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type config struct {
	url        string
	server     string
	run        int
	ops        []string
	clients    int
	tables     int
	duration   time.Duration
	warmup     time.Duration
	csvPath    string
	cpuProfile string
}

var allOps = []string{"create", "load", "load304", "commit", "list", "contend"}

func main() {
	var (
		c       config
		ops     string
		summary string
		ref     string
	)
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8181", "catalog base URL (…/v1 is appended)")
	flag.StringVar(&c.server, "server", "", "name of the server in the CSV (default: the URL)")
	flag.IntVar(&c.run, "run", 1, "run number in the CSV")
	flag.StringVar(&ops, "ops", "create,load,load304,commit,list", "operations, comma-separated: "+strings.Join(allOps, ","))
	flag.IntVar(&c.clients, "clients", 8, "concurrent keep-alive clients")
	flag.IntVar(&c.tables, "tables", 64, "tables that load, load304 and list use")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured time per operation (at most 5m)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured time before each operation")
	flag.StringVar(&c.csvPath, "csv", "", "append one row per operation to this CSV file (header when new)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write the tool's own CPU profile to this file")
	flag.StringVar(&summary, "summary", "", "print medians, ranges and ratios of this CSV file and exit")
	flag.StringVar(&ref, "reference", "reference", "with -summary: the reference servers, comma-separated; the others are compared to the best of them")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if summary != "" {
		if err := printSummary(os.Stdout, summary, ref); err != nil {
			log.Error("summary", "err", err)
			os.Exit(1)
		}
		return
	}
	c.ops = strings.Split(ops, ",")
	if c.server == "" {
		c.server = c.url
	}
	if err := run(context.Background(), log, c); err != nil {
		log.Error("zombi-catbench failed", "server", c.server, "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, c config) error {
	u, err := url.Parse(c.url)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address", u.Hostname())
	}
	if c.clients < 1 || c.duration <= 0 || c.duration > 5*time.Minute || c.warmup < 0 || c.tables < 1 {
		return errors.New("want -clients ≥ 1, 0 < -duration ≤ 5m, -warmup ≥ 0, -tables ≥ 1")
	}
	for _, op := range c.ops {
		if !slices.Contains(allOps, op) {
			return fmt.Errorf("unknown operation %q", op)
		}
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cl, err := newClient(ctx, c.url, c.clients)
	if err != nil {
		return err
	}
	b := &bench{config: c, cl: cl, ns: fmt.Sprintf("cb%d_%08x", c.run, rand.Uint32())}
	for _, op := range c.ops {
		res, err := b.op(ctx, op)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		log.Info("measured", "server", c.server, "run", c.run, "op", op, "ops_per_s", fmt.Sprintf("%.0f", res.perSecond()),
			"p50_ms", fmt.Sprintf("%.2f", res.quantile(0.5)), "p99_ms", fmt.Sprintf("%.2f", res.quantile(0.99)),
			"conflicts", res.conflicts, "errors", res.errors, "note", res.note)
		if res.firstErr != nil {
			log.Warn("first error", "op", op, "err", res.firstErr)
		}
		if c.csvPath != "" {
			if err := appendCSV(c.csvPath, c, op, res); err != nil {
				return err
			}
		}
	}
	return nil
}

type bench struct {
	config
	cl *client
	ns string // the run's namespace; setup() fills it once
	// set up by setup:
	ready bool
	etags []string
}

// setup creates the run's namespace and its tables and reads their ETags.
func (b *bench) setup(ctx context.Context) error {
	if b.ready {
		return nil
	}
	if err := b.cl.createNamespace(ctx, b.ns); err != nil {
		return err
	}
	b.etags = make([]string, b.tables)
	for i := range b.tables {
		name := fmt.Sprintf("t%d", i)
		if err := b.cl.createTable(ctx, b.ns, name); err != nil {
			return err
		}
		resp, err := b.cl.do(ctx, "GET", tablePath(b.ns, name), nil, nil, nil)
		if err != nil {
			return err
		}
		b.etags[i] = resp.Header.Get("ETag")
	}
	b.ready = true
	return nil
}

// result is one operation's measured window.
type result struct {
	seconds   float64
	lat       []time.Duration // one per operation done in the window
	conflicts int             // 409 answers (contend: retried)
	errors    int
	firstErr  error
	note      string
}

func (r *result) perSecond() float64 {
	if r.seconds == 0 {
		return 0
	}
	return float64(len(r.lat)) / r.seconds
}

// quantile in milliseconds; lat must be sorted.
func (r *result) quantile(q float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)))
	if i >= len(r.lat) {
		i = len(r.lat) - 1
	}
	return float64(r.lat[i]) / float64(time.Millisecond)
}

// worker does one operation; conflicts counts 409s it met and retried.
type worker func(ctx context.Context) (conflicts int, err error)

// measure runs one worker per client for warmup+duration and keeps what
// started after the warmup and ended within the duration.
func (b *bench) measure(ctx context.Context, newWorker func(i int) (worker, error)) (*result, error) {
	workers := make([]worker, b.clients)
	for i := range workers {
		w, err := newWorker(i)
		if err != nil {
			return nil, err
		}
		workers[i] = w
	}
	start := time.Now().Add(b.warmup)
	end := start.Add(b.duration)
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	for _, w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			conflicts, errs := 0, 0
			var first error
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				n, err := w(ctx)
				t1 := time.Now()
				if t0.Before(start) || t1.After(end) {
					continue
				}
				conflicts += n
				if err != nil {
					if isConflict(err) {
						conflicts++
					} else {
						errs++
					}
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, t1.Sub(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			res.conflicts += conflicts
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
		})
	}
	wg.Wait()
	slices.Sort(res.lat)
	res.seconds = b.duration.Seconds()
	return &res, nil
}

func (b *bench) op(ctx context.Context, op string) (*result, error) {
	if err := b.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	switch op {
	case "create":
		ns := b.ns + "_c"
		if err := b.cl.createNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return b.measure(ctx, func(i int) (worker, error) {
			n := 0
			return func(ctx context.Context) (int, error) {
				n++
				return 0, b.cl.createTable(ctx, ns, fmt.Sprintf("c%d_%d", i, n))
			}, nil
		})
	case "load":
		return b.measure(ctx, func(int) (worker, error) {
			return func(ctx context.Context) (int, error) {
				_, err := b.cl.do(ctx, "GET", tablePath(b.ns, fmt.Sprintf("t%d", rand.IntN(b.tables))), nil, nil, nil)
				return 0, err
			}, nil
		})
	case "load304":
		if b.etags[0] == "" {
			return &result{note: "not supported: no ETag on loadTable"}, nil
		}
		resp, err := b.cl.do(ctx, "GET", tablePath(b.ns, "t0"), nil, http.Header{"If-None-Match": {b.etags[0]}}, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusNotModified {
			return &result{note: fmt.Sprintf("not supported: If-None-Match with the ETag answered %d", resp.StatusCode)}, nil
		}
		return b.measure(ctx, func(int) (worker, error) {
			return func(ctx context.Context) (int, error) {
				i := rand.IntN(b.tables)
				resp, err := b.cl.do(ctx, "GET", tablePath(b.ns, fmt.Sprintf("t%d", i)), nil, http.Header{"If-None-Match": {b.etags[i]}}, nil)
				if err == nil && resp.StatusCode != http.StatusNotModified {
					err = fmt.Errorf("want 304, got %d", resp.StatusCode)
				}
				return 0, err
			}, nil
		})
	case "list":
		return b.measure(ctx, func(int) (worker, error) {
			return func(ctx context.Context) (int, error) {
				var res struct {
					Identifiers []any  `json:"identifiers"`
					Next        string `json:"next-page-token"`
				}
				if _, err := b.cl.do(ctx, "GET", "namespaces/"+url.PathEscape(b.ns)+"/tables", nil, nil, &res); err != nil {
					return 0, err
				}
				if len(res.Identifiers) != b.tables || res.Next != "" {
					return 0, fmt.Errorf("listed %d tables (next page %q), want %d", len(res.Identifiers), res.Next, b.tables)
				}
				return 0, nil
			}, nil
		})
	case "commit":
		ns := b.ns + "_w"
		if err := b.cl.createNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return b.measure(ctx, func(i int) (worker, error) {
			name := fmt.Sprintf("w%d", i)
			st, a, err := b.writable(ctx, ns, name)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) (int, error) {
				next, err := b.cl.appendCommit(ctx, ns, name, a, st)
				if err == nil {
					st = next
				}
				return 0, err
			}, nil
		})
	case "contend":
		ns, name := b.ns+"_h", "hot"
		if err := b.cl.createNamespace(ctx, ns); err != nil {
			return nil, err
		}
		_, a, err := b.writable(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		return b.measure(ctx, func(int) (worker, error) {
			var st tableState
			stale := true
			return func(ctx context.Context) (int, error) {
				conflicts := 0
				for {
					if stale {
						var err error
						if st, err = b.cl.loadState(ctx, ns, name); err != nil {
							return conflicts, err
						}
						stale = false
					}
					next, err := b.cl.appendCommit(ctx, ns, name, a, st)
					if err == nil {
						st = next
						return conflicts, nil
					}
					if !isConflict(err) {
						return conflicts, err
					}
					conflicts++
					stale = true
					if ctx.Err() != nil {
						return conflicts, ctx.Err()
					}
				}
			}, nil
		})
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// writable creates a table for appends and its manifest.
func (b *bench) writable(ctx context.Context, ns, name string) (tableState, *appender, error) {
	if err := b.cl.createTable(ctx, ns, name); err != nil {
		return tableState{}, nil, err
	}
	st, err := b.cl.loadState(ctx, ns, name)
	if err != nil {
		return tableState{}, nil, err
	}
	a, err := newAppender(st)
	return st, a, err
}

var csvHeader = []string{"date", "server", "run", "op", "clients", "seconds", "ops", "ops_per_s", "p50_ms", "p99_ms", "conflicts", "errors", "note"}

func appendCSV(p string, c config, op string, r *result) error {
	_, statErr := os.Stat(p)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if errors.Is(statErr, os.ErrNotExist) {
		_ = w.Write(csvHeader)
	}
	_ = w.Write([]string{
		time.Now().UTC().Format(time.RFC3339), c.server, strconv.Itoa(c.run), op, strconv.Itoa(c.clients),
		strconv.FormatFloat(r.seconds, 'f', 1, 64), strconv.Itoa(len(r.lat)),
		strconv.FormatFloat(r.perSecond(), 'f', 1, 64),
		strconv.FormatFloat(r.quantile(0.5), 'f', 3, 64), strconv.FormatFloat(r.quantile(0.99), 'f', 3, 64),
		strconv.Itoa(r.conflicts), strconv.Itoa(r.errors), r.note,
	})
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
