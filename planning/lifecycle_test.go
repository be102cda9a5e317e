package planning

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/warehouse"
)

// twoPages makes a table of two one-file manifests; with PageFiles 1 a
// plan of it keeps one page for a plan task.
func twoPages(e *env, name string) catalog.Ident {
	id := e.create(name, nil, nil)
	e.append(id, rows(0, 10, "a"))
	e.append(id, rows(10, 20, "b"))
	return id
}

func (e *env) planOnly(id catalog.Ident, key string) (*Response, error) {
	return e.pl.Plan(context.Background(), CatalogSource{Tables: e.cat}, id, &Request{CaseSensitive: true}, key)
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1; o.Lifetime = time.Minute })
	id := twoPages(e, "expiring")
	resp, err := e.planOnly(id, "")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(59 * time.Second)
	if _, err := e.pl.Result(id, resp.PlanID); err != nil {
		t.Fatalf("result before the lifetime: %v", err)
	}
	// The fetch of the result was a use: the plan lives a minute from it.
	e.clock.Add(59 * time.Second)
	if _, err := e.pl.Tasks(context.Background(), id, resp.PlanTasks[0]); err != nil {
		t.Fatalf("plan task within the lifetime of the last use: %v", err)
	}
	e.clock.Add(61 * time.Second)
	if _, err := e.pl.Tasks(context.Background(), id, resp.PlanTasks[0]); !errors.Is(err, ErrNoSuchPlanTask) {
		t.Errorf("plan task after the lifetime: %v, want ErrNoSuchPlanTask", err)
	}
	if _, err := e.pl.Result(id, resp.PlanID); !errors.Is(err, ErrNoSuchPlan) {
		t.Errorf("result after the lifetime: %v, want ErrNoSuchPlan", err)
	}
	if got := testutil.ToFloat64(e.pl.metrics.forgotten.WithLabelValues("expired")); got != 1 {
		t.Errorf("expired plans %v, want 1", got)
	}
}

// TestExpires: a Target's Expires forgets the plan then, however recently
// it was used, and releases what its Source holds.
func TestExpires(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1; o.Lifetime = time.Minute })
	id := twoPages(e, "capped")
	var released atomic.Int32
	src := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		tg, err := CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
		if err == nil {
			tg.Release = func() { released.Add(1) }
			tg.Expires = e.clock.Now().Add(90 * time.Second)
		}
		return tg, err
	})
	resp, err := e.pl.Plan(context.Background(), src, id, &Request{CaseSensitive: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.clock.Add(40 * time.Second)
		if _, err := e.pl.Result(id, resp.PlanID); err != nil {
			t.Fatalf("result within the lifetime and before Expires: %v", err)
		}
	}
	e.clock.Add(10 * time.Second) // 90 s: used 10 s ago, but expired
	if _, err := e.pl.Tasks(context.Background(), id, resp.PlanTasks[0]); !errors.Is(err, ErrNoSuchPlanTask) {
		t.Errorf("plan task at Expires: %v, want ErrNoSuchPlanTask", err)
	}
	if got := released.Load(); got != 1 {
		// Released by a goroutine of kept; give it a moment.
		deadline := time.Now().Add(10 * time.Second)
		for released.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got = released.Load(); got != 1 {
			t.Errorf("the source's Release ran %d times, want once", got)
		}
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1 })
	id := twoPages(e, "cancelled")
	var released atomic.Int32
	src := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		tg, err := CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
		if err == nil {
			tg.Release = func() { released.Add(1) }
		}
		return tg, err
	})
	resp, err := e.pl.Plan(context.Background(), src, id, &Request{CaseSensitive: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(e.pl.metrics.live); got != 1 {
		t.Errorf("live plans %v, want 1", got)
	}
	other := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "other"}
	if err := e.pl.Cancel(other, resp.PlanID); !errors.Is(err, ErrNoSuchPlan) {
		t.Errorf("cancel on another table: %v, want ErrNoSuchPlan", err)
	}
	for range 2 {
		if err := e.pl.Cancel(id, resp.PlanID); err != nil {
			t.Fatalf("cancel: %v", err)
		}
	}
	if got := released.Load(); got != 1 {
		t.Errorf("the source's Release ran %d times, want once", got)
	}
	if _, err := e.pl.Tasks(context.Background(), id, resp.PlanTasks[0]); !errors.Is(err, ErrNoSuchPlanTask) {
		t.Errorf("plan task of a cancelled plan: %v, want ErrNoSuchPlanTask", err)
	}
	if res, err := e.pl.Result(id, resp.PlanID); err != nil || res.Status != Cancelled {
		t.Errorf("result of a cancelled plan: %+v, %v; want cancelled", res, err)
	}
	if got := testutil.ToFloat64(e.pl.metrics.live); got != 0 {
		t.Errorf("live plans after the cancel %v, want 0", got)
	}
	if err := e.pl.Cancel(id, "nope"); !errors.Is(err, ErrNoSuchPlan) {
		t.Errorf("cancel of an unknown plan: %v, want ErrNoSuchPlan", err)
	}
	for _, h := range []string{"nope", "nope.0", resp.PlanID + ".7", resp.PlanID + ".-1", ""} {
		if _, err := e.pl.Tasks(context.Background(), id, h); !errors.Is(err, ErrNoSuchPlanTask) {
			t.Errorf("Tasks(%q) = %v, want ErrNoSuchPlanTask", h, err)
		}
	}
}

