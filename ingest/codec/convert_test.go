package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/hotrow/hotrowtest"
)

func newConverter(t testing.TB, schema *iceberg.Schema, opts ConverterOptions) *Converter {
	t.Helper()
	c, err := NewConverter(schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// convertColumn converts {"id": 1, col: v} and returns how ValueJSON
// renders the column, or the error.
func convertColumn(t *testing.T, c *Converter, schema *iceberg.Schema, col, v string) (string, error) {
	t.Helper()
	value, _, err := c.Convert([]byte(`{"id":1,"` + col + `":` + v + `}`))
	if err != nil {
		return "", err
	}
	rendered, err := hotrow.ValueJSON(schema, "t", 0, value)
	if err != nil {
		t.Fatalf("ValueJSON: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rendered, &m); err != nil {
		t.Fatalf("ValueJSON is not JSON: %v\n%s", err, rendered)
	}
	return string(m[col]), nil
}

// convertValueCases are values of hotrowtest.AllTypesSchema's columns and
// how hotrow.ValueJSON renders them once converted.
var convertValueCases = []struct {
	col, in, want string
}{
	{"b", `false`, `false`},
	{"b", `null`, `null`},
	{"i", `0`, `0`},
	{"i", `-0`, `0`},
	{"i", `2147483647`, `2147483647`},
	{"i", `"-2147483648"`, `-2147483648`},
	{"l", `9223372036854775807`, `9223372036854775807`},
	{"l", `"-12"`, `-12`},
	{"f", `1`, `1`},
	{"f", `0.1`, `0.1`},
	{"f", `-0.0`, `-0`},
	{"f", `1e-50`, `0`},
	{"f", `"Infinity"`, `"Infinity"`},
	{"d", `1e300`, `1e+300`},
	{"d", `1e21`, `1e+21`},
	{"d", `1e20`, `100000000000000000000`},
	{"d", `0.000001`, `0.000001`},
	{"d", `1.5e-7`, `1.5e-7`},
	{"f", `1.5e-7`, `1.5e-7`},
	{"f", `1e21`, `1e+21`},
	{"d", `123456789012345678`, `123456789012345680`},
	{"d", `5e-324`, `5e-324`},
	{"d", `"NaN"`, `"NaN"`},
	{"dec", `1.5`, `"1.50"`},
	{"dec", `"1.50"`, `"1.50"`},
	{"dec", `12.340`, `"12.34"`},
	{"dec", `1.5e2`, `"150.00"`},
	{"dec", `"1234567E-2"`, `"12345.67"`},
	{"dec", `-0.00`, `"0.00"`},
	{"dec", `"+7"`, `"7.00"`},
	{"dec", `0.01`, `"0.01"`},
	{"dec", `"0000001.1"`, `"1.10"`},
	{"dec", `9999999.99`, `"9999999.99"`},
	{"dec", `-9999999.99`, `"-9999999.99"`},
	{"dec", `0e999999999`, `"0.00"`},
	{"dec", `10000000.000e-1`, `"1000000.00"`},
	{"big", `"-9999999999999999999999999999.9999999999"`, `"-9999999999999999999999999999.9999999999"`},
	{"big", `1e27`, `"1000000000000000000000000000.0000000000"`},
	{"big", `"1` + strings.Repeat("0", 60) + `e-60"`, `"1.0000000000"`},
	{"date", `"1970-01-01"`, `"1970-01-01"`},
	{"date", `"0000-01-01"`, `"0000-01-01"`},
	{"date", `"9999-12-31"`, `"9999-12-31"`},
	{"date", `-1`, `"1969-12-31"`},
	{"date", `19000`, `"2022-01-08"`},
	{"time", `"00:00:00"`, `"00:00:00"`},
	{"time", `"12:30:00.5"`, `"12:30:00.5"`},
	{"time", `"12:30:00.1234569"`, `"12:30:00.123456"`},
	{"ts", `"2024-01-02T03:04:05"`, `"2024-01-02T03:04:05"`},
	{"ts", `"2024-01-02 03:04:05.1"`, `"2024-01-02T03:04:05.1"`},
	{"ts", `"2024-01-02t03:04:05Z"`, `"2024-01-02T03:04:05"`},
	{"ts", `"2024-01-02T03:04:05-02:30"`, `"2024-01-02T05:34:05"`},
	{"ts", `"2024-01-02T03:04:05.9999999"`, `"2024-01-02T03:04:05.999999"`},
	{"ts", `1700000000123`, `"2023-11-14T22:13:20.123"`},
	{"ts", `-1`, `"1969-12-31T23:59:59.999"`},
	{"ts", `"0000-01-01T00:00:00Z"`, `"0000-01-01T00:00:00"`},
	{"tstz", `"2024-01-02T03:04:05z"`, `"2024-01-02T03:04:05Z"`},
	{"tstz", `"2024-01-01T00:30:00+01:00"`, `"2023-12-31T23:30:00Z"`},
	{"tstz", `"9999-12-31T23:59:59.999999Z"`, `"9999-12-31T23:59:59.999999Z"`},
	{"tstz", `"1969-12-31T23:59:59.5Z"`, `"1969-12-31T23:59:59.5Z"`},
	{"tstz", `0`, `"1970-01-01T00:00:00Z"`},
	{"ts_ns", `"2262-04-11T23:47:16.854775807"`, `"2262-04-11T23:47:16.854775807"`},
	{"ts_ns", `"1677-09-21T00:12:43.145224192"`, `"1677-09-21T00:12:43.145224192"`},
	{"ts_ns", `1`, `"1970-01-01T00:00:00.001"`},
	{"tstz_ns", `"2024-01-02T03:04:05.000000001+00:00"`, `"2024-01-02T03:04:05.000000001Z"`},
	{"s", `""`, `""`},
	{"s", `"\u00e9\ud83d\ude00\t"`, `"é😀\t"`},
	{"u", `"00000000-0000-0000-0000-000000000000"`, `"00000000-0000-0000-0000-000000000000"`},
	{"u", `"FFFFFFFF-ffff-FFFF-ffff-FFFFFFFFFFFF"`, `"ffffffff-ffff-ffff-ffff-ffffffffffff"`},
	{"fx", `"/////w=="`, `"/////w=="`},
	{"bin", `"AA\u003d\u003d"`, `"AA=="`},
	{"address", `{"zip":1,"street":"s"}`, `{"street":"s","zip":1,"geo":null}`},
	{"address", `{"street":"s","zip":1,"geo":{"lat":1,"lon":null}}`, `{"street":"s","zip":1,"geo":{"lat":1,"lon":null}}`},
	{"tags", `[]`, `[]`},
	{"scores", `[null,null]`, `[null,null]`},
	{"attrs", `{}`, `{}`},
	{"attrs", `[{"key":"a","value":1},{"value":null,"key":"b"},{"key":"c"}]`, `{"a":1,"b":null,"c":null}`},
	{"attrs", `{"a\"b":1}`, `{"a\"b":1}`},
	{"by_day", `[]`, `[]`},
	{"by_day", `[{"key":0,"value":[]}]`, `[{"key":"1970-01-01","value":[]}]`},
	{"unk", `null`, `null`},
}

func TestConvertValues(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	c := newConverter(t, schema, ConverterOptions{})
	for _, tc := range convertValueCases {
		got, err := convertColumn(t, c, schema, tc.col, tc.in)
		if err != nil {
			t.Errorf("%s = %s: %v", tc.col, tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %s: renders as %s, want %s", tc.col, tc.in, got, tc.want)
		}
	}
}

// convertErrorCases are values of hotrowtest.AllTypesSchema's columns that
// the converter rejects, with the error's path and reason.
var convertErrorCases = []struct {
	col, in, path, reason string
}{
	{"b", `"true"`, "b", "expected boolean (true or false), not a string"},
	{"b", `1`, "b", "expected boolean (true or false), not a number"},
	{"i", `1.5`, "i", "expected int: 1.5 is not an integer in -2147483648..2147483647"},
	{"i", `1.0`, "i", "1.0 is not an integer"},
	{"i", `1e3`, "i", "1e3 is not an integer"},
	{"i", `2147483648`, "i", "2147483648 is not an integer in -2147483648..2147483647"},
	{"i", `"1.5"`, "i", `"1.5" is not an integer`},
	{"i", `"01"`, "i", `"01" is not an integer`},
	{"i", `" 1"`, "i", `" 1" is not an integer`},
	{"i", `"0x10"`, "i", `is not an integer`},
	{"i", `""`, "i", `"" is not an integer`},
	{"i", `true`, "i", "expected int (an integer, as a JSON number or a string), not a boolean"},
	{"l", `9223372036854775808`, "l", "9223372036854775808 is not an integer in -9223372036854775808..9223372036854775807"},
	{"l", `"-9223372036854775809"`, "l", "is not an integer"},
	{"l", `[1]`, "l", "not an array"},
	{"f", `3.5e38`, "f", "expected float: 3.5e38 is out of range"},
	{"d", `1e309`, "d", "expected double: 1e309 is out of range"},
	{"d", `"nan"`, "d", `not the string "nan"`},
	{"d", `"1.5"`, "d", `not the string "1.5"`},
	{"d", `{}`, "d", `expected double (a JSON number or "NaN", "Infinity", "-Infinity"), not an object`},
	{"dec", `1.555`, "dec", "expected decimal(9, 2): 1.555 has more than 2 digits after the decimal point"},
	{"dec", `"0.001"`, "dec", "more than 2 digits after the decimal point"},
	{"dec", `10000000`, "dec", "expected decimal(9, 2): 10000000 has more than 9 digits"},
	{"dec", `1e7`, "dec", "more than 9 digits"},
	{"dec", `1e999999999999`, "dec", "more than 9 digits"},
	{"dec", `1e-999999999999`, "dec", "more than 2 digits after the decimal point"},
	{"dec", `"1.2.3"`, "dec", `"1.2.3" is not a decimal number`},
	{"dec", `"1."`, "dec", "is not a decimal number"},
	{"dec", `".5"`, "dec", "is not a decimal number"},
	{"dec", `"1e"`, "dec", "is not a decimal number"},
	{"dec", `"NaN"`, "dec", "is not a decimal number"},
	{"dec", `" 1"`, "dec", "is not a decimal number"},
	{"dec", `""`, "dec", "is not a decimal number"},
	{"dec", `true`, "dec", "expected decimal(9, 2) (a decimal number, as a JSON number or a string), not a boolean"},
	{"big", `"1` + strings.Repeat("1", 40) + `"`, "big", "has more than 38 digits"},
	{"date", `"2023-02-29"`, "date", `expected date: "2023-02-29" is not a date YYYY-MM-DD in years 0000..9999`},
	{"date", `"2024-13-01"`, "date", "is not a date"},
	{"date", `"2024-1-01"`, "date", "is not a date"},
	{"date", `"2024-01-01T00:00:00"`, "date", "is not a date"},
	{"date", `"+2024-01-01"`, "date", "is not a date"},
	{"date", `"2024-00-10"`, "date", "is not a date"},
	{"date", `"2024-01-00"`, "date", "is not a date"},
	{"date", `1.5`, "date", "expected date: 1.5 is not a whole number of days since 1970-01-01 in -719528..2932896"},
	{"date", `2932897`, "date", "is not a whole number of days"},
	{"date", `-719529`, "date", "is not a whole number of days"},
	{"date", `false`, "date", "not a boolean"},
	{"time", `"24:00:00"`, "time", `expected time: "24:00:00" is not a time HH:MM:SS[.ffffff]`},
	{"time", `"23:60:00"`, "time", "is not a time"},
	{"time", `"23:59:60"`, "time", "is not a time"},
	{"time", `"1:00:00"`, "time", "is not a time"},
	{"time", `"01:00:00."`, "time", "is not a time"},
	{"time", `"01:00:00.1234567890"`, "time", "is not a time"},
	{"time", `"01:00"`, "time", "is not a time"},
	{"time", `3600`, "time", `expected time ("HH:MM:SS[.ffffff]"), not a number`},
	{"ts", `"2024-01-02"`, "ts", `expected timestamp: "2024-01-02" is not an RFC 3339 date-time in years 0000..9999`},
	{"ts", `"2024-01-02X03:04:05"`, "ts", "is not an RFC 3339 date-time"},
	{"ts", `"2024-01-02T03:04:05+0100"`, "ts", "is not an RFC 3339 date-time"},
	{"ts", `"2024-01-02T03:04:05+24:00"`, "ts", "is not an RFC 3339 date-time"},
	{"ts", `"2024-01-02T03:04:05 Z"`, "ts", "is not an RFC 3339 date-time"},
	{"ts", `"9999-12-31T23:59:59-01:00"`, "ts", "is not an RFC 3339 date-time in years 0000..9999"},
	{"ts", `"0000-01-01T00:00:00+00:01"`, "ts", "is not an RFC 3339 date-time in years 0000..9999"},
	{"ts", `1.5`, "ts", "expected timestamp: 1.5 is not a whole number of milliseconds"},
	{"ts", `253402300800000`, "ts", "is not a whole number of milliseconds since 1970-01-01 in years 0000..9999"},
	{"ts", `true`, "ts", "expected timestamp (an RFC 3339 string or milliseconds since 1970-01-01), not a boolean"},
	{"tstz", `"2024-01-02T03:04:05"`, "tstz", `expected timestamptz: "2024-01-02T03:04:05" has no UTC offset (add Z or ±HH:MM)`},
	{"ts_ns", `"2262-04-11T23:47:16.854775808"`, "ts_ns", "outside the years 1677 to 2262"},
	{"ts_ns", `"1677-09-21T00:12:43.145224191"`, "ts_ns", "outside the years 1677 to 2262"},
	{"ts_ns", `9223372036855`, "ts_ns", "outside the years 1677 to 2262"},
	{"tstz_ns", `"2024-01-02T03:04:05.1"`, "tstz_ns", "has no UTC offset"},
	{"s", `1`, "s", "expected string (a string), not a number"},
	{"s", `{"a":1}`, "s", "not an object"},
	{"u", `"123e4567e89b12d3a456426614174000"`, "u", "is not a UUID"},
	{"u", `"{123e4567-e89b-12d3-a456-426614174000}"`, "u", "is not a UUID"},
	{"u", `"g23e4567-e89b-12d3-a456-426614174000"`, "u", "is not a UUID"},
	{"u", `5`, "u", "expected uuid (a UUID string), not a number"},
	{"fx", `"AAEC"`, "fx", "expected fixed[4]: base64 of 4 bytes, not 3"},
	{"fx", `"AAECAwQ="`, "fx", "base64 of 4 bytes, not 5"},
	{"bin", `"AA="`, "bin", "expected binary as base64 (standard alphabet, padded)"},
	{"bin", `"-_=="`, "bin", "as base64"},
	{"bin", `[0]`, "bin", "expected binary (a base64 string), not an array"},
	{"address", `{"zip":1}`, "address.street", "required field is missing"},
	{"address", `{"street":null,"zip":1}`, "address.street", "required field is null"},
	{"address", `{"street":"s","zip":"x"}`, "address.zip", `"x" is not an integer`},
	{"address", `{"street":"s","zip":1,"geo":{"lon":1}}`, "address.geo.lat", "required field is missing"},
	{"address", `{"street":"s","zip":1,"city":"c"}`, "address.city", "no such column (the schema has street, zip, geo)"},
	{"address", `{"street":"s","street":"t","zip":1}`, "address.street", "repeated field"},
	{"address", `"Main St"`, "address", "expected struct<30: street: required string, 31: zip: required int, 39: geo: optional struct<41: lat: required double, 42: lon: optional double>> (a JSON object), not a string"},
	{"tags", `["a",null]`, "tags[1]", "required element is null"},
	{"tags", `["a",1]`, "tags[1]", "expected string"},
	{"tags", `"a"`, "tags", "expected list<string> (a JSON array), not a string"},
	{"scores", `[1,"x"]`, "scores[1]", `not the string "x"`},
	{"attrs", `{"a":1,"a":2}`, `attrs["a"]`, "repeated key"},
	{"attrs", `[{"key":"a","value":1},{"key":"a","value":2}]`, "attrs[1].key", "repeated key"},
	{"attrs", `{"a":"x"}`, `attrs["a"]`, `"x" is not an integer`},
	{"attrs", `[{"value":1}]`, "attrs[0].key", "required map key is missing or null"},
	{"attrs", `[{"key":null,"value":1}]`, "attrs[0].key", "required map key is missing or null"},
	{"attrs", `[{"key":"a","value":1,"x":2}]`, "attrs[0].x", `unknown field (a map entry has "key" and "value")`},
	{"attrs", `[{"key":"a","key":"b"}]`, "attrs[0].key", "repeated field"},
	{"attrs", `[["a",1]]`, "attrs[0]", `expected a map entry {"key": ..., "value": ...}, not an array`},
	{"attrs", `1`, "attrs", `expected map<string, long> (a JSON object or an array of {"key": ..., "value": ...}), not a number`},
	{"by_day", `{"2024-01-01":[]}`, "by_day", `expected map<date, list<struct<43: n: required int>>> (an array of {"key": ..., "value": ...}), not an object`},
	{"by_day", `[{"key":"2024-01-01"}]`, "by_day[0].value", "required map value is missing"},
	{"by_day", `[{"key":"2024-01-01","value":null}]`, "by_day[0].value", "required value is null"},
	{"by_day", `[{"key":"2024-01-01","value":[]},{"key":19723,"value":[]}]`, "by_day[1].key", "repeated key"},
	{"by_day", `[{"key":"2024-01-01","value":[{"n":1},{}]}]`, "by_day[0].value[1].n", "required field is missing"},
	{"unk", `1`, "unk", "columns of type unknown can only be null here"},
	{"nope", `1`, "nope", "no such column (the schema has id, added_late, b, i, l, f, d, dec and 18 more)"},
}

// TestConvertErrors has every rejection of the converter.
func TestConvertErrors(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	c := newConverter(t, schema, ConverterOptions{})
	for _, tc := range convertErrorCases {
		_, err := convertColumn(t, c, schema, tc.col, tc.in)
		fe, ok := errors.AsType[*FieldError](err)
		if !ok {
			t.Errorf("%s = %s: %v, want a *FieldError", tc.col, tc.in, err)
			continue
		}
		if fe.Path != tc.path || !strings.Contains(fe.Reason, tc.reason) {
			t.Errorf("%s = %s: %q, want path %q, reason containing %q", tc.col, tc.in, err, tc.path, tc.reason)
		}
	}
}

func TestConvertRowErrors(t *testing.T) {
	c := newConverter(t, hotrowtest.AllTypesSchema(), ConverterOptions{})
	for _, tc := range []struct {
		in, want string
	}{
		{`{}`, "id: required field is missing"},
		{`{"id":null}`, "id: required field is null"},
		{`[]`, "a row must be a JSON object, not an array"},
		{`1`, "a row must be a JSON object, not a number"},
		{``, "invalid JSON at offset 0: unexpected end of input, expected a JSON object"},
		{`{"id":1`, "invalid JSON at offset 7: unexpected end of input, expected ',' or '}'"},
		{`{"id":1} {}`, "invalid JSON at offset 9: unexpected '{' after the JSON value"},
		{`[] x`, "invalid JSON at offset 3"},
		{`{"id":1,"s":"\ud800"}`, "lone surrogate"},
		{`{"i":1.5,"id":1} x`, "invalid JSON at offset 17"},
		{`{"id":1,"ñ":1}`, `"ñ": no such column`},
		{`{"id":1,"id":2}`, "id: repeated field"},
	} {
		_, _, err := c.Convert([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Convert(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestConverterOptions(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()

	drop := newConverter(t, schema, ConverterOptions{DropUnknown: true})
	strict := newConverter(t, schema, ConverterOptions{})
	row := `{"id":1,"extra":{"deep":[1,2]},"address":{"street":"s","zip":1,"extra":true}}`
	dropped, _, err := drop.Convert([]byte(row))
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := strict.Convert([]byte(`{"id":1,"address":{"street":"s","zip":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dropped, plain) {
		t.Errorf("DropUnknown: %x, want %x", dropped, plain)
	}
	if _, _, err := drop.Convert([]byte(`{"id":1,"extra":[1,}`)); err == nil {
		t.Error("DropUnknown accepted bad JSON in an unknown member")
	}

	keyed := newConverter(t, schema, ConverterOptions{IdempotencyColumn: "key"})
	for _, tc := range []struct{ row, key string }{
		{`{"id":1,"key":"k\u00e9"}`, "ké"},
		{`{"id":1,"key":null}`, ""},
		{`{"id":1}`, ""},
		{`{"id":1,"key":""}`, ""},
		{`{"id":1,"key":"` + strings.Repeat("k", 256) + `"}`, strings.Repeat("k", 256)},
	} {
		_, key, err := keyed.Convert([]byte(tc.row))
		if err != nil || key != tc.key {
			t.Errorf("Convert(%s) key = %q, %v; want %q", tc.row, key, err, tc.key)
		}
	}
	_, _, err = keyed.Convert([]byte(`{"id":1,"key":"` + strings.Repeat("k", 257) + `"}`))
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Path != "key" || !strings.Contains(fe.Reason, "longer than 256 bytes") {
		t.Errorf("long key: %v", err)
	}
	if _, key, err := strict.Convert([]byte(`{"id":1,"key":"k"}`)); err != nil || key != "" {
		t.Errorf("key without IdempotencyColumn: %q, %v", key, err)
	}
}

func TestNewConverterErrors(t *testing.T) {
	p := iceberg.PrimitiveTypes
	for _, tc := range []struct {
		name   string
		schema *iceberg.Schema
		opts   ConverterOptions
		want   string
	}{
		{"missing idempotency column", hotrowtest.AllTypesSchema(), ConverterOptions{IdempotencyColumn: "nope"}, `idempotency column "nope" is not a top-level column`},
		{"nested idempotency column", hotrowtest.AllTypesSchema(), ConverterOptions{IdempotencyColumn: "address.street"}, "is not a top-level column"},
		{"idempotency column not a string", hotrowtest.AllTypesSchema(), ConverterOptions{IdempotencyColumn: "l"}, `idempotency column "l" is long, not string`},
		{"required variant", iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "v", Type: iceberg.VariantType{}, Required: true}), ConverterOptions{},
			"required column v has type variant, which Zombi cannot convert rows for"},
		{"required struct of variant", iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "s", Required: true,
			Type: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 2, Name: "v", Type: iceberg.VariantType{}}}}}), ConverterOptions{},
			"required column s has type variant"},
		{"duplicate names", iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "s", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 2, Name: "a", Type: p.Int32}, {ID: 3, Name: "a", Type: p.Int32}}}}), ConverterOptions{}, `two fields named "a"`},
	} {
		_, err := NewConverter(tc.schema, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}

	// An optional variant column takes only null.
	c := newConverter(t, iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "v", Type: iceberg.VariantType{}}), ConverterOptions{})
	if _, _, err := c.Convert([]byte(`{"v":null}`)); err != nil {
		t.Errorf("null variant: %v", err)
	}
	_, _, err := c.Convert([]byte(`{"v":{}}`))
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Reason != "columns of type variant can only be null here" {
		t.Errorf("variant value: %v", err)
	}
}

func TestConvertSchemaID(t *testing.T) {
	schema := iceberg.NewSchema(300, iceberg.NestedField{ID: 1, Name: "a", Type: iceberg.PrimitiveTypes.Int32})
	value, _, err := newConverter(t, schema, ConverterOptions{}).Convert([]byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	// format 2, schema 300 (uvarint ac 02), 1 field, ID 1, int (tag 3) 1 (zigzag 2)
	if want := []byte{2, 0xac, 0x02, 1, 1, 3, 2}; !bytes.Equal(value, want) {
		t.Fatalf("value %x, want %x", value, want)
	}
}

func TestSplitBulkRows(t *testing.T) {
	for _, tc := range []struct {
		body   string
		ndjson bool
		want   []string
	}{
		{`[]`, false, nil},
		{`{"records":[]}`, false, nil},
		{` [ {"a":1} , 5, "x" ,{"b":[1, 2]}] `, false, []string{`{"a":1}`, `5`, `"x"`, `{"b":[1, 2]}`}},
		{`{"records":[{"a":1}]}`, false, []string{`{"a":1}`}},
		{"{\"a\":1}\r\n\n  \n{\"b\":2}\n{bad\n", true, []string{"{\"a\":1}\r", `{"b":2}`, `{bad`}},
		{"", true, nil},
		{"{\"a\":1}", true, []string{`{"a":1}`}},
	} {
		rows, err := SplitBulkRows([]byte(tc.body), tc.ndjson)
		if err != nil {
			t.Errorf("SplitBulkRows(%q): %v", tc.body, err)
			continue
		}
		var got []string
		for _, r := range rows {
			got = append(got, string(r))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("SplitBulkRows(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{`{}`, "records: required"},
		{`{"rows":[]}`, "rows: unknown field"},
		{`[{"a":1},]`, "expected a JSON value"},
		{`[{"a":1}`, "expected ',' or ']'"},
		{`5`, "must be a JSON object"},
		{``, "unexpected end of input"},
	} {
		if _, err := SplitBulkRows([]byte(tc.body), false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SplitBulkRows(%q) = %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestSplitBulkRowsNUL(t *testing.T) {
	rows, err := SplitBulkRows([]byte("\x00\n{}"), true)
	if err != nil || len(rows) != 2 {
		t.Fatalf("SplitBulkRows: %q, %v; want the NUL line as a row", rows, err)
	}
}

func TestConvertMapManyKeys(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	c := newConverter(t, schema, ConverterOptions{})
	var obj, entries []string
	for i := range 40 {
		obj = append(obj, fmt.Sprintf(`"k%d":%d`, i, i))
		entries = append(entries, fmt.Sprintf(`{"key":%d,"value":[]}`, i))
	}
	got, err := convertColumn(t, c, schema, "attrs", "{"+strings.Join(obj, ",")+"}")
	if err != nil || !strings.HasPrefix(got, `{"k0":0,"k1":1,`) || !strings.HasSuffix(got, `"k39":39}`) {
		t.Fatalf("40 keys: %s, %v", got, err)
	}
	for _, tc := range []struct{ col, in, path string }{
		{"attrs", "{" + strings.Join(obj, ",") + `,"k17":1}`, `attrs["k17"]`},
		{"attrs", "{" + strings.Join(obj[:17], ",") + `,"k3":1}`, `attrs["k3"]`},
		{"by_day", "[" + strings.Join(entries, ",") + `,{"key":25,"value":[]}]`, "by_day[40].key"},
	} {
		_, err := convertColumn(t, c, schema, tc.col, tc.in)
		if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Path != tc.path || fe.Reason != "repeated key" {
			t.Errorf("%s: %v, want %s: repeated key", tc.col, err, tc.path)
		}
	}
}

// TestConverterConcurrent runs one Converter from several goroutines (run
// with -race): results must not depend on the others.
func TestConverterConcurrent(t *testing.T) {
	schema := hotrowtest.AllTypesSchema()
	c := newConverter(t, schema, ConverterOptions{IdempotencyColumn: "key"})
	want, _, err := c.Convert([]byte(hotrowtest.AllTypesRow))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 200 {
				row := hotrowtest.AllTypesRow
				if (g+i)%3 == 0 {
					row = `{"id":1,"tags":[null]}` // fails deep in a list
				}
				got, _, err := c.Convert([]byte(row))
				if row == hotrowtest.AllTypesRow && (err != nil || !bytes.Equal(got, want)) {
					errs <- fmt.Errorf("goroutine %d: %x, %v", g, got, err)
					return
				}
				if row != hotrowtest.AllTypesRow && (err == nil || err.Error() != "tags[0]: required element is null") {
					errs <- fmt.Errorf("goroutine %d: error %v", g, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
