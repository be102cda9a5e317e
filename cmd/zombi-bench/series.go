package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// acks counts the events acknowledged to the clients while a run is
// measured, so that -watch can sample the rate. Each client adds to its
// own counter on its own cache line: a counter shared by all of them
// would be contended on every request.
type acks struct{ n []paddedCount }

type paddedCount struct {
	atomic.Int64
	_ [56]byte
}

func newAcks(clients int) *acks { return &acks{n: make([]paddedCount, clients)} }

func (a *acks) add(client int, events int64) { a.n[client].Add(events) }

func (a *acks) total() int64 {
	var t int64
	for i := range a.n {
		t += a.n[i].Load()
	}
	return t
}

// runSeries is one run's time series under -watch: a point a second while
// the load ran, then while the watcher waited for the flusher to commit
// what had been acknowledged.
type runSeries struct {
	run     int
	loadEnd time.Time
	points  []point
}

// memory sums up a run's memory use over the points taken while the load
// ran: the server's resident set, and what the hot tier holds per event it
// holds (acknowledged, not yet committed to Iceberg).
type memory struct {
	samples                   int
	rssMedian, rssMin, rssMax float64
	// Over the points where the events held are known: their mean, and
	// the hot tier's backlog bytes (keys and values as stored) and disk
	// use (Pebble's sstables, WAL and manifests) divided by them, as a
	// ratio of sums, so that moments with few events held (just after a
	// commit deleted them) weigh little. 0 when no event was held.
	heldSamples                   int
	held                          float64
	backlogPerEvent, diskPerEvent float64
}

func (s runSeries) memory() memory {
	var m memory
	var rss []float64
	var held, backlog, disk float64
	for _, p := range s.points {
		if p.at.After(s.loadEnd) {
			continue
		}
		rss = append(rss, p.rss)
		if p.held >= 0 {
			m.heldSamples++
			held += float64(p.held)
			backlog += p.backlog
			disk += p.disk
		}
	}
	m.samples = len(rss)
	if len(rss) > 0 {
		m.rssMedian, m.rssMin, m.rssMax = median(rss), slices.Min(rss), slices.Max(rss)
	}
	if m.heldSamples > 0 {
		m.held = held / float64(m.heldSamples)
	}
	if held > 0 {
		m.backlogPerEvent, m.diskPerEvent = backlog/held, disk/held
	}
	return m
}

func (m memory) String() string {
	if m.samples == 0 {
		return "no samples"
	}
	s := fmt.Sprintf("server RSS median %.0f MiB (min %.0f, max %.0f) over %d samples",
		m.rssMedian/(1<<20), m.rssMin/(1<<20), m.rssMax/(1<<20), m.samples)
	if m.held > 0 {
		s += fmt.Sprintf("; hot tier per event held (mean %.0f events held): backlog %.0f B, on disk %.0f B",
			m.held, m.backlogPerEvent, m.diskPerEvent)
	}
	return s
}

