package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
)

var eventSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "writer", Type: iceberg.PrimitiveTypes.Int32},
	iceberg.NestedField{ID: 2, Name: "seq", Type: iceberg.PrimitiveTypes.Int64},
	iceberg.NestedField{ID: 3, Name: "payload", Type: iceberg.PrimitiveTypes.String},
)

// batch builds rows rows for writer w as an Arrow table matching
// eventSchema.
func batch(w, rows int) arrow.Table {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "writer", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "payload", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := 0; i < rows; i++ {
		b.Field(0).(*array.Int32Builder).Append(int32(w))
		b.Field(1).(*array.Int64Builder).Append(int64(i))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("w%d-r%d", w, i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
}

// TestConcurrentAppends has 16 writers append to one table at once through
// the REST API, retrying on conflict as clients do. Every failed attempt
// must be a 409, every successful commit's snapshot must be in the final
// lineage, and the table must hold exactly the rows of the successful
// appends.
func TestConcurrentAppends(t *testing.T) {
	const writers, rowsPerAppend, maxAttempts = 16, 50, 200
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			ctx := context.Background()
			inst := sh.start(t)
			admin := restCatalog(t, inst)
			ns := table.Identifier{"concurrency"}
			id := table.Identifier{"concurrency", "events"}
			if err := admin.CreateNamespace(ctx, ns, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.CreateTable(ctx, id, eventSchema); err != nil {
				t.Fatal(err)
			}

			var (
				mu        sync.Mutex
				committed = map[int64]int{} // snapshot id -> writer
				conflicts int
				wg        sync.WaitGroup
			)
			errc := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cat := restCatalog(t, inst)
					data := batch(w, rowsPerAppend)
					defer data.Release()
					for attempt := 1; ; attempt++ {
						tbl, err := cat.LoadTable(ctx, id)
						if err != nil {
							errc <- fmt.Errorf("writer %d: load: %w", w, err)
							return
						}
						next, err := tbl.AppendTable(ctx, data, rowsPerAppend, nil)
						if err == nil {
							mu.Lock()
							committed[next.CurrentSnapshot().SnapshotID] = w
							mu.Unlock()
							return
						}
						if !errors.Is(err, rest.ErrCommitFailed) {
							errc <- fmt.Errorf("writer %d attempt %d: want only 409 CommitFailed, got: %w", w, attempt, err)
							return
						}
						mu.Lock()
						conflicts++
						mu.Unlock()
						if attempt == maxAttempts {
							errc <- fmt.Errorf("writer %d: still conflicting after %d attempts", w, attempt)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			t.Logf("%d writers committed with %d conflicts retried", len(committed), conflicts)

			tbl, err := admin.LoadTable(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			lineage := map[int64]bool{}
			for snap := tbl.CurrentSnapshot(); snap != nil; {
				lineage[snap.SnapshotID] = true
				if snap.ParentSnapshotID == nil {
					break
				}
				snap = tbl.Metadata().SnapshotByID(*snap.ParentSnapshotID)
			}
			if len(committed) != writers {
				t.Fatalf("%d of %d writers committed", len(committed), writers)
			}
			for sid, w := range committed {
				if !lineage[sid] {
					t.Errorf("writer %d's snapshot %d is not in the lineage of main: a lost update", w, sid)
				}
			}
			got, err := tbl.Scan().ToArrowTable(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			if want := int64(writers * rowsPerAppend); got.NumRows() != want {
				t.Fatalf("table has %d rows, want %d (sum of successful appends)", got.NumRows(), want)
			}
			perWriter := map[int32]int{}
			for _, ch := range got.Column(0).Data().Chunks() {
				col := ch.(*array.Int32)
				for i := 0; i < col.Len(); i++ {
					perWriter[col.Value(i)]++
				}
			}
			for w := 0; w < writers; w++ {
				if perWriter[int32(w)] != rowsPerAppend {
					t.Errorf("writer %d has %d rows, want %d", w, perWriter[int32(w)], rowsPerAppend)
				}
			}
		})
	}
}
