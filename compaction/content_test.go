package compaction

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
)

// contentSchema has a column of every type the checksum hashes, each
// optional, and a decimal it leaves to the counts.
var contentSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "b", Type: iceberg.PrimitiveTypes.Bool},
	iceberg.NestedField{ID: 2, Name: "i", Type: iceberg.PrimitiveTypes.Int32},
	iceberg.NestedField{ID: 3, Name: "l", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 4, Name: "f", Type: iceberg.PrimitiveTypes.Float32},
	iceberg.NestedField{ID: 5, Name: "d", Type: iceberg.PrimitiveTypes.Float64},
	iceberg.NestedField{ID: 6, Name: "day", Type: iceberg.PrimitiveTypes.Date},
	iceberg.NestedField{ID: 7, Name: "t", Type: iceberg.PrimitiveTypes.Time},
	iceberg.NestedField{ID: 8, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz},
	iceberg.NestedField{ID: 9, Name: "s", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 10, Name: "bin", Type: iceberg.PrimitiveTypes.Binary},
	iceberg.NestedField{ID: 11, Name: "u", Type: iceberg.PrimitiveTypes.UUID},
	iceberg.NestedField{ID: 12, Name: "fx", Type: iceberg.FixedTypeOf(3)},
	iceberg.NestedField{ID: 13, Name: "dec", Type: iceberg.DecimalTypeOf(10, 2)},
)

func fieldMeta(id int) arrow.Metadata {
	return arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{strconv.Itoa(id)})
}

var contentArrow = arrow.NewSchema([]arrow.Field{
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true, Metadata: fieldMeta(1)},
	{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true, Metadata: fieldMeta(2)},
	{Name: "l", Type: arrow.PrimitiveTypes.Int64, Metadata: fieldMeta(3)},
	{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true, Metadata: fieldMeta(4)},
	{Name: "d", Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: fieldMeta(5)},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true, Metadata: fieldMeta(6)},
	{Name: "t", Type: arrow.FixedWidthTypes.Time64us, Nullable: true, Metadata: fieldMeta(7)},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true, Metadata: fieldMeta(8)},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: fieldMeta(9)},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true, Metadata: fieldMeta(10)},
	{Name: "u", Type: extensions.NewUUIDType(), Nullable: true, Metadata: fieldMeta(11)},
	{Name: "fx", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}, Nullable: true, Metadata: fieldMeta(12)},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true, Metadata: fieldMeta(13)},
}, nil)

// contentRows builds rows [from, to) of contentArrow: row k's values are
// functions of k, every fifth value of each optional column null. value
// may change what row k holds in column name.
func contentRows(t *testing.T, from, to int, value func(name string, k int) int) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, contentArrow)
	defer b.Release()
	for k := from; k < to; k++ {
		for c, f := range contentArrow.Fields() {
			fb := b.Field(c)
			if f.Nullable && (k+c)%5 == 0 {
				fb.AppendNull()
				continue
			}
			v := value(f.Name, k)
			switch fb := fb.(type) {
			case *array.BooleanBuilder:
				fb.Append(v%2 == 0)
			case *array.Int32Builder:
				fb.Append(int32(v))
			case *array.Int64Builder:
				fb.Append(int64(v) << 33)
			case *array.Float32Builder:
				fb.Append(float32(v) / 3)
			case *array.Float64Builder:
				fb.Append(float64(v) / 7)
			case *array.Date32Builder:
				fb.Append(arrow.Date32(v))
			case *array.Time64Builder:
				fb.Append(arrow.Time64(v * 1000))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(int64(v) * 1_000_003))
			case *array.StringBuilder:
				fb.Append("s" + strconv.Itoa(v))
			case *array.BinaryBuilder:
				fb.Append([]byte{byte(v), byte(v >> 8), 0})
			case *extensions.UUIDBuilder:
				fb.Append(uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(v))))
			case *array.FixedSizeBinaryBuilder:
				fb.Append([]byte{byte(v), 1, byte(v >> 8)})
			case *array.Decimal128Builder:
				fb.Append(decimal128.FromI64(int64(v)))
			default:
				t.Fatalf("column %s: builder %T", f.Name, fb)
			}
		}
	}
	return b.NewRecordBatch()
}

// contentFile writes recs as a Parquet file in row groups of at most
// rowGroup rows and small pages, and opens it.
func contentFile(t *testing.T, rowGroup int64, recs ...arrow.RecordBatch) *file.Reader {
	t.Helper()
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rowGroup), parquet.WithDataPageSize(512),
		parquet.WithDictionaryDefault(false))
	w, err := pqarrow.NewFileWriter(contentArrow, &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func TestContentSum(t *testing.T) {
	keep := func(_ string, k int) int { return k }
	h := newRowHasher(contentSchema, contentArrow)
	if len(h.ids) != 12 {
		t.Fatalf("hashed fields %v, want the 12 that are not decimal", h.ids)
	}
	var read contentSum
	for _, r := range [][2]int{{0, 3000}, {3000, 5000}} {
		rec := contentRows(t, r[0], r[1], keep)
		read.add(h.batch(rec))
		rec.Release()
	}

	// changed is keep, except that column col of row k holds to[k].
	changed := func(col string, to map[int]int) func(string, int) int {
		return func(name string, k int) int {
			if v, ok := to[k]; ok && name == col {
				return v
			}
			return k
		}
	}
	all := [][2]int{{0, 5000}}
	tests := []struct {
		name string
		// The file holds rows of these ranges, in this order, with these
		// values.
		ranges [][2]int
		value  func(string, int) int
		equal  bool
	}{
		{"the same rows", all, keep, true},
		{"the same rows in another order and other batches", [][2]int{{4000, 5000}, {0, 1234}, {1234, 4000}}, keep, true},
		{"a row missing", [][2]int{{0, 2500}, {2501, 5000}}, keep, false},
		{"a row twice", [][2]int{{0, 5000}, {17, 18}}, keep, false},
		{"one string changed", all, changed("s", map[int]int{4321: -1}), false},
		// Rows 1 and 2 swap their timestamps only: each column holds the
		// same values, the rows do not.
		{"one column's values moved to other rows", all, changed("ts", map[int]int{1: 2, 2: 1}), false},
		{"a decimal changed (not hashed: the counts cover it)", all, changed("dec", map[int]int{99: -5}), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var recs []arrow.RecordBatch
			for _, r := range tc.ranges {
				recs = append(recs, contentRows(t, r[0], r[1], tc.value))
			}
			pf := contentFile(t, 1500, recs...)
			for _, rec := range recs {
				rec.Release()
			}
			stored, err := h.file(pf)
			if err != nil {
				t.Fatal(err)
			}
			if (stored == read) != tc.equal {
				t.Errorf("read %+v, stored %+v: equal %v, want %v", read, stored, stored == read, tc.equal)
			}
		})
	}
}

func TestContentSumMissingColumn(t *testing.T) {
	h := newRowHasher(contentSchema, contentArrow)
	h.ids = append(h.ids, 99)
	rec := contentRows(t, 0, 10, func(_ string, k int) int { return k })
	defer rec.Release()
	if _, err := h.file(contentFile(t, 100, rec)); err == nil {
		t.Error("a file without a hashed field: no error")
	}
}
