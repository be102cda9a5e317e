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
	overdue    prometheus.GaugeFunc
	atRisk     prometheus.GaugeFunc
	atRiskN    prometheus.GaugeFunc

	tailRequests     *prometheus.CounterVec
	tailSeconds      prometheus.Histogram
	tailWriteSeconds prometheus.Histogram
	tailFiles        prometheus.Counter
	tailRows         prometheus.Counter
	tailBytes        prometheus.Counter
	tailDropped      *prometheus.CounterVec
	tailCommitted    prometheus.Counter

	stageSeconds  prometheus.Histogram
	stagedBatches prometheus.Counter
	stagedDropped *prometheus.CounterVec
	sharedCommits prometheus.Counter
	sharedNodes   prometheus.Histogram
}

func newMetrics(f *Flusher) *metrics {
	m := &metrics{
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
			Help: "Failed flush cycles by reason: catalog, storage, schema (events the current schema cannot hold), hot, canceled.",
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
		overdue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "backlog_overdue_seconds",
			Help: "Over all tables, how far the oldest acknowledged event not yet committed (in a cluster: not yet staged) is past its table's flush interval; 0 while every table is within its interval.",
		}, func() float64 { return f.backlogOverdue(f.opts.Now()).Seconds() }),
		atRisk: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "at_risk_bytes",
			Help: "Hot-tier bytes of acknowledged events that only this node's disk holds: not committed, and in a cluster not staged either (estimated from sequences). Losing the disk loses them.",
		}, f.atRiskBytes),
		atRiskN: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "at_risk_events",
			Help: "Acknowledged events that only this node's disk holds, as zombi_flush_at_risk_bytes counts their bytes.",
		}, f.atRiskEvents),
		tailRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_requests_total",
			Help: "Hot tails asked for by live plans, by outcome: reused (the kept files, no new events), extended (kept files and a new chunk), written (afresh), empty (no events to tail), busy (waited too long), failed.",
		}, []string{"outcome"}),
		tailSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_seconds",
			Help:    "Time a hot tail took to hand out, waits for a running cycle and for a writer included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		tailWriteSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_write_seconds",
			Help:    "Time to write one chunk of a hot tail as Parquet.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		tailFiles: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_files_total",
			Help: "Parquet data files written for hot tails.",
		}),
		tailRows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_rows_total",
			Help: "Events written into hot-tail data files.",
		}),
		tailBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_bytes_total",
			Help: "Bytes of Parquet data files written for hot tails.",
		}),
		tailDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_dropped_total",
			Help: "Kept hot tails not used any more, by reason: watermark (a commit moved it), table (schema, spec, sort order or location changed), age (older than the reuse limit). Their files are left to orphan cleanup.",
		}, []string{"reason"}),
		tailCommitted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "tail_committed_files_total",
			Help: "Hot-tail data files that a flush cycle committed (or, in a cluster, staged) as they were.",
		}),
		stageSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "stage_seconds",
			Help:    "In a cluster, time to record one staged batch in Postgres.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		stagedBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "staged_batches_total",
			Help: "In a cluster, batches of this node's events staged for their table's shared commit.",
		}),
		stagedDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "staged_dropped_total",
			Help: "Staged batches a shared commit of this node deleted without committing them, by reason: stale (a commit holds their events), broken (they do not follow their node's watermark; the node stages the events again), invalid (the table cannot take them).",
		}, []string{"reason"}),
		sharedCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "shared_commits_total",
			Help: "In a cluster, appends this node committed with the staged batches of every node.",
		}),
		sharedNodes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "flush", Name: "shared_commit_nodes",
			Help:    "Per shared commit, the number of nodes whose batches it took.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16},
		}),
	}
	// The outcomes and reasons exist from the start, at 0, so that the
	// first failure is an increase that rate() and alerts see.
	for _, o := range []string{"committed", "empty", "failed"} {
		m.cycles.WithLabelValues(o)
	}
	for _, r := range []string{"catalog", "storage", "schema", "hot", "canceled"} {
		m.failures.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.cycles, m.rows, m.bytes, m.files, m.commit, m.conflicts,
		m.failures, m.lag, m.discarded, m.backlogAge, m.overdue, m.atRisk, m.atRiskN, m.tailRequests, m.tailSeconds, m.tailWriteSeconds,
		m.tailFiles, m.tailRows, m.tailBytes, m.tailDropped, m.tailCommitted,
		m.stageSeconds, m.stagedBatches, m.stagedDropped, m.sharedCommits, m.sharedNodes} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
