package flusher_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/catalog"
)

// TestPartitions: one cycle splits rows by the table's current spec,
// whatever its transform, and every data file holds only rows of its
// partition.
func TestPartitions(t *testing.T) {
	start := time.Date(2026, 11, 20, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// setup creates the table and writes rows; it returns the ref and
		// the number of rows.
		setup func(e *env) (catalog.Ident, int)
		// column and transform of the partition field to check.
		column    string
		transform func(v any) any
		wantParts int
	}{
		{
			name: "events spanning 48 hours by hour",
			setup: func(e *env) (catalog.Ident, int) {
				// One event every 10 minutes for 48 hours from 22:00: 288
				// events in 48 hour partitions.
				body, _ := events("h", 288, start, 10*time.Minute)
				e.writeBulk("hours", body)
				return ident("default", "hours"), 288
			},
			column:    "event_time",
			transform: func(v any) any { return int32(v.(time.Time).Unix() / 3600) },
			wantParts: 48,
		},
		{
			name: "typed rows by day",
			setup: func(e *env) (catalog.Ident, int) {
				id := ident("shop", "daily")
				e.createTypedSpec(id, "ts", iceberg.DayTransform{})
				e.writeRows("shop.daily", typedRows(100, start, 47*time.Minute))
				return id, 100
			},
			column:    "ts",
			transform: func(v any) any { return int32(v.(time.Time).Unix() / 86400) },
			wantParts: 5, // 100 × 47 min from 22:00 on the 20th ends on the 24th
		},
		{
			name: "typed rows by bucket",
			setup: func(e *env) (catalog.Ident, int) {
				id := ident("shop", "buckets")
				e.createTypedSpec(id, "id", iceberg.BucketTransform{NumBuckets: 8})
				e.writeRows("shop.buckets", typedRows(200, start, time.Second))
				return id, 200
			},
			column: "id",
			transform: func(v any) any {
				return iceberg.BucketTransform{NumBuckets: 8}.Transformer(iceberg.PrimitiveTypes.Int64)(v).Val
			},
			wantParts: 8,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id, rows := tc.setup(e)
			fr := e.flush(id)
			if fr.Rows != int64(rows) {
				t.Fatalf("flush: %+v, want %d rows", fr, rows)
			}
			if n := len(e.load(id).Metadata().Snapshots()); n != 1 {
				t.Fatalf("%d snapshots, want one cycle", n)
			}
			files := e.dataFiles(id)
			parts := map[string]bool{}
			total := 0
			for _, df := range files {
				if len(df.Partition()) != 1 {
					t.Fatalf("file %s has partition %v", df.FilePath(), df.Partition())
				}
				var want any
				for _, v := range df.Partition() {
					want = v
				}
				parts[fmt.Sprint(want)] = true
				vals := e.readColumn(df.FilePath(), tc.column)
				total += len(vals)
				for _, v := range vals {
					if got := tc.transform(v); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("file %s (partition %v) holds a row with %s=%v, whose partition is %v",
							df.FilePath(), want, tc.column, v, got)
					}
				}
			}
			if total != rows || len(parts) != tc.wantParts {
				t.Fatalf("%d rows in %d partitions, want %d in %d", total, len(parts), rows, tc.wantParts)
			}
		})
	}
}

func (e *env) createTypedSpec(id catalog.Ident, column string, tr iceberg.Transform) {
	e.t.Helper()
	srcID := map[string]int{"id": 1, "ts": 2}[column]
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{srcID}, FieldID: 1000, Name: column + "_part", Transform: tr})
	e.createTyped(id, spec)
}

// typedRows returns n rows of the typed test schema as a JSON array.
func typedRows(n int, start time.Time, step time.Duration) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"ts":%q,"name":"n%d"}`, i*7919, start.Add(time.Duration(i)*step).Format(time.RFC3339), i)
	}
	return b.String() + "]"
}

// readColumn reads one column of a data file.
func (e *env) readColumn(path, name string) []any {
	e.t.Helper()
	fsys, err := e.wh.FS(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := fsys.Open(path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		e.t.Fatal(err)
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		e.t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	defer tbl.Release()
	return column(e.t, tbl, name)
}
