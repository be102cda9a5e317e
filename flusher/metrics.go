package flusher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the flusher's Prometheus series.
type metrics struct {
	cycles     *prometheus.CounterVec
	rows       prometheus.Counter
	bytes      prometheus.Counter
	files      prometheus.Counter
	commit     prometheus.Histogram
	conflicts  prometheus.Counter
	failures   *prometheus.CounterVec
	lag        prometheus.Histogram
	discarded  prometheus.Counter
	backlogAge prometheus.GaugeFunc
}

func newMetrics(f *Flusher) *metrics {
	return &metrics{
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "cycles_total",
			Help: "Flush cycles by outcome: committed, empty (nothing to write), failed.",
		}, []string{"outcome"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "rows_total",
			Help: "Rows committed to Iceberg tables.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "bytes_total",
			Help: "Bytes of Parquet data files committed.",
		}),
		files: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "files_total",
			Help: "Parquet data files committed.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "commit_seconds",
			Help:    "Time from the start of a commit to its success, conflicts and retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "conflicts_total",
			Help: "Commits that lost to a concurrent commit (409) and were rebased.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "failures_total",
			Help: "Failed flush cycles by reason: catalog, storage, schema (events the current schema cannot hold), hot.",
		}, []string{"reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "lag_seconds",
			Help:    "Per committed cycle, the time from the acknowledgement of its oldest event to the commit.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "discarded_events_total",
			Help: "Hot events discarded because their table was dropped from the catalog.",
		}),
		backlogAge: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "backlog_age_seconds",
			Help: "Age of the oldest acknowledged event not yet committed, over all tables.",
		}, func() float64 {
			oldest := f.oldestPending()
			if oldest.IsZero() {
				return 0
			}
			return time.Since(oldest).Seconds()
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.cycles, m.rows, m.bytes, m.files, m.commit, m.conflicts,
		m.failures, m.lag, m.discarded, m.backlogAge} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
