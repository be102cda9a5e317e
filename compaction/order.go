package compaction

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// orderTasks orders the files of a group by the first field of the sort
// order, as the files' statistics bound it: by the lower bound of its
// source column, or for a descending field by the upper bound, highest
// first. The rewrite sorts batch by batch and reads one file after
// another, so without this its output is a run per input file in plan
// order (for flushes of an event table: newest first); with it the runs
// follow one another, and files whose ranges do not overlap (an event
// table's flushes, mostly) come out sorted as a whole, as the table's
// sort order says. Files without a bound go last, in their order; orders
// whose first field is not an integer, date, time or timestamp column
// leave the tasks as they are.
func orderTasks(tasks []table.FileScanTask, schema *iceberg.Schema, order table.SortOrder) {
	var f table.SortField
	for _, first := range order.Fields() {
		f = first
		break
	}
	if len(f.SourceIDs) != 1 {
		return
	}
	col, ok := schema.FindFieldByID(f.SourceIDs[0])
	if !ok {
		return
	}
	var width int
	switch col.Type.(type) {
	case iceberg.Int32Type, iceberg.DateType:
		width = 4
	case iceberg.Int64Type, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType,
		iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		width = 8
	default:
		return
	}
	desc := f.Direction == table.SortDESC
	// bound decodes the file's bound of the column (Iceberg's single-value
	// serialization: little-endian, 4 or 8 bytes).
	bound := func(t table.FileScanTask) (int64, bool) {
		bounds := t.File.LowerBoundValues()
		if desc {
			bounds = t.File.UpperBoundValues()
		}
		b, ok := bounds[col.ID]
		switch {
		case !ok || len(b) != width:
			return 0, false
		case width == 4:
			return int64(int32(binary.LittleEndian.Uint32(b))), true
		}
		return int64(binary.LittleEndian.Uint64(b)), true
	}
	slices.SortStableFunc(tasks, func(a, b table.FileScanTask) int {
		ka, oka := bound(a)
		kb, okb := bound(b)
		switch {
		case !oka || !okb:
			return cmp.Compare(boolInt(!oka), boolInt(!okb))
		case desc:
			return cmp.Compare(kb, ka)
		}
		return cmp.Compare(ka, kb)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
