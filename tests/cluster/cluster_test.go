// Package cluster tests several Zombi nodes on one Postgres and one S3
// bucket behind a real load balancer (HAProxy, round robin), as
// docs/operations.md deploys them: producers write through the balancer
// while a node is killed and restarted, and the table must end up with
// every acknowledged event exactly once, in about one commit per flush
// interval whatever the number of nodes, compacted and maintained by one
// node.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/internal/zombitest"
	_ "github.com/zombi-db/zombi/warehouse" // registers the s3 scheme for data files
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// interval is the nodes' flush interval.
const interval = 500 * time.Millisecond

type cluster struct {
	t     *testing.T
	pg    string // the nodes' Postgres URL
	args  []string
	nodes []*zombitest.Instance
	lb    *testenv.HAProxy
}

// start runs n nodes in --cluster mode on a new Postgres database and S3
// bucket, and HAProxy in front of them.
func start(t *testing.T, n int) *cluster {
	t.Helper()
	pg, s3 := testenv.Postgres(t), testenv.S3(t)
	c := &cluster{t: t, pg: pg, args: []string{
		"--cluster",
		"--postgres-url", pg,
		"--warehouse", "s3://" + s3.Bucket + "/warehouse",
		"--s3-endpoint", s3.Endpoint,
		"--s3-region", s3.Region,
		"--s3-access-key", s3.AccessKey,
		"--s3-secret-key", s3.SecretKey,
		"--s3-vend-static-keys",
		"--flush-interval", interval.String(),
		"--maintenance-interval", "500ms",
	}}
	var addrs []string
	for i := range n {
		inst := zombitest.StartIn(t, t.TempDir(), c.nodeArgs(i)...)
		c.nodes = append(c.nodes, inst)
		addrs = append(addrs, inst.Addr)
	}
	c.lb = testenv.StartHAProxy(t, addrs...)
	return c
}

func (c *cluster) nodeArgs(i int) []string {
	return append([]string{"--node-id", fmt.Sprintf("n%d", i+1)}, c.args...)
}

// restart starts node i again on its address and data directory.
func (c *cluster) restart(i int) {
	old := c.nodes[i]
	c.nodes[i] = zombitest.StartAt(c.t, old.Addr, old.DataDir, c.nodeArgs(i)...)
}

// ledger is what producers were told: acknowledged payloads, and payloads
// whose request failed in a way that leaves it unknown whether they were
// stored.
type ledger struct {
	mu    sync.Mutex
	acked map[string]bool
	maybe map[string]bool
	// retryOffsets are idempotent retries answered with another offset
	// than the first attempt.
	retryOffsets []string
}

func (l *ledger) record(ok bool, payloads ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range payloads {
		if ok {
			l.acked[p] = true
		} else {
			l.maybe[p] = true
		}
	}
}

var client = &http.Client{Timeout: 30 * time.Second}

// post sends body to path through the balancer and reports whether the
// events were acknowledged (202).
func (c *cluster) post(path, body string) bool {
	resp, err := client.Post(c.lb.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusAccepted
}

// postKeyed sends one event with an idempotency key through the balancer
// and returns its offset, or -1 when it was not acknowledged.
func (c *cluster) postKeyed(table, payload string) int64 {
	body := fmt.Sprintf(`{"payload":%q,"idempotency_key":%q}`, payload, payload)
	resp, err := client.Post(c.lb.URL+"/tables/"+table, "application/json", strings.NewReader(body))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var ack struct {
		Offset int64 `json:"offset"`
	}
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&ack) != nil {
		return -1
	}
	return ack.Offset
}

