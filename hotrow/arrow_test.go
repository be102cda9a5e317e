package hotrow_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"

	. "github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/hotrow/hotrowtest"
	"github.com/zombi-db/zombi/ingest/codec"
)

func newArrowBuilder(t *testing.T, schema *iceberg.Schema, table string) (*ArrowBuilder, *memory.CheckedAllocator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	b, err := NewArrowBuilder(mem, schema, table)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return b, mem
}

// recordJSON renders a record as JSON lines, one row a line.
func recordJSON(t *testing.T, rec arrow.RecordBatch) string {
	t.Helper()
	var buf bytes.Buffer
	if err := array.RecordToJSON(rec, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestArrowBuilderEvents(t *testing.T) {
	b, _ := newArrowBuilder(t, EventSchema(), "ns.clicks")
	defer b.Release()
	ingest := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	values := [][]byte{
		AppendEventValue(nil, Event{Payload: []byte(`{"a":1}`), Partition: 2, EventTime: ms(1700000000123), IngestTime: ingest, IdempotencyKey: "k1"}),
		AppendEventValue(nil, Event{Payload: []byte{0xff, 0}, IngestTime: ingest}),
	}
	for i, v := range values {
		if err := b.Append(uint64(10+i), v); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", b.Len())
	}
	rec := b.NewRecord()
	defer rec.Release()
	if b.Len() != 0 {
		t.Fatalf("Len() after NewRecord = %d", b.Len())
	}

	for i, f := range rec.Schema().Fields() {
		id, _ := f.Metadata.GetValue("PARQUET:field_id")
		if want := []string{"1", "2", "3", "4", "5", "6", "7"}[i]; id != want {
			t.Errorf("field %s has field id %q, want %s", f.Name, id, want)
		}
	}
	if tt := rec.Schema().Field(4).Type.(*arrow.TimestampType); tt.Unit != arrow.Microsecond || tt.TimeZone != "UTC" {
		t.Errorf("event_time is %s", tt)
	}
	want := `{"event_time":"2023-11-14T22:13:20.123Z","idempotency_key":"k1","ingest_time":"2024-05-06T07:08:09.123456Z","partition":2,"payload":"eyJhIjoxfQ==","sequence":10,"table":"ns.clicks"}
{"event_time":"2024-05-06T07:08:09.123456Z","idempotency_key":null,"ingest_time":"2024-05-06T07:08:09.123456Z","partition":0,"payload":"/wA=","sequence":11,"table":"ns.clicks"}
`
	if got := recordJSON(t, rec); got != want {
		t.Fatalf("record:\n%s\nwant:\n%s", got, want)
	}
}

func TestArrowBuilderAllTypes(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	value := convert(t, schema, hotrowtest.AllTypesRow)
	minimal := convert(t, schema, `{"id":2}`)
	b, _ := newArrowBuilder(t, schema, "t")
	defer b.Release()
	for _, v := range [][]byte{value, minimal} {
		if err := b.Append(0, v); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	hotrowtest.Validate(t, rec)
	golden(t, "all_types_arrow.golden", []byte(recordJSON(t, rec)))

	// Spot checks of what the JSON rendering of Arrow values hides.
	if got := rec.Column(6).(*array.Float64).Value(0); got != 0.1 {
		t.Errorf("d = %v", got)
	}
	if got := rec.Column(7).(*array.Decimal128).Value(0); got.ToString(2) != "-1234567.89" {
		t.Errorf("dec = %v", got.ToString(2))
	}
	if got := rec.Column(13).(*array.Timestamp).Value(0); got != 1704164645123456789 {
		t.Errorf("ts_ns = %d", got)
	}
	if got := rec.Column(12).(*array.Timestamp).Value(0); got != 1704161045123456 {
		t.Errorf("tstz = %d", got)
	}
}

// TestArrowBuilderSchemaEvolution reads rows written with one schema into
// records of a later one.
func TestArrowBuilderSchemaEvolution(t *testing.T) {
	p := iceberg.PrimitiveTypes
	v1 := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "id", Type: p.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: p.String},
		iceberg.NestedField{ID: 3, Name: "score", Type: p.Float32},
		iceberg.NestedField{ID: 4, Name: "amount", Type: iceberg.DecimalTypeOf(9, 2)},
		iceberg.NestedField{ID: 5, Name: "day", Type: p.Date},
		iceberg.NestedField{ID: 6, Name: "gone", Type: p.String},
		iceberg.NestedField{ID: 7, Name: "loc", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 8, Name: "x", Type: p.Int32, Required: true},
		}}},
		iceberg.NestedField{ID: 10, Name: "counts", Type: &iceberg.ListType{ElementID: 11, Element: p.Int32}},
	)
	v2 := iceberg.NewSchema(2,
		iceberg.NestedField{ID: 7, Name: "location", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 9, Name: "y", Type: p.Int32},
			{ID: 8, Name: "x", Type: p.Int64, Required: true},
		}}},
		iceberg.NestedField{ID: 1, Name: "id", Type: p.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "full_name", Type: p.String},
		iceberg.NestedField{ID: 3, Name: "score", Type: p.Float64},
		iceberg.NestedField{ID: 4, Name: "amount", Type: iceberg.DecimalTypeOf(12, 2)},
		iceberg.NestedField{ID: 5, Name: "day", Type: p.Timestamp},
		iceberg.NestedField{ID: 12, Name: "added", Type: p.String},
		iceberg.NestedField{ID: 10, Name: "counts", Type: &iceberg.ListType{ElementID: 11, Element: p.Int64}},
	)
	value := convert(t, v1, `{"id":7,"name":"n","score":1.5,"amount":"12.34","day":"2024-03-01","gone":"g","loc":{"x":3},"counts":[1,null]}`)
	b, _ := newArrowBuilder(t, v2, "t")
	defer b.Release()
	if err := b.Append(0, value); err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecord()
	defer rec.Release()
	want := `{"added":null,"amount":"12.34","counts":[1,null],"day":"2024-03-01T00:00:00","full_name":"n","id":7,"location":{"x":3,"y":null},"score":1.5}` + "\n"
	if got := recordJSON(t, rec); got != want {
		t.Fatalf("record:\n%s\nwant:\n%s", got, want)
	}
	rendered, err := ValueJSON(v2, "t", 0, value)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"location":{"y":null,"x":3},"id":7,"full_name":"n","score":1.5,"amount":"12.34","day":"2024-03-01T00:00:00","added":null,"counts":[1,null]}`
	if string(rendered) != wantJSON {
		t.Fatalf("ValueJSON:\n%s\nwant:\n%s", rendered, wantJSON)
	}

	// Changes Iceberg does not allow, and a required column added later.
	for _, tc := range []struct {
		name   string
		schema *iceberg.Schema
		want   string
	}{
		{"narrowed", iceberg.NewSchema(3, iceberg.NestedField{ID: 3, Name: "score", Type: p.Int32}), "score: stored float value does not fit column type int"},
		{"decimal scale", iceberg.NewSchema(3, iceberg.NestedField{ID: 4, Name: "amount", Type: iceberg.DecimalTypeOf(12, 3)}), "amount: stored decimal has scale 2, column decimal(12, 3)"},
		{"decimal precision", iceberg.NewSchema(3, iceberg.NestedField{ID: 4, Name: "amount", Type: iceberg.DecimalTypeOf(3, 2)}), "amount: stored decimal 12.34 does not fit column decimal(3, 2)"},
		{"nested", iceberg.NewSchema(3, iceberg.NestedField{ID: 7, Name: "loc", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 8, Name: "x", Type: p.String}}}}), "loc.x: stored int value does not fit column type string"},
		{"list element", iceberg.NewSchema(3, iceberg.NestedField{ID: 10, Name: "counts", Type: &iceberg.ListType{ElementID: 11, Element: p.Int32, ElementRequired: true}}), "counts[1]: null element, which the column requires"},
		{"required added", iceberg.NewSchema(3, iceberg.NestedField{ID: 1, Name: "id", Type: p.Int32, Required: true}, iceberg.NestedField{ID: 13, Name: "must", Type: p.Int32, Required: true}),
			"must: required column has no value (the row was written before it was added?)"},
		{"required nested added", iceberg.NewSchema(3, iceberg.NestedField{ID: 7, Name: "loc", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 14, Name: "z", Type: p.Int32, Required: true}}}}),
			"loc.z: required column has no value (the row was written before it was added?)"},
	} {
		b, _ := newArrowBuilder(t, tc.schema, "t")
		err := b.Append(0, value)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: Append: %v, want %q", tc.name, err, tc.want)
		}
		if _, err := ValueJSON(tc.schema, "t", 0, value); err == nil || err.Error() != tc.want {
			t.Errorf("%s: ValueJSON: %v, want %q", tc.name, err, tc.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: a failed Append left %d rows", tc.name, b.Len())
		}
		b.Release()
	}
}

// TestArrowBuilderFailedAppendLeavesNoRow checks that an error part way
// through a row appends nothing.
func TestArrowBuilderFailedAppendLeavesNoRow(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	good := convert(t, schema, hotrowtest.AllTypesRow)
	b, _ := newArrowBuilder(t, schema, "t")
	defer b.Release()
	// The same row with its last list's last element corrupted: the check
	// fails after many columns would have been appended.
	bad := bytes.Clone(good)
	i := bytes.LastIndex(bad, []byte("row-1"))
	bad[i] = 0xff // not UTF-8
	for _, v := range [][]byte{good, bad, good, {2}, {}, {9}} {
		b.Append(0, v)
	}
	rec := b.NewRecord()
	defer rec.Release()
	if rec.NumRows() != 2 {
		t.Fatalf("%d rows, want 2", rec.NumRows())
	}
	for i := range rec.NumCols() {
		if got := rec.Column(int(i)).Len(); got != 2 {
			t.Errorf("column %s has %d rows", rec.ColumnName(int(i)), got)
		}
	}
	hotrowtest.Validate(t, rec)
}

func TestArrowBuilderEventErrors(t *testing.T) {
	p := iceberg.PrimitiveTypes
	ev := AppendEventValue(nil, Event{Payload: []byte("x"), IngestTime: time.Unix(1, 0)})
	for _, tc := range []struct {
		name   string
		schema *iceberg.Schema
		value  []byte
		want   string
	}{
		{"typed table", hotrowtest.AllTypesSchema(), ev, "column b (field ID 2) is boolean; raw events have string"},
		{"wrong type", iceberg.NewSchema(0, iceberg.NestedField{ID: 4, Name: "payload", Type: p.String, Required: true}), ev, "column payload (field ID 4) is string; raw events have binary"},
		{"extra required column", iceberg.NewSchema(0, iceberg.NestedField{ID: 8, Name: "extra", Type: p.String, Required: true}), ev, "required column extra is not in raw events"},
		{"required key", iceberg.NewSchema(0, iceberg.NestedField{ID: 6, Name: "key", Type: p.String, Required: true}), ev, "required column key has no value: the event has no idempotency key"},
		{"bad value", EventSchema(), ev[:len(ev)-1], "malformed hot value: length 1 beyond the end"},
		{"empty", EventSchema(), nil, "malformed hot value: empty"},
		{"unknown format", EventSchema(), []byte{3}, "malformed hot value: unknown format 3"},
		{"row for event schema", EventSchema(), []byte{2, 0, 0}, "sequence: required column has no value (the row was written before it was added?)"},
		{"bad row", EventSchema(), []byte{2, 0, 1}, "malformed hot value: length 1 beyond the end"},
		{"row trailing bytes", EventSchema(), []byte{2, 0, 0, 0}, "malformed hot value: 1 bytes after the row"},
	} {
		b, _ := newArrowBuilder(t, tc.schema, "t")
		if err := b.Append(1, tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Append: %v, want %q", tc.name, err, tc.want)
		}
		if _, err := ValueJSON(tc.schema, "t", 1, tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ValueJSON: %v, want %q", tc.name, err, tc.want)
		}
		b.Release()
	}

	// An evolved event table: partition promoted to long, a column
	// renamed, an optional column added.
	evolved := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "seq", Type: p.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: "partition", Type: p.Int64, Required: true},
		iceberg.NestedField{ID: 4, Name: "body", Type: p.Binary, Required: true},
		iceberg.NestedField{ID: 20, Name: "note", Type: p.String},
	)
	b, _ := newArrowBuilder(t, evolved, "t")
	defer b.Release()
	if err := b.Append(5, AppendEventValue(nil, Event{Payload: []byte("x"), Partition: 9, IngestTime: time.Unix(1, 0)})); err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecord()
	defer rec.Release()
	if got, want := recordJSON(t, rec), `{"body":"eA==","note":null,"partition":9,"seq":5}`+"\n"; got != want {
		t.Errorf("record %s, want %s", got, want)
	}
	rendered, err := ValueJSON(evolved, "t", 5, AppendEventValue(nil, Event{Payload: []byte("x"), Partition: 9, IngestTime: time.Unix(1, 0)}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"seq":5,"partition":9,"body":"x","body_base64":"eA==","note":null}`; string(rendered) != want {
		t.Errorf("ValueJSON = %s, want %s", rendered, want)
	}
}