type sourceFunc func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error)

func (f sourceFunc) Resolve(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
	return f(ctx, id, req)
}

func TestLivePlanLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1; o.MaxPlans = 1 })
	id := twoPages(e, "limited")
	first, err := e.planOnly(id, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.planOnly(id, ""); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second live plan: %v, want ErrBusy", err)
	}
	// Answered in full, the first plan no longer counts.
	if _, err := e.pl.Tasks(context.Background(), id, first.PlanTasks[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.planOnly(id, ""); err != nil {
		t.Errorf("a plan once the first is answered: %v", err)
	}
	if got := testutil.ToFloat64(e.pl.metrics.rejected.WithLabelValues("plans")); got != 1 {
		t.Errorf("rejected for the plan limit: %v, want 1", got)
	}
}

func TestPlanMemoryLimit(t *testing.T) {
	e := newEnv(t)
	id := e.create("small", nil, nil)
	e.append(id, rows(0, 10, "a"))
	one, err := e.planOnly(id, "")
	if err != nil {
		t.Fatal(err)
	}
	cost := e.pl.bytes
	e.pl.opts.MaxPlanBytes = cost + cost/2
	// A second plan makes room by dropping the first: it was answered in
	// full (one page, inline).
	if _, err := e.planOnly(id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pl.Result(id, one.PlanID); !errors.Is(err, ErrNoSuchPlan) {
		t.Errorf("the oldest answered plan is still kept: %v", err)
	}
	if got := testutil.ToFloat64(e.pl.metrics.forgotten.WithLabelValues("evicted")); got != 1 {
		t.Errorf("evicted %v, want 1", got)
	}
	// Live plans are not dropped: no room is ErrBusy.
	e2 := newEnv(t, func(o *Options) { o.PageFiles = 1 })
	id2 := twoPages(e2, "live")
	if _, err := e2.planOnly(id2, ""); err != nil {
		t.Fatal(err)
	}
	e2.pl.opts.MaxPlanBytes = e2.pl.bytes + 1
	if _, err := e2.planOnly(id2, ""); !errors.Is(err, ErrBusy) {
		t.Errorf("no room beside a live plan: %v, want ErrBusy", err)
	}
}

func TestWorkerLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Workers = 1; o.MaxWaiting = 1; o.QueueWait = time.Hour })
	id := e.create("busy", nil, nil)
	e.append(id, rows(0, 10, "a"))
	inside, leave := make(chan struct{}), make(chan struct{})
	blocking := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		close(inside)
		<-leave
		return CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
	})
	done := make(chan error, 2)
	go func() {
		_, err := e.pl.Plan(context.Background(), blocking, id, &Request{CaseSensitive: true}, "")
		done <- err
	}()
	<-inside // the only slot is taken
	go func() { _, err := e.planOnly(id, ""); done <- err }()
	for testutil.ToFloat64(e.pl.metrics.waiting) < 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := e.planOnly(id, ""); !errors.Is(err, ErrBusy) {
		t.Errorf("beyond the waiting limit: %v, want ErrBusy", err)
	}
	close(leave)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("a plan that held or waited for the slot: %v", err)
		}
	}
	// A request that waits longer than QueueWait gives up.
	e.pl.opts.QueueWait = time.Millisecond
	e.pl.slots <- struct{}{}
	if _, err := e.planOnly(id, ""); !errors.Is(err, ErrBusy) {
		t.Errorf("no slot within QueueWait: %v, want ErrBusy", err)
	}
	<-e.pl.slots
	// A cancelled request stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.pl.slots <- struct{}{}
	if err := e.pl.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with a cancelled context: %v", err)
	}
	<-e.pl.slots
}

