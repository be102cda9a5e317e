// Command zombi-bench drives a running zombi's ingest API with keep-alive
// HTTP clients and reports throughput and acknowledgement latency. It is
// bounded in time and only targets loopback addresses unless told
// otherwise.
//
//	zombi-bench -mode single -clients 64 -duration 10s            # max throughput
//	zombi-bench -mode single -clients 64 -rate 15000 -duration 10s # latency at a fixed rate
//	zombi-bench -mode bulk -clients 8 -batch 1000 -size 100 -runs 5
//	zombi-bench -mode bulk -clients 4 -runs 3 -watch -series sustained.csv # end to end, a point a second
//
// It speaks HTTP/1.1 itself over one keep-alive connection per client (see
// conn.go) so that it costs little CPU on the machine it measures.
package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url         string
	table       string
	mode        string
	clients     int
	duration    time.Duration
	warmup      time.Duration
	rate        float64
	batch       int
	size        int
	runs        int
	allowRemote bool
	token       string
	watch       bool
	watchTick   time.Duration
	cpuProfile  string
	firstRun    int
	label       string
	csvPath     string
	seriesPath  string
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8181", "zombi base URL")
	flag.StringVar(&c.table, "table", "bench", "ingest table")
	flag.StringVar(&c.mode, "mode", "single", "single (POST /tables/{t}) or bulk (POST /tables/{t}/bulk)")
	flag.IntVar(&c.clients, "clients", 64, "concurrent keep-alive clients")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per run (at most 5m)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured time before each run")
	flag.Float64Var(&c.rate, "rate", 0, "target events per second over all clients; 0 = as fast as acknowledged")
	flag.IntVar(&c.batch, "batch", 1000, "events per bulk request")
	flag.IntVar(&c.size, "size", 100, "payload bytes per event")
	flag.IntVar(&c.runs, "runs", 1, "runs; with more than one the median is reported too")
	flag.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback target (only for servers you run)")
	flag.StringVar(&c.token, "token", "", "bearer token")
	flag.BoolVar(&c.watch, "watch", false, "also follow the table end to end: committed rows/s, hot backlog, ack→visible latency in loadTable")
	flag.DurationVar(&c.watchTick, "watch-tick", 10*time.Millisecond, "how often -watch polls the watermarks")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	flag.IntVar(&c.firstRun, "run", 1, "number of the first run, for a script that runs one at a time (a fresh server each)")
	flag.StringVar(&c.label, "label", "", "label of the -csv rows (default: the mode)")
	flag.StringVar(&c.csvPath, "csv", "", "append one row per run (throughput and latency) to this CSV file (header when new)")
	flag.StringVar(&c.seriesPath, "series", "", "with -watch, append each run's time series (a row a second: acked events/s, committed rows/s, events held, hot backlog and disk bytes, server RSS and Go heap, bytes compacted) to this CSV file")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "zombi-bench:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	u, err := url.Parse(c.url)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); !c.allowRemote && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address; pass -allow-remote for a server you run", u.Hostname())
	}
	if c.mode != "single" && c.mode != "bulk" {
		return fmt.Errorf("-mode must be single or bulk")
	}
	if c.clients < 1 || c.runs < 1 || c.batch < 1 || c.size < 0 || c.duration <= 0 || c.duration > 5*time.Minute {
		return errors.New("bad -clients, -runs, -batch, -size or -duration")
	}
	if c.seriesPath != "" && !c.watch {
		return errors.New("-series needs -watch")
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
	var (
		results []result
		mems    []memory
	)
	for i := c.firstRun; i < c.firstRun+c.runs; i++ {
		if c.warmup > 0 {
			if _, err := measure(u, c, c.warmup, nil); err != nil {
				return err
			}
		}
		var w *watcher
		a := newAcks(c.clients)
		if c.watch {
			w = startWatcher(u, c, a)
		}
		r, err := measure(u, c, c.duration, a)
		if err != nil {
			return err
		}
		fmt.Printf("run %d: %s\n", i, r)
		if c.csvPath != "" {
			if err := appendResult(c.csvPath, c, i, r); err != nil {
				return err
			}
		}
		if w != nil {
			text, series := w.finish()
			series.run = i
			m := series.memory()
			mems = append(mems, m)
			fmt.Printf("run %d end to end: %s\n", i, text)
			fmt.Printf("run %d memory: %s\n", i, m)
			if c.seriesPath != "" {
				if err := appendSeries(c.seriesPath, series); err != nil {
					return err
				}
			}
		}
		results = append(results, r)
	}
	if c.runs > 1 {
		// At a fixed rate the throughput is given: report the run of
		// median p99 latency.
		by := "throughput"
		sort.Slice(results, func(i, j int) bool { return results[i].eventsPerSec < results[j].eventsPerSec })
		if c.rate > 0 {
			by = "p99"
			sort.Slice(results, func(i, j int) bool { return results[i].p99 < results[j].p99 })
		}
		fmt.Printf("median of %d runs by %s: %s\n", c.runs, by, results[len(results)/2])
		if len(mems) > 0 {
			fmt.Printf("memory over %d runs: %s\n", c.runs, memoryOverRuns(mems))
		}
	}
	return nil
}

