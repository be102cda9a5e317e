package flusher_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/flusher"
)

func TestFlushEventsExactlyOnce(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("default", "clicks")
	want := map[uint64]string{}
	body, payloads := events("a", 500, time.Time{}, 0)
	for i, seq := range e.writeBulk("clicks", body) {
		want[seq] = payloads[i]
	}
	res, err := e.ing.WriteOne(context.Background(), "clicks", ingestJSON(`{"payload":"single"}`))
	if err != nil {
		t.Fatal(err)
	}
	want[res.Offset] = "single"

	fr := e.flush(id)
	if fr.Rows != 501 || fr.Files < 1 || fr.SnapshotID == 0 || fr.Watermark != res.Offset || fr.Table != "default.clicks" {
		t.Fatalf("flush result %+v, want 501 rows through %d", fr, res.Offset)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)

	// The watermark is in the commit: a table property and the summary.
	tbl := e.load(id)
	key := flusher.WatermarkProperty(e.hot.NodeID())
	if got := tbl.Properties()[key]; got != strconv.FormatUint(res.Offset, 10) {
		t.Errorf("property %s = %q, want %d", key, got, res.Offset)
	}
	snap := tbl.CurrentSnapshot()
	if snap.SnapshotID != fr.SnapshotID || snap.Summary.Properties[key] != strconv.FormatUint(res.Offset, 10) {
		t.Errorf("snapshot %d summary %v, want id %d and %s", snap.SnapshotID, snap.Summary.Properties, fr.SnapshotID, key)
	}
	if string(snap.Summary.Operation) != "append" {
		t.Errorf("operation %q, want append", snap.Summary.Operation)
	}
	// Committed events leave the hot tier.
	if bytes, n, _ := e.hot.TableBacklog(tbl.Metadata().TableUUID().String()); n != 0 || bytes != 0 {
		t.Errorf("hot backlog after flush: %d events, %d bytes", n, bytes)
	}

	// A second flush has nothing to do; more events make a second snapshot.
	if fr2 := e.flush(id); fr2.Rows != 0 || fr2.SnapshotID != fr.SnapshotID {
		t.Errorf("empty flush: %+v", fr2)
	}
	body, payloads = events("b", 100, time.Time{}, 0)
	for i, seq := range e.writeBulk("clicks", body) {
		want[seq] = payloads[i]
	}
	var last uint64
	for s := range want {
		last = max(last, s)
	}
	e.restart() // Close flushes the rest; the watermark comes back from the table
	if fr3 := e.flush(id); fr3.Rows != 0 || fr3.Watermark != last {
		t.Fatalf("flush after restart: %+v, want 0 rows and watermark %d", fr3, last)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
	if n := len(e.load(id).Metadata().Snapshots()); n != 2 {
		t.Errorf("%d snapshots, want 2", n)
	}
}

func TestIntervalTrigger(t *testing.T) {
	e := newEnv(t, func(o *flusher.Options) { o.Interval = 50 * time.Millisecond })
	id := ident("default", "ticks")
	body, payloads := events("t", 10, time.Time{}, 0)
	want := map[uint64]string{}
	for i, seq := range e.writeBulk("ticks", body) {
		want[seq] = payloads[i]
	}
	waitFor(t, 20*time.Second, func() bool { return len(rowsBySeq(t, e.scan(id))) == len(want) })
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
}

// TestIntervalProperty: zombi.flush.interval-ms overrides the default
// interval for its table.
func TestIntervalProperty(t *testing.T) {
	e := newEnv(t, nil) // default interval: an hour
	id := ident("shop", "fast")
	e.createTyped(id, *iceberg.UnpartitionedSpec)
	e.commitTx(id, func(tx *table.Transaction) error {
		return tx.SetProperties(iceberg.Properties{flusher.PropInterval: "50"})
	})
	// The flusher learns the property of a table it does not know yet
	// before timing its first cycle.
	for i := 1; i <= 3; i++ {
		e.writeRows("shop.fast", fmt.Sprintf(`[{"id":%d,"ts":"2026-11-20T10:00:00Z"}]`, i))
		waitFor(t, 20*time.Second, func() bool { return len(e.dataFiles(id)) == i })
	}
}

func TestWaitCommitted(t *testing.T) {
	e := newEnv(t, nil) // an hour's interval: only the waiter triggers
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := ingestJSON(`{"payload":"w"}`)
	req.WaitCommitted = true
	res, err := e.ing.WriteOne(ctx, "waits", req)
	if err != nil {
		t.Fatal(err)
	}
	id := ident("default", "waits")
	tbl := e.load(id)
	if res.SnapshotID == 0 || tbl.CurrentSnapshot() == nil || tbl.CurrentSnapshot().SnapshotID != res.SnapshotID {
		t.Fatalf("write answered snapshot %d; the table's is %v", res.SnapshotID, tbl.CurrentSnapshot())
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), map[uint64]string{res.Offset: "w"})
}

