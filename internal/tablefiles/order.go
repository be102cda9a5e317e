package tablefiles

import (
	"cmp"
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// InOrder reports whether the rows of rec are already in order, where
// order's fields are identity transforms of top-level integer, date or
// timestamp columns of schema; for any other order it reports false.
//
// iceberg-go's writer sorts every batch by the table's default sort order
// (a sort and then a copy of every column). A flush cycle of an event
// table is usually in (event_time, sequence) order already, since the hot
// tier hands events out by sequence and stamps the ingest time in that
// order, and so is each batch the compactor reads from a file the flusher
// wrote. (In a profile at a paced 400,000 events/s, arrow's Take kernels,
// which the copy runs on, were about 5% of the server's CPU;
// BenchmarkFlushEvents allocates 8-9% less without the sort; in
// BenchmarkCompact the sort was about 2% of the CPU and this check costs
// under 1%, BENCHMARKS.md.) When a batch is in order, the writer can skip
// the sort: the files are the same, since it records no sort order ID on
// them either way.
func InOrder(rec arrow.RecordBatch, schema *iceberg.Schema, order table.SortOrder) bool {
	type key struct {
		col        arrow.Array
		value      func(i int) int64
		desc       bool
		nullsFirst bool
	}
	var keys []key
	for _, f := range order.Fields() {
		if len(f.SourceIDs) != 1 {
			return false
		}
		if _, ok := f.Transform.(iceberg.IdentityTransform); !ok {
			return false
		}
		name, ok := schema.FindColumnName(f.SourceIDs[0])
		if !ok {
			return false
		}
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return false
		}
		col := rec.Column(idx[0])
		var value func(int) int64
		switch a := col.(type) {
		case *array.Int64:
			value = func(i int) int64 { return a.Value(i) }
		case *array.Int32:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Timestamp:
			value = func(i int) int64 { return int64(a.Value(i)) }
		case *array.Date32:
			value = func(i int) int64 { return int64(a.Value(i)) }
		default:
			return false
		}
		keys = append(keys, key{col, value, f.Direction == table.SortDESC, f.NullOrder == table.NullsFirst})
	}
	if len(keys) == 0 {
		return false
	}
	// compare orders rows i and j by k as the sort order would.
	compare := func(k key, i, j int) int {
		ni, nj := k.col.IsNull(i), k.col.IsNull(j)
		switch {
		case ni && nj:
			return 0
		case ni || nj:
			c := 1 // i is null, last
			if nj {
				c = -1
			}
			if k.nullsFirst {
				c = -c
			}
			return c
		}
		c := cmp.Compare(k.value(i), k.value(j))
		if k.desc {
			c = -c
		}
		return c
	}
	for i := 1; i < int(rec.NumRows()); i++ {
		for _, k := range keys {
			c := compare(k, i-1, i)
			if c > 0 {
				return false
			}
			if c < 0 {
				break
			}
		}
	}
	return true
}

// Sorter sorts batches by a table's sort order as iceberg-go's writer does
// (by each field's source column, whatever its transform; direction and
// null order as the field says), leaving a batch that is in order as it
// is. A writer handed the metadata of Unsorted then writes the batches as
// they come: the files are those iceberg-go's own sort would write, less a
// copy of every batch already in order.
type Sorter struct {
	schema *iceberg.Schema
	order  table.SortOrder
	keys   []compute.SortKey
}

// NewSorter returns the sorter of batches with Arrow schema as by order of
// schema, or false when order is unsorted or sorts by a column that is
// not a top-level column of as (then leave the sort to the writer).
func NewSorter(schema *iceberg.Schema, order table.SortOrder, as *arrow.Schema) (*Sorter, bool) {
	if order.IsUnsorted() {
		return nil, false
	}
	s := &Sorter{schema: schema, order: order}
	for _, f := range order.Fields() {
		if len(f.SourceIDs) != 1 {
			return nil, false
		}
		name, ok := schema.FindColumnName(f.SourceIDs[0])
		if !ok {
			return nil, false
		}
		idx := as.FieldIndices(name)
		if len(idx) != 1 {
			return nil, false
		}
		k := compute.SortKey{ColumnIndex: idx[0], Order: compute.SortOrderAscending, NullPlacement: compute.SortNullsAtEnd}
		if f.Direction == table.SortDESC {
			k.Order = compute.SortOrderDescending
		}
		if f.NullOrder == table.NullsFirst {
			k.NullPlacement = compute.SortNullsAtStart
		}
		s.keys = append(s.keys, k)
	}
	return s, true
}

// Sort returns rec sorted. It takes over the caller's reference to rec:
// a batch in order comes back as it is, any other is released and a
// sorted copy returned.
func (s *Sorter) Sort(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if rec.NumRows() < 2 || InOrder(rec, s.schema, s.order) {
		return rec, nil
	}
	defer rec.Release()
	return compute.SortRecordBatch(ctx, rec, s.keys)
}
