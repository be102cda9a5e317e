package compaction_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/compaction"
)

var base = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// flushes writes n flush cycles of perFlush events each into the event
// table, cycle i with event times in hour i%hours, and returns sequence →
// payload.
func flushes(e *env, name string, n, perFlush, hours int) map[int64]string {
	e.t.Helper()
	want := map[int64]string{}
	for i := range n {
		var b strings.Builder
		var payloads []string
		for j := range perFlush {
			p := fmt.Sprintf("f%d-%d-%016x%016x", i, j, rand.Uint64(), rand.Uint64())
			payloads = append(payloads, p)
			at := base.Add(time.Duration(i%hours)*time.Hour + time.Duration(j)*time.Second)
			fmt.Fprintf(&b, "{\"payload\":%q,\"timestamp_ms\":%d}\n", p, at.UnixMilli())
		}
		for k, seq := range e.writeBulk(name, b.String()) {
			want[int64(seq)] = payloads[k]
		}
		e.flush(ident(name))
	}
	return want
}

// TestCompactManySmallFlushes: 2,000 flushes into one table, then one
// compaction: the table reads back the same rows, each partition holds
// at most ceil(bytes/target)+1 files, the manifests are merged, and the
// snapshot from before the compaction still reads.
func TestCompactManySmallFlushes(t *testing.T) {
	e := newEnv(t, nil, noFloors)
	id := ident("many")
	e.writeBulk("many", "{\"payload\":\"seed\"}\n") // creates the table
	e.flush(id)
	const target = 16 << 10
	e.setProps(id, iceberg.Properties{table.WriteTargetFileSizeBytesKey: fmt.Sprint(target)})

	// Snapshots are expired as the scheduler would, keeping the last 50,
	// so that each commit's metadata stays small.
	e.setProps(id, iceberg.Properties{"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "50"})
	start := time.Now()
	want := map[int64]string{}
	for range 8 {
		for s, p := range flushes(e, "many", 250, 5, 4) {
			want[s] = p
		}
		if _, err := e.comp.Maintain(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("2000 flushes took %v", time.Since(start))
	before := e.load(id).CurrentSnapshot().SnapshotID

	res, err := e.comp.Compact(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compaction: %+v", res)
	if res.Rows != int64(len(want)) || res.RewrittenFiles != 2000 || res.SnapshotID == before {
		t.Fatalf("compaction result %+v, want %d rows and ≥ 2000 files rewritten", res, len(want))
	}
	for s, p := range e.rows(id, 0) {
		if p == "seed" { // alone in its partition: left as it is
			want[s] = p
		}
	}
	sameRows(t, e.rows(id, 0), want)
	sameRows(t, e.rows(id, before), want)

	tbl := e.load(id)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files, bytes := map[string]int{}, map[string]int64{}
	for _, task := range tasks {
		k := fmt.Sprint(task.File.Partition())
		files[k]++
		bytes[k] += task.File.FileSizeBytes()
	}
	for k, n := range files {
		limit := int(math.Ceil(float64(bytes[k])/target)) + 1
		if n > limit {
			t.Errorf("partition %s: %d files of %d bytes, want at most %d", k, n, bytes[k], limit)
		}
	}
	fs, _ := e.wh.FS(context.Background())
	manifests, err := tbl.CurrentSnapshot().Manifests(fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(manifests) > 10 {
		t.Errorf("%d manifests after compaction, want at most 10", len(manifests))
	}
	if op := tbl.CurrentSnapshot().Summary.Operation; op != table.OpReplace {
		t.Errorf("last snapshot is %q, want replace", op)
	}
}

// TestCompactRacesFlush: a flush commits between the compaction's write
// and its commit. Both succeed; no row is lost or doubled.
func TestCompactRacesFlush(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("race")
	want := flushes(e, "race", 30, 3, 1)
	e.hooks.beforeCommit = func() {
		for s, p := range flushes(e, "race", 1, 7, 1) {
			want[s] = p
		}
	}
	res, err := e.comp.Compact(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if res.RewrittenFiles != 30 {
		t.Errorf("rewrote %d files, want 30", res.RewrittenFiles)
	}
	sameRows(t, e.rows(id, 0), want)
}

// TestCompactRetryCommitsFreshMetadata: after each lost commit the
// compactor waits, reloads the table and commits on what it just loaded.
// It used to reload before the wait, so every retry committed on metadata
// as old as its growing wait and lost to any writer committing more often
// (a table under steady ?ack=committed writes is flushed back to back):
// such a table was never compacted.
func TestCompactRetryCommitsFreshMetadata(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("busy")
	want := flushes(e, "busy", 10, 3, 1)
	const lost = 7 // the 7th retry waits 640 ms first
	var loaded time.Time
	var age []time.Duration // per commit: time since the load it is based on began
	e.hooks.onLoad = func(start time.Time) { loaded = start }
	e.hooks.everyCommit = func() {
		age = append(age, time.Since(loaded))
		if len(age) <= lost {
			for s, p := range flushes(e, "busy", 1, 2, 1) {
				want[s] = p
			}
		}
	}
	res, err := e.comp.Compact(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(age) != lost+1 || res.RewrittenFiles != 10 {
		t.Fatalf("%d commits, %d files rewritten: want %d commits (the last one winning) and 10 files", len(age), res.RewrittenFiles, lost+1)
	}
	// The last commit follows a 640 ms wait. Loaded before that wait, its
	// metadata would be older than the wait; loaded after it, it is as old
	// as planning and writing the manifests, tens of ms.
	const lastWait = 640 * time.Millisecond
	if last := age[len(age)-1]; last >= lastWait {
		t.Errorf("the winning retry committed on metadata loaded %v before (commit ages %v)", last, age)
	}
	sameRows(t, e.rows(id, 0), want)
}

// TestCompactRacesDelete: an engine deletes rows of an input file while
// the compaction runs. The compaction aborts, the delete wins, no deleted
// row comes back.
func TestCompactRacesDelete(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("deletes")
	want := flushes(e, "deletes", 10, 3, 1)
	var victim int64
	for s := range want {
		victim = max(victim, s)
	}
	e.hooks.beforeCommit = func() {
		e.commitTx(id, func(tx *table.Transaction) error {
			return tx.Delete(context.Background(), iceberg.EqualTo(iceberg.Reference("sequence"), victim), nil)
		})
	}
	_, err := e.comp.Compact(context.Background(), id)
	if !errors.Is(err, compaction.ErrAborted) {
		t.Fatalf("compaction racing a delete: %v, want ErrAborted", err)
	}
	delete(want, victim)
	sameRows(t, e.rows(id, 0), want)
	// Later, with nothing racing, it compacts.
	if _, err := e.comp.Compact(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	sameRows(t, e.rows(id, 0), want)
}

// TestLease: while another node holds the table's lease, compaction and
// maintenance answer ErrBusy.
func TestLease(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("leased")
	flushes(e, "leased", 3, 1, 1)
	uuid := e.load(id).Metadata().TableUUID().String()
	ok, err := e.cat.AcquireLease(context.Background(), "maintain/"+uuid, "other-node", time.Minute)
	if err != nil || !ok {
		t.Fatalf("taking the lease: %v %v", ok, err)
	}
	if _, err := e.comp.Compact(context.Background(), id); !errors.Is(err, compaction.ErrBusy) {
		t.Errorf("compact under another node's lease: %v", err)
	}
	if _, err := e.comp.Maintain(context.Background(), id); !errors.Is(err, compaction.ErrBusy) {
		t.Errorf("maintain under another node's lease: %v", err)
	}
	if err := e.cat.ReleaseLease(context.Background(), "maintain/"+uuid, "other-node"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.comp.Compact(context.Background(), id); err != nil {
		t.Errorf("compact after the release: %v", err)
	}
}

// TestScheduler: the scheduler compacts an ingest table once a partition
// has zombi.compaction.min-files small files, and leaves a table that
// opted out (zombi.maintenance.enabled=false) alone.
func TestScheduler(t *testing.T) {
	e := newEnv(t, nil)
	ingestID := ident("scheduled")
	flushes(e, "scheduled", 1, 1, 1)
	e.setProps(ingestID, iceberg.Properties{compaction.PropMinFiles: "4"})
	flushes(e, "scheduled", 4, 2, 1)

	// Another ingest table with small files that opted out.
	other := ident("foreign")
	flushes(e, "foreign", 4, 2, 1)
	e.setProps(other, iceberg.Properties{compaction.PropEnabled: "false"})
	otherSnap := e.load(other).CurrentSnapshot().SnapshotID

	sched, err := compaction.New(compaction.Options{Catalog: e.cat, FS: e.wh.FS, NodeID: "scheduler", CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	deadline := time.Now().Add(30 * time.Second)
	for e.load(ingestID).CurrentSnapshot().Summary.Operation != table.OpReplace {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not compact the ingest table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.load(other).CurrentSnapshot().SnapshotID; got != otherSnap {
		t.Errorf("the scheduler committed to a table that opted out")
	}
}

// TestOwner: of several nodes' schedulers, only the one holding a table's
// owner lease compacts it, for as long as it lives; once it closes,
// another takes the table over.
func TestOwner(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("owned")
	flushes(e, "owned", 1, 1, 1)
	e.setProps(id, iceberg.Properties{compaction.PropMinFiles: "2"})
	uuid := e.load(id).Metadata().TableUUID().String()
	regs := map[string]*prometheus.Registry{}
	scheds := map[string]*compaction.Compactor{}
	for _, node := range []string{"n1", "n2", "n3"} {
		regs[node] = prometheus.NewRegistry()
		s, err := compaction.New(compaction.Options{Catalog: e.cat, FS: e.wh.FS, NodeID: node, CheckInterval: 10 * time.Millisecond,
			Registerer: regs[node]})
		if err != nil {
			t.Fatal(err)
		}
		scheds[node] = s
		defer s.Close()
	}
	runs := func(node string) float64 {
		return counterValue(t, regs[node], "zombi_maintenance_runs_total", map[string]string{"kind": "compact", "outcome": "ok"})
	}
	total := func() float64 {
		var n float64
		for node := range scheds {
			n += runs(node)
		}
		return n
	}
	// Rounds of small files, each compacted by the scheduler that owns the
	// table (counted once the run is over, not when its commit lands).
	compacted := func() {
		t.Helper()
		before := total()
		flushes(e, "owned", 2, 1, 1)
		for deadline := time.Now().Add(30 * time.Second); total() == before || e.load(id).CurrentSnapshot().Summary.Operation != table.OpReplace; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no scheduler compacted the table")
			}
		}
	}
	for range 3 {
		compacted()
	}
	var owners []string
	for node := range scheds {
		if runs(node) > 0 {
			owners = append(owners, node)
		}
	}
	if len(owners) != 1 {
		t.Fatalf("compactions ran on %v, want one node", owners)
	}
	owner := owners[0]
	scheds[owner].Close()
	// The released lease goes to another scheduler.
	compacted()
	var next []string
	for node := range scheds {
		if node != owner && runs(node) > 0 {
			next = append(next, node)
		}
	}
	if len(next) != 1 {
		t.Errorf("after %s closed, compactions ran on %v, want one other node", owner, next)
	}
	if ok, err := e.cat.AcquireLease(context.Background(), compaction.OwnerLease(uuid), owner, time.Minute); err != nil || ok {
		t.Errorf("the closed node could take the owner lease back (%v, %v): another node holds it", ok, err)
	}
}

// counterValue is the value of the counter name with labels in reg, 0 if
// it has none yet.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestCompactRefusesDamagedOutput: a compacted file that storage keeps
// other than it was written (a flipped byte, cut short, bytes added) is
// found before the replace snapshot is committed: the compaction fails
// with ErrMismatch, deletes what it wrote, and the table is as it was.
// Nothing decodes the output any more, so without the check each of
// these would be committed.
func TestCompactRefusesDamagedOutput(t *testing.T) {
	tests := []struct {
		name   string
		damage func(off int64, p []byte) []byte // bytes p written at offset off
	}{
		{"flipped byte", func(off int64, p []byte) []byte {
			const at = 200
			if off <= at && at < off+int64(len(p)) {
				p = slices.Clone(p)
				p[at-off] ^= 0x01
			}
			return p
		}},
		{"cut short", func(off int64, p []byte) []byte {
			const keep = 1000
			return p[:max(0, min(int64(len(p)), keep-off))]
		}},
		{"bytes added", func(off int64, p []byte) []byte {
			if off == 0 {
				return append([]byte("PAR1"), p...)
			}
			return p
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(o *compaction.Options) { o.FS = damagingFS(o.FS, tc.damage) })
			id := ident("damaged")
			want := flushes(e, "damaged", 5, 20, 1)
			before := e.load(id).CurrentSnapshot().SnapshotID
			files := dataFiles(t, e, id)

			_, err := e.comp.Compact(context.Background(), id)
			if !errors.Is(err, compaction.ErrMismatch) {
				t.Fatalf("compaction with damaged output: %v, want ErrMismatch", err)
			}
			if got := e.load(id).CurrentSnapshot().SnapshotID; got != before {
				t.Errorf("snapshot %d after the refused compaction, want %d", got, before)
			}
			sameRows(t, e.rows(id, 0), want)
			if left := dataFiles(t, e, id); len(left) != len(files) {
				t.Errorf("%d data files under the table after the refused compaction, want its %d", len(left), len(files))
			}
		})
	}
}

// dataFiles lists the Parquet files under the table's location.
func dataFiles(t *testing.T, e *env, id catalog.Ident) []string {
	t.Helper()
	fsys, err := e.wh.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = fsys.(icebergio.ListableIO).WalkDir(e.load(id).Location(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompactSortsBySortOrder: files written under one sort order and
// compacted under another come out sorted by the new one, batch by batch
// as iceberg-go's writer sorts (each input file here is one batch), and
// a batch already in order is written as it is.
func TestCompactSortsBySortOrder(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("sorted")
	want := map[int64]string{}
	var cycles [][]int64 // the sequences of each flush, ascending as written
	for range 6 {
		var seqs []int64
		for s, p := range flushes(e, "sorted", 1, 40, 1) {
			want[s] = p
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		cycles = append(cycles, seqs)
	}
	seqField, ok := e.load(id).Schema().FindFieldByName("sequence")
	if !ok {
		t.Fatal("event table without a sequence column")
	}
	order, err := table.NewSortOrder(1, []table.SortField{{SourceIDs: []int{seqField.ID}, Transform: iceberg.IdentityTransform{},
		Direction: table.SortDESC, NullOrder: table.NullsLast}})
	if err != nil {
		t.Fatal(err)
	}
	e.commitTx(id, func(tx *table.Transaction) error { return tx.ReplaceSortOrder(order) })

	// The one file's rows in file order: each flush's sequences descending.
	pos := map[int64]int{}
	for i, s := range compactIntoOne(t, e, id, 6, want, "sequence") {
		pos[s] = i
	}
	for i, seqs := range cycles {
		for k := 1; k < len(seqs); k++ {
			if pos[seqs[k]] >= pos[seqs[k-1]] {
				t.Fatalf("flush %d: sequence %d at row %d, %d at row %d: not in descending order",
					i, seqs[k-1], pos[seqs[k-1]], seqs[k], pos[seqs[k]])
			}
		}
	}
}

// TestCompactOrdersFiles: the rewrite reads its files in the order of
// their event-time bounds, so flushes whose event times do not overlap
// come out as one sorted run, whichever order they were flushed in.
func TestCompactOrdersFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		forward bool // later flushes hold later event times
	}{{"flushed in event-time order", true}, {"flushed against it", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := ident("ordered")
			want := map[int64]string{}
			for i := range 6 {
				k := 5 - i
				if tc.forward {
					k = i
				}
				var b strings.Builder
				var payloads []string
				for j := range 30 {
					p := fmt.Sprintf("f%d-%d-%016x", i, j, rand.Uint64())
					at := base.Add(time.Duration(k*30+j) * time.Second)
					fmt.Fprintf(&b, "{\"payload\":%q,\"timestamp_ms\":%d}\n", p, at.UnixMilli())
					payloads = append(payloads, p)
				}
				for n, s := range e.writeBulk("ordered", b.String()) {
					want[int64(s)] = payloads[n]
				}
				e.flush(id)
			}
			times := compactIntoOne(t, e, id, 6, want, "event_time")
			for i := 1; i < len(times); i++ {
				if times[i] < times[i-1] {
					t.Fatalf("row %d: event time %d after %d: the file is not one sorted run", i, times[i], times[i-1])
				}
			}
		})
	}
}

// compactIntoOne compacts id, checks that its files (files of them) were
// rewritten into one and that the table then holds want (sequence →
// payload), and returns the values of an integer or timestamp column in
// the file's row order.
func compactIntoOne(t *testing.T, e *env, id catalog.Ident, files int, want map[int64]string, column string) []int64 {
	t.Helper()
	res, err := e.comp.Compact(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if res.RewrittenFiles != files || res.NewFiles != 1 {
		t.Fatalf("compaction %+v, want %d files rewritten into 1", res, files)
	}
	sameRows(t, e.rows(id, 0), want)
	at, err := e.load(id).Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var out []int64
	for _, c := range at.Column(at.Schema().FieldIndices(column)[0]).Data().Chunks() {
		for i := range c.Len() {
			switch a := c.(type) {
			case *array.Int64:
				out = append(out, a.Value(i))
			case *array.Timestamp:
				out = append(out, int64(a.Value(i)))
			default:
				t.Fatalf("column %s is %s", column, c.DataType())
			}
		}
	}
	if len(out) != len(want) {
		t.Fatalf("%d rows in the compacted file, want %d", len(out), len(want))
	}
	return out
}
