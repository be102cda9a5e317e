// Command zombi-livebench measures how long an acknowledged event takes to
// be seen by a query on the live catalog view (docs/live.md), with ingest
// at a fixed rate and the flusher committing as configured.
//
//	zombi-livebench -rate 10000 -duration 30s                   # iceberg-go reads
//	zombi-livebench -rate 10000 -duration 30s -reader none      # ingest alone, for the CPU baseline
//	zombi-livebench -rate 10000 -duration 30s -reader cmd -- python3 scripts/live_reader.py pyiceberg
//
// Producers post bulks of -batch events at -rate events/s and note, for
// each bulk, when it was acknowledged and its highest offset. A reader
// queries the table on the live view back to back, each query reading
// the sequence column above the highest one seen so far; a query that
// ends at time T having seen sequence S makes every event acknowledged
// with an offset up to S visible at T, if no earlier query did.
// Ack → visible is T minus the acknowledgement time, per bulk; bulks
// acknowledged before the reader's first query ended are left out.
//
// The reader is iceberg-go in this process (-reader go), or any command
// (-reader cmd) that prints one line per query,
//
//	<unix nanoseconds the query ended> <highest sequence seen> <rows> <distinct rows>
//
// and is given the URL and table as ZOMBI_URL and ZOMBI_TABLE
// (scripts/live_reader.py does this for PyIceberg and Spark).
//
// At the end it reports the server's CPU seconds (process_cpu_seconds_total)
// and its tail-file counters over the run, so that a run with a reader
// and one without (-reader none) give the CPU cost of the tail.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/promtext"
)

type config struct {
	url         string
	table       string
	rate        float64
	batch       int
	duration    time.Duration
	reader      string
	allowRemote bool
	command     []string
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8181", "zombi base URL")
	flag.StringVar(&c.table, "table", "livebench", "ingest table (namespace default)")
	flag.Float64Var(&c.rate, "rate", 10000, "events per second")
	flag.IntVar(&c.batch, "batch", 100, "events per bulk request")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "measured time (at most 10m)")
	flag.StringVar(&c.reader, "reader", "go", "go (iceberg-go in this process), cmd (the command after --) or none")
	flag.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback target (only for servers you run)")
	flag.Parse()
	c.command = flag.Args()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "zombi-livebench:", err)
		os.Exit(1)
	}
}

// ack is one acknowledged bulk: when, and its highest offset.
type ack struct {
	at  time.Time
	seq int64
}

// seen is one finished query: when it ended, the highest sequence it saw,
// its rows and distinct rows.
type seen struct {
	at             time.Time
	seq            int64
	rows, distinct int64
}

func run(c config) error {
	u, err := url.Parse(c.url)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); !c.allowRemote && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address; pass -allow-remote for a server you run", u.Hostname())
	}
	if c.rate <= 0 || c.batch < 1 || c.duration <= 0 || c.duration > 10*time.Minute {
		return errors.New("bad -rate, -batch or -duration")
	}
	if (c.reader == "cmd") != (len(c.command) > 0) {
		return errors.New("-reader cmd takes a command after --, and only it does")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	p := &producer{c: c, client: client}
	// The table exists before the reader starts, with one event in it.
	if err := p.post(); err != nil {
		return err
	}
	before, err := scrape(client, c.url)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var readerErr error
	var queries []seen
	var wg sync.WaitGroup
	switch c.reader {
	case "go":
		wg.Go(func() { queries, readerErr = readGo(ctx, c) })
	case "cmd":
		wg.Go(func() { queries, readerErr = readCmd(ctx, c) })
	case "none":
	default:
		return fmt.Errorf("-reader %q: want go, cmd or none", c.reader)
	}
	start := time.Now()
	p.produce(ctx)
	elapsed := time.Since(start)
	wg.Wait()
	after, err := scrape(client, c.url)
	if err != nil {
		return err
	}
	if p.errs > 0 {
		return fmt.Errorf("%d bulk requests failed, the first: %v", p.errs, p.firstErr)
	}
	if readerErr != nil {
		return fmt.Errorf("reader: %w", readerErr)
	}

	fmt.Printf("ingest: %d events in %d bulks, %.0f events/s\n", len(p.acks)*c.batch, len(p.acks), float64(len(p.acks)*c.batch)/elapsed.Seconds())
	if c.reader != "none" {
		if err := report(p.acks, queries); err != nil {
			return err
		}
	}
	fmt.Printf("server: %.2f CPU s over %.1f s (%.0f%% of a core)", after.cpu-before.cpu, elapsed.Seconds(), 100*(after.cpu-before.cpu)/elapsed.Seconds())
	fmt.Printf("; tail: %.0f files, %.0f rows, %.1f MiB, %.2f s writing, %.0f committed files\n",
		after.tailFiles-before.tailFiles, after.tailRows-before.tailRows, (after.tailBytes-before.tailBytes)/(1<<20),
		after.tailWrite-before.tailWrite, after.tailCommitted-before.tailCommitted)
	return nil
}

