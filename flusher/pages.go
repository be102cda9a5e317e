package flusher

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// maxPageBytes bounds the bytes of the values the Parquet writer puts in
// one data page. arrow-go's writer looks at a page's size only after each
// run of write.parquet.page-row-limit values (20,000 by default), so a
// run of large events makes one page of them all: 94 events of 700 KiB
// made a 64.3 MB page, which arrow-go's reader (iceberg-go, this server's
// compactor) refuses above 64 MiB. The flusher lowers the limit for a
// batch whose widest row would make a run larger than this.
const maxPageBytes = 8 << 20

// pageRowLimit is the page row limit to write rec with under a table
// whose properties are props: the table's (or Iceberg's default), or
// fewer rows when rec's widest row times that passes maxPageBytes. ok is
// false when the table's limit stands.
func pageRowLimit(props iceberg.Properties, rec arrow.RecordBatch) (limit int, ok bool) {
	limit = props.GetInt(table.ParquetPageRowLimitKey, table.ParquetPageRowLimitDefault)
	width := maxRowBytes(rec)
	if limit <= 0 || width <= 0 || int64(limit)*width <= maxPageBytes {
		return limit, false
	}
	return int(max(1, maxPageBytes/width)), true
}

// maxRowBytes estimates the bytes of rec's widest row: the longest value
// of each variable-width column (binary, string), and the mean of each
// other column, summed.
func maxRowBytes(rec arrow.RecordBatch) int64 {
	n := rec.NumRows()
	if n == 0 {
		return 0
	}
	var width int64
	for _, col := range rec.Columns() {
		switch a := col.(type) {
		case *array.Binary:
			width += longest(a.Len(), a.ValueLen)
		case *array.String:
			width += longest(a.Len(), a.ValueLen)
		case *array.LargeBinary:
			width += longest(a.Len(), a.ValueLen)
		case *array.LargeString:
			width += longest(a.Len(), a.ValueLen)
		default:
			width += dataBytes(col.Data()) / n
		}
	}
	return width
}

// dataBytes is the size of d's buffers and its children's.
func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}

func longest(n int, valueLen func(int) int) int64 {
	var m int
	for i := range n {
		m = max(m, valueLen(i))
	}
	return int64(m)
}
