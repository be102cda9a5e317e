package hot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestSequences(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	ctx := context.Background()

	var last = map[string]uint64{}
	check := func(table string, res []Result) {
		t.Helper()
		for _, r := range res {
			if r.Duplicate {
				t.Fatalf("%s: unexpected duplicate %+v", table, r)
			}
			if r.Seq <= last[table] {
				t.Fatalf("%s: seq %d after %d", table, r.Seq, last[table])
			}
			last[table] = r.Seq
		}
	}
	steps := []struct {
		table string
		n     int
	}{
		{"a", 1}, {"b", 3}, {"a", 5}, {"a.b", 2}, {"b", 1}, {"a", 1},
	}
	for _, s := range steps {
		check(s.table, mustAppend(t, db, s.table, values(s.n, s.table)...))
	}
	// Tables are independent: each starts at 1 and counts its own events.
	for table, want := range map[string]uint64{"a": 7, "b": 4, "a.b": 2} {
		if last[table] != want {
			t.Errorf("%s: last seq %d, want %d", table, last[table], want)
		}
		if hwm := db.HighWatermark(table); hwm != want {
			t.Errorf("%s: high watermark %d, want %d", table, hwm, want)
		}
	}
	if got, want := db.Tables(), []string{"a", "a.b", "b"}; !slices.Equal(got, want) {
		t.Errorf("Tables() = %q, want %q", got, want)
	}

	// Across Close/Open.
	mustClose(t, db)
	db = openT(t, dir, Options{})
	if got, want := db.Tables(), []string{"a", "a.b", "b"}; !slices.Equal(got, want) {
		t.Errorf("after reopen: Tables() = %q, want %q", got, want)
	}
	if hwm := db.HighWatermark("a"); hwm != 7 {
		t.Errorf("after reopen: high watermark of a %d, want 7", hwm)
	}
	check("a", mustAppend(t, db, "a", values(2, "a")...))
	check("b", mustAppend(t, db, "b", values(1, "b")...))

	// Delete everything, reopen: sequences still go up.
	for _, table := range db.Tables() {
		if err := db.DeleteThrough(ctx, table, db.HighWatermark(table)); err != nil {
			t.Fatal(err)
		}
		if evs := readAll(t, db, table); len(evs) != 0 {
			t.Fatalf("%s: %d events after deleting all", table, len(evs))
		}
	}
	before := maps(last)
	mustClose(t, db)
	db = openT(t, dir, Options{})
	for table, prev := range before {
		if hwm := db.HighWatermark(table); hwm < prev {
			t.Errorf("%s: high watermark went back from %d to %d", table, prev, hwm)
		}
		check(table, mustAppend(t, db, table, values(1, table)...))
	}
	// Reopen without appending in between: still no reuse.
	mustClose(t, db)
	db = openT(t, dir, Options{})
	for table := range before {
		check(table, mustAppend(t, db, table, values(1, table)...))
	}
}

func maps(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// TestSequencesLeaseRollover appends past several lease blocks and checks
// that sequences stay dense within a run and grow across restarts.
func TestSequencesLeaseRollover(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{MaxBacklogBytes: 1 << 40})
	recs := make([]Record, 10_000)
	for i := range recs {
		recs[i].Value = []byte{byte(i)}
	}
	var want uint64 = 1
	for range 3 * leaseBlock / len(recs) {
		res := mustAppend(t, db, "t", recs...)
		for _, r := range res {
			if r.Seq != want {
				t.Fatalf("seq %d, want %d", r.Seq, want)
			}
			want++
		}
	}
	mustClose(t, db)
	db = openT(t, dir, Options{})
	res := mustAppend(t, db, "t", rec("", "x"))
	if res[0].Seq < want {
		t.Fatalf("after reopen: seq %d, want >= %d", res[0].Seq, want)
	}
}