// memoryOverRuns sums up the runs' memory: the median and range of the
// runs' median RSS and of their bytes per event held, and the highest RSS
// sampled in any run.
func memoryOverRuns(ms []memory) string {
	var rss, backlog, disk []float64
	var peak float64
	for _, m := range ms {
		if m.samples == 0 {
			continue
		}
		rss = append(rss, m.rssMedian)
		peak = max(peak, m.rssMax)
		if m.held > 0 {
			backlog = append(backlog, m.backlogPerEvent)
			disk = append(disk, m.diskPerEvent)
		}
	}
	if len(rss) == 0 {
		return "no samples"
	}
	s := fmt.Sprintf("server RSS median %.0f MiB (run medians %.0f–%.0f), max %.0f MiB",
		median(rss)/(1<<20), slices.Min(rss)/(1<<20), slices.Max(rss)/(1<<20), peak/(1<<20))
	if len(backlog) > 0 {
		s += fmt.Sprintf("; hot tier bytes per event held: backlog %.0f B (%.0f–%.0f), on disk %.0f B (%.0f–%.0f)",
			median(backlog), slices.Min(backlog), slices.Max(backlog), median(disk), slices.Min(disk), slices.Max(disk))
	}
	return s
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

var seriesHeader = []string{"run", "t_s", "phase", "load1", "acked_events", "acked_per_s", "committed_rows",
	"committed_per_s", "high", "committed", "held_events", "backlog_bytes", "hot_disk_bytes", "rss_bytes", "heap_inuse_bytes", "compacted_bytes"}

// appendSeries appends the run's points to the CSV file at path, with a
// header when the file is new or empty. Times are seconds from the run's
// first point; acked_events, committed_rows and compacted_bytes (the
// input of the compactions that ended) count from it too, and the
// rates are over the interval since the point before. The phase is "load"
// while the load ran and "drain" after.
func appendSeries(path string, s runSeries) error {
	return appendCSV(path, seriesHeader, func(w *csv.Writer) {
		if len(s.points) == 0 {
			return
		}
		first := s.points[0]
		for i, p := range s.points {
			ackRate, rowRate := "", ""
			if i > 0 {
				prev := s.points[i-1]
				if dt := p.at.Sub(prev.at).Seconds(); dt > 0 {
					ackRate = strconv.FormatFloat(float64(p.acked-prev.acked)/dt, 'f', 0, 64)
					rowRate = strconv.FormatFloat((p.rows-prev.rows)/dt, 'f', 0, 64)
				}
			}
			phase := "load"
			if p.at.After(s.loadEnd) {
				phase = "drain"
			}
			held := ""
			if p.held >= 0 {
				held = strconv.FormatInt(p.held, 10)
			}
			_ = w.Write([]string{
				strconv.Itoa(s.run), strconv.FormatFloat(p.at.Sub(first.at).Seconds(), 'f', 3, 64), phase, loadString(p.load1),
				strconv.FormatInt(p.acked-first.acked, 10), ackRate,
				strconv.FormatFloat(p.rows-first.rows, 'f', 0, 64), rowRate,
				strconv.FormatUint(p.high, 10), strconv.FormatUint(p.committed, 10), held,
				strconv.FormatFloat(p.backlog, 'f', 0, 64), strconv.FormatFloat(p.disk, 'f', 0, 64),
				strconv.FormatFloat(p.rss, 'f', 0, 64), strconv.FormatFloat(p.heap, 'f', 0, 64),
				strconv.FormatFloat(p.compacted-first.compacted, 'f', 0, 64),
			})
		}
	})
}

var resultHeader = []string{"label", "run", "unix_time", "load1", "mode", "clients", "rate", "batch", "size",
	"events_per_s", "requests", "failures", "p50_ms", "p99_ms", "p999_ms", "max_ms"}

// appendResult appends one run's load figures to the CSV file at path,
// with a header when the file is new or empty.
func appendResult(path string, c config, run int, r result) error {
	label := c.label
	if label == "" {
		label = c.mode
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1e3, 'f', 3, 64) }
	return appendCSV(path, resultHeader, func(w *csv.Writer) {
		_ = w.Write([]string{
			label, strconv.Itoa(run), strconv.FormatInt(time.Now().Unix(), 10), loadString(loadAverage()),
			c.mode, strconv.Itoa(c.clients), strconv.FormatFloat(c.rate, 'f', -1, 64),
			strconv.Itoa(c.batch), strconv.Itoa(c.size),
			strconv.FormatFloat(r.eventsPerSec, 'f', 0, 64), strconv.FormatInt(r.requests, 10), strconv.FormatInt(r.failures, 10),
			ms(r.p50), ms(r.p99), ms(r.p999), ms(r.max),
		})
	})
}

func loadString(v float64) string {
	if v < 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func appendCSV(path string, header []string, rows func(*csv.Writer)) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return errors.Join(err, f.Close())
	}
	w := csv.NewWriter(f)
	if st.Size() == 0 {
		_ = w.Write(header)
	}
	rows(w)
	w.Flush()
	if err := w.Error(); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}
