package flusher_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
)

func (e *env) tail(id catalog.Ident) *flusher.Tail {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tl, err := e.fl.Tail(ctx, id)
	if err != nil {
		e.t.Fatalf("tail of %s: %v", id, err)
	}
	return tl
}

func paths(files []iceberg.DataFile) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.FilePath()
	}
	slices.Sort(out)
	return out
}

// write appends n events to the event table ref and adds them to want.
func (e *env) write(ref string, n int, prefix string, want map[uint64]string) uint64 {
	e.t.Helper()
	body, payloads := events(prefix, n, time.Time{}, 0)
	var last uint64
	for i, seq := range e.writeBulk(ref, body) {
		want[seq] = payloads[i]
		last = max(last, seq)
	}
	return last
}

// TestTailReusedAndCommitted: a tail holds every event after the
// watermark; later calls get the same files, plus a chunk for events that
// arrived meanwhile; the next cycle commits those very files, writing
// nothing again; after it the tail is empty.
func TestTailReusedAndCommitted(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("default", "live")
	want := map[uint64]string{}
	last := e.write("live", 300, "a", want)

	tl := e.tail(id)
	if tl.After != 0 || tl.Through < last || tl.Rows != 300 || len(tl.Files) == 0 || tl.Written.IsZero() {
		t.Fatalf("tail (%d, %d], %d rows, %d files, written %v; want (0, %d], 300 rows", tl.After, tl.Through, tl.Rows, len(tl.Files), tl.Written, last)
	}
	if tl.Table.Metadata.CurrentSnapshot() != nil {
		t.Errorf("the table has a snapshot before any flush")
	}
	loc := tl.Table.Metadata.Location()
	for _, f := range tl.Files {
		if !strings.HasPrefix(f.FilePath(), loc+"/data/") {
			t.Errorf("tail file %s is not under the table's data directory %s", f.FilePath(), loc)
		}
		if f.SpecID() != int32(tl.Table.Metadata.DefaultPartitionSpec()) || f.Count() == 0 {
			t.Errorf("tail file %s: spec %d, %d rows", f.FilePath(), f.SpecID(), f.Count())
		}
	}
	again := e.tail(id)
	if !slices.Equal(paths(again.Files), paths(tl.Files)) || again.Through != tl.Through {
		t.Errorf("second tail with no new events: %v through %d; want the first's %v through %d", paths(again.Files), again.Through, paths(tl.Files), tl.Through)
	}
	if got := counter(t, e.reg, "zombi_flush_tail_requests_total", "outcome", "reused"); got != 1 {
		t.Errorf("reused tails %v, want 1", got)
	}

	last = e.write("live", 100, "b", want)
	more := e.tail(id)
	if more.Rows != 400 || more.Through < last || len(more.Files) <= len(tl.Files) {
		t.Fatalf("tail after 100 more: %d rows through %d in %d files; want 400 through %d in more than %d", more.Rows, more.Through, len(more.Files), last, len(tl.Files))
	}
	for _, p := range paths(tl.Files) {
		if !slices.Contains(paths(more.Files), p) {
			t.Errorf("extended tail lost file %s", p)
		}
	}
	if got := counter(t, e.reg, "zombi_flush_tail_requests_total", "outcome", "extended"); got != 1 {
		t.Errorf("extended tails %v, want 1", got)
	}

	fr := e.flush(id)
	if fr.Rows != 400 || fr.Watermark != more.Through || fr.Files != len(more.Files) {
		t.Errorf("flush %+v; want the tail's 400 rows in its %d files, watermark %d", fr, len(more.Files), more.Through)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
	if got, want := paths(e.dataFiles(id)), paths(more.Files); !slices.Equal(got, want) {
		t.Errorf("committed files %v, want the tail's %v", got, want)
	}
	if n := e.countParquet(id); n != len(more.Files) {
		t.Errorf("%d Parquet files under the table; the tail's %d were all it needed", n, len(more.Files))
	}
	if got := counter(t, e.reg, "zombi_flush_tail_committed_files_total"); got != float64(len(more.Files)) {
		t.Errorf("tail files committed %v, want %d", got, len(more.Files))
	}

	after := e.tail(id)
	if after.After != fr.Watermark || after.Rows != 0 || len(after.Files) != 0 {
		t.Errorf("tail after the flush: (%d, %d], %d rows; want empty after %d", after.After, after.Through, after.Rows, fr.Watermark)
	}
	if sid := after.Table.Metadata.CurrentSnapshot(); sid == nil || sid.SnapshotID != fr.SnapshotID {
		t.Errorf("tail's table at %v, want the flush's snapshot %d", sid, fr.SnapshotID)
	}
	// The cycle also writes what arrived after the tail, in the same commit.
	e.write("live", 50, "c", want)
	tl = e.tail(id)
	e.write("live", 20, "d", want)
	if fr := e.flush(id); fr.Rows != 70 || fr.Files <= len(tl.Files) {
		t.Errorf("flush of a 50-event tail and 20 later events: %+v", fr)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
}

// TestTailDropped: a tail is not handed out, nor committed, once it no
// longer fits the table (its schema changed) or is older than TailReuse;
// it is written afresh and the old files are left unreferenced.
func TestTailDropped(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		change func(e *env, id catalog.Ident, clock *fakeClock)
	}{
		{"schema changed", "table", func(e *env, id catalog.Ident, _ *fakeClock) {
			e.commitTx(id, func(tx *table.Transaction) error {
				return tx.UpdateSchema(true, false).AddColumn([]string{"note"}, iceberg.PrimitiveTypes.String, "", false, nil).Commit()
			})
		}},
		{"older than the reuse limit", "age", func(_ *env, _ catalog.Ident, clock *fakeClock) {
			clock.Add(flusher.DefaultTailReuse)
		}},
	}
	for _, tc := range tests {
		for _, next := range []string{"tail", "flush"} {
			t.Run(tc.name+", then a "+next, func(t *testing.T) {
				clock := &fakeClock{now: time.Now()}
				e := newEnv(t, func(o *flusher.Options) { o.Now = clock.Now })
				id := ident("default", "stale")
				want := map[uint64]string{}
				e.write("stale", 100, "a", want)
				old := paths(e.tail(id).Files)
				tc.change(e, id, clock)
				if next == "tail" {
					fresh := e.tail(id)
					if fresh.Rows != 100 {
						t.Fatalf("fresh tail has %d rows, want 100", fresh.Rows)
					}
					for _, p := range paths(fresh.Files) {
						if slices.Contains(old, p) {
							t.Errorf("the dropped tail's file %s was handed out again", p)
						}
					}
					if tc.reason == "table" && fresh.Table.Metadata.CurrentSchema().ID == 0 {
						t.Errorf("fresh tail under schema %d", fresh.Table.Metadata.CurrentSchema().ID)
					}
				}
				fr := e.flush(id)
				if fr.Rows != 100 {
					t.Fatalf("flush: %+v", fr)
				}
				checkExactly(t, rowsBySeq(t, e.scan(id)), want)
				for _, p := range paths(e.dataFiles(id)) {
					if slices.Contains(old, p) {
						t.Errorf("the dropped tail's file %s was committed", p)
					}
				}
				if got := counter(t, e.reg, "zombi_flush_tail_dropped_total", "reason", tc.reason); got != 1 {
					t.Errorf("tails dropped for %s: %v, want 1", tc.reason, got)
				}
				// Left for orphan cleanup: a plan may still read them.
				for _, p := range old {
					if _, err := os.Stat(strings.TrimPrefix(p, "file://")); err != nil {
						t.Errorf("dropped tail file: %v", err)
					}
				}
			})
		}
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTailCrash: the process dies after a tail was written and handed
// out, before any commit took it (the cycle's commits do not land).
// After the restart the events are committed exactly once, in files
// written afresh; the tail's files are never referenced.
func TestTailCrash(t *testing.T) {
	hooked := &hookedCatalog{}
	e := newEnv(t, func(o *flusher.Options) {
		hooked.Service = o.Catalog.(*catalog.Service)
		o.Catalog = hooked
	})
	id := ident("default", "crash")
	want := map[uint64]string{}
	e.write("crash", 150, "a", want)
	old := paths(e.tail(id).Files)

	// Die: commits fail without landing, and Close gives up at once.
	hooked.commit = func(context.Context, catalog.TableChange, func() (*catalog.Table, error)) (*catalog.Table, error) {
		return nil, catalog.ErrUnavailable
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.fl.Close(ctx)
	e.closed = true
	e.ing.Close()
	if err := e.hot.Close(); err != nil {
		t.Fatal(err)
	}
	hooked.commit = nil
	e.openHot()
	e.startFlusher()

	if fr := e.flush(id); fr.Rows != 150 {
		t.Fatalf("flush after the restart: %+v", fr)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
	for _, p := range paths(e.dataFiles(id)) {
		if slices.Contains(old, p) {
			t.Errorf("a tail file of the dead process was committed: %s", p)
		}
	}
}

// TestTailKeptOnFailedCommit: a cycle whose commit is refused for good
// deletes the files it wrote itself but not the tail's, which plans may
// be reading; the next cycle commits every event once.
func TestTailKeptOnFailedCommit(t *testing.T) {
	hooked := &hookedCatalog{}
	e := newEnv(t, func(o *flusher.Options) {
		hooked.Service = o.Catalog.(*catalog.Service)
		o.Catalog = hooked
	})
	id := ident("default", "refused")
	want := map[uint64]string{}
	e.write("refused", 80, "a", want)
	tl := paths(e.tail(id).Files)
	e.write("refused", 20, "b", want)
	hooked.commit = func(context.Context, catalog.TableChange, func() (*catalog.Table, error)) (*catalog.Table, error) {
		return nil, catalog.ErrInvalid
	}
	if _, err := e.fl.Flush(context.Background(), id); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("flush with refused commits: %v", err)
	}
	if n := e.countParquet(id); n != len(tl) {
		t.Errorf("%d Parquet files after the refused commit, want the tail's %d (the cycle's own deleted)", n, len(tl))
	}
	hooked.commit = nil
	if fr := e.flush(id); fr.Rows != 100 {
		t.Fatalf("flush: %+v", fr)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
}

// TestTailExcludesCycles: a tail waits for a running cycle of its table
// and reads the table that cycle committed; with TailWait short, it gives
// up with ErrBusy instead.
func TestTailExcludesCycles(t *testing.T) {
	for _, wait := range []time.Duration{0, 50 * time.Millisecond} {
		name := "waits"
		if wait > 0 {
			name = "gives up"
		}
		t.Run(name, func(t *testing.T) {
			hooked := &hookedCatalog{}
			e := newEnv(t, func(o *flusher.Options) {
				hooked.Service = o.Catalog.(*catalog.Service)
				o.Catalog = hooked
				o.TailWait = wait
			})
			id := ident("default", "excluded")
			want := map[uint64]string{}
			e.write("excluded", 10, "a", want)
			e.flush(id) // create and resolve
			first := e.write("excluded", 100, "b", want)

			inCommit, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			hooked.commit = func(_ context.Context, _ catalog.TableChange, next func() (*catalog.Table, error)) (*catalog.Table, error) {
				once.Do(func() { close(inCommit); <-release })
				return next()
			}
			flushed := make(chan flusher.Result, 1)
			go func() {
				res, err := e.fl.Flush(context.Background(), id)
				if err != nil {
					t.Error(err)
				}
				flushed <- res
			}()
			<-inCommit
			e.write("excluded", 30, "c", want)
			got := make(chan *flusher.Tail, 1)
			errc := make(chan error, 1)
			go func() {
				tl, err := e.fl.Tail(context.Background(), id)
				errc <- err
				got <- tl
			}()
			if wait > 0 {
				if err := <-errc; !errors.Is(err, flusher.ErrBusy) {
					t.Errorf("tail while a cycle commits, TailWait %s: %v, want ErrBusy", wait, err)
				}
				close(release)
				<-flushed
				return
			}
			select {
			case err := <-errc:
				t.Fatalf("tail returned (%v) while a cycle of its table was committing", err)
			case <-time.After(50 * time.Millisecond):
			}
			close(release)
			res := <-flushed
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			tl := <-got
			if tl.After != res.Watermark || res.Watermark < first || tl.Rows != 30 {
				t.Errorf("tail (%d, %d] with %d rows after a cycle committed through %d; want the 30 events after it", tl.After, tl.Through, tl.Rows, res.Watermark)
			}
			if s := tl.Table.Metadata.CurrentSnapshot(); s == nil || s.SnapshotID != res.SnapshotID {
				t.Errorf("tail's table at snapshot %v, want the cycle's %d", s, res.SnapshotID)
			}
		})
	}
}

// TestTailsDoNotStarveCycles: plans asking for tails back to back do not
// keep the table's cycles from running.
func TestTailsDoNotStarveCycles(t *testing.T) {
	e := newEnv(t, func(o *flusher.Options) { o.Interval = 20 * time.Millisecond })
	id := ident("default", "busy")
	want := map[uint64]string{}
	e.write("busy", 1, "first", want)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var tails atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := e.fl.Tail(ctx, id); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
				tails.Add(1)
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	var last uint64
	for rounds := 0; rounds < 5; rounds++ {
		last = e.write("busy", 20, "r", want)
		for {
			key := e.load(id).Metadata().TableUUID().String()
			if w, _ := flusher.Watermark(e.load(id).Properties(), e.hot.NodeID()); w >= last && key != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d tails, round %d: the table's watermark has not reached %d", tails.Load(), rounds, last)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	if tails.Load() == 0 {
		t.Errorf("no tail was handed out")
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
}

// TestTailChunks: a backlog larger than MaxCycleBytes is written in
// chunks of at most that much, which a cycle commits together.
func TestTailChunks(t *testing.T) {
	// The backlog is hidden, or the scheduler would flush it at once for
	// its size.
	e := newEnv(t, func(o *flusher.Options) { o.MaxCycleBytes = 8 << 10; o.Hot = &faultyHot{hideBacklog: true} })
	id := ident("default", "chunked")
	want := map[uint64]string{}
	e.write("chunked", 600, "a", want)
	tl := e.tail(id)
	if tl.Rows != 600 || len(tl.Files) < 3 {
		t.Fatalf("tail of 600 events with 8 KiB chunks: %d rows in %d files", tl.Rows, len(tl.Files))
	}
	if got := counter(t, e.reg, "zombi_flush_tail_files_total"); got != float64(len(tl.Files)) {
		t.Errorf("tail files counted %v, want %d", got, len(tl.Files))
	}
	fr := e.flush(id)
	if fr.Rows != 600 || fr.Files != len(tl.Files) {
		t.Errorf("flush %+v, want the tail's 600 rows in %d files", fr, len(tl.Files))
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
}

// TestTailPartitions: tail files are split by the table's partition spec
// like a cycle's, with partition values a filter prunes by.
func TestTailPartitions(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("default", "hours")
	start := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
	body, _ := events("h", 180, start, time.Minute) // 10:30 to 13:29
	e.writeBulk("hours", body)
	tl := e.tail(id)
	if len(tl.Files) != 4 {
		t.Fatalf("tail of events over 4 hours in %d files, want 4", len(tl.Files))
	}
	fr := e.flush(id)
	if fr.Files != 4 {
		t.Fatalf("flush %+v", fr)
	}
	tbl := e.load(id)
	from := start.Add(90 * time.Minute).Truncate(time.Hour) // 12:00
	scan := tbl.Scan(table.WithRowFilter(iceberg.GreaterThanEqual(iceberg.Reference("event_time"), from.Format(time.RFC3339))))
	tasks, err := scan.PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 {
		t.Errorf("a filter from %s planned %d of the tail's files, want 2 (pruned by partition)", from, len(tasks))
	}
}

// TestSeed: a table without snapshots gets an empty one, which holds no
// rows and moves no watermark; a table with one is left alone, and so is
// one a concurrent commit gave a snapshot first.
func TestSeed(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("default", "seeded")
	want := map[uint64]string{}
	e.write("seeded", 40, "a", want)
	ct, err := e.cat.LoadTable(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Metadata.CurrentSnapshot() != nil {
		t.Fatal("an auto-created table has a snapshot before its first flush")
	}
	seeded, err := e.fl.Seed(context.Background(), ct)
	if err != nil {
		t.Fatal(err)
	}
	snap := seeded.Metadata.CurrentSnapshot()
	if snap == nil || snap.Summary.Properties["total-records"] != "0" {
		t.Fatalf("seeded snapshot %+v", snap)
	}
	if rows := rowsBySeq(t, e.scan(id)); len(rows) != 0 {
		t.Errorf("the seeded table reads %d rows", len(rows))
	}
	if w, _ := flusher.Watermark(seeded.Metadata.Properties(), e.hot.NodeID()); w != 0 {
		t.Errorf("seeding set the watermark to %d", w)
	}
	again, err := e.fl.Seed(context.Background(), ct) // stale: no snapshot in ct
	if err != nil || again.Metadata.CurrentSnapshot().SnapshotID != snap.SnapshotID {
		t.Errorf("a second seed from stale metadata: %v, %v; want the first seed's snapshot", again, err)
	}
	if n := len(e.load(id).Metadata().Snapshots()); n != 1 {
		t.Errorf("%d snapshots after two seeds, want 1", n)
	}
	tl := e.tail(id)
	if tl.Rows != 40 || tl.Table.Metadata.CurrentSnapshot().SnapshotID != snap.SnapshotID {
		t.Errorf("tail of the seeded table: %d rows on snapshot %v", tl.Rows, tl.Table.Metadata.CurrentSnapshot())
	}
	fr := e.flush(id)
	if fr.Rows != 40 {
		t.Fatalf("flush of the seeded table: %+v", fr)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
	if p := e.load(id).CurrentSnapshot().ParentSnapshotID; p == nil || *p != snap.SnapshotID {
		t.Errorf("the flush's parent is %v, want the seeded snapshot %d", p, snap.SnapshotID)
	}
}
