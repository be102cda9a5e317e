package compaction

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

func TestOrderTasks(t *testing.T) {
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 2, Name: "day", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 3, Name: "s", Type: iceberg.PrimitiveTypes.String},
	)
	le8 := func(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }
	le4 := func(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
	// file is a task named name whose bounds of field id are lo and hi
	// (nil: none).
	file := func(name string, id int, lo, hi []byte) table.FileScanTask {
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, name, iceberg.ParquetFile, nil, nil, nil, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if lo != nil {
			b.LowerBoundValues(map[int][]byte{id: lo}).UpperBoundValues(map[int][]byte{id: hi})
		}
		return table.FileScanTask{File: b.Build()}
	}
	order := func(id int, dir table.SortDirection) table.SortOrder {
		o, err := table.NewSortOrder(1, []table.SortField{{SourceIDs: []int{id}, Transform: iceberg.IdentityTransform{}, Direction: dir, NullOrder: table.NullsFirst}})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	ts := func(name string, lo, hi int64) table.FileScanTask { return file(name, 1, le8(lo), le8(hi)) }
	for _, tc := range []struct {
		name  string
		tasks []table.FileScanTask
		order table.SortOrder
		want  []string
	}{
		{"by lower bound", []table.FileScanTask{ts("c", 30, 39), ts("a", -5, 50), ts("b", 10, 19)}, order(1, table.SortASC), []string{"a", "b", "c"}},
		{"descending: by upper bound, highest first", []table.FileScanTask{ts("b", 10, 19), ts("a", -5, 50), ts("c", 30, 39)}, order(1, table.SortDESC), []string{"a", "c", "b"}},
		{"ties keep their order", []table.FileScanTask{ts("y", 1, 2), ts("x", 1, 3), ts("w", 0, 1)}, order(1, table.SortASC), []string{"w", "y", "x"}},
		{"no bound: last, in order", []table.FileScanTask{file("n1", 1, nil, nil), ts("b", 2, 2), file("n2", 1, nil, nil), ts("a", 1, 1)}, order(1, table.SortASC), []string{"a", "b", "n1", "n2"}},
		{"a date column", []table.FileScanTask{file("b", 2, le4(20000), le4(20001)), file("a", 2, le4(-3), le4(5))}, order(2, table.SortASC), []string{"a", "b"}},
		{"a bound of the wrong width", []table.FileScanTask{file("b", 1, le4(1), le4(1)), ts("a", 5, 5)}, order(1, table.SortASC), []string{"a", "b"}},
		{"a string column: as planned", []table.FileScanTask{file("b", 3, []byte("b"), []byte("b")), file("a", 3, []byte("a"), []byte("a"))}, order(3, table.SortASC), []string{"b", "a"}},
		{"unsorted: as planned", []table.FileScanTask{ts("b", 2, 2), ts("a", 1, 1)}, table.UnsortedSortOrder, []string{"b", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orderTasks(tc.tasks, schema, tc.order)
			var got []string
			for _, task := range tc.tasks {
				got = append(got, task.File.FilePath())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
		})
	}
}
