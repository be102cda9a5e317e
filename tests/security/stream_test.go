package security

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// openIdleStream opens a live-tail stream on a connection of its own and
// reads up to the stream's first comment.
func openIdleStream(t *testing.T, inst *zombitest.Instance, table string) net.Conn {
	t.Helper()
	u, err := url.Parse(inst.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /tables/%s/stream HTTP/1.1\r\nHost: zombi\r\n\r\n", table)
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("stream of %s: %q, %v", table, status, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, ": live tail of") {
			return c
		}
	}
}

// TestIdleStreamsMemory: 1,000 idle live-tail streams over 10 tables
// cost a bounded, small amount of server memory each. The figures go to
// BENCHMARKS.md ("Live tail"):
//
//	go test ./tests/security -run TestIdleStreamsMemory -v
func TestIdleStreamsMemory(t *testing.T) {
	pprof := zombitest.FreeAddr(t)
	inst := zombitest.Start(t, "--pprof-listen", pprof)
	// A heap profile with gc=1 collects first: the heap figures are then
	// of live objects, not of garbage the collector has not reached yet.
	collect := func() {
		zombitest.MustCall(t, 200, "GET", "http://"+pprof+"/debug/pprof/heap?gc=1", "")
	}
	const tables, streams = 10, 1000
	for i := range tables {
		zombitest.MustCall(t, 202, "POST", fmt.Sprintf("%s/tables/idle%d", inst.URL, i), `{"payload":0}`)
	}
	// One stream first, so that what every stream shares is in the
	// baseline.
	warm := openIdleStream(t, inst, "idle0")
	defer warm.Close()
	collect()
	rssBefore, heapBefore := inst.RSS(t), metric(t, inst.URL, "go_memstats_heap_inuse_bytes")
	goroutinesBefore := metric(t, inst.URL, "go_goroutines")
	conns := make([]net.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range streams {
		conns = append(conns, openIdleStream(t, inst, fmt.Sprintf("idle%d", i%tables)))
	}
	if n := metric(t, inst.URL, "zombi_tail_subscribers"); n != streams+1 {
		t.Fatalf("%v subscribers, want %d", n, streams+1)
	}
	collect()
	rss, heap := inst.RSS(t), metric(t, inst.URL, "go_memstats_heap_inuse_bytes")
	goroutines := metric(t, inst.URL, "go_goroutines")
	perRSS, perHeap := (rss-rssBefore)/streams, int64(heap-heapBefore)/streams
	t.Logf("%d idle streams on %d tables: RSS %d -> %d MiB (%d KiB a stream), Go heap in use %.1f -> %.1f MiB (%d KiB a stream), goroutines %v -> %v",
		streams, tables, rssBefore>>20, rss>>20, perRSS>>10, heapBefore/(1<<20), heap/(1<<20), perHeap>>10, goroutinesBefore, goroutines)
	if perRSS > 64<<10 {
		t.Errorf("%d KiB of RSS a stream, want at most 64", perRSS>>10)
	}

	// They are live: an event reaches a stream of its table.
	zombitest.MustCall(t, 202, "POST", inst.URL+"/tables/idle3", `{"payload":"wake"}`)
	_ = conns[3].SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conns[3])
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, `"payload":"wake"`) {
			break
		}
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, inst.URL, "zombi_tail_subscribers") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%v subscribers after the streams closed, want 1", metric(t, inst.URL, "zombi_tail_subscribers"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