type result struct {
	events, requests, failures int64
	statuses                   map[int]int64
	eventsPerSec               float64
	p50, p99, p999, max        time.Duration
}

func (r result) String() string {
	var codes []string
	for code, n := range r.statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", n, code))
	}
	slices.Sort(codes)
	return fmt.Sprintf("%.0f events/s (%d events in %d requests, %d failed [%s]); ack latency p50 %v p99 %v p99.9 %v max %v",
		r.eventsPerSec, r.events, r.requests, r.failures, strings.Join(codes, " "),
		r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.p999.Round(time.Microsecond), r.max.Round(time.Microsecond))
}

// body builds one request body with unique payloads.
func body(c config, rnd *rand.Rand) []byte {
	raw := make([]byte, c.size*3/4+1)
	payload := func() string {
		for i := range raw {
			raw[i] = byte(rnd.Uint32())
		}
		s := base64.RawStdEncoding.EncodeToString(raw)
		return s[:min(len(s), c.size)]
	}
	var b bytes.Buffer
	if c.mode == "single" {
		fmt.Fprintf(&b, `{"payload":%q}`, payload())
		return b.Bytes()
	}
	b.WriteString(`{"records":[`)
	for i := 0; i < c.batch; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"payload":%q}`, payload())
	}
	b.WriteString("]}")
	return b.Bytes()
}

// measure runs the load for d and returns what it saw; acks, if not nil,
// counts the acknowledged events as they come.
func measure(u *url.URL, c config, d time.Duration, acks *acks) (result, error) {
	path := u.Path + "/tables/" + c.table
	perReq := 1
	if c.mode == "bulk" {
		path += "/bulk"
		perReq = c.batch
	}
	var (
		events, requests, failures atomic.Int64
		mu                         sync.Mutex
		latencies                  []time.Duration
		statuses                   = map[int]int64{}
		wg                         sync.WaitGroup
		dialErr                    error
	)
	// With a rate, each client sends on its own fixed schedule and latency
	// counts from the scheduled time, so a slow server cannot hide queueing
	// (no coordinated omission).
	var interval time.Duration
	if c.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(c.clients*perReq) / c.rate)
	}
	conns := make([]*conn, c.clients)
	reqs := make([][][]byte, c.clients)
	for w := range conns {
		cn, err := dial(u)
		if err != nil {
			return result{}, err
		}
		defer cn.Close()
		conns[w] = cn
		// A few requests per client, built up front: the load generator
		// shares the machine's cores with the server, so it must not spend
		// them building JSON during the measurement.
		rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		for range 4 {
			reqs[w] = append(reqs[w], request(u, path, c.token, body(c, rnd)))
		}
	}
	start := time.Now()
	end := start.Add(d)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn := conns[w]
			local := make([]time.Duration, 0, 4096)
			codes := map[int]int64{}
			// Counted per client and added up at the end: shared
			// counters would be contended on every request.
			var nEvents, nRequests, nFailures int64
			next := start.Add(time.Duration(rand.Int64N(int64(max(interval, 1)))))
			for i := 0; ; i++ {
				sent := time.Now()
				if interval > 0 {
					if next.After(end) {
						break
					}
					time.Sleep(time.Until(next))
					sent = next
					next = next.Add(interval)
				} else if sent.After(end) {
					break
				}
				status, err := cn.do(reqs[w][i%len(reqs[w])], sent)
				if err != nil {
					nFailures++
					if err := cn.redial(); err != nil {
						mu.Lock()
						dialErr = err
						mu.Unlock()
						return
					}
					continue
				}
				lat := time.Since(sent)
				nRequests++
				codes[status]++
				if status != 202 {
					nFailures++
					continue
				}
				nEvents += int64(perReq)
				if acks != nil {
					acks.add(w, int64(perReq))
				}
				local = append(local, lat)
			}
			events.Add(nEvents)
			requests.Add(nRequests)
			failures.Add(nFailures)
			mu.Lock()
			latencies = append(latencies, local...)
			for k, v := range codes {
				statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if dialErr != nil {
		return result{}, dialErr
	}
	elapsed := time.Since(start)
	r := result{events: events.Load(), requests: requests.Load(), failures: failures.Load(), statuses: statuses}
	r.eventsPerSec = float64(r.events) / elapsed.Seconds()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		at := func(q float64) time.Duration { return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))] }
		r.p50, r.p99, r.p999, r.max = at(0.50), at(0.99), at(0.999), latencies[len(latencies)-1]
	}
	return r, nil
}