func TestArrowBuilderUnsupportedColumns(t *testing.T) {
	p := iceberg.PrimitiveTypes
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "a", Type: p.Int32},
		iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.VariantType{}},
		iceberg.NestedField{ID: 3, Name: "u", Type: p.Unknown},
	)
	value := convert(t, schema, `{"a":1,"v":null}`)
	b, _ := newArrowBuilder(t, schema, "t")
	defer b.Release()
	if err := b.Append(0, value); err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecord()
	defer rec.Release()
	if rec.Column(1).NullN() != 1 || rec.Column(2).NullN() != 1 {
		t.Errorf("variant and unknown columns are not null: %s", recordJSON(t, rec))
	}
	// A stored value for such a column is an error.
	bad := []byte{2, 0, 1, 3, TagInt, 2}
	if err := b.Append(0, bad); err == nil || err.Error() != "u: stored int value does not fit column type unknown" {
		t.Errorf("Append: %v", err)
	}
}

// TestMalformedRowValues has a value for each check of format 2: what
// Converter cannot have written is rejected by both readers.
func TestMalformedRowValues(t *testing.T) {
	p := iceberg.PrimitiveTypes
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "a", Type: p.Int64},
		iceberg.NestedField{ID: 2, Name: "m", Type: &iceberg.MapType{KeyID: 3, KeyType: p.String, ValueID: 4, ValueType: p.String}},
	)
	row := func(body ...byte) []byte { return append([]byte{2, 0}, body...) }
	deep := row(1, 1, TagList)
	for range MaxDepth + 1 {
		deep = append(deep, 1, TagList)
	}
	deep = append(deep, 0)
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"schema ID", []byte{2, 0x80, 0x80, 0x80, 0x80, 0x08, 0}, "schema ID 2147483648 out of range"},
		{"field IDs out of order", row(2, 2, TagLong, 2, 1, TagLong, 2), "field ID 1 out of order"},
		{"repeated field ID", row(2, 1, TagLong, 2, 1, TagLong, 2), "field ID 1 out of order"},
		{"field ID 0", row(1, 0, TagLong, 2), "field ID 0 out of order"},
		{"null field", row(1, 1, TagNull), "null struct field 1"},
		{"unknown tag", row(1, 1, 21), "unknown tag 21"},
		{"int range", row(1, 1, TagInt, 0x80, 0x80, 0x80, 0x80, 0x10), "int 2147483648 out of range"},
		{"decimal scale", row(1, 1, TagDecimal, 39, 1, 0), "decimal scale 39 out of range"},
		{"decimal empty", row(1, 1, TagDecimal, 2, 0), "decimal of 0 bytes"},
		{"decimal long", row(1, 1, TagDecimal, 2, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17), "decimal of 17 bytes"},
		{"decimal not minimal", row(1, 1, TagDecimal, 2, 2, 0, 1), "decimal bytes not minimal"},
		{"decimal not minimal negative", row(1, 1, TagDecimal, 2, 2, 0xff, 0x80), "decimal bytes not minimal"},
		{"date range", row(1, 1, TagDate, 0xff, 0xff, 0xff, 0xff, 0x0f), "date -2147483648 out of range"},
		{"time negative", row(1, 1, TagTime, 1), "time -1 out of range"},
		{"time past midnight", binary.AppendVarint(row(1, 1, TagTime), MicrosPerDay), "time 86400000000 out of range"},
		{"timestamp range", row(1, 1, TagTimestampTz, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "timestamp 9223372036854775807 out of range"},
		{"string not UTF-8", row(1, 1, TagString, 1, 0xff), "string is not UTF-8"},
		{"null map key", row(1, 2, TagMap, 1, TagNull, TagNull), "null map key"},
		{"truncated float", row(1, 1, TagFloat, 0, 0), "unexpected end"},
		{"truncated uuid", row(1, 1, TagUUID, 0), "unexpected end"},
		{"truncated struct", row(2, 1, TagLong, 2), "bad varint"},
		{"list count", row(1, 1, TagList, 5, TagNull), "length 5 beyond the end"},
		{"too deep", deep, "nested deeper than 1000 levels"},
	} {
		b, _ := newArrowBuilder(t, schema, "t")
		if err := b.Append(0, tc.value); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Append: %v, want %q", tc.name, err, tc.want)
		}
		if _, err := ValueJSON(schema, "t", 0, tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ValueJSON: %v, want %q", tc.name, err, tc.want)
		}
		b.Release()
	}
}