func TestCloseFlushesEverything(t *testing.T) {
	e := newEnv(t, nil)
	body, payloads := events("c", 300, time.Time{}, 0)
	want := map[uint64]string{}
	for i, seq := range e.writeBulk("closing", body) {
		want[seq] = payloads[i]
	}
	e.close()
	checkExactly(t, rowsBySeq(t, e.scan(ident("default", "closing"))), want)
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRetention: committed events stay readable in the hot tier for the
// retention window, then go; an idle table costs no cycles meanwhile.
func TestRetention(t *testing.T) {
	e := newEnv(t, func(o *flusher.Options) { o.Retention = 300 * time.Millisecond })
	id := ident("default", "kept")
	body, _ := events("k", 20, time.Time{}, 0)
	e.writeBulk("kept", body)
	e.flush(id)
	key := e.load(id).Metadata().TableUUID().String()
	if _, n, _ := e.hot.TableBacklog(key); n != 20 {
		t.Fatalf("right after the commit the hot tier holds %d events, want 20", n)
	}
	waitFor(t, 10*time.Second, func() bool {
		_, n, _ := e.hot.TableBacklog(key)
		return n == 0
	})
	before := counter(t, e.reg, "zombi_flush_cycles_total")
	time.Sleep(200 * time.Millisecond)
	if after := counter(t, e.reg, "zombi_flush_cycles_total"); after != before {
		t.Errorf("%v cycles ran on an idle table", after-before)
	}
}

// TestFlushSortsACycle: a cycle whose events came out of event-time order
// is written sorted by the table's order (event_time, then sequence),
// and one in order is written as it came.
func TestFlushSortsACycle(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("default", "late")
	start := time.Date(2026, 11, 20, 10, 59, 0, 0, time.UTC)
	body, _ := events("back", 50, start, -time.Second) // 10:59:00 down to 10:58:11
	e.writeBulk("late", body)
	body, _ = events("again", 50, start, -time.Second) // the same times again
	e.writeBulk("late", body)
	if res := e.flush(id); res.Rows != 100 {
		t.Fatalf("flushed %d rows, want 100", res.Rows)
	}
	if len(e.dataFiles(id)) != 1 {
		t.Fatalf("%d data files, want 1", len(e.dataFiles(id)))
	}
	at := e.scan(id)
	times, seqs := column(t, at, "event_time"), column(t, at, "sequence")
	for i := 1; i < len(times); i++ {
		prev, cur := times[i-1].(time.Time), times[i].(time.Time)
		if cur.Before(prev) || cur.Equal(prev) && seqs[i].(int64) < seqs[i-1].(int64) {
			t.Fatalf("row %d (%v, %v) after (%v, %v): not in (event_time, sequence) order", i, cur, seqs[i], prev, seqs[i-1])
		}
	}
	if len(times) != 100 || !times[0].(time.Time).Equal(start.Add(-49*time.Second)) {
		t.Fatalf("%d rows, first at %v", len(times), times[0])
	}
}
