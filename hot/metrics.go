package hot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type metrics struct {
	reg prometheus.Registerer

	appends        prometheus.Counter
	appendFailures *prometheus.CounterVec
	appendedEvents prometheus.Counter
	appendedBytes  prometheus.Counter
	duplicates     prometheus.Counter
	backlogFull    prometheus.Counter
	appendDuration prometheus.Histogram
	readEvents     prometheus.Counter
	deletedEvents  prometheus.Counter
	deletedBytes   prometheus.Counter
	expiredKeys    prometheus.Counter
	writeStalls    prometheus.Counter

	collectors []prometheus.Collector
}

func newMetrics(db *DB) *metrics {
	const ns, sub = "zombi", "hot"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		appends: counter("appends_total", "Appends that succeeded (including those that were all duplicates)."),
		appendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "append_failures_total",
			Help: "Appends that failed, by reason: backlog_full, canceled, closed, error.",
		}, []string{"reason"}),
		appendedEvents: counter("appended_events_total", "Events stored."),
		appendedBytes:  counter("appended_bytes_total", "Bytes (keys and values) of the events stored."),
		duplicates:     counter("duplicate_events_total", "Records not stored because their idempotency key was seen within the window."),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "append_duration_seconds",
			Help:    "Latency of successful appends, including the WAL sync.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		readEvents:    counter("read_events_total", "Events returned by Read."),
		deletedEvents: counter("deleted_events_total", "Events deleted by DeleteThrough."),
		deletedBytes:  counter("deleted_bytes_total", "Bytes of the events deleted by DeleteThrough."),
		expiredKeys:   counter("expired_keys_total", "Idempotency keys removed after the window."),
		writeStalls:   counter("write_stalls_total", "Times Pebble stalled writes (memtables or L0 full)."),
	}
	// The reasons exist from the start, at 0, so that the first failure
	// is an increase that rate() and alerts see.
	for _, r := range []string{"canceled", "closed", "error"} {
		m.appendFailures.WithLabelValues(r)
	}
	m.backlogFull = m.appendFailures.WithLabelValues("backlog_full")
	m.collectors = []prometheus.Collector{
		m.appends, m.appendFailures, m.appendedEvents, m.appendedBytes, m.duplicates,
		m.appendDuration, m.readEvents, m.deletedEvents, m.deletedBytes, m.expiredKeys,
		m.writeStalls,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "backlog_bytes",
			Help: "Bytes stored and not yet deleted over all tables, including appends in flight.",
		}, func() float64 { return float64(db.BacklogBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "backlog_limit_bytes",
			Help: "The backlog cap (MaxBacklogBytes).",
		}, func() float64 { return float64(db.maxBacklog) }),
		&pebbleCollector{db: db},
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, c := range m.collectors[:i] {
				reg.Unregister(c)
			}
			return err
		}
	}
	m.reg = reg
	return nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) observeAppend(start time.Time, err error) {
	switch {
	case err == nil:
		m.appends.Inc()
		m.appendDuration.Observe(time.Since(start).Seconds())
	case errors.Is(err, ErrBacklogFull):
		// Counted where it is decided.
	case errors.Is(err, ErrClosed):
		m.appendFailures.WithLabelValues("closed").Inc()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		m.appendFailures.WithLabelValues("canceled").Inc()
	default:
		m.appendFailures.WithLabelValues("error").Inc()
	}
}

// pebbleCollector exports a few of Pebble's own metrics at scrape time.
type pebbleCollector struct{ db *DB }

var (
	descFsync = prometheus.NewDesc("zombi_hot_wal_fsync_duration_seconds",
		"Latency of the WAL fsyncs (one fsync serves all appends that wait for it).", nil, nil)
	descWALBytes = prometheus.NewDesc("zombi_hot_wal_bytes_written_total",
		"Bytes written to the WAL.", nil, nil)
	descDisk = prometheus.NewDesc("zombi_hot_disk_usage_bytes",
		"Disk space used by the hot tier (sstables, WAL, manifests).", nil, nil)
	descMemTable = prometheus.NewDesc("zombi_hot_memtable_bytes",
		"Bytes allocated by memtables.", nil, nil)
	descL0 = prometheus.NewDesc("zombi_hot_l0_sublevels",
		"L0 sublevels (read amplification; writes stall when high).", nil, nil)
	descCompactions = prometheus.NewDesc("zombi_hot_compactions_total",
		"Pebble compactions.", nil, nil)
	descFlushes = prometheus.NewDesc("zombi_hot_flushes_total",
		"Pebble memtable flushes.", nil, nil)
	descAvail = prometheus.NewDesc("zombi_hot_disk_available_bytes",
		"Bytes available to Zombi on the file system that holds the hot tier (the data directory).", nil, nil)
	descCapacity = prometheus.NewDesc("zombi_hot_disk_capacity_bytes",
		"Size of the file system that holds the hot tier (the data directory).", nil, nil)
)

func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFsync, descWALBytes, descDisk, descMemTable, descL0, descCompactions, descFlushes,
		descAvail, descCapacity} {
		ch <- d
	}
}

func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.db.enter() {
		return
	}
	m := c.db.pdb.Metrics()
	c.db.closeMu.RUnlock()

	if h := m.LogWriter.FsyncLatency; h != nil {
		var pb dto.Metric
		if err := h.Write(&pb); err == nil && pb.Histogram != nil {
			// Pebble observes nanoseconds.
			buckets := make(map[float64]uint64, len(pb.Histogram.Bucket))
			for _, b := range pb.Histogram.Bucket {
				buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
			}
			ch <- prometheus.MustNewConstHistogram(descFsync,
				pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum()/1e9, buckets)
		}
	}
	ch <- prometheus.MustNewConstMetric(descWALBytes, prometheus.CounterValue, float64(m.WAL.BytesWritten))
	ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(m.DiskSpaceUsage()))
	ch <- prometheus.MustNewConstMetric(descMemTable, prometheus.GaugeValue, float64(m.MemTable.Size))
	ch <- prometheus.MustNewConstMetric(descL0, prometheus.GaugeValue, float64(m.Levels[0].Sublevels))
	ch <- prometheus.MustNewConstMetric(descCompactions, prometheus.CounterValue, float64(m.Compact.Count))
	ch <- prometheus.MustNewConstMetric(descFlushes, prometheus.CounterValue, float64(m.Flush.Count))
	// A file system that cannot tell (an in-memory one) exports neither.
	if u, err := c.db.fs.GetDiskUsage(c.db.dir); err == nil {
		ch <- prometheus.MustNewConstMetric(descAvail, prometheus.GaugeValue, float64(u.AvailBytes))
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(u.TotalBytes))
	}
}

// eventListener logs Pebble's notable events and counts write stalls.
func (db *DB) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			db.log.Error("pebble background error", "err", err)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			db.log.Error("pebble data corruption", "path", info.Path, "err", info.Details)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			db.log.Warn("slow disk", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			db.metrics.writeStalls.Inc()
			db.log.Warn("pebble write stall", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			db.log.Info("pebble write stall ended")
		},
		LowDiskSpace: func(info pebble.LowDiskSpaceInfo) {
			db.log.Warn("low disk space", "available_bytes", info.AvailBytes, "total_bytes", info.TotalBytes)
		},
	}
}

// slogLogger adapts a *slog.Logger to pebble.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Info(fmt.Sprintf(format, args...), "source", "pebble")
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf logs and panics: Pebble calls it on invariant violations from which
// it cannot continue, and does not expect it to return.
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg, "source", "pebble")
	panic("pebble: " + msg)
}
