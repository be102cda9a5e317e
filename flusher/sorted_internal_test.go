package flusher

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

func TestSortedBy(t *testing.T) {
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "t", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 2, Name: "seq", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: "s", Type: iceberg.PrimitiveTypes.String},
	)
	as := arrow.NewSchema([]arrow.Field{
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	// rec builds rows of (t, seq); t < 0 is null.
	rec := func(rows ...[2]int64) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, as)
		defer b.Release()
		for _, r := range rows {
			if r[0] < 0 {
				b.Field(0).AppendNull()
			} else {
				b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(r[0]))
			}
			b.Field(1).(*array.Int64Builder).Append(r[1])
			b.Field(2).(*array.StringBuilder).Append("x")
		}
		return b.NewRecordBatch()
	}
	field := func(id int, tr iceberg.Transform, dir table.SortDirection, nulls table.NullOrder) table.SortField {
		return table.SortField{SourceIDs: []int{id}, Transform: tr, Direction: dir, NullOrder: nulls}
	}
	id := iceberg.IdentityTransform{}
	order := func(fields ...table.SortField) table.SortOrder {
		o, err := table.NewSortOrder(1, fields)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	events := order(field(1, id, table.SortASC, table.NullsFirst), field(2, id, table.SortASC, table.NullsFirst))
	for _, tc := range []struct {
		name  string
		rows  [][2]int64
		order table.SortOrder
		want  bool
	}{
		{"in order", [][2]int64{{1, 1}, {1, 2}, {2, 3}, {5, 4}}, events, true},
		{"one row", [][2]int64{{7, 1}}, events, true},
		{"no rows", nil, events, true},
		{"time goes back", [][2]int64{{1, 1}, {3, 2}, {2, 3}}, events, false},
		{"same time, sequence goes back", [][2]int64{{1, 2}, {1, 1}}, events, false},
		{"nulls first", [][2]int64{{-1, 1}, {-1, 2}, {1, 3}}, events, true},
		{"a null after a value, nulls first", [][2]int64{{1, 1}, {-1, 2}}, events, false},
		{"nulls last", [][2]int64{{1, 1}, {-1, 2}}, order(field(1, id, table.SortASC, table.NullsLast)), true},
		{"descending", [][2]int64{{5, 1}, {3, 2}, {3, 3}}, order(field(1, id, table.SortDESC, table.NullsLast)), true},
		{"descending, out of order", [][2]int64{{3, 1}, {5, 2}}, order(field(1, id, table.SortDESC, table.NullsLast)), false},
		{"a transform other than identity", [][2]int64{{1, 1}}, order(field(1, iceberg.HourTransform{}, table.SortASC, table.NullsFirst)), false},
		{"a string column", [][2]int64{{1, 1}}, order(field(3, id, table.SortASC, table.NullsFirst)), false},
		{"unsorted", [][2]int64{{1, 1}}, table.UnsortedSortOrder, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rec(tc.rows...)
			defer r.Release()
			if got := sortedBy(r, schema, tc.order); got != tc.want {
				t.Errorf("sortedBy = %v, want %v", got, tc.want)
			}
		})
	}
}