// report prints ack → visible and query figures and checks that no query
// read a row twice or went backwards.
func report(acks []ack, queries []seen) error {
	if len(queries) == 0 {
		return errors.New("the reader finished no query")
	}
	slices.SortFunc(acks, func(a, b ack) int { return a.at.Compare(b.at) })
	var lat []time.Duration
	var qdur []time.Duration
	for i, q := range queries {
		if q.rows != q.distinct {
			return fmt.Errorf("query %d read %d rows, %d distinct", i, q.rows, q.distinct)
		}
		if i > 0 {
			if q.seq < queries[i-1].seq {
				return fmt.Errorf("query %d saw sequence %d, the one before %d", i, q.seq, queries[i-1].seq)
			}
			qdur = append(qdur, q.at.Sub(queries[i-1].at))
		}
	}
	// Each ack is visible at the end of the first query that saw its
	// sequence; acks after the last query's sequence were never seen.
	// Acks before the reader's first answer measure its start-up (a JVM,
	// imports), not visibility: they are left out.
	qi := 0
	for _, a := range acks {
		if a.at.Before(queries[0].at) {
			continue
		}
		for qi < len(queries) && queries[qi].seq < a.seq {
			qi++
		}
		if qi == len(queries) {
			break
		}
		// A query may see an event before its producer has the answer:
		// that is no wait at all.
		lat = append(lat, max(queries[qi].at.Sub(a.at), 0))
	}
	if len(lat) == 0 {
		return errors.New("no acknowledged event was seen by a query")
	}
	fmt.Printf("queries: %d, one every %s (p50), %s (p99)\n", len(queries), pct(qdur, 0.5), pct(qdur, 0.99))
	fmt.Printf("ack → visible to a live query: p50 %s p99 %s max %s over %d of %d bulks\n", pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1), len(lat), len(acks))
	return nil
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond)
}

// producer posts bulks at a fixed rate from a few workers.
type producer struct {
	c      config
	client *http.Client
	body   []byte

	mu       sync.Mutex
	acks     []ack
	errs     int
	firstErr error
}

func (p *producer) post() error {
	if p.body == nil {
		var b bytes.Buffer
		b.WriteString(`{"records":[`)
		for i := range p.c.batch {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"payload":"event %d of a bulk, about a hundred bytes of payload once it is encoded......"}`, i)
		}
		b.WriteString(`]}`)
		p.body = b.Bytes()
	}
	resp, err := p.client.Post(p.c.url+"/tables/"+p.c.table+"/bulk", "application/json", bytes.NewReader(p.body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	at := time.Now()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("bulk: %s: %s", resp.Status, body)
	}
	var r struct {
		Offsets []int64 `json:"offsets"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Offsets) == 0 {
		return fmt.Errorf("bulk answer %q: %v", body, err)
	}
	p.mu.Lock()
	p.acks = append(p.acks, ack{at: at, seq: slices.Max(r.Offsets)})
	p.mu.Unlock()
	return nil
}

