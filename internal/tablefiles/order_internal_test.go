package tablefiles

import (
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

var (
	orderSchema = iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "t", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 2, Name: "seq", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: "s", Type: iceberg.PrimitiveTypes.String},
	)
	orderArrow = arrow.NewSchema([]arrow.Field{
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	id = iceberg.IdentityTransform{}
)

// rows builds a batch of rows (t, seq), s = "x"; t < 0 is null.
func rows(rows ...[2]int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, orderArrow)
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

// rowsOf returns the (t, seq) rows of rec, t = -1 for null.
func rowsOf(rec arrow.RecordBatch) [][2]int64 {
	ts, seq := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Int64)
	var out [][2]int64
	for i := range int(rec.NumRows()) {
		t := int64(-1)
		if !ts.IsNull(i) {
			t = int64(ts.Value(i))
		}
		out = append(out, [2]int64{t, seq.Value(i)})
	}
	return out
}

func field(id int, tr iceberg.Transform, dir table.SortDirection, nulls table.NullOrder) table.SortField {
	return table.SortField{SourceIDs: []int{id}, Transform: tr, Direction: dir, NullOrder: nulls}
}

func sortOrder(t testing.TB, fields ...table.SortField) table.SortOrder {
	t.Helper()
	o, err := table.NewSortOrder(1, fields)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestInOrder(t *testing.T) {
	schema, rec := orderSchema, rows
	order := func(fields ...table.SortField) table.SortOrder { return sortOrder(t, fields...) }
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
			if got := InOrder(r, schema, tc.order); got != tc.want {
				t.Errorf("InOrder = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSorter(t *testing.T) {
	events := sortOrder(t, field(1, id, table.SortASC, table.NullsFirst), field(2, id, table.SortASC, table.NullsFirst))
	for _, tc := range []struct {
		name  string
		order table.SortOrder
		in    [][2]int64
		want  [][2]int64 // nil: NewSorter must refuse the order
	}{
		{"events, shuffled", events,
			[][2]int64{{3, 5}, {1, 2}, {-1, 9}, {3, 4}, {1, 1}},
			[][2]int64{{-1, 9}, {1, 1}, {1, 2}, {3, 4}, {3, 5}}},
		{"nulls last, descending", sortOrder(t, field(1, id, table.SortDESC, table.NullsLast)),
			[][2]int64{{1, 1}, {-1, 2}, {7, 3}},
			[][2]int64{{7, 3}, {1, 1}, {-1, 2}}},
		{"descending sequence", sortOrder(t, field(2, id, table.SortDESC, table.NullsLast)),
			[][2]int64{{0, 1}, {0, 3}, {0, 2}},
			[][2]int64{{0, 3}, {0, 2}, {0, 1}}},
		// As iceberg-go's writer does: by the source column's values.
		{"hour transform sorts by the source column", sortOrder(t, field(1, iceberg.HourTransform{}, table.SortASC, table.NullsFirst)),
			[][2]int64{{7_200_000_001, 1}, {3_600_000_000, 2}, {7_200_000_000, 3}},
			[][2]int64{{3_600_000_000, 2}, {7_200_000_000, 3}, {7_200_000_001, 1}}},
		{"unsorted", table.UnsortedSortOrder, [][2]int64{{2, 1}, {1, 2}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := NewSorter(orderSchema, tc.order, orderArrow)
			if ok != (tc.want != nil) {
				t.Fatalf("NewSorter ok = %v, want %v", ok, tc.want != nil)
			}
			if !ok {
				return
			}
			out, err := s.Sort(t.Context(), rows(tc.in...))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			if got := rowsOf(out); !slices.Equal(got, tc.want) {
				t.Errorf("sorted rows %v, want %v", got, tc.want)
			}
			if got := out.Column(2).(*array.String).Value(0); got != "x" {
				t.Errorf("other columns not carried along: s = %q", got)
			}
		})
	}

	t.Run("a batch in order is not copied", func(t *testing.T) {
		s, _ := NewSorter(orderSchema, events, orderArrow)
		in := rows([2]int64{1, 1}, [2]int64{2, 2})
		out, err := s.Sort(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Release()
		if out != in {
			t.Error("Sort copied a batch that was in order")
		}
	})

	t.Run("columns the batch does not have", func(t *testing.T) {
		nested := iceberg.NewSchema(0,
			iceberg.NestedField{ID: 1, Name: "r", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 2, Name: "x", Type: iceberg.PrimitiveTypes.Int64, Required: true}}}, Required: true})
		for _, o := range []table.SortOrder{
			sortOrder(t, field(2, id, table.SortASC, table.NullsFirst)), // r.x: not top-level
			sortOrder(t, field(9, id, table.SortASC, table.NullsFirst)), // no such field
		} {
			if _, ok := NewSorter(nested, o, orderArrow); ok {
				t.Errorf("NewSorter took order %v on columns the batch does not have", o)
			}
		}
	})
}
