package compaction

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	filesBefore prometheus.Counter
	filesAfter  prometheus.Counter
	bytesBefore prometheus.Counter
	bytesAfter  prometheus.Counter
	conflicts   prometheus.Counter
	expired     prometheus.Counter
	deleted     prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "maintenance", Name: "runs_total",
			Help: "Compaction and maintenance runs by kind (compact, maintain) and outcome (ok, busy, aborted, failed).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "maintenance", Name: "duration_seconds",
			Help:    "Duration of compaction and maintenance runs by kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}, []string{"kind"}),
		filesBefore: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "compaction", Name: "files_rewritten_total",
			Help: "Data files replaced by compaction.",
		}),
		filesAfter: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "compaction", Name: "files_written_total",
			Help: "Data files compaction wrote in their place.",
		}),
		bytesBefore: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "compaction", Name: "table_bytes_before_total",
			Help: "Data bytes of the compacted tables before each compaction.",
		}),
		bytesAfter: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "compaction", Name: "table_bytes_after_total",
			Help: "Data bytes of the compacted tables after each compaction.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "compaction", Name: "conflicts_total",
			Help: "Compaction commits that lost to a concurrent commit.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "maintenance", Name: "expired_snapshots_total",
			Help: "Snapshots expired.",
		}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "maintenance", Name: "orphan_files_deleted_total",
			Help: "Files deleted because no metadata referenced them.",
		}),
	}
	// Every kind and outcome exists from the start, at 0, so that the
	// first failed run is an increase that rate() and alerts see.
	for _, kind := range []string{"compact", "maintain"} {
		m.duration.WithLabelValues(kind)
		for _, o := range []string{"ok", "busy", "aborted", "failed"} {
			m.runs.WithLabelValues(kind, o)
		}
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.filesBefore, m.filesAfter, m.bytesBefore,
		m.bytesAfter, m.conflicts, m.expired, m.deleted} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) observe(kind string, start time.Time, err error) {
	m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	m.runs.WithLabelValues(kind, outcome(err)).Inc()
}
