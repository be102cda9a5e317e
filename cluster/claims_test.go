package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// twoNodes joins nodes a and b in cluster mode with o (and fast
// heartbeats) on a new database.
func twoNodes(t *testing.T, o Options) (pool *pgxpool.Pool, a, b *Member) {
	t.Helper()
	pool = testPool(t)
	o.Cluster, o.Heartbeat, o.Expiry = true, fast.Heartbeat, fast.Expiry
	a, _ = mustJoin(t, pool, o, JoinRequest{NodeID: "a"})
	b, _ = mustJoin(t, pool, o, JoinRequest{NodeID: "b"})
	return pool, a, b
}

func TestClaims(t *testing.T) {
	_, a, b := twoNodes(t, Options{})
	ctx := context.Background()
	const table = "uuid-1"
	keys := []string{"k1", "k2", "with\x00nul"}

	claim := func(m *Member, keys ...string) []Claim {
		t.Helper()
		cs, err := m.Claim(ctx, table, keys)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	check := func(what string, got []Claim, want ...Claim) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %+v, want %+v", what, got, want)
		}
	}
	claimed := Claim{State: Claimed}
	pendingA := Claim{State: Pending, Node: "a", NodeAlive: true}

	check("a claims free keys", claim(a, keys...), claimed, claimed, claimed)
	check("b finds them pending", claim(b, keys...), pendingA, pendingA, pendingA)
	check("a's own claims", claim(a, "k1"), claimed)
	if err := a.Release(ctx, table, []string{"k1"}); err != nil {
		t.Fatal(err)
	}
	check("k1 is still a's while its first write is in flight", claim(b, "k1"), pendingA)
	if err := a.Record(ctx, table, keys, []uint64{10, 11, 12}); err != nil {
		t.Fatal(err)
	}
	check("b finds them stored", claim(b, keys...),
		Claim{State: Stored, Offset: 10}, Claim{State: Stored, Offset: 11}, Claim{State: Stored, Offset: 12})

	// A released key is free for any node.
	check("a claims k3", claim(a, "k3"), claimed)
	if err := a.Release(ctx, table, []string{"k3"}); err != nil {
		t.Fatal(err)
	}
	check("b claims released k3", claim(b, "k3", "k1"), claimed, Claim{State: Stored, Offset: 10})
	if err := b.Record(ctx, table, []string{"k3"}, []uint64{1 << 44}); err != nil {
		t.Fatal(err)
	}
	check("a finds k3 stored by b", claim(a, "k3"), Claim{State: Stored, Offset: 1 << 44})
	check("other tables are apart", func() []Claim {
		cs, err := b.Claim(ctx, "uuid-2", []string{"k1"})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}(), claimed)

	// A claim of a node that died stays pending, and says so.
	check("a claims k4", claim(a, "k4"), claimed)
	time.Sleep(fast.Expiry + 50*time.Millisecond)
	if err := b.Beat(ctx, Stats{}); err != nil {
		t.Fatal(err)
	}
	check("k4 of dead a", claim(b, "k4"), Claim{State: Pending, Node: "a"})
	if len(a.inflight) != 1 || len(b.inflight) != 1 {
		t.Errorf("in flight: a %v, b %v; want a's k4 and b's k1 of uuid-2", a.inflight, b.inflight)
	}
}

func TestSettle(t *testing.T) {
	pool, old, b := twoNodes(t, Options{})
	ctx := context.Background()
	o := fast
	o.Cluster = true
	const table = "uuid-1"
	if _, err := old.Claim(ctx, table, []string{"stored", "lost", "busy"}); err != nil {
		t.Fatal(err)
	}
	// The process dies; the node restarts with its hot tier, which holds
	// "stored" only, while a write of "busy" is in flight.
	time.Sleep(fast.Expiry + 50*time.Millisecond)
	a, _ := mustJoin(t, pool, o, JoinRequest{NodeID: "a"})
	if _, err := a.Claim(ctx, table, []string{"busy"}); err != nil {
		t.Fatal(err)
	}
	lookup := func(tbl, key string) (uint64, bool, error) {
		if tbl == table && key == "stored" {
			return 7, true, nil
		}
		return 0, false, nil
	}
	n, err := a.Settle(ctx, lookup)
	if err != nil || n != 2 {
		t.Fatalf("Settle = %d, %v; want 2 claims settled", n, err)
	}
	if err := b.Beat(ctx, Stats{}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Claim(ctx, table, []string{"stored", "lost", "busy"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Claim{{State: Stored, Offset: 7}, {State: Claimed}, {State: Pending, Node: "a", NodeAlive: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after settling: %+v, want %+v", got, want)
	}
}

func TestExpireClaims(t *testing.T) {
	const window = 200 * time.Millisecond
	_, a, b := twoNodes(t, Options{Window: window})
	ctx := context.Background()
	if _, err := a.Claim(ctx, "t", []string{"old", "stored"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx, "t", []string{"stored"}, []uint64{5}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(window + 50*time.Millisecond)
	// An expired claim is free before expiry removes it...
	if got, err := b.Claim(ctx, "t", []string{"old"}); err != nil || got[0].State != Claimed {
		t.Fatalf("claiming an expired key: %+v, %v", got, err)
	}
	// ...and expiry removes the others.
	n, err := a.ExpireClaims(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ExpireClaims = %d, %v; want 1", n, err)
	}
	if got, err := b.Claim(ctx, "t", []string{"stored", "old"}); err != nil || got[0].State != Claimed || got[1].State != Claimed {
		t.Fatalf("after expiry: %+v, %v; want both claimed by b", got, err)
	}
}

// TestClaimsConcurrent: concurrent writes on two nodes share claim
// statements; one node wins a key all of them claim, and every write of
// that node sees it Claimed, every write of the other Pending.
func TestClaimsConcurrent(t *testing.T) {
	_, a, b := twoNodes(t, Options{})
	ctx := context.Background()
	const writes = 32
	got := make([][]Claim, writes)
	errs := make([]error, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := []*Member{a, b}[i%2]
			got[i], errs[i] = m.Claim(ctx, "t", []string{"shared", fmt.Sprint("own-", i)})
		}()
	}
	wg.Wait()
	winner := -1
	for i := range writes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i][1].State != Claimed {
			t.Errorf("write %d: its own key %+v, want claimed", i, got[i][1])
		}
		if got[i][0].State == Claimed {
			if winner >= 0 && winner != i%2 {
				t.Fatalf("both nodes claimed the shared key")
			}
			winner = i % 2
		}
	}
	if winner < 0 {
		t.Fatal("no node claimed the shared key")
	}
	for i := range writes {
		// A claim that committed after the statement's snapshot is
		// pending with no node known yet.
		if c := got[i][0]; i%2 != winner && (c.State != Pending || (c.Node != "" && c.Node != []string{"a", "b"}[winner])) {
			t.Errorf("write %d on the losing node: %+v, want pending on the winner", i, c)
		}
	}
}