func TestReadPromotionLimits(t *testing.T) {
	p := iceberg.PrimitiveTypes
	// A date promoted to timestamp_ns must fit its years.
	value := []byte{2, 0, 1, 1, TagDate}
	value = binary.AppendVarint(value, 365*1000) // year 2969
	ns := iceberg.NewSchema(1, iceberg.NestedField{ID: 1, Name: "d", Type: p.TimestampNs})
	want := "d: date 2969-05-03 does not fit timestamp_ns"
	if _, err := ValueJSON(ns, "t", 0, value); err == nil || err.Error() != want {
		t.Errorf("ValueJSON: %v, want %q", err, want)
	}
	small := []byte{2, 0, 1, 1, TagDate, 2}
	got, err := ValueJSON(ns, "t", 0, small)
	if err != nil || string(got) != `{"d":"1970-01-02T00:00:00"}` {
		t.Errorf("ValueJSON: %s, %v", got, err)
	}
	// A fixed value of another length than the column's.
	fixed := iceberg.NewSchema(1, iceberg.NestedField{ID: 1, Name: "f", Type: iceberg.FixedTypeOf(3)})
	if _, err := ValueJSON(fixed, "t", 0, []byte{2, 0, 1, 1, TagFixed, 2, 0, 0}); err == nil || err.Error() != "f: stored fixed value has 2 bytes, column fixed[3]" {
		t.Errorf("ValueJSON: %v", err)
	}
	// Sequence numbers beyond a long.
	b, _ := newArrowBuilder(t, EventSchema(), "t")
	defer b.Release()
	if err := b.Append(1<<63, AppendEventValue(nil, Event{IngestTime: time.Unix(0, 0)})); err == nil || err.Error() != "sequence 9223372036854775808 out of range" {
		t.Errorf("Append: %v", err)
	}
}

