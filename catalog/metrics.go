package catalog

import "github.com/prometheus/client_golang/prometheus"

// metrics are the catalog's Prometheus metrics.
type metrics struct {
	commits        *prometheus.CounterVec
	commitDuration prometheus.Histogram
	purgedFiles    prometheus.Counter
	purgeFailures  prometheus.Counter
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "catalog", Name: "commits_total",
			Help: "Catalog commits by outcome: ok, conflict (409), invalid (400), unknown (outcome not known), error.",
		}, []string{"outcome"}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "catalog", Name: "commit_duration_seconds",
			Help:    "Time from loading the base metadata to the pointer swap, successful commits only.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		purgedFiles: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "catalog", Name: "purged_files_total",
			Help: "Files deleted by drop-table with purge and by metadata cleanup.",
		}),
		purgeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "catalog", Name: "purge_failures_total",
			Help: "Drops with purge whose files could not all be deleted (left for orphan cleanup).",
		}),
	}
	if r != nil {
		r.MustRegister(m.commits, m.commitDuration, m.purgedFiles, m.purgeFailures)
	}
	return m
}
