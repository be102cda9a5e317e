package flusher_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/postgres"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// cluster is several nodes on one Postgres and one warehouse, each with
// its own catalog service, hot tier, ingest service and flusher staging
// its batches for shared commits: everything real, in one process.
type cluster struct {
	t        *testing.T
	url      string
	wh       *warehouse.Warehouse
	interval time.Duration
	nodes    []*node
}

type node struct {
	c     *cluster
	id    string
	dir   string
	store *postgres.Store
	cat   *catalog.Service
	hot   *hot.DB
	ing   *ingest.Service
	fl    *flusher.Flusher
	reg   *prometheus.Registry
	open  bool
}

func newCluster(t *testing.T, n int, interval time.Duration) *cluster {
	t.Helper()
	c := &cluster{t: t, url: testenv.Postgres(t), interval: interval}
	var err error
	c.wh, err = warehouse.Open(t.Context(), warehouse.Config{Root: filepath.Join(t.TempDir(), "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		nd := &node{c: c, id: fmt.Sprintf("n%d", i+1), dir: t.TempDir()}
		nd.start()
		c.nodes = append(c.nodes, nd)
		t.Cleanup(func() { nd.stop(true) })
	}
	return c
}

func (nd *node) start() {
	t := nd.c.t
	t.Helper()
	var err error
	if nd.store, err = postgres.Open(context.Background(), nd.c.url); err != nil {
		t.Fatal(err)
	}
	if nd.cat, err = catalog.New(catalog.Options{Store: nd.store, Warehouse: nd.c.wh}); err != nil {
		t.Fatal(err)
	}
	if nd.hot, err = hot.Open(filepath.Join(nd.dir, "hot"), hot.Options{NodeID: nd.id, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	nd.ing, err = ingest.New(ingest.Options{Catalog: nd.cat, Hot: nd.hot, AutoCreate: true, Staged: nd.store,
		Committer: committerFunc(func(ctx context.Context, key string, seq uint64) (int64, error) {
			return nd.fl.WaitCommitted(ctx, key, seq)
		})})
	if err != nil {
		t.Fatal(err)
	}
	nd.reg = prometheus.NewRegistry()
	nd.fl, err = flusher.New(flusher.Options{Catalog: nd.cat, Hot: nd.hot, FS: nd.c.wh.FS, Interval: nd.c.interval,
		Tick: 5 * time.Millisecond, Staging: nd.store, Leases: nd.cat, Registerer: nd.reg})
	if err != nil {
		t.Fatal(err)
	}
	nd.open = true
}

// stop closes the node; with drain false its flusher stops at once, as if
// the process died: what it staged stays staged, what it did not stays in
// its hot tier.
func (nd *node) stop(drain bool) {
	if !nd.open {
		return
	}
	nd.open = false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if !drain {
		cancel()
	}
	defer cancel()
	if err := nd.fl.Close(ctx); err != nil && drain {
		nd.c.t.Errorf("closing the flusher of %s: %v", nd.id, err)
	}
	nd.ing.Close()
	if err := nd.hot.Close(); err != nil {
		nd.c.t.Errorf("closing the hot tier of %s: %v", nd.id, err)
	}
	nd.store.Close()
}

// write posts n events to table from node nd, payloads "<node>-<prefix>-<i>",
// and returns the payloads.
func (nd *node) write(table, prefix string, n int) []string {
	nd.c.t.Helper()
	var b strings.Builder
	var payloads []string
	for i := range n {
		p := fmt.Sprintf("%s-%s-%d", nd.id, prefix, i)
		payloads = append(payloads, p)
		fmt.Fprintf(&b, "{\"payload\":%q}\n", p)
	}
	if _, err := nd.ing.WriteBulk(context.Background(), table, ingest.Request{MediaType: ingest.MediaNDJSON, Body: []byte(b.String())}); err != nil {
		nd.c.t.Fatalf("bulk write to %s through %s: %v", table, nd.id, err)
	}
	return payloads
}

// payloads returns how often each payload is in the table's current
// snapshot.
func (c *cluster) payloads(id catalog.Ident) map[string]int {
	c.t.Helper()
	nd := c.nodes[0]
	t, err := nd.cat.LoadTable(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int{}
	if t.Metadata.CurrentSnapshot() == nil {
		return out
	}
	tbl := table.New(table.Identifier{id.Namespace[0], id.Name}, t.Metadata, t.MetadataLocation, c.wh.FS, nil)
	at, err := tbl.Scan(table.WithSelectedFields("payload")).ToArrowTable(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	defer at.Release()
	for _, p := range column(c.t, at, "payload") {
		out[p.(string)]++
	}
	return out
}

// waitFor polls until the table holds every payload of want, at most 30 s,
// and fails unless it then holds each exactly once and nothing else.
func (c *cluster) waitFor(id catalog.Ident, want []string) {
	c.t.Helper()
	var got map[string]int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = c.payloads(id); len(got) >= len(want) {
			break
		}
	}
	checkOnce(c.t, got, want)
}

func checkOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	missing, twice := 0, 0
	for _, p := range want {
		switch got[p] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if missing > 0 || twice > 0 || len(got) != len(want) {
		t.Fatalf("the table holds %d payloads: %d of the %d written missing, %d more than once, %d never written",
			len(got), missing, len(want), twice, len(got)-len(want)+missing)
	}
}

func (c *cluster) sum(name string, labels ...string) float64 {
	var s float64
	for _, nd := range c.nodes {
		s += counter(c.t, nd.reg, name, labels...)
	}
	return s
}

// TestSharedCommits: three nodes take events for one table at once; the
// table gets every event once, in about one commit per flush interval
// (not one per node), with every node's watermark inside the commits, and
// the nodes' hot tiers empty once their events are committed.
func TestSharedCommits(t *testing.T) {
	c := newCluster(t, 3, 300*time.Millisecond)
	id := ident("default", "shared")
	want := c.nodes[0].write("shared", "first", 5) // creates the table
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Go(func() {
			for i := range 10 {
				p := nd.write("shared", fmt.Sprint(i), 20)
				mu.Lock()
				want = append(want, p...)
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	c.waitFor(id, want)
	elapsed := time.Since(start)

	t1, err := c.nodes[0].cat.LoadTable(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	appends := 0
	for _, s := range t1.Metadata.Snapshots() {
		if s.Summary != nil && s.Summary.Operation == table.OpAppend {
			appends++
		}
	}
	// One commit per interval, and one for the table's first events
	// before the other nodes knew it: a commit per node per interval
	// would be three times as many.
	if most := int(elapsed/c.interval) + 2; appends > most {
		t.Errorf("%d appends in %v; at most %d at one per %v", appends, elapsed.Round(time.Millisecond), most, c.interval)
	}
	if n := c.sum("zombi_flush_shared_commits_total"); n < 2 {
		t.Errorf("%v shared commits", n)
	}
	for _, nd := range c.nodes {
		w, err := flusher.Watermark(t1.Metadata.Properties(), nd.id)
		if err != nil || w == 0 {
			t.Errorf("the table's watermark of %s is %d (%v)", nd.id, w, err)
		}
	}
	// Each node learns that its events are committed and deletes them.
	for _, nd := range c.nodes {
		key := t1.Metadata.TableUUID().String()
		deadline := time.Now().Add(10 * time.Second)
		for _, n, _ := nd.hot.TableBacklog(key); n > 0; _, n, _ = nd.hot.TableBacklog(key) {
			if time.Now().After(deadline) {
				t2, _ := nd.cat.LoadTable(t.Context(), id)
				w, _ := flusher.Watermark(t2.Metadata.Properties(), nd.id)
				staged, _ := nd.store.StagedThrough(t.Context(), key, nd.id)
				t.Fatalf("%s still holds %d committed events: high watermark %d, the table's watermark %d, staged through %d",
					nd.id, n, nd.hot.HighWatermark(key), w, staged)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := c.sum("zombi_flush_staged_dropped_total", "reason", "broken"); n != 0 {
		t.Errorf("%v broken batches", n)
	}
}

// TestSharedFlush: a Flush on one node commits its events (and whatever
// the others staged) before it returns, whoever holds the commit lease.
func TestSharedFlush(t *testing.T) {
	c := newCluster(t, 2, time.Hour)
	id := ident("default", "flushed")
	a, b := c.nodes[0], c.nodes[1]
	want := a.write("flushed", "a", 30)
	// Another holder keeps the lease: only forced commits happen.
	uuid := c.tableUUID(id)
	if ok, err := a.cat.AcquireLease(t.Context(), flusher.CommitLease(uuid), "elsewhere", time.Hour); !ok || err != nil {
		t.Fatalf("taking the lease: %v %v", ok, err)
	}
	want = append(want, b.write("flushed", "b", 20)...)
	if n := counter(t, b.reg, "zombi_flush_at_risk_bytes"); n == 0 {
		t.Errorf("node 2 holds 20 events only on its disk, and reports 0 bytes at risk")
	}
	if _, err := b.fl.Flush(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, b.reg, "zombi_flush_at_risk_bytes"); n != 0 {
		t.Errorf("after a flush node 2 reports %v bytes at risk", n)
	}
	got := c.payloads(id)
	for _, p := range want {
		if strings.HasPrefix(p, "n2-") && got[p] != 1 {
			t.Fatalf("after node 2's Flush, its event %s is in the table %d times", p, got[p])
		}
	}
	res, err := a.fl.Flush(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, c.payloads(id), want)
	if res.Watermark == 0 {
		t.Errorf("Flush reported watermark 0")
	}
}

// TestSharedCrash: a node stages a batch and dies before any commit takes
// it; it restarts with its disk and goes on. Every event is committed
// once: the restarted node stages after its staged batch, not again.
func TestSharedCrash(t *testing.T) {
	c := newCluster(t, 2, 200*time.Millisecond)
	id := ident("default", "crash")
	a, b := c.nodes[0], c.nodes[1]
	want := a.write("crash", "a0", 10)
	uuid := c.tableUUID(id)
	if ok, err := a.cat.AcquireLease(t.Context(), flusher.CommitLease(uuid), "elsewhere", time.Hour); !ok || err != nil {
		t.Fatalf("taking the lease: %v %v", ok, err)
	}
	want = append(want, b.write("crash", "b0", 10)...)
	for deadline := time.Now().Add(10 * time.Second); counter(t, b.reg, "zombi_flush_staged_batches_total") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node 2 staged nothing")
		}
	}
	b.stop(false)
	b.start()
	want = append(want, b.write("crash", "b1", 10)...)
	want = append(want, a.write("crash", "a1", 10)...)
	if err := a.cat.ReleaseLease(t.Context(), flusher.CommitLease(uuid), "elsewhere"); err != nil {
		t.Fatal(err)
	}
	c.waitFor(id, want)
}

// TestSharedLostDisk: a node stages a batch, loses its disk and comes
// back under the same node ID. Its new events get sequences past what it
// staged, so they are staged and committed too, and the staged batch is
// committed once.
func TestSharedLostDisk(t *testing.T) {
	c := newCluster(t, 2, 100*time.Millisecond)
	id := ident("default", "lost")
	a, b := c.nodes[0], c.nodes[1]
	want := a.write("lost", "a0", 5)
	uuid := c.tableUUID(id)
	if ok, err := a.cat.AcquireLease(t.Context(), flusher.CommitLease(uuid), "elsewhere", time.Hour); !ok || err != nil {
		t.Fatalf("taking the lease: %v %v", ok, err)
	}
	want = append(want, b.write("lost", "b0", 10)...)
	for deadline := time.Now().Add(10 * time.Second); counter(t, b.reg, "zombi_flush_at_risk_bytes") > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node 2 staged nothing")
		}
	}
	b.stop(false)
	if err := os.RemoveAll(filepath.Join(b.dir, "hot")); err != nil {
		t.Fatal(err)
	}
	b.start()
	want = append(want, b.write("lost", "b1", 10)...)
	if err := a.cat.ReleaseLease(t.Context(), flusher.CommitLease(uuid), "elsewhere"); err != nil {
		t.Fatal(err)
	}
	c.waitFor(id, want)
}

func (c *cluster) tableUUID(id catalog.Ident) string {
	c.t.Helper()
	t, err := c.nodes[0].cat.LoadTable(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return t.Metadata.TableUUID().String()
}

// TestSharedTail: a live plan's tail on one node holds every node's
// staged events and its own unstaged ones, each once.
func TestSharedTail(t *testing.T) {
	c := newCluster(t, 2, 100*time.Millisecond)
	id := ident("default", "tailed")
	a, b := c.nodes[0], c.nodes[1]
	a.write("tailed", "a0", 10)
	uuid := c.tableUUID(id)
	if ok, err := a.cat.AcquireLease(t.Context(), flusher.CommitLease(uuid), "elsewhere", time.Hour); !ok || err != nil {
		t.Fatalf("taking the lease: %v %v", ok, err)
	}
	b.write("tailed", "b0", 20)
	for deadline := time.Now().Add(10 * time.Second); counter(t, b.reg, "zombi_flush_staged_batches_total") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node 2 staged nothing")
		}
	}
	a.write("tailed", "a1", 5)
	tl, err := a.fl.Tail(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, df := range tl.Files {
		rows += df.Count()
	}
	// The table's own snapshot may hold some of node 1's first events.
	committed := int64(0)
	for _, n := range c.payloads(id) {
		committed += int64(n)
	}
	if tl.Rows != rows || committed+rows != 35 {
		t.Errorf("the tail has %d rows in files of %d rows, the snapshot %d; want 35 in all", tl.Rows, rows, committed)
	}
}
