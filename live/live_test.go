package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/live"
	"github.com/zombi-db/zombi/planning"
	"github.com/zombi-db/zombi/warehouse"
)

// env is the live view over real parts: an embedded catalog, a local
// warehouse, the hot tier, ingest, the flusher and the planner.
type env struct {
	t     *testing.T
	cat   *catalog.Service
	wh    *warehouse.Warehouse
	hot   *hot.DB
	ing   *ingest.Service
	fl    *flusher.Flusher
	pl    *planning.Planner
	src   *live.Source
	reg   *prometheus.Registry
	clock atomic.Int64 // offset added to time.Now, in ns
}

func newEnv(t *testing.T, interval time.Duration) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &env{t: t, reg: prometheus.NewRegistry()}
	store, err := embedded.Open(filepath.Join(dir, "catalog"), embedded.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if e.wh, err = warehouse.Open(ctx, warehouse.Config{Root: filepath.Join(dir, "warehouse")}); err != nil {
		t.Fatal(err)
	}
	if e.cat, err = catalog.New(catalog.Options{Store: store, Warehouse: e.wh}); err != nil {
		t.Fatal(err)
	}
	if e.hot, err = hot.Open(filepath.Join(dir, "hot"), hot.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.hot.Close() })
	if e.fl, err = flusher.New(flusher.Options{Catalog: e.cat, Hot: e.hot, FS: e.wh.FS, Interval: interval, Tick: 5 * time.Millisecond, Registerer: e.reg}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.fl.Close(ctx)
	})
	if e.ing, err = ingest.New(ingest.Options{Catalog: e.cat, Hot: e.hot, AutoCreate: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ing.Close)
	if e.pl, err = planning.New(planning.Options{FS: e.wh.FS, Registerer: e.reg}); err != nil {
		t.Fatal(err)
	}
	if e.src, err = live.New(live.Options{Tables: e.cat, Flusher: e.fl, PlanLifetime: time.Minute, Registerer: e.reg, Now: e.now}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.clock.Load())) }

// write appends n events to the event table ref; it returns the highest
// sequence acknowledged.
func (e *env) write(ref string, n int, at time.Time) uint64 {
	e.t.Helper()
	var b strings.Builder
	for i := range n {
		if at.IsZero() {
			fmt.Fprintf(&b, "{\"payload\":\"p%d\"}\n", i)
		} else {
			fmt.Fprintf(&b, "{\"payload\":\"p%d\",\"timestamp_ms\":%d}\n", i, at.Add(time.Duration(i)*time.Minute).UnixMilli())
		}
	}
	res, err := e.ing.WriteBulk(context.Background(), ref, ingest.Request{MediaType: ingest.MediaNDJSON, Body: []byte(b.String())})
	if err != nil {
		e.t.Fatalf("write to %s: %v", ref, err)
	}
	return res.Offsets[len(res.Offsets)-1]
}

