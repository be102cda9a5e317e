package flusher_test

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
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
)

// TestCommitOutcomes: a concurrent commit between the flusher's write and
// its commit (409: rebase, same files), a commit that landed but answered
// an error (the watermark tells), and one that failed cleanly (retried).
func TestCommitOutcomes(t *testing.T) {
	tests := []struct {
		name string
		// hook runs instead of the flusher's first commit.
		hook          func(e *env, id catalog.Ident, next func() (*catalog.Table, error)) (*catalog.Table, error)
		wantConflicts float64
		wantForeign   bool
	}{
		{
			name: "concurrent append",
			hook: func(e *env, id catalog.Ident, next func() (*catalog.Table, error)) (*catalog.Table, error) {
				e.appendForeign(id, 424242, "foreign")
				return next()
			},
			wantConflicts: 1,
			wantForeign:   true,
		},
		{
			name: "landed but unknown",
			hook: func(e *env, id catalog.Ident, next func() (*catalog.Table, error)) (*catalog.Table, error) {
				if _, err := next(); err != nil {
					return nil, err
				}
				return nil, catalog.ErrCommitStateUnknown
			},
		},
		{
			name: "not landed",
			hook: func(e *env, id catalog.Ident, next func() (*catalog.Table, error)) (*catalog.Table, error) {
				return nil, catalog.ErrUnavailable
			},
		},
	}
	for _, tc := range tests {
		// With a tail, a plan has had the events written before the cycle:
		// the cycle commits those very files, with the same outcomes.
		for _, withTail := range []bool{false, true} {
			name := tc.name
			if withTail {
				name += ", a hot tail written"
			}
			t.Run(name, func(t *testing.T) {
				hooked := &hookedCatalog{}
				e := newEnv(t, func(o *flusher.Options) {
					hooked.Service = o.Catalog.(*catalog.Service)
					o.Catalog = hooked
				})
				id := ident("default", "outcomes")
				body, payloads := events("o", 200, time.Time{}, 0)
				want := map[uint64]string{}
				for i, seq := range e.writeBulk("outcomes", body) {
					want[seq] = payloads[i]
				}
				var tail []string
				if withTail {
					tail = paths(e.tail(id).Files)
				}
				var calls atomic.Int32
				hooked.commit = func(ctx context.Context, ch catalog.TableChange, next func() (*catalog.Table, error)) (*catalog.Table, error) {
					if calls.Add(1) == 1 {
						return tc.hook(e, id, next)
					}
					return next()
				}
				fr := e.flush(id)
				if fr.Rows != 200 {
					t.Fatalf("flush: %+v", fr)
				}
				if tc.wantForeign {
					want[424242] = "foreign"
				}
				checkExactly(t, rowsBySeq(t, e.scan(id)), want)
				if got := counter(t, e.reg, "zombi_flush_conflicts_total"); got != tc.wantConflicts {
					t.Errorf("conflicts = %v, want %v", got, tc.wantConflicts)
				}
				// The data files were written once: every data file of the
				// table is referenced by the current snapshot.
				if n := e.countParquet(id); n != len(e.dataFiles(id)) {
					t.Errorf("%d Parquet files under the table, %d referenced", n, len(e.dataFiles(id)))
				}
				if withTail {
					committed := paths(e.dataFiles(id))
					for _, p := range tail {
						if !slices.Contains(committed, p) {
							t.Errorf("tail file %s is not in the table", p)
						}
					}
				}
			})
		}
	}
}

// TestCommittedNotDeleted: the process dies after a commit but before the
// hot tier's events are deleted. After the restart the events are not
// written again, and they are deleted.
func TestCommittedNotDeleted(t *testing.T) {
	fh := &faultyHot{failDeletes: true}
	e := newEnv(t, func(o *flusher.Options) { o.Hot = fh })
	id := ident("default", "undeleted")
	body, payloads := events("u", 100, time.Time{}, 0)
	want := map[uint64]string{}
	for i, seq := range e.writeBulk("undeleted", body) {
		want[seq] = payloads[i]
	}
	e.flush(id)
	key := e.load(id).Metadata().TableUUID().String()
	if _, n, _ := e.hot.TableBacklog(key); n != 100 {
		t.Fatalf("hot backlog %d events; the injected failure should have kept 100", n)
	}
	fh.failDeletes = false
	e.restart()
	if fr := e.flush(id); fr.Rows != 0 {
		t.Fatalf("flush after restart wrote %d rows again", fr.Rows)
	}
	checkExactly(t, rowsBySeq(t, e.scan(id)), want)
	if _, n, _ := e.hot.TableBacklog(key); n != 0 {
		t.Errorf("hot backlog after restart: %d events", n)
	}
}

