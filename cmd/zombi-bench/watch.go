package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zombi-db/zombi/internal/promtext"
)

// watcher follows a table end to end while load runs (-watch): every tick
// it reads the hot tier's high watermark (GET /tables/{t}/watermark) and
// the committed watermark from loadTable (the zombi.watermark.* property of
// the metadata an engine would get); every second it also reads the
// server's /metrics (committed rows, hot backlog and disk use, RSS, Go
// heap, bytes compacted) and the clients' acknowledged events, one point of
// the run's time series.
//
// Ack → visible latency is estimated per sequence number s as the first
// time loadTable's watermark reached s minus the first time the high
// watermark did (s was acknowledged just after it became durable), so it
// is exact to about one tick.
type watcher struct {
	base    *url.URL
	ns, tbl string
	token   string
	tick    time.Duration
	client  *http.Client

	stop chan struct{}
	done chan struct{}

	acks *acks // the run's acknowledged events; nil: not counted

	mu      sync.Mutex
	highs   []sample // (time, high watermark), in time order
	commits []sample // (time, committed watermark), in time order
	points  []point  // one a second, in time order
	loadEnd time.Time
	errs    int
}

// point is what the watcher saw at one moment of a run.
type point struct {
	at              time.Time
	acked           int64   // events acknowledged to the clients since the run started
	rows            float64 // zombi_flush_rows_total
	high, committed uint64  // the latest watermarks the tick saw
	held            int64   // high - committed: events in the hot tier not yet in Iceberg; -1 unknown
	backlog         float64 // zombi_hot_backlog_bytes
	disk            float64 // zombi_hot_disk_usage_bytes
	rss             float64 // process_resident_memory_bytes
	heap            float64 // go_memstats_heap_inuse_bytes: the Go heap's share of rss
	compacted       float64 // zombi_compaction_table_bytes_before_total: rises as a compaction ends
	load1           float64 // this machine's 1-minute load average; -1 unknown
}

type sample struct {
	at  time.Time
	seq uint64
}