func TestPageTooLarge(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxPageFiles = 1 })
	id := e.create("wide", byCategory, nil)
	e.append(id, slices.Concat(rows(0, 10, "a"), rows(10, 20, "b"))) // one manifest, two files
	if _, err := e.planOnly(id, ""); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a manifest beyond MaxPageFiles: %v, want ErrUnsupported", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1 })
	id := twoPages(e, "idem")
	a, err := e.planOnly(id, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.planOnly(id, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.PlanID != b.PlanID || !slices.Equal(a.PlanTasks, b.PlanTasks) || len(a.FileScanTasks) != len(b.FileScanTasks) {
		t.Errorf("a repeat with the same key answered %+v, first %+v", b, a)
	}
	if got := len(e.pl.plans); got != 1 {
		t.Errorf("%d plans kept, want 1", got)
	}
	if _, err := e.pl.Plan(context.Background(), CatalogSource{e.cat}, id, &Request{CaseSensitive: false}, "key-1"); !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Errorf("the key with another request: %v, want ErrIdempotencyKeyReused", err)
	}
	// The key names a plan of one table only.
	other := twoPages(e, "idem2")
	c, err := e.planOnly(other, "key-1")
	if err != nil || c.PlanID == a.PlanID {
		t.Errorf("the key on another table: %+v, %v; want a new plan", c, err)
	}
	// Once the plan is cancelled, the key plans anew.
	if err := e.pl.Cancel(id, a.PlanID); err != nil {
		t.Fatal(err)
	}
	d, err := e.planOnly(id, "key-1")
	if err != nil || d.PlanID == a.PlanID {
		t.Errorf("the key after a cancel: %+v, %v; want a new plan", d, err)
	}
}

// TestExtraFiles is the seam for live reads: a Source that adds data files
// the snapshot does not list. They are planned like committed files
// (pruned by the filter), no delete file of the snapshot applies to them,
// and a file outside the table is refused.
func TestExtraFiles(t *testing.T) {
	e := newEnv(t)
	id := e.create("live", byCategory, map[string]string{"write.delete.mode": "merge-on-read"})
	e.append(id, slices.Concat(rows(0, 10, "a"), rows(10, 20, "b")))
	e.deleteRows(id, iceberg.EqualTo(iceberg.Reference("id"), int64(3)))
	// Uncommitted files with ids 3 (in the deleted range of the snapshot,
	// yet newer) and 100..109.
	extra := e.write(id, slices.Concat(rows(3, 4, "a"), rows(100, 110, "c")))
	var released atomic.Int32
	src := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		tg, err := CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
		if err == nil {
			tg.Extra = extra
			tg.Release = func() { released.Add(1) }
		}
		return tg, err
	})
	plan := func(filter iceberg.BooleanExpression) []row {
		t.Helper()
		req := Request{CaseSensitive: true}
		if filter != nil {
			req.Filter = filterJSON(t, testSchema, filter)
		}
		resp, err := e.pl.Plan(context.Background(), src, id, &req, "")
		if err != nil {
			t.Fatal(err)
		}
		pages := []rest.ScanTasks{resp.ScanTasks}
		for _, h := range resp.PlanTasks {
			p, err := e.pl.Tasks(context.Background(), id, h)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, p)
		}
		return e.read(id, e.decode(id, pages, testSchema), filter)
	}
	got := plan(nil)
	if len(got) != 19+11 || !slices.ContainsFunc(got, func(r row) bool { return r.id == 3 }) {
		t.Errorf("snapshot (19 rows) plus extra files (11 rows, id 3 among them): %d rows %v", len(got), got)
	}
	got = plan(iceberg.EqualTo(iceberg.Reference("category"), "c"))
	if len(got) != 10 || got[0].id != 100 {
		t.Errorf("only the extra file of partition c: %v", got)
	}
	// A file outside the table's location is refused, and released.
	bad := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		tg, err := CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
		if err == nil {
			tg.Extra = []iceberg.DataFile{moved(t, extra[0], "file:///tmp/elsewhere.parquet")}
			tg.Release = func() { released.Add(1) }
		}
		return tg, err
	})
	before := released.Load()
	if _, err := e.pl.Plan(context.Background(), bad, id, &Request{CaseSensitive: true}, ""); !errors.Is(err, warehouse.ErrOutsideTable) {
		t.Errorf("an extra file outside the table: %v, want ErrOutsideTable", err)
	}
	if released.Load() != before+1 {
		t.Error("a failed plan did not release its target")
	}
}