// produce writes to table through the balancer from producer g until
// stop: single events and bulks of ten, alternately, and every third
// time an event with an idempotency key sent twice, as a producer retries
// a write whose answer it lost: round robin takes the retry to another
// node, which must answer with the first offset and store nothing.
func (c *cluster) produce(g int, table string, l *ledger, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if i%3 == 2 {
			p := fmt.Sprintf("g%d-%d-keyed", g, i)
			first, retry := c.postKeyed(table, p), c.postKeyed(table, p)
			l.record(first >= 0 || retry >= 0, p)
			if first >= 0 && retry >= 0 && first != retry {
				l.mu.Lock()
				l.retryOffsets = append(l.retryOffsets, fmt.Sprintf("%s: %d then %d", p, first, retry))
				l.mu.Unlock()
			}
		} else if i%3 == 0 {
			p := fmt.Sprintf("g%d-%d", g, i)
			l.record(c.post("/tables/"+table, fmt.Sprintf(`{"payload":%q}`, p)), p)
		} else {
			var ps, recs []string
			for k := range 10 {
				p := fmt.Sprintf("g%d-%d-%d", g, i, k)
				ps = append(ps, p)
				recs = append(recs, fmt.Sprintf(`{"payload":%q}`, p))
			}
			l.record(c.post("/tables/"+table+"/bulk", `{"records":[`+strings.Join(recs, ",")+`]}`), ps...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restCatalog is iceberg-go's REST catalog at url.
func restCatalog(tb testing.TB, url string) catalog.Catalog {
	tb.Helper()
	cat, err := catalog.Load(context.Background(), "zombi", iceberg.Properties{"type": "rest", "uri": url})
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// payloads returns how often each payload is in the table, and the
// sequences (offsets) that more than one row has.
func (c *cluster) payloads(cat catalog.Catalog, name string) (map[string]int, []int64, *table.Table) {
	c.t.Helper()
	tbl, err := cat.LoadTable(context.Background(), table.Identifier{"default", name})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int{}
	if tbl.CurrentSnapshot() == nil {
		return out, nil, tbl
	}
	at, err := tbl.Scan(table.WithSelectedFields("payload", "sequence")).ToArrowTable(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	defer at.Release()
	pcol, scol := at.Schema().FieldIndices("payload")[0], at.Schema().FieldIndices("sequence")[0]
	for _, ch := range at.Column(pcol).Data().Chunks() {
		b := ch.(*array.Binary)
		for i := range b.Len() {
			out[string(b.Value(i))]++
		}
	}
	seen := map[int64]bool{}
	var dups []int64
	for _, ch := range at.Column(scol).Data().Chunks() {
		for _, v := range ch.(*array.Int64).Int64Values() {
			if seen[v] {
				dups = append(dups, v)
			}
			seen[v] = true
		}
	}
	return out, dups, tbl
}

// TestCluster: three nodes behind HAProxy take single, bulk and
// idempotent-retry writes from four producers; one node is killed
// (SIGKILL) mid-stream and restarted with its disk. Every acknowledged
// event is in the table exactly once, an unacknowledged one at most once,
// a retry on another node stored once with the first offset, offsets are
// unique, and the table gets about one append per flush interval, not one
// per node.
func TestCluster(t *testing.T) {
	c := start(t, 3)
	const name = "clustered"
	if !c.post("/tables/"+name, `{"payload":"first"}`) {
		t.Fatal("the first write was refused")
	}
	// Compaction as soon as a partition has four small files, and
	// maintenance every second: the nodes' schedulers compete for them.
	setProps := `{"updates":[{"action":"set-properties","updates":{"zombi.compaction.min-files":"4","zombi.maintenance.interval-ms":"1000"}}]}`
	zombitest.MustCall(t, 200, "POST", c.lb.URL+"/v1/namespaces/default/tables/"+name, setProps)
	l := &ledger{acked: map[string]bool{"first": true}, maybe: map[string]bool{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	for g := range 4 {
		wg.Go(func() { c.produce(g, name, l, stop) })
	}
	time.Sleep(3 * time.Second)
	// Kill a node that does not maintain the table, so that its restart
	// cannot hide runs from the count below.
	victim := (c.owner(name) + 1) % len(c.nodes)
	c.nodes[victim].Kill()
	time.Sleep(time.Second)
	c.restart(victim)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	ended := time.Now()

	cat := restCatalog(t, c.lb.URL)
	var got map[string]int
	var dups []int64
	var tbl *table.Table
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got, dups, tbl = c.payloads(cat, name)
		missing := 0
		for p := range l.acked {
			if got[p] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events are not in the table after 60s", missing, len(l.acked))
		}
	}
	var twice, unknown []string
	for p, n := range got {
		switch {
		case n > 1:
			twice = append(twice, p)
		case !l.acked[p] && !l.maybe[p]:
			unknown = append(unknown, p)
		}
	}
	if len(twice) > 0 || len(unknown) > 0 {
		t.Fatalf("%d events in the table more than once (%.5q), %d never written (%.5q)", len(twice), twice, len(unknown), unknown)
	}
	if len(dups) > 0 {
		t.Errorf("%d offsets are in the table more than once (%.5v): offsets must be unique per table across nodes", len(dups), dups)
	}
	if len(l.retryOffsets) > 0 {
		t.Errorf("%d idempotent retries were answered with another offset: %.3q", len(l.retryOffsets), l.retryOffsets)
	}
	t.Logf("%d events acknowledged, %d unknown (%d of those stored), in %v", len(l.acked), len(l.maybe), len(got)-len(l.acked), ended.Sub(began).Round(time.Millisecond))

	// Appends while the producers ran: one per interval, plus the
	// commits that the restart's recovery may add.
	appends := 0
	for _, s := range tbl.Metadata().Snapshots() {
		at := time.UnixMilli(s.TimestampMs)
		if s.Summary != nil && s.Summary.Operation == table.OpAppend && !at.Before(began) && !at.After(ended) {
			appends++
		}
	}
	if most := int(ended.Sub(began)/interval) + 3; appends > most {
		t.Errorf("%d appends in %v: more than one per %v interval (at most %d)", appends, ended.Sub(began).Round(time.Millisecond), interval, most)
	}
	t.Logf("%d appends in %v", appends, ended.Sub(began).Round(time.Millisecond))
	var props map[string]string
	b, _ := json.Marshal(tbl.Properties())
	_ = json.Unmarshal(b, &props)
	for i := range c.nodes {
		if _, ok := props[fmt.Sprintf("zombi.watermark.n%d", i+1)]; !ok {
			t.Errorf("the table has no watermark of node n%d: %v", i+1, props)
		}
	}

	// Compaction and maintenance of the table ran on one node (the one
	// holding its owner lease).
	for _, kind := range []string{"compact", "maintain"} {
		var ran []string
		for i, n := range c.nodes {
			if metric(t, n.URL, `zombi_maintenance_runs_total{kind="`+kind+`",outcome="ok"}`) > 0 {
				ran = append(ran, fmt.Sprintf("n%d", i+1))
			}
		}
		if len(ran) != 1 {
			t.Errorf("%s ran on %v, want exactly one node", kind, ran)
		}
	}
}

// owner returns the index of the node holding the table's owner lease
// (compaction and maintenance), waiting for one to take it.
func (c *cluster) owner(name string) int {
	c.t.Helper()
	conn, err := pgx.Connect(context.Background(), c.pg)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var holder string
		err := conn.QueryRow(context.Background(), `SELECT l.holder FROM zombi_leases l JOIN zombi_tables t ON l.name = 'owner/' || t.uuid
WHERE t.name = $1`, name).Scan(&holder)
		if err == nil {
			for i := range c.nodes {
				if holder == fmt.Sprintf("n%d", i+1) {
					return i
				}
			}
			c.t.Fatalf("the owner lease is held by %q, no node of the cluster", holder)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			c.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			c.t.Fatal("no node took the table's owner lease in 30s")
		}
	}
}

// metric returns the value of the series (name and labels, as /metrics
// prints them) at url, 0 if it is absent.
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	b := zombitest.MustCall(t, 200, "GET", url+"/metrics", "")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