// TestArrowBuilderZombiColumns: the converter fills the ingest time
// column and refuses a row that sets it; the builder fills the offset
// column with each row's sequence, and refuses a row of a schema newer
// than it knows (WithKnownSchemas) without appending anything.
func TestArrowBuilderZombiColumns(t *testing.T) {
	p := iceberg.PrimitiveTypes
	v1 := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "_zombi_offset", Type: p.Int64},
		iceberg.NestedField{ID: 2, Name: "_zombi_ingest_time", Type: p.TimestampTz},
		iceberg.NestedField{ID: 3, Name: "user", Type: p.Int64},
	)
	conv, err := codec.NewConverter(v1, codec.ConverterOptions{OffsetColumn: "_zombi_offset", IngestTimeColumn: "_zombi_ingest_time"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 10, 15, 0, 123456000, time.UTC)
	value, _, err := conv.AppendConvertAt(nil, []byte(`{"user":7}`), at)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{`{"user":7,"_zombi_offset":1}`, `{"_zombi_ingest_time":"2026-03-02T10:15:00Z"}`} {
		if _, _, err := conv.AppendConvertAt(nil, []byte(row), at); err == nil || !strings.Contains(err.Error(), "_zombi_") {
			t.Errorf("converting %s: %v, want the Zombi column refused", row, err)
		}
	}
	v2 := iceberg.NewSchema(2, append(v1.Fields(), iceberg.NestedField{ID: 4, Name: "coupon", Type: p.String})...)
	conv2, err := codec.NewConverter(v2, codec.ConverterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newer, _, err := conv2.Convert([]byte(`{"user":8,"coupon":"X"}`))
	if err != nil {
		t.Fatal(err)
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b, err := NewArrowBuilder(mem, v1, "t", WithOffsetColumn(1), WithKnownSchemas(1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if err := b.Append(42, value); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(43, newer); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("a row of schema 2 with schemas through 1 known: %v, want ErrNewerSchema", err)
	}
	rec := b.NewRecord()
	defer rec.Release()
	want := `{"_zombi_ingest_time":"2026-03-02T10:15:00.123456Z","_zombi_offset":42,"user":7}` + "\n"
	if got := recordJSON(t, rec); got != want {
		t.Errorf("rows\n got %s\nwant %s", got, want)
	}
}
