package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// streamBits is hot.StreamBits: an offset's stream is offset >> 44.
const streamBits = 44

type clusterWrite struct {
	Offset    int64 `json:"offset"`
	Stream    int64 `json:"stream"`
	Duplicate bool  `json:"duplicate"`
}

type nodeInfo struct {
	NodeID  string  `json:"node_id"`
	Stream  int     `json:"stream"`
	Cluster bool    `json:"cluster"`
	State   string  `json:"state"`
	Age     float64 `json:"heartbeat_age_seconds"`
	Backlog int64   `json:"backlog_bytes"`
}

func listNodes(t testing.TB, base string) []nodeInfo {
	t.Helper()
	var out struct {
		Nodes []nodeInfo `json:"nodes"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/zombi/nodes", ""), &out); err != nil {
		t.Fatal(err)
	}
	return out.Nodes
}

// TestCluster: two nodes with --cluster on one Postgres database and one
// bucket take writes for one table. Offsets are distinct across the
// nodes, each in its node's stream; after both flush, the table's
// sequence column has no repeat and holds every acknowledged event; an
// idempotent write retried on the other node is stored once; the nodes
// endpoint lists both, and a node that stops as left.
func TestCluster(t *testing.T) {
	nodes := zombitest.StartCluster(t, 2, "--flush-interval", "300ms")

	// Each node's stream, from the registry.
	streams := map[string]int{}
	for _, n := range listNodes(t, nodes[0].URL) {
		if n.State != "alive" || !n.Cluster || n.Age > 10 {
			t.Errorf("node %+v: want alive, in cluster mode, with a fresh heartbeat", n)
		}
		streams[n.NodeID] = n.Stream
	}
	if len(streams) != 2 {
		t.Fatalf("the registry lists %v, want two nodes", streams)
	}
	stream := make([]int64, len(nodes))
	for i, n := range nodes {
		var w clusterWrite
		if err := json.Unmarshal(mustCall(t, 202, "POST", n.URL+"/tables/clicks", `{"payload":"first"}`), &w); err != nil {
			t.Fatal(err)
		}
		stream[i] = w.Stream
		if w.Offset>>streamBits != w.Stream {
			t.Errorf("node %d answered offset %d with stream %d", i, w.Offset, w.Stream)
		}
	}
	if stream[0] == stream[1] {
		t.Fatalf("both nodes write stream %d", stream[0])
	}

	var mu sync.Mutex
	acked := map[int64]string{}
	ack := func(node int, offset int64, payload string) {
		mu.Lock()
		defer mu.Unlock()
		if offset>>streamBits != stream[node] {
			t.Errorf("node %d handed out offset %d outside its stream %d", node, offset, stream[node])
		}
		if p, dup := acked[offset]; dup {
			t.Errorf("offset %d acknowledged twice: %q and %q", offset, p, payload)
		}
		acked[offset] = payload
	}
	var wg sync.WaitGroup
	for node := range nodes {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := nodes[node].URL
				for i := range 40 {
					p := fmt.Sprintf("n%d-w%d-%d", node, w, i)
					if i%4 == 0 {
						var recs []string
						for j := range 5 {
							recs = append(recs, fmt.Sprintf(`{"payload":"%s-%d"}`, p, j))
						}
						var r struct {
							Offsets []int64 `json:"offsets"`
						}
						if err := json.Unmarshal(mustCall(t, 202, "POST", base+"/tables/clicks/bulk",
							`{"records":[`+strings.Join(recs, ",")+`]}`), &r); err != nil {
							t.Error(err)
							return
						}
						for j, o := range r.Offsets {
							ack(node, o, fmt.Sprintf("%s-%d", p, j))
						}
						continue
					}
					var r clusterWrite
					if err := json.Unmarshal(mustCall(t, 202, "POST", base+"/tables/clicks", `{"payload":"`+p+`"}`), &r); err != nil {
						t.Error(err)
						return
					}
					ack(node, r.Offset, p)
				}
			}()
		}
	}
	wg.Wait()

	// Idempotent writes to one node, retried on the other, are stored
	// once and answered with the first offset: single writes (key in the
	// body or the header) and a bulk.
	for i, key := range []string{"retry-1", "retry-2"} {
		from, to := i%2, (i+1)%2
		body, headers := `{"payload":"`+key+`","idempotency_key":"`+key+`"}`, []string(nil)
		if i == 1 {
			body, headers = `{"payload":"`+key+`"}`, []string{"Idempotency-Key", key}
		}
		var first, again clusterWrite
		for _, w := range []struct {
			node int
			res  *clusterWrite
		}{{from, &first}, {to, &again}} {
			if err := json.Unmarshal(mustCall(t, 202, "POST", nodes[w.node].URL+"/tables/clicks", body, headers...), w.res); err != nil {
				t.Fatal(err)
			}
		}
		if first.Duplicate || !again.Duplicate || again.Offset != first.Offset || again.Stream != stream[from] {
			t.Errorf("%s: first answer %+v, retry on the other node %+v; want the retry a duplicate of the first", key, first, again)
		}
		ack(from, first.Offset, key)
	}
	bulk := `{"records":[{"payload":"b-1","idempotency_key":"bulk-1"},{"payload":"b-2","idempotency_key":"bulk-2"}]}`
	var firstBulk, againBulk struct {
		Offsets []int64 `json:"offsets"`
	}
	if err := json.Unmarshal(mustCall(t, 202, "POST", nodes[1].URL+"/tables/clicks/bulk", bulk), &firstBulk); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustCall(t, 202, "POST", nodes[0].URL+"/tables/clicks/bulk", bulk), &againBulk); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(firstBulk.Offsets) != fmt.Sprint(againBulk.Offsets) {
		t.Errorf("bulk retried on the other node answered %v, first %v", againBulk.Offsets, firstBulk.Offsets)
	}
	for j, o := range firstBulk.Offsets {
		ack(1, o, fmt.Sprintf("b-%d", j+1))
	}

	for _, n := range nodes {
		flushTable(t, n.URL, "clicks")
	}
	got := scanEvents(t, nodes[0], "default", "clicks")
	checkAcked(t, got, acked)
	if want := len(acked) + 2; len(got) != want {
		t.Errorf("the table holds %d events, want %d", len(got), want)
	}

	// A node that shuts down is listed as left, with its stream kept.
	nodes[1].Stop(t)
	for _, n := range listNodes(t, nodes[0].URL) {
		if want := map[bool]string{true: "left", false: "alive"}[int64(n.Stream) == stream[1]]; n.State != want {
			t.Errorf("after node 1 stopped: %+v, want %s", n, want)
		}
	}
}