func (e *env) flush(id catalog.Ident) flusher.Result {
	e.t.Helper()
	res, err := e.fl.Flush(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) load(id catalog.Ident) *table.Table {
	e.t.Helper()
	t, err := e.cat.LoadTable(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return table.New(table.Identifier{id.Namespace[0], id.Name}, t.Metadata, t.MetadataLocation, e.wh.FS, nil)
}

// plan plans req on the live view and reads the sequences of the rows
// planned, as a client would (iceberg-go's decoder and reader); it also
// returns the data files planned.
func (e *env) plan(id catalog.Ident, req planning.Request, filter iceberg.BooleanExpression) (seqs []int64, files int) {
	e.t.Helper()
	ctx := context.Background()
	req.CaseSensitive = true
	if filter != nil {
		b, err := json.Marshal(filter)
		if err != nil {
			e.t.Fatal(err)
		}
		req.Filter = b
	}
	resp, err := e.pl.Plan(ctx, e.src, id, &req, "")
	if err != nil {
		e.t.Fatalf("live plan of %s: %v", id, err)
	}
	pages := []rest.ScanTasks{resp.ScanTasks}
	for _, h := range resp.PlanTasks {
		st, err := e.pl.Tasks(ctx, id, h)
		if err != nil {
			e.t.Fatal(err)
		}
		pages = append(pages, st)
	}
	tbl := e.load(id)
	var tasks []table.FileScanTask
	for _, p := range pages {
		b, _ := json.Marshal(p)
		var back rest.ScanTasks
		if err := json.Unmarshal(b, &back); err != nil {
			e.t.Fatal(err)
		}
		ts, err := rest.DecodeScanTasks(back, tbl.Metadata(), tbl.Schema(), iceberg.AlwaysTrue{})
		if err != nil {
			e.t.Fatal(err)
		}
		tasks = append(tasks, ts...)
	}
	_, it, err := tbl.Scan(table.WithSelectedFields("sequence")).ReadTasks(ctx, tasks)
	if err != nil {
		e.t.Fatal(err)
	}
	for rec, err := range it {
		if err != nil {
			e.t.Fatal(err)
		}
		col := rec.Column(0).(*array.Int64)
		seqs = append(seqs, col.Int64Values()...)
		rec.Release()
	}
	return seqs, len(tasks)
}

func ident(name string) catalog.Ident {
	return catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: name}
}

// checkOnce fails unless seqs holds every sequence in 1..through once and
// nothing else beyond upTo.
func checkOnce(t *testing.T, what string, seqs []int64, through, upTo uint64) {
	t.Helper()
	seen := map[int64]bool{}
	for _, s := range seqs {
		if seen[s] {
			t.Fatalf("%s: sequence %d read twice", what, s)
		}
		seen[s] = true
		if uint64(s) > upTo {
			t.Fatalf("%s: sequence %d, beyond anything written (%d)", what, s, upTo)
		}
	}
	for s := uint64(1); s <= through; s++ {
		if !seen[int64(s)] {
			t.Fatalf("%s: sequence %d, acknowledged before the plan, is missing (%d read)", what, s, len(seqs))
		}
	}
}

// TestLatestAndExact: which live plans read the latest state (snapshot
// and hot tail) and which read exactly what they name.
func TestLatestAndExact(t *testing.T) {
	e := newEnv(t, time.Hour)
	id := ident("events")
	e.write("events", 100, time.Time{})
	first := e.flush(id).SnapshotID
	e.write("events", 50, time.Time{})
	second := e.flush(id).SnapshotID
	last := e.write("events", 25, time.Time{}) // 175 events, 25 in the hot tail

	plans := e.plans
	ptr := func(v int64) *int64 { return &v }
	tests := []struct {
		name    string
		req     planning.Request
		advance time.Duration // the source's clock, past the commits
		want    int
		read    string
	}{
		{"no snapshot named", planning.Request{}, 0, 175, "latest"},
		{"the current snapshot", planning.Request{SnapshotID: ptr(second), UseSnapshotSchema: true}, 0, 175, "latest"},
		{"replaced within the pin window", planning.Request{SnapshotID: ptr(first), UseSnapshotSchema: true}, 0, 175, "latest"},
		{"replaced before the pin window", planning.Request{SnapshotID: ptr(first), UseSnapshotSchema: true}, 2 * live.DefaultPinWindow, 100, "exact"},
		{"the current snapshot, long after", planning.Request{SnapshotID: ptr(second)}, 2 * live.DefaultPinWindow, 175, "latest"},
		{"incremental", planning.Request{StartSnapshotID: ptr(first), EndSnapshotID: ptr(second)}, 0, 50, "exact"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Store(int64(tc.advance))
			defer e.clock.Store(0)
			before := plans(tc.read)
			seqs, _ := e.plan(id, tc.req, nil)
			if len(seqs) != tc.want {
				t.Errorf("read %d rows, want %d", len(seqs), tc.want)
			}
			if tc.want == 175 {
				checkOnce(t, tc.name, seqs, last, last)
			}
			if got := plans(tc.read) - before; got != 1 {
				t.Errorf("live plans reading %s: %v more, want 1", tc.read, got)
			}
		})
	}

	// A table Zombi does not ingest into plans as committed.
	other := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "plain"}
	if _, err := e.cat.CreateTable(context.Background(), catalog.CreateTableRequest{Ident: other,
		Schema: iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "sequence", Type: iceberg.PrimitiveTypes.Int64})}, nil); err != nil {
		t.Fatal(err)
	}
	before := e.plans("exact")
	if seqs, _ := e.plan(other, planning.Request{}, nil); len(seqs) != 0 {
		t.Errorf("plain table: %d rows", len(seqs))
	}
	if e.plans("exact") != before+1 {
		t.Errorf("a table Zombi does not ingest into was not planned exactly")
	}
}

// plans is zombi_live_plans_total{read}.
func (e *env) plans(read string) float64 { return e.counter("zombi_live_plans_total", read) }

