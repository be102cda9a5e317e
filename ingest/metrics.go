package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest API's Prometheus metrics.
type Metrics struct {
	events   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	ack      prometheus.Histogram
	rejected *prometheus.CounterVec
	inflight prometheus.GaugeFunc
}

// NewMetrics registers the ingest metrics with r (nil: not registered).
// inFlight, when not nil, is exported as the in-flight bytes gauge.
func NewMetrics(r prometheus.Registerer, inFlight ...*InFlight) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "events_total",
			Help: "Events by table and outcome: accepted, duplicate (idempotent retry), rejected (invalid).",
		}, []string{"table", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "bytes_total",
			Help: "Request body bytes by table and outcome (accepted or rejected).",
		}, []string{"table", "outcome"}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "ack_seconds",
			Help:    "Time from a write request's decoded body to its durable acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "requests_rejected_total",
			Help: "Write requests refused whole, by reason: invalid, too_large, overloaded (429), backlog_full (503), no_table.",
		}, []string{"reason"}),
	}
	cs := []prometheus.Collector{m.events, m.bytes, m.ack, m.rejected}
	if len(inFlight) > 0 && inFlight[0] != nil {
		l := inFlight[0]
		m.inflight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "ingest", Name: "inflight_bytes",
			Help: "Bytes of write request bodies being handled now.",
		}, func() float64 { return float64(l.Bytes()) })
		cs = append(cs, m.inflight)
	}
	if r != nil {
		r.MustRegister(cs...)
	}
	return m
}

// Rejected counts a request refused whole for reason.
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// tableMetrics are one table's ingest series, looked up once per table
// instead of once per request.
type tableMetrics struct {
	accepted, duplicate, rejected prometheus.Counter
	bytesAccepted, bytesRejected  prometheus.Counter
}

func (m *Metrics) forTable(name string) *tableMetrics {
	return &tableMetrics{
		accepted:      m.events.WithLabelValues(name, "accepted"),
		duplicate:     m.events.WithLabelValues(name, "duplicate"),
		rejected:      m.events.WithLabelValues(name, "rejected"),
		bytesAccepted: m.bytes.WithLabelValues(name, "accepted"),
		bytesRejected: m.bytes.WithLabelValues(name, "rejected"),
	}
}
