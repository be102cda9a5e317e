package compaction

import (
	"encoding/binary"
	"hash/maphash"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// checksum is an order-independent digest of rows: the sum of one hash
// per row over every column's value. Compaction compares the checksum of
// the rows it read with that of the rows it wrote, so a rewrite that lost,
// duplicated or changed a row is never committed; sorting rows does not
// change it.
type checksum struct {
	rows int64
	sum  uint64
	row  []uint64 // scratch: per-row hash of the batch
	buf  []byte
}

// seed is fixed for the process: checksums are only compared within one.
var seed = maphash.MakeSeed()

func (c *checksum) add(rec arrow.RecordBatch) {
	n := int(rec.NumRows())
	if cap(c.row) < n {
		c.row = make([]uint64, n)
	}
	row := c.row[:n]
	for i := range row {
		row[i] = 0xcbf29ce484222325
	}
	for _, col := range rec.Columns() {
		c.mix(row, col)
	}
	for _, h := range row {
		c.sum += h
	}
	c.rows += int64(n)
}

// mix folds each row's value of col into row.
func (c *checksum) mix(row []uint64, col arrow.Array) {
	for i := range row {
		var h uint64
		if col.IsNull(i) {
			h = 0x9e3779b97f4a7c15
		} else {
			h = c.value(col, i)
		}
		row[i] = (row[i] ^ h) * 0x100000001b3
	}
}

func (c *checksum) value(col arrow.Array, i int) uint64 {
	switch a := col.(type) {
	case *array.Int32:
		return uint64(a.Value(i))
	case *array.Int64:
		return uint64(a.Value(i))
	case *array.Float32:
		return uint64(math.Float32bits(a.Value(i)))
	case *array.Float64:
		return math.Float64bits(a.Value(i))
	case *array.Boolean:
		if a.Value(i) {
			return 1
		}
		return 2
	case *array.Date32:
		return uint64(a.Value(i))
	case *array.Timestamp:
		return uint64(a.Value(i))
	case *array.Time64:
		return uint64(a.Value(i))
	case *array.String:
		return maphash.String(seed, a.Value(i))
	case *array.LargeString:
		return maphash.String(seed, a.Value(i))
	case *array.Binary:
		return maphash.Bytes(seed, a.Value(i))
	case *array.LargeBinary:
		return maphash.Bytes(seed, a.Value(i))
	case *array.FixedSizeBinary:
		return maphash.Bytes(seed, a.Value(i))
	case *array.Decimal128:
		v := a.Value(i)
		c.buf = binary.LittleEndian.AppendUint64(c.buf[:0], v.LowBits())
		c.buf = binary.LittleEndian.AppendUint64(c.buf, uint64(v.HighBits()))
		return maphash.Bytes(seed, c.buf)
	default:
		// Nested and rarer types: their text form.
		return maphash.String(seed, col.ValueStr(i))
	}
}