// write writes rs as Parquet files of table id without committing them,
// as the hot tier's files of a live read would be.
func (e *env) write(id catalog.Ident, rs []row) []iceberg.DataFile {
	e.t.Helper()
	tbl := arrowRows(rs, "value")
	defer tbl.Release()
	rdr := array.NewTableReader(tbl, 1<<20)
	defer rdr.Release()
	recs := func(yield func(arrow.RecordBatch, error) bool) {
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rec.Retain()
			if !yield(rec, nil) {
				return
			}
		}
	}
	var out []iceberg.DataFile
	for df, err := range table.WriteRecords(context.Background(), e.load(id), tbl.Schema(), recs) {
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, df)
	}
	return out
}

// moved is f as if it lay at path.
func moved(t *testing.T, f iceberg.DataFile, path string) iceberg.DataFile {
	t.Helper()
	b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, path, iceberg.ParquetFile, nil, nil, nil, f.Count(), f.FileSizeBytes())
	if err != nil {
		t.Fatal(err)
	}
	return b.Build()
}

// TestConfined: every file a plan opens lies inside the table's location.
// A target whose metadata claims another location reads nothing.
func TestConfined(t *testing.T) {
	e := newEnv(t)
	id := e.create("confined", nil, nil)
	e.append(id, rows(0, 10, "a"))
	elsewhere := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		tg, err := CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
		if err == nil {
			tg.Table.Metadata = relocated{Metadata: tg.Table.Metadata, loc: "file:///somewhere/else"}
		}
		return tg, err
	})
	_, err := e.pl.Plan(context.Background(), elsewhere, id, &Request{CaseSensitive: true}, "")
	if !errors.Is(err, warehouse.ErrOutsideTable) {
		t.Errorf("planning a table whose files lie outside its location: %v, want ErrOutsideTable", err)
	}
	if err != nil && !strings.Contains(err.Error(), "manifest list") {
		t.Errorf("error %q does not say what was refused", err)
	}
}

type relocated struct {
	table.Metadata
	loc string
}

func (r relocated) Location() string { return r.loc }

// TestRunReleases: Run forgets expired plans on its own, releasing what
// their Sources hold without waiting for a request.
func TestRunReleases(t *testing.T) {
	// Run looks every quarter lifetime, at least every second.
	e := newEnv(t, func(o *Options) { o.PageFiles = 1; o.Lifetime = time.Second })
	id := twoPages(e, "swept")
	released := make(chan struct{})
	src := sourceFunc(func(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
		tg, err := CatalogSource{Tables: e.cat}.Resolve(ctx, id, req)
		if err == nil {
			tg.Release = func() { close(released) }
		}
		return tg, err
	})
	if _, err := e.pl.Plan(context.Background(), src, id, &Request{CaseSensitive: true}, ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.pl.Run(ctx)
	e.clock.Add(2 * time.Second)
	select {
	case <-released:
	case <-time.After(time.Minute):
		t.Fatal("Run did not release an expired plan")
	}
}
