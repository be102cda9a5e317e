package compaction

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
)

// The content checksum of a rewrite: the sum, over the rows, of a hash of
// each row's values in the hashed columns. The rows read (before they are
// sorted and handed to the writer) and the rows decoded from the files as
// stored must give the same sum.
// A sum does not depend on the order of the rows, so sorting and the
// writer's cutting into files and row groups leave it alone; a value
// changed, lost, duplicated, or moved to another row changes it (unless
// 64-bit hashes collide).
//
// Hashed are the top-level columns whose values Parquet stores as they
// are in Arrow: booleans, integers, floats, dates, times, timestamps,
// strings, binary, fixed and UUIDs. Decimals and nested columns are
// covered by the counts (tally) only.

// contentSum is the content checksum of some rows.
type contentSum struct {
	rows int64
	sum  uint64
}

func (c *contentSum) add(o contentSum) {
	c.rows += o.rows
	c.sum += o.sum
}

// rowHasher hashes rows of the columns ids (field IDs, ascending) with
// one seed, so that the sums of two sets of rows compare.
type rowHasher struct {
	seed maphash.Seed
	ids  []int
	// cols are the columns of ids in the batches handed to the writer.
	cols []int
	rowh []uint64
}

// newRowHasher returns a hasher of the hashable top-level columns of
// batches of arrow schema sc, read from a table of schema schema.
func newRowHasher(schema *iceberg.Schema, sc *arrow.Schema) *rowHasher {
	h := &rowHasher{seed: maphash.MakeSeed()}
	fields := slices.Clone(schema.Fields())
	slices.SortFunc(fields, func(a, b iceberg.NestedField) int { return a.ID - b.ID })
	for _, f := range fields {
		if !hashable(f.Type) {
			continue
		}
		idx := sc.FieldIndices(f.Name)
		if len(idx) != 1 || !hashableArrow(sc.Field(idx[0]).Type) {
			continue
		}
		h.ids = append(h.ids, f.ID)
		h.cols = append(h.cols, idx[0])
	}
	return h
}

func hashable(t iceberg.Type) bool {
	switch t.(type) {
	case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.Float32Type, iceberg.Float64Type,
		iceberg.DateType, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType,
		iceberg.TimestampNsType, iceberg.TimestampTzNsType,
		iceberg.StringType, iceberg.BinaryType, iceberg.FixedType, iceberg.UUIDType:
		return true
	}
	return false
}

func hashableArrow(t arrow.DataType) bool {
	if ext, ok := t.(arrow.ExtensionType); ok {
		t = ext.StorageType()
	}
	switch t.ID() {
	case arrow.BOOL, arrow.INT32, arrow.INT64, arrow.FLOAT32, arrow.FLOAT64, arrow.DATE32, arrow.TIME64,
		arrow.TIMESTAMP, arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY:
		return true
	}
	return false
}

// Every value is hashed to 64 bits; a row's hash folds its values' in
// column order, and the sum adds the rows' hashes, each mixed once more.
const (
	nullHash = 0x6a09e667f3bcc908
	rowSeed  = 0xbb67ae8584caa73b
	rowMul   = 0x9e3779b97f4a7c15
)

// mix64 is a 64-bit finalizer (splitmix64's).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (h *rowHasher) start(n int) []uint64 {
	if cap(h.rowh) < n {
		h.rowh = make([]uint64, n)
	}
	rowh := h.rowh[:n]
	for i := range rowh {
		rowh[i] = rowSeed
	}
	return rowh
}

func fold(rowh []uint64, i int, v uint64) { rowh[i] = rowh[i]*rowMul + v }

func (h *rowHasher) finish(rowh []uint64) contentSum {
	s := contentSum{rows: int64(len(rowh))}
	for _, r := range rowh {
		s.sum += mix64(r)
	}
	return s
}

// batch returns the content checksum of rec's rows.
func (h *rowHasher) batch(rec arrow.RecordBatch) contentSum {
	rowh := h.start(int(rec.NumRows()))
	for _, c := range h.cols {
		arr := rec.Column(c)
		if ext, ok := arr.(array.ExtensionArray); ok {
			arr = ext.Storage()
		}
		for i := range rowh {
			if arr.IsNull(i) {
				fold(rowh, i, nullHash)
				continue
			}
			var v uint64
			switch a := arr.(type) {
			case *array.Boolean:
				v = mix64(boolBits(a.Value(i)))
			case *array.Int32:
				v = mix64(uint64(uint32(a.Value(i))))
			case *array.Date32:
				v = mix64(uint64(uint32(a.Value(i))))
			case *array.Int64:
				v = mix64(uint64(a.Value(i)))
			case *array.Time64:
				v = mix64(uint64(a.Value(i)))
			case *array.Timestamp:
				v = mix64(uint64(a.Value(i)))
			case *array.Float32:
				v = mix64(uint64(math.Float32bits(a.Value(i))))
			case *array.Float64:
				v = mix64(math.Float64bits(a.Value(i)))
			case *array.String:
				v = maphash.String(h.seed, a.Value(i))
			case *array.LargeString:
				v = maphash.String(h.seed, a.Value(i))
			case *array.Binary:
				v = maphash.Bytes(h.seed, a.Value(i))
			case *array.LargeBinary:
				v = maphash.Bytes(h.seed, a.Value(i))
			case *array.FixedSizeBinary:
				v = maphash.Bytes(h.seed, a.Value(i))
			}
			fold(rowh, i, v)
		}
	}
	return h.finish(rowh)
}

func boolBits(b bool) uint64 {
	if b {
		return 1
	}
	return 2
}

