// Package hotrowtest has the schemas, rows and checks that the tests of
// package hotrow share with those of the writer of its rows, package
// codec's Converter.
package hotrowtest

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
)

// AllTypesSchema has a column of every type the converter handles, with
// field IDs out of schema order, nested required fields, and lists and
// maps of every shape.
func AllTypesSchema() *iceberg.Schema {
	p := iceberg.PrimitiveTypes
	return iceberg.NewSchema(3,
		iceberg.NestedField{ID: 1, Name: "id", Type: p.Int64, Required: true},
		iceberg.NestedField{ID: 40, Name: "added_late", Type: p.String},
		iceberg.NestedField{ID: 2, Name: "b", Type: p.Bool},
		iceberg.NestedField{ID: 3, Name: "i", Type: p.Int32},
		iceberg.NestedField{ID: 4, Name: "l", Type: p.Int64},
		iceberg.NestedField{ID: 5, Name: "f", Type: p.Float32},
		iceberg.NestedField{ID: 6, Name: "d", Type: p.Float64},
		iceberg.NestedField{ID: 7, Name: "dec", Type: iceberg.DecimalTypeOf(9, 2)},
		iceberg.NestedField{ID: 8, Name: "big", Type: iceberg.DecimalTypeOf(38, 10)},
		iceberg.NestedField{ID: 9, Name: "date", Type: p.Date},
		iceberg.NestedField{ID: 10, Name: "time", Type: p.Time},
		iceberg.NestedField{ID: 11, Name: "ts", Type: p.Timestamp},
		iceberg.NestedField{ID: 12, Name: "tstz", Type: p.TimestampTz},
		iceberg.NestedField{ID: 13, Name: "ts_ns", Type: p.TimestampNs},
		iceberg.NestedField{ID: 14, Name: "tstz_ns", Type: p.TimestampTzNs},
		iceberg.NestedField{ID: 15, Name: "s", Type: p.String},
		iceberg.NestedField{ID: 16, Name: "u", Type: p.UUID},
		iceberg.NestedField{ID: 17, Name: "fx", Type: iceberg.FixedTypeOf(4)},
		iceberg.NestedField{ID: 18, Name: "bin", Type: p.Binary},
		iceberg.NestedField{ID: 19, Name: "address", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 30, Name: "street", Type: p.String, Required: true},
			{ID: 31, Name: "zip", Type: p.Int32, Required: true},
			{ID: 39, Name: "geo", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 41, Name: "lat", Type: p.Float64, Required: true},
				{ID: 42, Name: "lon", Type: p.Float64},
			}}},
		}}},
		iceberg.NestedField{ID: 20, Name: "tags", Type: &iceberg.ListType{ElementID: 32, Element: p.String, ElementRequired: true}},
		iceberg.NestedField{ID: 21, Name: "scores", Type: &iceberg.ListType{ElementID: 33, Element: p.Float64}},
		iceberg.NestedField{ID: 22, Name: "attrs", Type: &iceberg.MapType{KeyID: 34, KeyType: p.String, ValueID: 35, ValueType: p.Int64}},
		iceberg.NestedField{ID: 23, Name: "by_day", Type: &iceberg.MapType{KeyID: 36, KeyType: p.Date, ValueID: 37, ValueRequired: true,
			ValueType: &iceberg.ListType{ElementID: 38, Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 43, Name: "n", Type: p.Int32, Required: true},
			}}}}},
		iceberg.NestedField{ID: 24, Name: "key", Type: p.String},
		iceberg.NestedField{ID: 25, Name: "unk", Type: p.Unknown},
	)
}

// AllTypesRow is a row of AllTypesSchema with a value in every column that
// can hold one.
const AllTypesRow = `{
  "id": 9007199254740993,
  "added_late": "late",
  "b": true,
  "i": -2147483648,
  "l": "-9223372036854775808",
  "f": 3.4028235e38,
  "d": 0.1,
  "dec": "-1234567.89",
  "big": "1234567890123456789012345678.0123456789",
  "date": "2024-02-29",
  "time": "23:59:59.999999",
  "ts": "2024-01-02T03:04:05.123456",
  "tstz": "2024-01-02T03:04:05.123456+01:00",
  "ts_ns": "2024-01-02T03:04:05.123456789",
  "tstz_ns": "2024-01-02T03:04:05.123456789Z",
  "s": "héllo \"world\"\n\u0001",
  "u": "123E4567-E89B-12D3-A456-426614174000",
  "fx": "AAECAw==",
  "bin": "",
  "address": {"street": "Main St", "zip": 12345, "geo": {"lat": -33.8688}},
  "tags": ["a", "", "c"],
  "scores": [1.5, null, "NaN", "-Infinity"],
  "attrs": {"x": 1, "y": null, "": -2},
  "by_day": [{"key": "2024-01-01", "value": [{"n": 1}, null]}, {"key": 19000, "value": []}],
  "key": "row-1",
  "unk": null
}`

// BenchRows returns a typed schema and n rows for it, for benchmarks.
func BenchRows(n int) (*iceberg.Schema, [][]byte) {
	p := iceberg.PrimitiveTypes
	schema := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "user_id", Type: p.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "action", Type: p.String, Required: true},
		iceberg.NestedField{ID: 3, Name: "page", Type: p.String},
		iceberg.NestedField{ID: 4, Name: "ref", Type: p.String},
		iceberg.NestedField{ID: 5, Name: "value", Type: iceberg.DecimalTypeOf(10, 2)},
		iceberg.NestedField{ID: 6, Name: "count", Type: p.Int64},
		iceberg.NestedField{ID: 7, Name: "ts", Type: p.TimestampTz, Required: true},
		iceberg.NestedField{ID: 8, Name: "tags", Type: &iceberg.ListType{ElementID: 9, Element: p.String, ElementRequired: true}},
	)
	rows := make([][]byte, n)
	for i := range rows {
		rows[i] = fmt.Appendf(nil, `{"user_id":"u-%06d","action":"click","page":"/products/%05d","ref":"search","value":%d.25,"count":%d,"ts":"2024-01-02T03:04:%02d.123Z","tags":["a","b"]}`,
			i, i%50000, i%1000, i, i%60)
	}
	return schema, rows
}

// Validate checks the columns of rec that can check themselves.
func Validate(t testing.TB, rec arrow.RecordBatch) {
	t.Helper()
	for i, col := range rec.Columns() {
		if v, ok := col.(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				t.Errorf("column %s: %v", rec.ColumnName(i), err)
			}
		}
	}
}
