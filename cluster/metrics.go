package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
			Help: "Heartbeats by outcome: ok, failed (the database did not answer within the expiry), lost (another process holds the node ID).",
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
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "heartbeat_expiry_seconds",
			Help: "How old a node's heartbeat may get before the node counts as stale and its lease lapses.",
		}, func() float64 { return m.expiry.Seconds() }),
		newRegistryCollector(m),
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

// registryView is what a node last read of the registry, by the
// database's clock, summed up for its metrics. Every node reads the whole
// registry, so every node reports the same cluster, and alerts on the
// cluster need any one of them to be up. The view holds counts and ages
// only, no node IDs, so the series stay few however many nodes come and
// go; GET /v1/zombi/nodes names the nodes.
type registryView struct {
	// nodes counts the registered nodes by state.
	nodes map[State]int
	// oldestHeartbeat is the age of the oldest heartbeat among the nodes
	// that have not left: past the expiry, that node is stale.
	oldestHeartbeat float64
	// staleBacklog is the hot-tier backlog the stale nodes last reported.
	staleBacklog int64
	// staleUnflushed is the age of the oldest event a stale node last
	// reported as not yet committed or staged: acknowledged, on the
	// stale node's disk alone, and no other node can flush it. 0: none.
	staleUnflushed float64
	// orphanedClaims counts idempotency keys claimed by nodes that are not
	// alive, with no offset recorded: a retry of such a key answers 503
	// until its node returns and settles it, or the claim expires.
	orphanedClaims int64
}

// states are the states a node may be in, each exported even at 0.
var states = []State{Alive, Stale, Left}

// observe reads the registry into a view. It counts the pending claims
// of the nodes that are not alive only; an alive node's are its writes in
// flight.
func (m *Member) observe(ctx context.Context) (*registryView, error) {
	rows, err := m.pool.Query(ctx, `SELECT left_at IS NOT NULL,
	extract(epoch FROM now() - heartbeat)::float8, backlog_bytes,
	extract(epoch FROM now() - oldest_unflushed)::float8,
	CASE WHEN left_at IS NOT NULL OR heartbeat <= now() - make_interval(secs => $1) THEN
		(SELECT count(*) FROM zombi_idempotency_claims c WHERE c.node_id = n.node_id AND c."offset" IS NULL)
	ELSE 0 END
FROM zombi_nodes n`, m.expiry.Seconds())
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the node registry: %w", err)
	}
	v := &registryView{nodes: make(map[State]int, len(states))}
	var (
		left      bool
		age       float64
		backlog   int64
		unflushed *float64
		orphaned  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&left, &age, &backlog, &unflushed, &orphaned}, func() error {
		state := m.stateOf(left, time.Duration(age*float64(time.Second)))
		v.nodes[state]++
		if state != Left {
			v.oldestHeartbeat = max(v.oldestHeartbeat, age)
		}
		if state == Stale {
			v.staleBacklog += backlog
			if unflushed != nil {
				v.staleUnflushed = max(v.staleUnflushed, *unflushed)
			}
		}
		if state != Alive {
			v.orphanedClaims += orphaned
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the node registry: %w", err)
	}
	return v, nil
}

// refreshView reads the registry after a heartbeat that ended with
// beatErr. A node that cannot reach the database knows nothing of the
// cluster: its view is cleared and its registry metrics read 0, instead
// of repeating what it read last, so that alerts on the cluster take
// their word from the nodes that can see it.
func (m *Member) refreshView(ctx context.Context, beatErr error) {
	if beatErr != nil {
		m.view.Store(nil)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.expiry)
	defer cancel()
	v, err := m.observe(rctx)
	if err != nil {
		m.view.Store(nil)
		if ctx.Err() == nil {
			m.log.Warn("reading the node registry", "err", err)
		}
		return
	}
	m.view.Store(v)
}

// registryCollector exports a Member's view of the registry, all of it
// from one read.
type registryCollector struct {
	m                                                              *Member
	nodes, oldestHeartbeat, staleBacklog, staleUnflushed, orphaned *prometheus.Desc
}

func newRegistryCollector(m *Member) *registryCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("zombi", "cluster", name), help, labels, nil)
	}
	return &registryCollector{
		m: m,
		nodes: desc("nodes", "Nodes registered on the database by state (alive, stale: no heartbeat within the expiry and not left, left: shut down gracefully), "+
			"as this node last read them after its heartbeat; all 0 while it cannot read them.", "state"),
		oldestHeartbeat: desc("oldest_heartbeat_age_seconds", "Age of the oldest heartbeat among the registered nodes that have not left; "+
			"over zombi_cluster_heartbeat_expiry_seconds, a node is stale."),
		staleBacklog: desc("stale_backlog_bytes", "Hot-tier backlog bytes that the stale nodes last reported."),
		staleUnflushed: desc("stale_unflushed_age_seconds", "Age of the oldest event that a stale node last reported as acknowledged and not yet "+
			"committed or staged: it reaches its table only when that node is back with its disk. 0: none."),
		orphaned: desc("orphaned_idempotency_claims", "Idempotency keys claimed by nodes that are not alive (stale or left) with no offset "+
			"recorded: a retry of one answers 503 until its node returns, or the claim expires after --idempotency-window."),
	}
}

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.nodes, c.oldestHeartbeat, c.staleBacklog, c.staleUnflushed, c.orphaned} {
		ch <- d
	}
}

func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.m.view.Load()
	if v == nil {
		v = &registryView{}
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(v.nodes[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.oldestHeartbeat, prometheus.GaugeValue, v.oldestHeartbeat)
	ch <- prometheus.MustNewConstMetric(c.staleBacklog, prometheus.GaugeValue, float64(v.staleBacklog))
	ch <- prometheus.MustNewConstMetric(c.staleUnflushed, prometheus.GaugeValue, v.staleUnflushed)
	ch <- prometheus.MustNewConstMetric(c.orphaned, prometheus.GaugeValue, float64(v.orphanedClaims))
}
