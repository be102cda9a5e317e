package planning

import "github.com/prometheus/client_golang/prometheus"

// metrics are the planner's Prometheus metrics.
type metrics struct {
	plans        prometheus.Counter
	rejected     *prometheus.CounterVec
	pages        *prometheus.CounterVec
	pageDuration prometheus.Histogram
	files        *prometheus.CounterVec
	forgotten    *prometheus.CounterVec
	live         prometheus.Gauge
	kept         prometheus.Gauge
	bytes        prometheus.Gauge
	waiting      prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		plans: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "plans_total",
			Help: "Scan plans made (planTableScan answered with a plan).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "rejected_total",
			Help: "Plan and plan-task requests refused with 503 by limit: plans (live plans), memory (plan bytes), workers (planning slots).",
		}, []string{"limit"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "pages_total",
			Help: "Plan pages planned, by outcome (ok, error).",
		}, []string{"outcome"}),
		pageDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "page_duration_seconds",
			Help:    "Time to plan and encode one page, from holding a planning slot to the encoded answer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "files_total",
			Help: "Files returned in plan pages: data files, and delete files once per page that references them.",
		}, []string{"content"}),
		forgotten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "forgotten_total",
			Help: "Plans forgotten, by reason: cancelled, expired (unused for the plan lifetime), evicted (to make room).",
		}, []string{"reason"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "live_plans",
			Help: "Plans with pages not yet fetched (bounded by the live-plan limit).",
		}),
		kept: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "kept_plans",
			Help: "Plans in memory, live or answered in full.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "plan_bytes",
			Help: "Estimated memory of the plans kept (bounded by the plan memory limit).",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "planning", Name: "waiting_requests",
			Help: "Requests waiting for a planning slot.",
		}),
	}
	if r != nil {
		r.MustRegister(m.plans, m.rejected, m.pages, m.pageDuration, m.files, m.forgotten, m.live, m.kept, m.bytes, m.waiting)
	}
	return m
}