// readRows is how many rows of each column file reads at a time.
const readRows = 4096

// file returns the content checksum of the rows of a Parquet file, its
// columns found by field ID. A hashed column missing from the file, or of
// another layout, is an error.
func (h *rowHasher) file(pf *file.Reader) (contentSum, error) {
	schema := pf.MetaData().Schema
	leaves := make([]int, len(h.ids))
	for k, id := range h.ids {
		leaves[k] = -1
		for i := range schema.NumColumns() {
			d := schema.Column(i)
			if d.SchemaNode().FieldID() == int32(id) && len(d.ColumnPath()) == 1 && d.MaxRepetitionLevel() == 0 {
				leaves[k] = i
			}
		}
		if leaves[k] < 0 {
			return contentSum{}, fmt.Errorf("field %d is not a top-level column of the file", id)
		}
	}
	var total contentSum
	for g := range pf.NumRowGroups() {
		rg := pf.RowGroup(g)
		readers := make([]columnHasher, len(leaves))
		for k, leaf := range leaves {
			cr, err := rg.Column(leaf)
			if err != nil {
				return contentSum{}, err
			}
			readers[k] = columnHasher{r: cr, maxDef: cr.Descriptor().MaxDefinitionLevel()}
		}
		for left := rg.NumRows(); left > 0; {
			n := int(min(left, readRows))
			rowh := h.start(n)
			for k := range readers {
				if err := readers[k].fold(h.seed, rowh); err != nil {
					return contentSum{}, fmt.Errorf("field %d: %w", h.ids[k], err)
				}
			}
			total.add(h.finish(rowh))
			left -= int64(n)
		}
	}
	return total, nil
}

// columnHasher reads one column chunk's values row by row.
type columnHasher struct {
	r      file.ColumnChunkReader
	maxDef int16
	def    []int16
	b      []bool
	i32    []int32
	i64    []int64
	f32    []float32
	f64    []float64
	ba     []parquet.ByteArray
	flba   []parquet.FixedLenByteArray
}

var errShort = errors.New("the column chunk ends before its row group")

// fold reads len(rowh) rows of the column and folds their values' hashes
// into rowh.
func (c *columnHasher) fold(seed maphash.Seed, rowh []uint64) error {
	for done := 0; done < len(rowh); {
		levels, values, hashOf, err := c.read(seed, len(rowh)-done)
		if err != nil {
			return err
		}
		if levels == 0 {
			return errShort
		}
		if err := c.foldRead(rowh[done:done+levels], c.def[:levels], values, hashOf); err != nil {
			return err
		}
		done += levels
	}
	return nil
}

// read reads up to n rows (a read may end at a page's end) and returns
// how many rows and values it read and the hash of the j-th value, valid
// until the next read.
func (c *columnHasher) read(seed maphash.Seed, n int) (levels, values int, hashOf func(j int) uint64, err error) {
	c.def = grow(c.def, n)
	switch r := c.r.(type) {
	case *file.BooleanColumnChunkReader:
		levels, values, err = readInto(r, &c.b, c.def)
		hashOf = func(j int) uint64 { return mix64(boolBits(c.b[j])) }
	case *file.Int32ColumnChunkReader:
		levels, values, err = readInto(r, &c.i32, c.def)
		hashOf = func(j int) uint64 { return mix64(uint64(uint32(c.i32[j]))) }
	case *file.Int64ColumnChunkReader:
		levels, values, err = readInto(r, &c.i64, c.def)
		hashOf = func(j int) uint64 { return mix64(uint64(c.i64[j])) }
	case *file.Float32ColumnChunkReader:
		levels, values, err = readInto(r, &c.f32, c.def)
		hashOf = func(j int) uint64 { return mix64(uint64(math.Float32bits(c.f32[j]))) }
	case *file.Float64ColumnChunkReader:
		levels, values, err = readInto(r, &c.f64, c.def)
		hashOf = func(j int) uint64 { return mix64(math.Float64bits(c.f64[j])) }
	case *file.ByteArrayColumnChunkReader:
		levels, values, err = readInto(r, &c.ba, c.def)
		hashOf = func(j int) uint64 { return maphash.Bytes(seed, c.ba[j]) }
	case *file.FixedLenByteArrayColumnChunkReader:
		levels, values, err = readInto(r, &c.flba, c.def)
		hashOf = func(j int) uint64 { return maphash.Bytes(seed, c.flba[j]) }
	default:
		err = fmt.Errorf("unexpected column reader %T", c.r)
	}
	return levels, values, hashOf, err
}

// batchReader is what arrow-go's typed column chunk readers have in
// common.
type batchReader[T any] interface {
	ReadBatch(n int64, values []T, def, rep []int16) (int64, int, error)
}

// readInto reads up to len(def) rows of r into *buf, grown to that.
func readInto[T any](r batchReader[T], buf *[]T, def []int16) (levels, values int, err error) {
	*buf = grow(*buf, len(def))
	l, values, err := r.ReadBatch(int64(len(def)), *buf, def, nil)
	return int(l), values, err
}

func (c *columnHasher) foldRead(rowh []uint64, def []int16, values int, hashOf func(int) uint64) error {
	j := 0
	for i := range rowh {
		if c.maxDef > 0 && def[i] < c.maxDef {
			fold(rowh, i, nullHash)
			continue
		}
		if j >= values {
			return fmt.Errorf("row %d: %d values for %d rows", i, values, len(rowh))
		}
		fold(rowh, i, hashOf(j))
		j++
	}
	if j != values {
		return fmt.Errorf("%d values read for %d non-null rows", values, j)
	}
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