// counter is the value of a counter, of its series whose one label has
// value label (any, if label is empty: the sum).
func (e *env) counter(name, label string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// TestBeforeFirstFlush: a table no commit holds yet plans its events from
// the hot tail alone; a live load gives it a first, empty snapshot, and the
// plan of that snapshot still reads every event.
func TestBeforeFirstFlush(t *testing.T) {
	e := newEnv(t, time.Hour)
	id := ident("fresh")
	last := e.write("fresh", 40, time.Time{})
	seqs, _ := e.plan(id, planning.Request{}, nil)
	checkOnce(t, "no snapshot", seqs, last, last)

	ct, err := e.cat.LoadTable(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	seeded := e.src.Load(context.Background(), ct)
	snap := seeded.Metadata.CurrentSnapshot()
	if snap == nil {
		t.Fatal("a live load left an ingest table without a snapshot")
	}
	sid := snap.SnapshotID
	seqs, _ = e.plan(id, planning.Request{SnapshotID: &sid, UseSnapshotSchema: true}, nil)
	checkOnce(t, "the seeded snapshot", seqs, last, last)
	if again := e.src.Load(context.Background(), seeded); again.Metadata.CurrentSnapshot().SnapshotID != sid {
		t.Errorf("a second live load changed the table")
	}
}

// TestPartitionPruning: tail files are pruned by a partition filter like
// committed ones.
func TestPartitionPruning(t *testing.T) {
	e := newEnv(t, time.Hour)
	id := ident("hours")
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e.write("hours", 120, start) // 10:00 to 11:59, committed
	e.flush(id)
	e.write("hours", 120, start.Add(2*time.Hour)) // 12:00 to 13:59, in the tail
	from := iceberg.GreaterThanEqual(iceberg.Reference("event_time"), start.Add(3*time.Hour).Format(time.RFC3339))
	seqs, files := e.plan(id, planning.Request{}, from)
	if files != 1 {
		t.Errorf("a filter on the last hour planned %d files, want the tail's one of that hour", files)
	}
	if len(seqs) != 60 {
		t.Errorf("read %d rows of the last hour, want 60", len(seqs))
	}
	to := iceberg.LessThan(iceberg.Reference("event_time"), start.Add(time.Hour).Format(time.RFC3339))
	if seqs, files := e.plan(id, planning.Request{}, to); files != 1 || len(seqs) != 60 {
		t.Errorf("a filter on the first hour planned %d files, read %d rows; want 1 committed file, 60 rows", files, len(seqs))
	}
}

// TestContinuousIngest: with writers and the flusher busy, every live plan
// reads each event at most once, every event acknowledged before it at
// least once, and the counts never go down; the table ends up with what
// the last plan read.
func TestContinuousIngest(t *testing.T) {
	e := newEnv(t, 30*time.Millisecond)
	id := ident("stream")
	e.write("stream", 1, time.Time{})
	var acked atomic.Uint64
	acked.Store(1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				last := e.write("stream", 20, time.Time{})
				for {
					cur := acked.Load()
					if last <= cur || acked.CompareAndSwap(cur, last) {
						break
					}
				}
			}
		})
	}
	prev := 0
	for i := range 30 {
		// Every sequence up to acked was handed out before the plan
		// began: acknowledged, or in flight in the other writer (which
		// the plan waits for, hot.Settle).
		through := acked.Load()
		seqs, _ := e.plan(id, planning.Request{}, nil)
		checkOnce(t, fmt.Sprintf("plan %d", i), seqs, 0, 1<<62)
		if uint64(len(seqs)) < through {
			t.Fatalf("plan %d read %d rows; %d were acknowledged before it", i, len(seqs), through)
		}
		if len(seqs) < prev {
			t.Fatalf("plan %d read %d rows, the one before %d", i, len(seqs), prev)
		}
		prev = len(seqs)
	}
	cancel()
	wg.Wait()
	if n := e.counter("zombi_flush_cycles_total", "committed"); n < 2 {
		t.Errorf("%v cycles committed during the plans; the test wants the flusher busy", n)
	}
	if n := e.counter("zombi_flush_tail_committed_files_total", ""); n == 0 {
		t.Errorf("no cycle committed a tail's files")
	}
	last := acked.Load()
	seqs, _ := e.plan(id, planning.Request{}, nil)
	checkOnce(t, "the last plan", seqs, last, last)
	e.flush(id)
	tbl := e.load(id)
	committed, err := tbl.Scan(table.WithSelectedFields("sequence")).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer committed.Release()
	if committed.NumRows() != int64(len(seqs)) {
		t.Errorf("the table holds %d rows, the last live plan read %d", committed.NumRows(), len(seqs))
	}
}
