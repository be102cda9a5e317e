package tail

import "github.com/prometheus/client_golang/prometheus"

// metrics are the live tail's Prometheus metrics.
type metrics struct {
	subscribers prometheus.GaugeFunc
	sent        prometheus.Counter
	dropped     *prometheus.CounterVec
	refused     prometheus.Counter
}

// newMetrics registers the metrics with r (nil: not registered);
// subscribers counts the open subscriptions.
func newMetrics(r prometheus.Registerer, subscribers func() float64) *metrics {
	m := &metrics{
		subscribers: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "zombi", Subsystem: "tail", Name: "subscribers",
			Help: "Open live-tail streams (GET /tables/{table}/stream).",
		}, subscribers),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "tail", Name: "events_sent_total",
			Help: "Events handed to live-tail streams, counted once per stream.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "tail", Name: "dropped_total",
			Help: "Live-tail streams the server ended with a final dropped event, by reason: slow (the client's buffer filled), shutdown, table (dropped), error.",
		}, []string{"reason"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "tail", Name: "refused_total",
			Help: "Live-tail streams refused with 503 because --max-stream-subscribers were open.",
		}),
	}
	for _, reason := range []string{ReasonSlow, ReasonShutdown, ReasonTable, ReasonError} {
		m.dropped.WithLabelValues(reason)
	}
	if r != nil {
		r.MustRegister(m.subscribers, m.sent, m.dropped, m.refused)
	}
	return m
}