func TestAppendEmptyAndClosed(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	res, err := db.Append(ctx, "t", nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("empty append: %v, %v", res, err)
	}
	if hwm := db.HighWatermark("t"); hwm != 0 {
		t.Fatalf("empty append moved the watermark to %d", hwm)
	}
	if got := db.Tables(); len(got) != 0 {
		t.Fatalf("empty append listed tables %q", got)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Append(canceled, "t", []Record{rec("", "x")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with canceled context: %v", err)
	}
	mustClose(t, db)
	if _, err := db.Append(ctx, "t", []Record{rec("", "x")}); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, err := db.Read(ctx, "t", 0, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if err := db.DeleteThrough(ctx, "t", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("delete after close: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v", err)
	}
}

func TestReadRoundTrip(t *testing.T) {
	clk := newClock()
	db := openT(t, t.TempDir(), Options{Now: clk.Now})
	big := bytes.Repeat([]byte("v"), 100<<10)
	in := []Record{
		{Key: "k1", Value: []byte("one")},
		{Value: nil},
		{Key: "key\x00with\x00nul", Value: []byte{0, 1, 2, 0xff}},
		{Value: big},
	}
	res := mustAppend(t, db, "t", in...)
	clk.Advance(time.Second)
	res2 := mustAppend(t, db, "t", rec("", "later"))
	evs := readAll(t, db, "t")
	if len(evs) != 5 {
		t.Fatalf("read %d events, want 5", len(evs))
	}
	for i, r := range append(slices.Clone(in), rec("", "later")) {
		e := evs[i]
		want := append(slices.Clone(res), res2...)[i].Seq
		if e.Seq != want || e.Key != r.Key || !bytes.Equal(e.Value, r.Value) {
			t.Errorf("event %d = {%d %q %q}, want {%d %q %q}", i, e.Seq, e.Key, trunc(e.Value), want, r.Key, trunc(r.Value))
		}
		at := clk.Now().Add(-time.Second)
		if i == 4 {
			at = clk.Now()
		}
		if !e.Appended.Equal(at) {
			t.Errorf("event %d appended at %v, want %v", i, e.Appended, at)
		}
	}
	// Values do not alias one another.
	evs[1].Value = append(evs[1].Value, "xyz"...)
	if !bytes.Equal(evs[2].Value, in[2].Value) {
		t.Errorf("append to one value changed the next: %q", evs[2].Value)
	}

	tests := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 2, []uint64{1, 2}},
		{2, 2, []uint64{3, 4}},
		{4, 10, []uint64{5}},
		{5, 10, nil},
		{100, 10, nil},
		{0, 0, nil},
		{0, -1, nil},
	}
	for _, tt := range tests {
		evs, err := db.Read(context.Background(), "t", tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Read(after=%d, limit=%d) = %v, want %v", tt.after, tt.limit, got, tt.want)
		}
	}
	if evs, err := db.Read(context.Background(), "nope", 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("read of unknown table: %v, %v", evs, err)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// TestTableKeysDisjoint appends to tables whose names prefix one another
// and checks reads, deletes and idempotency keys stay within their table.
func TestTableKeysDisjoint(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	tables := []string{"a", "ab", "a.b", "a-", "a_b", "A", "a\x00", "a\x00\x01", "a\x01"}
	for i, table := range tables {
		for j := 0; j <= i; j++ {
			mustAppend(t, db, table, rec("same-key", fmt.Sprintf("%s/%d", table, j)))
			mustAppend(t, db, table, rec("", fmt.Sprintf("%s/%d", table, j)))
		}
	}
	// The keyed record was stored once per table.
	for i, table := range tables {
		evs := readAll(t, db, table)
		if len(evs) != 1+(i+1) {
			t.Fatalf("%q: %d events, want %d", table, len(evs), i+2)
		}
		for _, e := range evs {
			if !bytes.HasPrefix(e.Value, []byte(table+"/")) {
				t.Fatalf("%q: event of another table: %q", table, e.Value)
			}
		}
	}
	if err := db.DeleteThrough(ctx, "a", db.HighWatermark("a")); err != nil {
		t.Fatal(err)
	}
	for i, table := range tables[1:] {
		if n := len(readAll(t, db, table)); n != i+3 {
			t.Fatalf("deleting a removed events of %q: %d left", table, n)
		}
	}
	want := slices.Clone(tables)
	slices.Sort(want)
	if got := db.Tables(); !slices.Equal(got, want) {
		t.Fatalf("Tables() = %q, want %q", got, want)
	}
}

func TestBacklog(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	opts := Options{MaxBacklogBytes: 1000, Now: clk.Now}
	db := openT(t, dir, opts)
	ctx := context.Background()
	t0 := clk.Now()

	mustAppend(t, db, "a", rec("k1", "0123456789"), rec("", "0123456789")) // 22 bytes
	clk.Advance(time.Minute)
	mustAppend(t, db, "b", rec("", "x")) // 1 byte
	mustAppend(t, db, "a", rec("", "01234"))

	checkBacklog := func(when string, total int64, tables map[string][3]int64) {
		t.Helper()
		if got := db.BacklogBytes(); got != total {
			t.Errorf("%s: BacklogBytes() = %d, want %d", when, got, total)
		}
		for table, w := range tables {
			b, n, oldest := db.TableBacklog(table)
			var wantOldest time.Time
			if w[2] >= 0 {
				wantOldest = t0.Add(time.Duration(w[2]) * time.Minute)
			}
			if b != w[0] || n != w[1] || !oldest.Equal(wantOldest) {
				t.Errorf("%s: TableBacklog(%s) = %d, %d, %v; want %d, %d, %v", when, table, b, n, oldest, w[0], w[1], wantOldest)
			}
		}
	}
	checkBacklog("after appends", 28, map[string][3]int64{"a": {27, 3, 0}, "b": {1, 1, 1}, "none": {0, 0, -1}})

	// All or nothing: a batch over the cap stores nothing.
	over := []Record{rec("big", "x"), {Value: make([]byte, 1000-28)}}
	if _, err := db.Append(ctx, "a", over); !errors.Is(err, ErrBacklogFull) {
		t.Fatalf("append over the cap: %v", err)
	}
	if hwm := db.HighWatermark("a"); hwm != 3 {
		t.Fatalf("rejected append moved the watermark to %d", hwm)
	}
	checkBacklog("after rejected append", 28, map[string][3]int64{"a": {27, 3, 0}})
	// The key of the rejected record was not remembered.
	if res := mustAppend(t, db, "a", rec("big", "y")); res[0].Duplicate {
		t.Fatalf("key of a rejected append counted as duplicate")
	}
	// Exactly up to the cap is fine.
	if _, err := db.Append(ctx, "b", []Record{{Value: make([]byte, 1000-32)}}); err != nil {
		t.Fatalf("append up to the cap: %v", err)
	}
	if _, err := db.Append(ctx, "b", []Record{rec("", "x")}); !errors.Is(err, ErrBacklogFull) {
		t.Fatalf("append past the cap: %v", err)
	}
	// A retry that is all duplicates is answered even when full.
	if res, err := db.Append(ctx, "a", []Record{rec("k1", "again")}); err != nil || !res[0].Duplicate || res[0].Seq != 1 {
		t.Fatalf("duplicate while full: %+v, %v", res, err)
	}

	// Deleting frees the backlog.
	if err := db.DeleteThrough(ctx, "a", 2); err != nil {
		t.Fatal(err)
	}
	checkBacklog("after delete a<=2", 1000-22, map[string][3]int64{"a": {9, 2, 1}})
	if err := db.DeleteThrough(ctx, "a", 2); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteThrough(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	checkBacklog("after repeated deletes", 1000-22, map[string][3]int64{"a": {9, 2, 1}})
	// Beyond the high watermark means through it.
	if err := db.DeleteThrough(ctx, "b", 99); err != nil {
		t.Fatal(err)
	}
	checkBacklog("after deleting b", 1000-22-969, map[string][3]int64{"b": {0, 0, -1}})
	if err := db.DeleteThrough(ctx, "nope", 1); err != nil {
		t.Fatalf("delete in an unknown table: %v", err)
	}
	if _, err := db.Append(ctx, "b", []Record{rec("", "0123456789")}); err != nil {
		t.Fatalf("append after delete: %v", err)
	}
	checkBacklog("after append", 9+10, map[string][3]int64{"b": {10, 1, 1}})

	// Recovery computes the same backlog from the first and last events.
	mustClose(t, db)
	db = openT(t, dir, opts)
	checkBacklog("after reopen", 9+10, map[string][3]int64{"a": {9, 2, 1}, "b": {10, 1, 1}})

	for _, table := range db.Tables() {
		if err := db.DeleteThrough(ctx, table, db.HighWatermark(table)); err != nil {
			t.Fatal(err)
		}
	}
	checkBacklog("after deleting all", 0, map[string][3]int64{"a": {0, 0, -1}, "b": {0, 0, -1}})
	mustClose(t, db)
	db = openT(t, dir, opts)
	checkBacklog("after deleting all and reopen", 0, map[string][3]int64{"a": {0, 0, -1}, "b": {0, 0, -1}})
	if hwm := db.HighWatermark("b"); hwm != 3 {
		t.Errorf("high watermark of b after deleting all and reopen: %d, want 3", hwm)
	}
}

func TestIdempotency(t *testing.T) {
	const window = time.Hour
	type step struct {
		table   string
		recs    []Record
		advance time.Duration // before the append
		reopen  bool          // before the append
		// deleteAll deletes the table's events before reopening.
		deleteAll bool
		// want is, per record, the seq of the stored or original event;
		// dup marks duplicates.
		want []uint64
		dup  []bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"sequential duplicate", []step{
			{table: "t", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{false}},
			{table: "t", recs: []Record{rec("b", "2")}, want: []uint64{2}, dup: []bool{false}},
			{table: "t", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{true}},
			{table: "t", recs: []Record{rec("", "3"), rec("b", "2"), rec("c", "4")}, want: []uint64{3, 2, 4}, dup: []bool{false, true, false}},
		}},
		{"duplicate inside one batch", []step{
			{table: "t", recs: []Record{rec("a", "1"), rec("b", "2"), rec("a", "1'"), rec("", "3"), rec("a", "1''")},
				want: []uint64{1, 2, 1, 3, 1}, dup: []bool{false, false, true, false, true}},
			{table: "t", recs: []Record{rec("b", "x"), rec("b", "y"), rec("d", "4")},
				want: []uint64{2, 2, 4}, dup: []bool{true, true, false}},
		}},
		{"keys are per table", []step{
			{table: "t", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{false}},
			{table: "u", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{false}},
			{table: "u", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{true}},
			{table: "t", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{true}},
		}},
		{"after restart within the window", []step{
			{table: "t", recs: []Record{rec("a", "1"), rec("b", "2")}, want: []uint64{1, 2}, dup: []bool{false, false}},
			{table: "t", reopen: true, advance: window - time.Nanosecond, recs: []Record{rec("b", "x"), rec("a", "y")},
				want: []uint64{2, 1}, dup: []bool{true, true}},
		}},
		{"after the window", []step{
			{table: "t", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{false}},
			{table: "t", advance: window / 2, recs: []Record{rec("b", "2")}, want: []uint64{2}, dup: []bool{false}},
			{table: "t", advance: window / 2, recs: []Record{rec("a", "1"), rec("b", "2")}, want: []uint64{3, 2}, dup: []bool{false, true}},
			// The new "a" starts a new window.
			{table: "t", advance: window / 2, recs: []Record{rec("a", "1")}, want: []uint64{3}, dup: []bool{true}},
		}},
		{"duplicate of a deleted event", []step{
			{table: "t", recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{false}},
			{table: "t", deleteAll: true, reopen: true, recs: []Record{rec("a", "1")}, want: []uint64{1}, dup: []bool{true}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			dir := t.TempDir()
			opts := Options{IdempotencyWindow: window, Now: clk.Now}
			db := openT(t, dir, opts)
			// Sequences restart after a reopen; map stored seqs to the
			// numbers of the test (1, 2, ... in order of storing).
			ids := map[string]map[uint64]uint64{}
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				if s.deleteAll {
					if err := db.DeleteThrough(context.Background(), s.table, db.HighWatermark(s.table)); err != nil {
						t.Fatal(err)
					}
				}
				if s.reopen {
					mustClose(t, db)
					db = openT(t, dir, opts)
				}
				res := mustAppend(t, db, s.table, s.recs...)
				if ids[s.table] == nil {
					ids[s.table] = map[uint64]uint64{}
				}
				m := ids[s.table]
				for j, r := range res {
					if !r.Duplicate {
						if _, ok := m[r.Seq]; ok {
							t.Fatalf("step %d rec %d: seq %d stored twice", i, j, r.Seq)
						}
						m[r.Seq] = uint64(len(m) + 1)
					}
					id, ok := m[r.Seq]
					if !ok {
						t.Fatalf("step %d rec %d: duplicate of unknown seq %d", i, j, r.Seq)
					}
					if id != s.want[j] || r.Duplicate != s.dup[j] {
						t.Errorf("step %d rec %d: got event %d dup=%t, want %d dup=%t", i, j, id, r.Duplicate, s.want[j], s.dup[j])
					}
				}
			}
		})
	}
}

// TestIdempotencyExpiry checks that the expirer removes keys older than the
// window, and only those.
func TestIdempotencyExpiry(t *testing.T) {
	clk := newClock()
	const window = time.Hour
	dir := t.TempDir()
	opts := Options{IdempotencyWindow: window, Now: clk.Now}
	db := openT(t, dir, opts)
	ctx := context.Background()

	// 3000 old keys over two tables (more than one expiry batch), then
	// fresh ones.
	for i := range 30 {
		recs := make([]Record, 100)
		for j := range recs {
			recs[j] = rec(fmt.Sprintf("old-%d-%d", i, j), "v")
		}
		mustAppend(t, db, []string{"t", "u"}[i%2], recs...)
	}
	clk.Advance(window)
	// old-0-0 is out of the window, so it is stored again (renewed).
	if res := mustAppend(t, db, "t", rec("new", "v"), rec("old-0-0", "renewed")); res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("append after the window: %+v", res)
	}
	clk.Advance(window / 2)

	countKeys := func(kind byte) int {
		t.Helper()
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for it.First(); it.Valid(); it.Next() {
			n++
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if k, x := countKeys(kindIdem), countKeys(kindExpiry); k != 3001 || x != 3002 {
		t.Fatalf("before expiry: %d keys, %d index entries; want 3001, 3002", k, x)
	}
	n, err := db.expire(ctx, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2999 {
		t.Errorf("expired %d keys, want 2999", n)
	}
	if k, x := countKeys(kindIdem), countKeys(kindExpiry); k != 2 || x != 2 {
		t.Fatalf("after expiry: %d keys, %d index entries; want 2, 2", k, x)
	}
	res := mustAppend(t, db, "t", rec("new", "v"), rec("old-0-0", "renewed"), rec("old-0-1", "v"), rec("old-1-0", "v"))
	if !res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate || res[3].Duplicate {
		t.Errorf("after expiry: %+v", res)
	}
	if counterValue(t, db.metrics.expiredKeys) != 2999 {
		t.Errorf("expired keys metric %v", counterValue(t, db.metrics.expiredKeys))
	}
}

// TestIdempotencyConcurrent appends the same key from many goroutines.
func TestIdempotencyConcurrent(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	for round := range 20 {
		key := fmt.Sprintf("k%d", round)
		const g = 32
		res := make([][]Result, g)
		var wg sync.WaitGroup
		for i := range g {
			wg.Go(func() {
				recs := []Record{rec(key, "v")}
				if i%3 == 0 {
					// Some in batches with other records.
					recs = append(recs, rec("", "other"), rec(fmt.Sprintf("%s-%d", key, i), "v"))
				}
				r, err := db.Append(context.Background(), "t", recs)
				if err != nil {
					t.Error(err)
				}
				res[i] = r
			})
		}
		wg.Wait()
		stored, seqs := 0, map[uint64]bool{}
		for _, r := range res {
			if len(r) == 0 {
				t.Fatal("missing result")
			}
			if !r[0].Duplicate {
				stored++
			}
			seqs[r[0].Seq] = true
		}
		if stored != 1 || len(seqs) != 1 {
			t.Fatalf("round %d: key stored %d times, %d distinct seqs", round, stored, len(seqs))
		}
	}
	count := map[string]int{}
	for _, e := range readAll(t, db, "t") {
		count[e.Key]++
	}
	for round := range 20 {
		if n := count[fmt.Sprintf("k%d", round)]; n != 1 {
			t.Errorf("key of round %d stored %d times", round, n)
		}
	}
}

// TestIdempotencyWaitsForInFlight holds an append with a key in flight and
// checks that a second append with the key waits and takes the outcome of
// the first into account.
func TestIdempotencyWaitsForInFlight(t *testing.T) {
	tests := []struct {
		name string
		// how the first append ends
		outcome string
	}{
		{"first succeeds", "ok"},
		{"first canceled", "canceled"},
		{"first apply fails", "apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claimed := make(chan struct{})
			proceed := make(chan struct{})
			waiting := make(chan struct{}, 1)
			var claimedOnce atomic.Bool
			var proceedOnce sync.Once
			letFirstProceed := func() { proceedOnce.Do(func() { close(proceed) }) }
			hooks := testHooks{
				afterClaim: func(string) {
					// Hold the first append only.
					if claimedOnce.CompareAndSwap(false, true) {
						close(claimed)
						<-proceed
					}
				},
				claimWait: func(string) {
					select {
					case waiting <- struct{}{}:
					default:
					}
				},
				beforeApply: func(_ string, first, _ uint64) error {
					if tt.outcome == "apply" && first == 1 {
						return errors.New("injected apply failure")
					}
					return nil
				},
			}
			db := openInternalT(t, t.TempDir(), Options{}, internalOptions{hooks: hooks})
			// On failure, unblock the first append before Close waits
			// for it.
			defer letFirstProceed()
			ctx1, cancel1 := context.WithCancel(context.Background())
			defer cancel1()
			type result struct {
				res []Result
				err error
			}
			first, second := make(chan result, 1), make(chan result, 1)
			go func() {
				r, err := db.Append(ctx1, "t", []Record{rec("k", "first")})
				first <- result{r, err}
			}()
			<-claimed
			go func() {
				r, err := db.Append(context.Background(), "t", []Record{rec("k", "second")})
				second <- result{r, err}
			}()
			select {
			case <-waiting:
			case r := <-second:
				t.Fatalf("second append did not wait for the first: %+v, %v", r.res, r.err)
			}
			if tt.outcome == "canceled" {
				cancel1()
			}
			letFirstProceed()
			r1, r2 := <-first, <-second

			evs := readAll(t, db, "t")
			switch tt.outcome {
			case "ok":
				if r1.err != nil || r2.err != nil {
					t.Fatalf("errors: %v, %v", r1.err, r2.err)
				}
				if r1.res[0].Duplicate || !r2.res[0].Duplicate || r2.res[0].Seq != r1.res[0].Seq {
					t.Fatalf("results %+v, %+v", r1.res, r2.res)
				}
				if len(evs) != 1 || string(evs[0].Value) != "first" {
					t.Fatalf("stored %+v", evs)
				}
			case "canceled":
				if !errors.Is(r1.err, context.Canceled) || r2.err != nil {
					t.Fatalf("errors: %v, %v", r1.err, r2.err)
				}
				if r2.res[0].Duplicate {
					t.Fatalf("second reported a duplicate of a failed append: %+v", r2.res)
				}
				if len(evs) != 1 || string(evs[0].Value) != "second" || evs[0].Seq != r2.res[0].Seq {
					t.Fatalf("stored %+v", evs)
				}
			case "apply":
				if r1.err == nil {
					t.Fatalf("first append succeeded")
				}
				if r2.err == nil {
					// Storing its own event would be fine too, but a
					// duplicate of the failed one is not.
					if r2.res[0].Duplicate {
						t.Fatalf("second reported a duplicate of a failed append: %+v", r2.res)
					}
				}
				for _, e := range evs {
					if string(e.Value) == "first" {
						t.Fatalf("failed append stored: %+v", evs)
					}
				}
				// A failed write stops appends.
				if _, err := db.Append(context.Background(), "t", []Record{rec("", "x")}); err == nil {
					t.Fatalf("append after a failed write succeeded")
				}
			}
		})
	}
}

// TestReadStopsAtInFlight holds the first of two appends before its apply
// and checks that the second, although stored, is not visible until the
// first is.
func TestReadStopsAtInFlight(t *testing.T) {
	held := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	hooks := testHooks{
		beforeApply: func(_ string, first, _ uint64) error {
			if first == 2 {
				close(held)
				<-release
			}
			return nil
		},
	}
	db := openInternalT(t, t.TempDir(), Options{}, internalOptions{hooks: hooks})
	// On failure, unblock the held append before Close waits for it.
	defer unblock()
	mustAppend(t, db, "t", rec("", "1"))
	done := make(chan []Result, 1)
	go func() {
		res, err := db.Append(context.Background(), "t", []Record{rec("", "2"), rec("", "3")})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-held
	res := mustAppend(t, db, "t", rec("", "4"))
	if res[0].Seq != 4 {
		t.Fatalf("seq %d, want 4", res[0].Seq)
	}
	if hwm := db.HighWatermark("t"); hwm != 1 {
		t.Fatalf("high watermark %d while 2..3 in flight, want 1", hwm)
	}
	if evs := readAll(t, db, "t"); len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("read %+v while 2..3 in flight", evs)
	}
	if b, n, _ := db.TableBacklog("t"); b != 1 || n != 1 {
		t.Fatalf("table backlog %d bytes, %d events while 2..3 in flight; want 1, 1", b, n)
	}
	// Deleting through an invisible sequence deletes only what is
	// visible.
	if err := db.DeleteThrough(context.Background(), "t", 4); err != nil {
		t.Fatal(err)
	}
	if b, n, _ := db.TableBacklog("t"); b != 0 || n != 0 {
		t.Fatalf("table backlog %d bytes, %d events after deleting 1; want 0, 0", b, n)
	}
	unblock()
	<-done
	if hwm := db.HighWatermark("t"); hwm != 4 {
		t.Fatalf("high watermark %d, want 4", hwm)
	}
	var got []uint64
	for _, e := range readAll(t, db, "t") {
		got = append(got, e.Seq)
	}
	if !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("read %v, want [2 3 4]", got)
	}
	if b, n, _ := db.TableBacklog("t"); b != 3 || n != 3 {
		t.Fatalf("table backlog %d bytes, %d events; want 3, 3", b, n)
	}
}

// TestSettle: an append acknowledged while a lower sequence is in flight
// is not visible yet; Settle waits for it, and returns at once when nothing
// is in flight (also after a restart, whose sequences skip the rest of a
// lease block) or when its context ends.
func TestSettle(t *testing.T) {
	held := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	hooks := testHooks{
		beforeApply: func(_ string, first, _ uint64) error {
			if first == 2 {
				close(held)
				<-release
			}
			return nil
		},
	}
	dir := t.TempDir()
	db := openInternalT(t, dir, Options{}, internalOptions{hooks: hooks})
	defer unblock()
	ctx := context.Background()
	if hwm, err := db.Settle(ctx, "unknown"); hwm != 0 || err != nil {
		t.Fatalf("Settle of an unknown table: %d, %v", hwm, err)
	}
	mustAppend(t, db, "t", rec("", "1"))
	if hwm, err := db.Settle(ctx, "t"); hwm != 1 || err != nil {
		t.Fatalf("Settle with nothing in flight: %d, %v; want 1", hwm, err)
	}
	go func() {
		if _, err := db.Append(ctx, "t", []Record{rec("", "2")}); err != nil {
			t.Error(err)
		}
	}()
	<-held
	// Acknowledged, not visible.
	if res := mustAppend(t, db, "t", rec("", "3")); res[0].Seq != 3 {
		t.Fatalf("seq %d, want 3", res[0].Seq)
	}
	if hwm := db.HighWatermark("t"); hwm != 1 {
		t.Fatalf("high watermark %d while 2 is in flight, want 1", hwm)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := db.Settle(short, "t"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settle while 2 is held: %v, want the context's deadline", err)
	}
	settled := make(chan uint64, 1)
	go func() {
		hwm, err := db.Settle(ctx, "t")
		if err != nil {
			t.Error(err)
		}
		settled <- hwm
	}()
	select {
	case hwm := <-settled:
		t.Fatalf("Settle returned %d while 2 is in flight", hwm)
	case <-time.After(20 * time.Millisecond):
	}
	unblock()
	if hwm := <-settled; hwm < 3 {
		t.Fatalf("Settle returned %d, want at least 3 (acknowledged before it was called)", hwm)
	}
	mustClose(t, db)
	db = openT(t, dir, Options{})
	if hwm, err := db.Settle(ctx, "t"); hwm != 3 || err != nil {
		t.Fatalf("Settle after a restart: %d, %v; want 3", hwm, err)
	}
}

// TestConcurrentReadersSeeNoGaps runs writers and tailing readers: every
// reader must see every sequence exactly once, in order.
func TestConcurrentReadersSeeNoGaps(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	const writers, perWriter = 8, 200
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				n := 1 + (i*7+w)%5
				if _, err := db.Append(ctx, "t", values(n, "v")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	total := uint64(0)
	for w := range writers {
		for i := range perWriter {
			total += uint64(1 + (i*7+w)%5)
		}
	}
	var rwg sync.WaitGroup
	for range 3 {
		rwg.Go(func() {
			var after uint64
			for after < total {
				evs, err := db.Read(ctx, "t", after, 37)
				if err != nil {
					t.Error(err)
					return
				}
				if len(evs) == 0 {
					// Let the writers run.
					time.Sleep(100 * time.Microsecond)
				}
				for _, e := range evs {
					if e.Seq != after+1 {
						t.Errorf("reader after %d got %d", after, e.Seq)
						return
					}
					after = e.Seq
				}
			}
		})
	}
	wg.Wait()
	rwg.Wait()
}

// TestSpaceBounded appends and deletes in cycles and checks that the disk
// usage stays a small fraction of all the bytes written.
func TestSpaceBounded(t *testing.T) {
	dir := t.TempDir()
	tune := func(o *pebble.Options) {
		o.MemTableSize = 1 << 20
	}
	db := openInternalT(t, dir, Options{MaxBacklogBytes: 8 << 20}, internalOptions{tune: tune})
	ctx := context.Background()
	value := bytes.Repeat([]byte{'x'}, 1000)
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i].Value = value
	}
	const cycles = 100 // 100 MB in total
	var written int64
	var peak uint64
	for c := range cycles {
		mustAppend(t, db, "t", recs...)
		written += int64(len(recs) * len(value))
		// Keep one batch behind, like a flusher would.
		if c > 0 {
			if err := db.DeleteThrough(ctx, "t", db.HighWatermark("t")-uint64(len(recs))); err != nil {
				t.Fatal(err)
			}
		}
		if b := db.BacklogBytes(); b > 2<<20 {
			t.Fatalf("cycle %d: backlog %d bytes", c, b)
		}
		peak = max(peak, db.pdb.Metrics().DiskSpaceUsage())
	}
	if err := db.DeleteThrough(ctx, "t", db.HighWatermark("t")); err != nil {
		t.Fatal(err)
	}
	if b := db.BacklogBytes(); b != 0 {
		t.Fatalf("backlog %d after deleting all", b)
	}
	usage := db.pdb.Metrics().DiskSpaceUsage()
	t.Logf("written %d MB, peak disk usage %.1f MB, final %.1f MB", written>>20, float64(peak)/(1<<20), float64(usage)/(1<<20))
	if ratio := float64(peak) / float64(written); ratio > 0.3 {
		t.Fatalf("disk usage peaked at %.0f%% of the bytes written", 100*ratio)
	}
	mustClose(t, db)
	// Reopening reads nothing it should have forgotten.
	db = openT(t, dir, Options{})
	if b := db.BacklogBytes(); b != 0 {
		t.Fatalf("backlog %d after reopen", b)
	}
}

// TestCrashCloneMem crashes an in-memory file system at random moments
// while appends run and checks every append acknowledged before the crash.
func TestCrashCloneMem(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db, err := open("db", Options{FS: fs, Logger: discardLogger()}, internalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type acked struct {
		seq   uint64
		value string
	}
	var mu sync.Mutex
	var acks []acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				recs := values(1+i%3, fmt.Sprintf("w%d-%d", w, i))
				res, err := db.Append(context.Background(), "t", recs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, r := range res {
					acks = append(acks, acked{r.Seq, string(recs[j].Value)})
				}
				mu.Unlock()
			}
		})
	}
	for round := range 5 {
		for {
			mu.Lock()
			n := len(acks)
			mu.Unlock()
			if n >= (round+1)*300 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		before := slices.Clone(acks)
		mu.Unlock()
		crashed := fs.CrashClone(vfs.CrashCloneCfg{})
		cdb, err := open("db", Options{FS: crashed, Logger: discardLogger()}, internalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint64]string{}
		for _, e := range readAll(t, cdb, "t") {
			got[e.Seq] = string(e.Value)
		}
		var maxSeq uint64
		for _, a := range before {
			if v, ok := got[a.seq]; !ok || v != a.value {
				t.Fatalf("round %d: acknowledged seq %d (%q) read back as %q, %t", round, a.seq, a.value, v, ok)
			}
			maxSeq = max(maxSeq, a.seq)
		}
		res := mustAppend(t, cdb, "t", rec("", "after crash"))
		if res[0].Seq <= maxSeq {
			t.Fatalf("round %d: seq %d after crash, acknowledged up to %d", round, res[0].Seq, maxSeq)
		}
		if err := cdb.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	dir := t.TempDir()
	db := openT(t, dir, Options{Registerer: reg, MaxBacklogBytes: 100})
	mustAppend(t, db, "t", rec("k", "0123456789"), rec("k", "dup"))
	mustAppend(t, db, "t", rec("k", "dup"))
	if _, err := db.Append(context.Background(), "t", []Record{{Value: make([]byte, 100)}}); !errors.Is(err, ErrBacklogFull) {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"zombi_hot_appends_total":          2,
		"zombi_hot_appended_events_total":  1,
		"zombi_hot_appended_bytes_total":   11,
		"zombi_hot_duplicate_events_total": 2,
		"zombi_hot_backlog_bytes":          11,
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			found = true
			m := mf.GetMetric()[0]
			got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		if !found {
			t.Errorf("%s not gathered", name)
		}
	}
	if got := counterValue(t, db.metrics.backlogFull); got != 1 {
		t.Errorf("backlog full = %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	gauges := map[string]float64{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if g := mf.GetMetric()[0].GetGauge(); g != nil {
			gauges[mf.GetName()] = g.GetValue()
		}
	}
	for _, name := range []string{"zombi_hot_wal_fsync_duration_seconds", "zombi_hot_disk_usage_bytes", "zombi_hot_append_duration_seconds",
		"zombi_hot_disk_available_bytes", "zombi_hot_disk_capacity_bytes"} {
		if !names[name] {
			t.Errorf("%s not gathered", name)
		}
	}
	// The data directory's file system, as the OS reports it.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if got, want := gauges["zombi_hot_disk_capacity_bytes"], float64(fs.Blocks)*float64(fs.Bsize); got != want {
		t.Errorf("zombi_hot_disk_capacity_bytes = %v, want %v", got, want)
	}
	if avail := gauges["zombi_hot_disk_available_bytes"]; avail <= 0 || avail > gauges["zombi_hot_disk_capacity_bytes"] {
		t.Errorf("zombi_hot_disk_available_bytes = %v, capacity %v", avail, gauges["zombi_hot_disk_capacity_bytes"])
	}
	// Close unregisters, so a reopen can register again.
	mustClose(t, db)
	db = openT(t, dir, Options{Registerer: reg})
	mustAppend(t, db, "t", rec("", "x"))
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestFailedAppendSeqNotReused fails the apply of the last append: its
// sequences pass the high watermark (nothing waits for them), and after a
// restart they are not handed out again.
func TestFailedAppendSeqNotReused(t *testing.T) {
	dir := t.TempDir()
	hooks := testHooks{
		beforeApply: func(_ string, first, _ uint64) error {
			if first == 3 {
				return errors.New("injected apply failure")
			}
			return nil
		},
	}
	db := openInternalT(t, dir, Options{}, internalOptions{hooks: hooks})
	mustAppend(t, db, "t", rec("", "1"), rec("", "2"))
	if err := db.Err(); err != nil {
		t.Fatalf("Err() = %v before a failure", err)
	}
	if _, err := db.Append(context.Background(), "t", []Record{rec("", "3"), rec("", "4")}); err == nil {
		t.Fatal("injected failure not returned")
	}
	if hwm := db.HighWatermark("t"); hwm != 4 {
		t.Fatalf("high watermark %d after a failed append of 3..4, want 4", hwm)
	}
	if db.Err() == nil {
		t.Fatal("Err() = nil after a failed write")
	}
	if _, err := db.Append(context.Background(), "t", []Record{rec("", "5")}); err == nil {
		t.Fatal("append after a failed write succeeded")
	}
	mustClose(t, db)
	db = openT(t, dir, Options{})
	if evs := readAll(t, db, "t"); len(evs) != 2 {
		t.Fatalf("read %d events, want 2", len(evs))
	}
	if res := mustAppend(t, db, "t", rec("", "5")); res[0].Seq <= 4 {
		t.Fatalf("seq %d reused after restart", res[0].Seq)
	}
}

// TestExpireLoop checks that Open starts the expirer: with a short window
// on the real clock, a key disappears without a call to expire.
func TestExpireLoop(t *testing.T) {
	db := openT(t, t.TempDir(), Options{IdempotencyWindow: time.Millisecond})
	mustAppend(t, db, "t", rec("k", "v"))
	key := appendIdemKey(nil, "t", "k")
	for deadline := time.Now().Add(time.Minute); ; {
		_, closer, err := db.pdb.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("idempotency key not expired after a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := mustAppend(t, db, "t", rec("k", "v")); res[0].Duplicate {
		t.Fatal("expired key still deduplicates")
	}
}

func TestLookupKey(t *testing.T) {
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	db := openT(t, t.TempDir(), Options{IdempotencyWindow: time.Hour, Now: clock})
	res := mustAppend(t, db, "t", Record{Key: "k", Value: []byte("a")}, Record{Value: []byte("b")})
	tests := []struct {
		name, table, key string
		after            time.Duration
		want             uint64
		ok               bool
	}{
		{"stored", "t", "k", 0, res[0].Seq, true},
		{"other key", "t", "x", 0, 0, false},
		{"other table", "u", "k", 0, 0, false},
		{"past the window", "t", "k", time.Hour, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = time.Unix(1700000000, 0).Add(tc.after)
			seq, ok, err := db.LookupKey(tc.table, tc.key)
			if err != nil || ok != tc.ok || (ok && seq != tc.want) {
				t.Errorf("LookupKey = %d, %v, %v; want %d, %v", seq, ok, err, tc.want, tc.ok)
			}
		})
	}
}

// TestWatch: the channel Watch returns is closed by the append that moves
// the high watermark, also the first append of a table Watch saw first,
// and not before.
func TestWatch(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	hwm, ch := db.Watch("t")
	if hwm != 0 || closed(ch) {
		t.Fatalf("Watch of a table without events: %d, closed %v", hwm, closed(ch))
	}
	mustAppend(t, db, "t", rec("", "1"), rec("", "2"))
	if !closed(ch) {
		t.Fatal("the first append did not close the channel")
	}
	hwm, ch = db.Watch("t")
	if hwm != 2 || closed(ch) {
		t.Fatalf("Watch after two events: %d, closed %v; want 2, open", hwm, closed(ch))
	}
	if _, other := db.Watch("u"); closed(other) {
		t.Fatal("another table's channel is closed")
	}
	mustAppend(t, db, "u", rec("", "x"))
	if closed(ch) {
		t.Fatal("an append to another table closed the channel")
	}
	mustAppend(t, db, "t", rec("", "3"))
	if !closed(ch) {
		t.Fatal("an append did not close the channel")
	}
}

// TestDeletedThrough: DeletedThrough reports how far deletes have gone,
// across a restart, and a read after a delete misses nothing above it.
func TestDeletedThrough(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	ctx := context.Background()
	if d := db.DeletedThrough("t"); d != 0 {
		t.Fatalf("DeletedThrough of an unknown table: %d", d)
	}
	mustAppend(t, db, "t", values(10, "v")...)
	if d := db.DeletedThrough("t"); d != 0 {
		t.Fatalf("DeletedThrough before a delete: %d", d)
	}
	if err := db.DeleteThrough(ctx, "t", 4); err != nil {
		t.Fatal(err)
	}
	evs, err := db.Read(ctx, "t", 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := db.DeletedThrough("t"); d != 4 || len(evs) != 6 || evs[0].Seq != 5 {
		t.Fatalf("DeletedThrough %d and %d events from %d after deleting through 4; want 4 and 6 from 5", d, len(evs), evs[0].Seq)
	}
	// Beyond the high watermark counts as the high watermark.
	if err := db.DeleteThrough(ctx, "t", 100); err != nil {
		t.Fatal(err)
	}
	if d := db.DeletedThrough("t"); d != 10 {
		t.Fatalf("DeletedThrough %d after deleting through 100 of 10 events, want 10", d)
	}
	mustClose(t, db)
	db = openT(t, dir, Options{})
	if d := db.DeletedThrough("t"); d != 10 {
		t.Fatalf("DeletedThrough %d after a restart, want 10", d)
	}
}
