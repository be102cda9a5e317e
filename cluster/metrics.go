package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	heartbeats  *prometheus.CounterVec
	claims      *prometheus.CounterVec
	claimRounds prometheus.Histogram
	collectors  []prometheus.Collector
}

func newMetrics(m *Member) *metrics {
	const ns, sub = "zombi", "cluster"
	x := &metrics{
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "heartbeats_total",
			Help: "Heartbeats by outcome: ok, failed (the database did not answer), lost (another process holds the node ID).",
		}, []string{"outcome"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "idempotency_claims_total",
			Help: "Idempotency keys looked up across the cluster, by outcome: claimed (this node stores it), stored (answered as a duplicate), pending (another node is storing it).",
		}, []string{"outcome"}),
		claimRounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "idempotency_round_trip_seconds",
			Help:    "Latency of one claim or record round trip to the database.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
	}
	// The outcomes exist from the start, at 0, so that the first failed
	// heartbeat is an increase that rate() and alerts see.
	for _, o := range []string{"ok", "failed", "lost"} {
		x.heartbeats.WithLabelValues(o)
	}
	x.collectors = []prometheus.Collector{
		x.heartbeats, x.claims, x.claimRounds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "heartbeat_age_seconds",
			Help: "Time since this node last renewed its lease (0 before it joined).",
		}, func() float64 {
			last := m.lastBeat.Load()
			if last == 0 {
				return 0
			}
			return time.Since(time.Unix(0, last)).Seconds()
		}),
	}
	return x
}

func (x *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range x.collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
