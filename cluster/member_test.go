package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// testPool returns a pool on a new, migrated database.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := migrations.Apply(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// fast are heartbeat settings under which a node goes stale quickly.
var fast = Options{Heartbeat: 20 * time.Millisecond, Expiry: 300 * time.Millisecond}

func newMember(t testing.TB, pool *pgxpool.Pool, opts Options) *Member {
	t.Helper()
	opts.Pool = pool
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// join starts a process of node id and returns it with its stream.
func join(t testing.TB, pool *pgxpool.Pool, opts Options, req JoinRequest) (*Member, uint32, error) {
	t.Helper()
	m := newMember(t, pool, opts)
	s, err := m.Join(context.Background(), req)
	return m, s, err
}

func mustJoin(t testing.TB, pool *pgxpool.Pool, opts Options, req JoinRequest) (*Member, uint32) {
	t.Helper()
	m, s, err := join(t, pool, opts, req)
	if err != nil {
		t.Fatalf("join %s: %v", req.NodeID, err)
	}
	return m, s
}

func TestStreams(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	cl := Options{Cluster: true}
	// New nodes get streams in order; a node keeps its stream across
	// restarts; a left node's stream is never given to another node.
	for i, id := range []string{"a", "b", "c"} {
		m, s := mustJoin(t, pool, cl, JoinRequest{NodeID: id})
		if s != uint32(i) {
			t.Errorf("node %s got stream %d, want %d", id, s, i)
		}
		if err := m.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, s := mustJoin(t, pool, cl, JoinRequest{NodeID: "b", Stream: 1, HasStream: true}); s != 1 {
		t.Errorf("node b rejoined with stream %d, want 1", s)
	}
	if _, s := mustJoin(t, pool, cl, JoinRequest{NodeID: "d"}); s != 3 {
		t.Errorf("node d got stream %d, want 3", s)
	}

	tests := []struct {
		name    string
		req     JoinRequest
		want    uint32
		wantErr string
	}{
		{"recorded stream of a new node", JoinRequest{NodeID: "e", Stream: 7, HasStream: true}, 7, ""},
		{"recorded stream another node has", JoinRequest{NodeID: "f", Stream: 1, HasStream: true}, 0, "gives node b"},
		{"recorded stream that differs from the row", JoinRequest{NodeID: "a", Stream: 5, HasStream: true}, 0, "gives it stream 0"},
		{"legacy directory, stream 0 taken", JoinRequest{NodeID: "g", Legacy: true}, 8, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, s, err := join(t, pool, cl, tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("join: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.want {
				t.Errorf("stream %d, want %d", s, tc.want)
			}
			if err := m.Leave(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLegacyKeepsStreamZero(t *testing.T) {
	pool := testPool(t)
	if _, s := mustJoin(t, pool, Options{}, JoinRequest{NodeID: "old", Legacy: true}); s != 0 {
		t.Errorf("legacy node got stream %d, want 0", s)
	}
}

func TestNodeIDLease(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	req := JoinRequest{NodeID: "n1"}
	first, _ := mustJoin(t, pool, fast, req)

	// A second process under the same ID is refused while the first
	// beats.
	if _, _, err := join(t, pool, fast, req); !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), "--node-id") {
		t.Fatalf("second process: %v, want ErrNodeIDInUse naming --node-id", err)
	}
	if err := first.Beat(ctx, Stats{}); err != nil {
		t.Fatal(err)
	}

	// Once the first one's heartbeat is stale, the ID can be taken, and
	// the first one learns it lost the lease.
	time.Sleep(fast.Expiry + 50*time.Millisecond)
	second, s := mustJoin(t, pool, fast, req)
	if s != 0 {
		t.Errorf("stream %d after a takeover, want 0", s)
	}
	if err := first.Beat(ctx, Stats{}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("old process's heartbeat: %v, want ErrLeaseLost", err)
	}
	if !errors.Is(first.Err(), ErrLeaseLost) {
		t.Errorf("Err() = %v, want ErrLeaseLost", first.Err())
	}
	if err := first.Run(ctx, func() Stats { return Stats{} }, nil); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Run: %v, want ErrLeaseLost", err)
	}

	// The next process on the same directory takes over at once after a
	// kill -9; a process elsewhere does not.
	if _, _, err := join(t, pool, fast, JoinRequest{NodeID: "n1", PreviousToken: "elsewhere"}); !errors.Is(err, ErrNodeIDInUse) {
		t.Fatalf("a process with another previous token: %v, want ErrNodeIDInUse", err)
	}
	killed := second
	second, _ = mustJoin(t, pool, fast, JoinRequest{NodeID: "n1", PreviousToken: killed.token})
	if err := killed.Beat(ctx, Stats{}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("killed process's heartbeat: %v, want ErrLeaseLost", err)
	}

	// A graceful leave frees the ID at once.
	if err := second.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	third, _ := mustJoin(t, pool, fast, req)
	if err := second.Beat(ctx, Stats{}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("heartbeat after leaving: %v, want ErrLeaseLost", err)
	}
	if err := third.Beat(ctx, Stats{}); err != nil {
		t.Error(err)
	}
}

func TestAlone(t *testing.T) {
	tests := []struct {
		name          string
		first, second bool // Cluster of each node
		leave         bool // the first node leaves before the second joins
		stale         bool // the first node's heartbeat goes stale
		wantErr       string
	}{
		{"two cluster nodes", true, true, false, false, ""},
		{"single node beside a live one", true, false, false, false, "must all run with --cluster"},
		{"cluster node beside a single node", false, true, false, false, "runs without --cluster"},
		{"two single nodes", false, false, false, false, "must all run with --cluster"},
		{"single node after one left", false, false, true, false, ""},
		{"single node after one died", false, false, false, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := testPool(t)
			o1, o2 := fast, fast
			o1.Cluster, o2.Cluster = tc.first, tc.second
			m1, _ := mustJoin(t, pool, o1, JoinRequest{NodeID: "one"})
			if tc.leave {
				if err := m1.Leave(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if tc.stale {
				time.Sleep(fast.Expiry + 50*time.Millisecond)
			}
			_, s, err := join(t, pool, o2, JoinRequest{NodeID: "two"})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrNotAlone) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "one") {
					t.Fatalf("join: %v, want ErrNotAlone containing %q and the other node's ID", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s != 1 {
				t.Errorf("second node's stream %d, want 1", s)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	o := fast
	o.Cluster, o.URL = true, "http://127.0.0.1:1"
	a, _ := mustJoin(t, pool, o, JoinRequest{NodeID: "a"})
	b, _ := mustJoin(t, pool, o, JoinRequest{NodeID: "b"})
	c, _ := mustJoin(t, pool, o, JoinRequest{NodeID: "c"})
	oldest := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	commit := time.Now().Truncate(time.Microsecond)
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(fast.Expiry + 50*time.Millisecond)
	if err := a.Beat(ctx, Stats{BacklogBytes: 42, OldestUnflushed: oldest, LastCommit: commit}); err != nil {
		t.Fatal(err)
	}
	_ = b // b stops beating: stale
	nodes, err := a.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id    string
		state State
	}{{"a", Alive}, {"b", Stale}, {"c", Left}}
	if len(nodes) != len(want) {
		t.Fatalf("%d nodes, want %d: %+v", len(nodes), len(want), nodes)
	}
	for i, w := range want {
		n := nodes[i]
		if n.ID != w.id || n.State != w.state || n.Stream != uint32(i) || !n.Cluster || n.URL != o.URL {
			t.Errorf("node %d = %+v, want %s %s stream %d", i, n, w.id, w.state, i)
		}
	}
	if n := nodes[0]; n.BacklogBytes != 42 || !n.OldestUnflushed.Equal(oldest) || !n.LastCommit.Equal(commit) || n.HeartbeatAge > fast.Expiry {
		t.Errorf("node a reports %+v, want backlog 42, oldest %s, last commit %s, a fresh heartbeat", n, oldest, commit)
	}
	if n := nodes[1]; n.HeartbeatAge < fast.Expiry || !n.OldestUnflushed.IsZero() || !n.LastCommit.IsZero() {
		t.Errorf("node b = %+v, want an old heartbeat and no stats", n)
	}
}