// TestSchemaEvolution: a column added by an engine is written from the
// next cycle; a required column that old rows cannot fill stops the
// table's flushes loudly and drops nothing.
func TestSchemaEvolution(t *testing.T) {
	e := newEnv(t, nil)
	id := ident("shop", "orders")
	e.createTyped(id, *iceberg.UnpartitionedSpec)
	e.writeRows("shop.orders", `[{"id":1,"ts":"2026-11-20T10:00:00Z","name":"a"}]`)
	e.flush(id)

	e.commitTx(id, func(tx *table.Transaction) error {
		return tx.UpdateSchema(true, false).AddColumn([]string{"qty"}, iceberg.PrimitiveTypes.Int32, "", false, nil).Commit()
	})
	e.writeRows("shop.orders", `[{"id":2,"ts":"2026-11-20T11:00:00Z","name":"b","qty":7}]`)
	e.flush(id)
	at := e.scan(id)
	ids, qty := column(t, at, "id"), column(t, at, "qty")
	got := map[int64]any{}
	for i := range ids {
		got[ids[i].(int64)] = qty[i]
	}
	if len(got) != 2 || got[1] != nil || got[2] != int32(7) {
		t.Fatalf("rows id → qty: %v, want 1 → null, 2 → 7", got)
	}

	// Rows written before a required column exists cannot be flushed
	// after it is added.
	e.writeRows("shop.orders", `[{"id":3,"ts":"2026-11-20T12:00:00Z","name":"c"}]`)
	e.commitTx(id, func(tx *table.Transaction) error {
		return tx.UpdateSchema(true, true).AddColumn([]string{"region"}, iceberg.PrimitiveTypes.String, "", true, nil).Commit()
	})
	_, err := e.fl.Flush(context.Background(), id)
	if !errors.Is(err, flusher.ErrSchema) || !strings.Contains(err.Error(), "region") {
		t.Fatalf("flush with a new required column: %v, want ErrSchema naming region", err)
	}
	if got := counter(t, e.reg, "zombi_flush_failures_total", "reason", "schema"); got < 1 {
		t.Errorf("schema failures = %v", got)
	}
	// Failing again and again, the table is stuck.
	for i := 0; e.fl.Stuck() == nil; i++ {
		if i == 2*flusher.StuckFailures {
			t.Fatalf("not stuck after %d failed flushes", i+1)
		}
		if _, err := e.fl.Flush(context.Background(), id); !errors.Is(err, flusher.ErrSchema) {
			t.Fatalf("flush with a new required column: %v, want ErrSchema", err)
		}
	}
	if err := e.fl.Stuck(); !strings.Contains(err.Error(), "shop.orders") || !strings.Contains(err.Error(), "region") {
		t.Errorf("Stuck() = %v, want the table and the column named", err)
	}
	key := e.load(id).Metadata().TableUUID().String()
	if _, n, _ := e.hot.TableBacklog(key); n != 1 {
		t.Errorf("the unwritable row must stay in the hot tier: backlog %d events", n)
	}
	if got := e.load(id).CurrentSnapshot().Summary.Properties["total-records"]; got != "2" {
		t.Errorf("table has %s rows, want 2", got)
	}

	// Once the column may be null, the row is flushed.
	e.commitTx(id, func(tx *table.Transaction) error {
		return tx.UpdateSchema(true, false).UpdateColumn([]string{"region"}, table.ColumnUpdate{Required: iceberg.Optional[bool]{Valid: true, Val: false}}).Commit()
	})
	if fr := e.flush(id); fr.Rows != 1 {
		t.Fatalf("flush after making region optional: %+v", fr)
	}
	if err := e.fl.Stuck(); err != nil {
		t.Errorf("Stuck() = %v after a flush succeeded", err)
	}
	if n := len(column(t, e.scan(id), "id")); n != 3 {
		t.Errorf("table has %d rows, want 3", n)
	}
}

