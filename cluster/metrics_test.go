package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// gather returns reg's series as name{label="value",...} → value.
func gather(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// observer joins node "obs" with a registry, an expiry of an hour (so
// that no node goes stale unless a test ages its heartbeat by hand) and
// its own pool, which a test may close.
func observer(t *testing.T, pool *pgxpool.Pool) (*Member, *prometheus.Registry, *pgxpool.Pool) {
	t.Helper()
	own, err := pgxpool.New(context.Background(), pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Close)
	reg := prometheus.NewRegistry()
	m, _ := mustJoin(t, own, Options{Cluster: true, Expiry: time.Hour, Registerer: reg}, JoinRequest{NodeID: "obs"})
	return m, reg, own
}

// age makes a node's last heartbeat d older.
func age(t *testing.T, pool *pgxpool.Pool, node string, d time.Duration) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE zombi_nodes SET heartbeat = heartbeat - make_interval(secs => $2)
WHERE node_id = $1`, node, d.Seconds()); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryMetrics(t *testing.T) {
	type peer struct {
		id        string
		state     State // what the test makes of it
		backlog   int64
		unflushed time.Duration // its oldest unflushed event is this old; 0: none
		pending   int           // keys it claims and never records
	}
	const staleFor = 2 * time.Hour
	type want struct {
		alive, stale, left int
		staleBacklog       float64
		// The ages are at least these (and not over an hour more).
		oldestHeartbeat, staleUnflushed time.Duration
		orphaned                        float64
	}
	tests := []struct {
		name  string
		peers []peer
		want  want
	}{
		{"alone", nil, want{alive: 1}},
		{"alive peers with events and writes in flight",
			[]peer{{id: "b", state: Alive, backlog: 100, unflushed: time.Minute, pending: 3}, {id: "c", state: Alive}},
			want{alive: 3}},
		{"a peer that left with unsettled claims",
			[]peer{{id: "b", state: Left, backlog: 100, pending: 2}},
			want{alive: 1, left: 1, orphaned: 2}},
		{"a stale peer holding events and claims",
			[]peer{{id: "b", state: Stale, backlog: 4096, unflushed: 3 * time.Minute, pending: 2}},
			want{alive: 1, stale: 1, staleBacklog: 4096, oldestHeartbeat: staleFor, staleUnflushed: 3 * time.Minute, orphaned: 2}},
		{"stale peers, one with nothing unflushed, beside alive and left ones",
			[]peer{
				{id: "b", state: Stale, backlog: 4096, unflushed: 3 * time.Minute},
				{id: "c", state: Stale, backlog: 1000, unflushed: 10 * time.Minute, pending: 1},
				{id: "d", state: Stale},
				{id: "e", state: Alive, backlog: 7, unflushed: time.Hour},
				{id: "f", state: Left, backlog: 9},
			},
			want{alive: 2, stale: 3, left: 1, staleBacklog: 5096, oldestHeartbeat: staleFor, staleUnflushed: 10 * time.Minute, orphaned: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := testPool(t)
			ctx := context.Background()
			obs, reg, _ := observer(t, pool)
			for _, p := range tc.peers {
				m, _ := mustJoin(t, pool, Options{Cluster: true}, JoinRequest{NodeID: p.id})
				s := Stats{BacklogBytes: p.backlog}
				if p.unflushed > 0 {
					s.OldestUnflushed = time.Now().Add(-p.unflushed)
				}
				if err := m.Beat(ctx, s); err != nil {
					t.Fatal(err)
				}
				for i := range p.pending {
					if _, err := m.Claim(ctx, "t", []string{fmt.Sprint(p.id, "-", i)}); err != nil {
						t.Fatal(err)
					}
				}
				switch p.state {
				case Left:
					if err := m.Leave(ctx); err != nil {
						t.Fatal(err)
					}
				case Stale:
					age(t, pool, p.id, staleFor)
				}
			}
			obs.refreshView(ctx, nil)
			got := gather(t, reg)
			w := tc.want
			for name, v := range map[string]float64{
				`zombi_cluster_nodes{state="alive"}`:        float64(w.alive),
				`zombi_cluster_nodes{state="stale"}`:        float64(w.stale),
				`zombi_cluster_nodes{state="left"}`:         float64(w.left),
				"zombi_cluster_stale_backlog_bytes":         w.staleBacklog,
				"zombi_cluster_orphaned_idempotency_claims": w.orphaned,
				"zombi_cluster_heartbeat_expiry_seconds":    time.Hour.Seconds(),
			} {
				if g, ok := got[name]; !ok || g != v {
					t.Errorf("%s = %v (exported: %t), want %v", name, g, ok, v)
				}
			}
			for name, least := range map[string]time.Duration{
				"zombi_cluster_oldest_heartbeat_age_seconds": w.oldestHeartbeat,
				"zombi_cluster_stale_unflushed_age_seconds":  w.staleUnflushed,
			} {
				g, ok := got[name]
				if !ok || g < least.Seconds() || g >= (least+time.Hour).Seconds() {
					t.Errorf("%s = %v (exported: %t), want at least %v and less than an hour more", name, g, ok, least.Seconds())
				}
			}
			// No stale node reported an unflushed event: none at all.
			if g := got["zombi_cluster_stale_unflushed_age_seconds"]; w.staleUnflushed == 0 && g != 0 {
				t.Errorf("zombi_cluster_stale_unflushed_age_seconds = %v, want 0", g)
			}
		})
	}
}

// TestRegistryMetricsAtZero: before a node reads the registry, and while
// it cannot, its registry metrics are there at 0, each state and each
// heartbeat outcome included, so that the first change is an increase
// and a node cut off from the database never repeats an old view.
func TestRegistryMetricsAtZero(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	zero := func(t *testing.T, got map[string]float64, names ...string) {
		t.Helper()
		for _, name := range names {
			if g, ok := got[name]; !ok || g != 0 {
				t.Errorf("%s = %v (exported: %t), want 0", name, g, ok)
			}
		}
	}
	view := []string{
		`zombi_cluster_nodes{state="alive"}`, `zombi_cluster_nodes{state="stale"}`, `zombi_cluster_nodes{state="left"}`,
		"zombi_cluster_oldest_heartbeat_age_seconds", "zombi_cluster_stale_backlog_bytes",
		"zombi_cluster_stale_unflushed_age_seconds", "zombi_cluster_orphaned_idempotency_claims",
	}

	reg := prometheus.NewRegistry()
	newMember(t, pool, Options{Registerer: reg})
	zero(t, gather(t, reg), append(view, `zombi_cluster_heartbeats_total{outcome="ok"}`,
		`zombi_cluster_heartbeats_total{outcome="failed"}`, `zombi_cluster_heartbeats_total{outcome="lost"}`,
		"zombi_cluster_heartbeat_age_seconds")...)

	// A stale peer, seen; then the observer loses the database.
	obs, reg, own := observer(t, pool)
	mustJoin(t, pool, Options{Cluster: true}, JoinRequest{NodeID: "b"})
	age(t, pool, "b", 2*time.Hour)
	obs.refreshView(ctx, obs.Beat(ctx, Stats{}))
	if got := gather(t, reg); got[`zombi_cluster_nodes{state="stale"}`] != 1 || got[`zombi_cluster_heartbeats_total{outcome="ok"}`] != 1 {
		t.Fatalf("before the database is lost: %v, want a stale node and a heartbeat", got)
	}
	own.Close()
	err := obs.Beat(ctx, Stats{})
	if err == nil || errors.Is(err, ErrLeaseLost) {
		t.Fatalf("heartbeat on a closed pool: %v, want a failure", err)
	}
	obs.refreshView(ctx, err)
	got := gather(t, reg)
	zero(t, got, view...)
	if got[`zombi_cluster_heartbeats_total{outcome="failed"}`] != 1 {
		t.Errorf("failed heartbeats %v, want 1", got[`zombi_cluster_heartbeats_total{outcome="failed"}`])
	}
	// A read that fails after a heartbeat that did not clears the view too.
	if _, err := obs.observe(ctx); err == nil {
		t.Error("reading the registry on a closed pool succeeded")
	}
}

// TestRunReadsRegistry: a running member reads the registry with its
// heartbeats.
func TestRunReadsRegistry(t *testing.T) {
	pool := testPool(t)
	reg := prometheus.NewRegistry()
	o := fast
	o.Cluster, o.Registerer = true, reg
	m, _ := mustJoin(t, pool, o, JoinRequest{NodeID: "a"})
	mustJoin(t, pool, Options{Cluster: true}, JoinRequest{NodeID: "b"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx, func() Stats { return Stats{} }, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// However slow the machine, the two nodes are seen, alive or stale
	// (fast has a short expiry), once a heartbeat went through.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := gather(t, reg)
		if got[`zombi_cluster_nodes{state="alive"}`]+got[`zombi_cluster_nodes{state="stale"}`] == 2 &&
			got[`zombi_cluster_heartbeats_total{outcome="ok"}`] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry metrics never showed both nodes: %v", got)
		}
	}
}

// TestRetireByHand: a node that is gone for good, disk and all, is marked
// left by hand, as docs/operations.md tells: it no longer counts as
// stale; should its process still run, its next heartbeat finds the lease
// lost; and the ID may join again later.
func TestRetireByHand(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	obs, reg, _ := observer(t, pool)
	gone, _ := mustJoin(t, pool, Options{Cluster: true}, JoinRequest{NodeID: "gone"})
	age(t, pool, "gone", 2*time.Hour)
	if _, err := pool.Exec(ctx, `UPDATE zombi_nodes SET left_at = now() WHERE node_id = 'gone' AND left_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	obs.refreshView(ctx, nil)
	if got := gather(t, reg); got[`zombi_cluster_nodes{state="stale"}`] != 0 || got[`zombi_cluster_nodes{state="left"}`] != 1 {
		t.Errorf("after retiring: %v, want the node left, none stale", got)
	}
	if err := gone.Beat(ctx, Stats{}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("heartbeat of a retired node: %v, want ErrLeaseLost", err)
	}
	if _, s := mustJoin(t, pool, Options{Cluster: true}, JoinRequest{NodeID: "gone"}); s != 1 {
		t.Errorf("the retired ID joined again with stream %d, want its own, 1", s)
	}
}