func startWatcher(u *url.URL, c config, a *acks) *watcher {
	ns, tbl := "default", c.table
	if i := strings.LastIndexByte(c.table, '.'); i >= 0 {
		ns, tbl = c.table[:i], c.table[i+1:]
	}
	w := &watcher{base: u, ns: ns, tbl: tbl, token: c.token, tick: c.watchTick, acks: a,
		client: &http.Client{Timeout: 5 * time.Second}, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *watcher) loop() {
	defer close(w.done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	lastMetrics := time.Time{}
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		high, errH := w.high()
		committed, errC := w.committed()
		w.mu.Lock()
		if errH != nil || errC != nil {
			w.errs++
		}
		if errH == nil && (len(w.highs) == 0 || high > w.highs[len(w.highs)-1].seq) {
			w.highs = append(w.highs, sample{now, high})
		}
		if errC == nil && (len(w.commits) == 0 || committed > w.commits[len(w.commits)-1].seq) {
			w.commits = append(w.commits, sample{now, committed})
		}
		w.mu.Unlock()
		if now.Sub(lastMetrics) >= time.Second {
			lastMetrics = now
			p, err := w.metrics()
			p.at, p.load1, p.held = now, loadAverage(), -1
			if w.acks != nil {
				p.acked = w.acks.total()
			}
			w.mu.Lock()
			if err != nil {
				w.errs++
			} else {
				// The watermarks the tick just read (each slice holds
				// only rises, so its last sample is the current value).
				if len(w.highs) > 0 && len(w.commits) > 0 {
					p.high, p.committed = w.highs[len(w.highs)-1].seq, w.commits[len(w.commits)-1].seq
					p.held = int64(p.high) - int64(min(p.committed, p.high))
				}
				w.points = append(w.points, p)
			}
			w.mu.Unlock()
		}
	}
}

func (w *watcher) get(path string, into func(*http.Response) error) error {
	req, err := http.NewRequest("GET", w.base.String()+path, nil)
	if err != nil {
		return err
	}
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return into(resp)
}

func (w *watcher) high() (uint64, error) {
	var v struct {
		High uint64 `json:"high"`
	}
	err := w.get("/tables/"+w.ns+"."+w.tbl+"/watermark", func(r *http.Response) error { return json.NewDecoder(r.Body).Decode(&v) })
	return v.High, err
}

// committed is the highest zombi.watermark.* property loadTable returns.
func (w *watcher) committed() (uint64, error) {
	var v struct {
		Metadata struct {
			Properties map[string]string `json:"properties"`
		} `json:"metadata"`
	}
	path := "/v1/namespaces/" + url.PathEscape(strings.ReplaceAll(w.ns, ".", "\x1f")) + "/tables/" + url.PathEscape(w.tbl) + "?snapshots=refs"
	err := w.get(path, func(r *http.Response) error { return json.NewDecoder(r.Body).Decode(&v) })
	var max uint64
	for k, s := range v.Metadata.Properties {
		if n, perr := strconv.ParseUint(s, 10, 64); perr == nil && strings.HasPrefix(k, "zombi.watermark.") && n > max {
			max = n
		}
	}
	return max, err
}

func (w *watcher) metrics() (point, error) {
	var p point
	err := w.get("/metrics", func(r *http.Response) error {
		sums, err := promtext.Sums(r.Body, "zombi_hot_backlog_bytes", "zombi_flush_rows_total",
			"zombi_hot_disk_usage_bytes", "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes",
			"zombi_compaction_table_bytes_before_total")
		p.backlog, p.rows = sums["zombi_hot_backlog_bytes"], sums["zombi_flush_rows_total"]
		p.disk, p.rss = sums["zombi_hot_disk_usage_bytes"], sums["process_resident_memory_bytes"]
		p.heap, p.compacted = sums["go_memstats_heap_inuse_bytes"], sums["zombi_compaction_table_bytes_before_total"]
		return err
	})
	return p, err
}

// loadAverage is the 1-minute load average of this machine (the server's
// too: -watch only follows loopback servers unless told otherwise), -1
// where /proc/loadavg cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// finish waits (at most 30s) until what was durable when the load ended
// is committed, stops the watcher and reports what it saw, with the run's
// time series.
func (w *watcher) finish() (string, runSeries) {
	w.mu.Lock()
	w.loadEnd = time.Now()
	var target uint64
	if len(w.highs) > 0 {
		target = w.highs[len(w.highs)-1].seq
	}
	w.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(w.tick) {
		w.mu.Lock()
		caught := len(w.commits) > 0 && w.commits[len(w.commits)-1].seq >= target
		w.mu.Unlock()
		if caught {
			break
		}
	}
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	b.WriteString(commitRates(w.points, w.loadEnd))
	if len(w.points) > 0 {
		backlog := make([]float64, len(w.points))
		for i, p := range w.points {
			backlog[i] = p.backlog
		}
		sorted := slices.Clone(backlog)
		slices.Sort(sorted)
		fmt.Fprintf(&b, "; hot backlog MiB first %.1f last %.1f min %.1f median %.1f max %.1f",
			backlog[0]/(1<<20), backlog[len(backlog)-1]/(1<<20), sorted[0]/(1<<20), sorted[len(sorted)/2]/(1<<20), sorted[len(sorted)-1]/(1<<20))
	}
	if lat := w.visibility(); len(lat) > 0 {
		at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		fmt.Fprintf(&b, "; ack→visible (loadTable) p50 %v p99 %v max %v over %d sequence ranges",
			at(0.5).Round(time.Millisecond), at(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	}
	if w.errs > 0 {
		fmt.Fprintf(&b, "; %d watch errors", w.errs)
	}
	return b.String(), runSeries{loadEnd: w.loadEnd, points: slices.Clone(w.points)}
}

// visibility returns, weighted by sequence numbers, the latency from the
// first time the high watermark covered a sequence to the first time the
// committed watermark did. Sequences the run never saw committed are
// left out (the last flush may still be under way).
func (w *watcher) visibility() []time.Duration {
	var out []time.Duration
	ci := 0
	for i, h := range w.highs {
		from := uint64(0)
		if i > 0 {
			from = w.highs[i-1].seq
		} else {
			continue // sequences before the run started
		}
		// Every sequence in (from, h.seq] became durable at about h.at.
		for ci < len(w.commits) && w.commits[ci].seq <= from {
			ci++
		}
		for cj := ci; cj < len(w.commits) && from < h.seq; cj++ {
			c := w.commits[cj]
			upto := min(c.seq, h.seq)
			if upto <= from {
				continue
			}
			lat := max(c.at.Sub(h.at), 0)
			// One entry per 100 sequences keeps the slice small.
			for n := (upto - from + 99) / 100; n > 0; n-- {
				out = append(out, lat)
			}
			from = upto
		}
	}
	slices.Sort(out)
	return out
}

// commitRates describes the rows committed per second over the load (from
// the first point to the last taken before loadEnd) and over the whole run
// with the drain after it, and how far the committed watermark was behind
// the high watermark at the load's last point. Under a paced load that the
// flusher keeps up with, the first is the pace and the distance is at most
// a cycle or two; the second is lower by the drain's share of the time.
func commitRates(points []point, loadEnd time.Time) string {
	if len(points) < 2 {
		return ""
	}
	rate := func(a, b point) float64 { return (b.rows - a.rows) / b.at.Sub(a.at).Seconds() }
	first, all := points[0], points[len(points)-1]
	last := first
	for _, p := range points {
		if !p.at.After(loadEnd) {
			last = p
		}
	}
	if !last.at.After(first.at) {
		return fmt.Sprintf("committed %.0f rows/s", rate(first, all))
	}
	s := fmt.Sprintf("committed %.0f rows/s under load (%.0f with the drain of %.0fs)",
		rate(first, last), rate(first, all), max(0, all.at.Sub(loadEnd).Seconds()))
	if last.held >= 0 {
		s += fmt.Sprintf("; %d events not committed at the load's end", last.held)
	}
	return s
}