// TestRenamedAndDropped: a renamed table is found by its UUID; events of a
// dropped table are discarded, counted, and never land in a new table of
// the same name.
func TestRenamedAndDropped(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	old, renamed := ident("default", "before"), ident("default", "after")
	body, payloads := events("r", 50, time.Time{}, 0)
	want := map[uint64]string{}
	for i, seq := range e.writeBulk("before", body) {
		want[seq] = payloads[i]
	}
	if err := e.cat.RenameTable(ctx, old, renamed, nil); err != nil {
		t.Fatal(err)
	}
	e.restart() // the flusher knows the table only by its hot label
	checkExactly(t, rowsBySeq(t, e.scan(renamed)), want)

	body, _ = events("d", 30, time.Time{}, 0)
	e.writeBulk("after", body)
	key := e.load(renamed).Metadata().TableUUID().String()
	if err := e.cat.DropTable(ctx, renamed, true, nil); err != nil {
		t.Fatal(err)
	}
	// The drain at Close, or a cycle after the restart, finds the table
	// gone.
	before := e.reg
	e.opts.Interval = 10 * time.Millisecond
	e.restart()
	waitFor(t, 10*time.Second, func() bool {
		_, n, _ := e.hot.TableBacklog(key)
		return n == 0
	})
	got := counter(t, before, "zombi_flush_discarded_events_total") + counter(t, e.reg, "zombi_flush_discarded_events_total")
	if got != 30 {
		t.Errorf("discarded events = %v, want 30", got)
	}
}

func (e *env) createTyped(id catalog.Ident, spec iceberg.PartitionSpec) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.cat.CreateNamespace(ctx, id.Namespace, nil, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceExists) {
		e.t.Fatal(err)
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 3, Name: "name", Type: iceberg.PrimitiveTypes.String},
	)
	if _, err := e.cat.CreateTable(ctx, catalog.CreateTableRequest{Ident: id, Schema: schema, Spec: &spec}, nil); err != nil {
		e.t.Fatal(err)
	}
}

// appendForeign appends one event row with iceberg-go, as another engine
// would.
func (e *env) appendForeign(id catalog.Ident, seq int64, payload string) {
	e.t.Helper()
	tbl := e.load(id)
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		e.t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	now := time.Now().UnixMicro()
	for i, f := range sc.Fields() {
		switch f.Name {
		case "sequence":
			b.Field(i).(*array.Int64Builder).Append(seq)
		case "payload":
			b.Field(i).(*array.BinaryBuilder).Append([]byte(payload))
		case "event_time", "ingest_time":
			b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(now))
		case "table":
			b.Field(i).(*array.StringBuilder).Append(id.String())
		case "partition":
			b.Field(i).(*array.Int32Builder).Append(0)
		default:
			b.Field(i).AppendNull()
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	e.commitTx(id, func(tx *table.Transaction) error {
		rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
		if err != nil {
			return err
		}
		defer rdr.Release()
		return tx.Append(context.Background(), rdr, nil)
	})
}

// TestCycleStopsAtNewerSchema: a row that ingest wrote with a schema it
// evolved after the cycle loaded the table is left for the next cycle,
// which knows its column, instead of being committed without it.
func TestCycleStopsAtNewerSchema(t *testing.T) {
	fh := &faultyHot{}
	e := newEnv(t, func(o *flusher.Options) { o.Hot = fh })
	ctx := context.Background()
	id := catalog.Ident{Namespace: catalog.Namespace{"db"}, Name: "rows"}
	if _, err := e.ing.WriteOne(ctx, "db.rows", ingestJSON(`{"user":1}`)); err != nil {
		t.Fatal(err)
	}
	// After the cycle loaded the table, and before it reads the hot tier,
	// a row with a new field evolves the schema.
	fh.beforeRead = func() {
		if _, err := e.ing.WriteOne(ctx, "db.rows", ingestJSON(`{"user":2,"coupon":"X"}`)); err != nil {
			t.Errorf("the evolving write: %v", err)
		}
	}
	if res := e.flush(id); res.Rows != 1 {
		t.Fatalf("the first cycle committed %d rows, want the one of the schema it loaded", res.Rows)
	}
	if res := e.flush(id); res.Rows != 1 {
		t.Fatalf("the second cycle committed %d rows, want the evolved one", res.Rows)
	}
	at := e.scan(id)
	users, coupons := column(t, at, "user"), column(t, at, "coupon")
	got := map[any]any{}
	for i := range users {
		got[users[i]] = coupons[i]
	}
	if len(got) != 2 || got[int64(2)] != "X" || got[int64(1)] != nil {
		t.Fatalf("user → coupon read back: %v", got)
	}
}