// produce sends a bulk every batch/rate seconds until ctx ends; a slow
// answer does not delay the next bulk (up to 16 in flight).
func (p *producer) produce(ctx context.Context) {
	every := time.Duration(float64(time.Second) * float64(p.c.batch) / p.c.rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	slots := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // 16 in flight: the server is behind; skip a tick
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := p.post(); err != nil {
				p.mu.Lock()
				if p.errs++; p.firstErr == nil {
					p.firstErr = err
				}
				p.mu.Unlock()
			}
		})
	}
}

// readGo queries the live view with iceberg-go until ctx ends.
func readGo(ctx context.Context, c config) ([]seen, error) {
	cat, err := catalog.Load(context.Background(), "zombi_live", iceberg.Properties{"type": "rest", "uri": c.url, "warehouse": "live"})
	if err != nil {
		return nil, err
	}
	var out []seen
	high := int64(0)
	for ctx.Err() == nil {
		tbl, err := cat.LoadTable(context.Background(), table.Identifier{"default", c.table})
		if err != nil {
			return out, err
		}
		scan := tbl.Scan(table.WithScanPlanningMode(table.ScanPlanningRemote), table.WithSelectedFields("sequence"),
			table.WithRowFilter(iceberg.GreaterThan(iceberg.Reference("sequence"), high)))
		at, err := scan.ToArrowTable(context.Background())
		scan.Close()
		if err != nil {
			return out, err
		}
		s := seen{seq: high}
		set := map[int64]struct{}{}
		for _, ch := range at.Column(0).Data().Chunks() {
			for _, v := range ch.(*array.Int64).Int64Values() {
				set[v] = struct{}{}
				s.seq = max(s.seq, v)
				s.rows++
			}
		}
		at.Release()
		s.at, s.distinct = time.Now(), int64(len(set))
		out = append(out, s)
		high = s.seq
	}
	return out, nil
}

// readCmd runs the reader command until ctx ends and parses its lines.
func readCmd(ctx context.Context, c config) ([]seen, error) {
	cmd := exec.Command(c.command[0], c.command[1:]...)
	cmd.Env = append(os.Environ(), "ZOMBI_URL="+c.url, "ZOMBI_TABLE="+c.table)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var out []seen
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var perr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case ln, ok := <-lines:
			if !ok {
				break loop
			}
			f := strings.Fields(ln)
			if len(f) != 4 {
				continue // the reader's own chatter
			}
			var v [4]int64
			for i := range f {
				if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil && perr == nil {
					perr = fmt.Errorf("reader line %q: %v", ln, err)
				}
			}
			out = append(out, seen{at: time.Unix(0, v[0]), seq: v[1], rows: v[2], distinct: v[3]})
		}
	}
	_ = cmd.Process.Kill()
	go func() {
		for range lines {
		}
	}()
	_ = cmd.Wait()
	return out, perr
}

// metrics are the server's counters the report differences.
type metrics struct {
	cpu                                                      float64
	tailFiles, tailRows, tailBytes, tailWrite, tailCommitted float64
}

func scrape(client *http.Client, base string) (metrics, error) {
	var m metrics
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sums, err := promtext.Sums(resp.Body, "process_cpu_seconds_total", "zombi_flush_tail_files_total", "zombi_flush_tail_rows_total",
		"zombi_flush_tail_bytes_total", "zombi_flush_tail_write_seconds_sum", "zombi_flush_tail_committed_files_total")
	m.cpu, m.tailFiles, m.tailRows = sums["process_cpu_seconds_total"], sums["zombi_flush_tail_files_total"], sums["zombi_flush_tail_rows_total"]
	m.tailBytes, m.tailWrite = sums["zombi_flush_tail_bytes_total"], sums["zombi_flush_tail_write_seconds_sum"]
	m.tailCommitted = sums["zombi_flush_tail_committed_files_total"]
	return m, err
}
