package infer

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
)

// schemaOf is the Iceberg schema inferred from rows, merged in order.
func schemaOf(t *testing.T, opts Options, rows ...string) (*iceberg.Schema, error) {
	t.Helper()
	merged := &Type{Kind: Struct}
	for _, r := range rows {
		rt, err := Row([]byte(r), opts)
		if err != nil {
			return nil, err
		}
		if merged, err = Merge(merged, rt); err != nil {
			return nil, err
		}
	}
	id := 0
	st := IcebergType(merged, func() int { id++; return id }).(*iceberg.StructType)
	return iceberg.NewSchema(0, st.FieldList...), nil
}

func TestRowTypes(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		rows []string
		want string // the schema's fields, as iceberg-go prints them
		err  string
	}{
		{name: "scalars in document order", rows: []string{`{"user":1,"action":"click","price":2.5,"ok":true}`},
			want: "1: user: optional long|2: action: optional string|3: price: optional double|4: ok: optional boolean"},
		{name: "long and double make double", rows: []string{`{"n":1}`, `{"n":2.5}`}, want: "1: n: optional double"},
		{name: "exponent is double", rows: []string{`{"n":1e3}`}, want: "1: n: optional double"},
		{name: "null waits for a value", rows: []string{`{"a":null,"b":[]}`, `{"b":["x"]}`},
			want: "1: b: optional list<string>"},
		{name: "nested object and list of objects", rows: []string{`{"ctx":{"ua":"x","ip":"1.2.3.4"},"items":[{"sku":"a","qty":2}]}`},
			want: "1: ctx: optional struct<2: ip: optional string, 3: ua: optional string>|4: items: optional list<struct<6: qty: optional long, 7: sku: optional string>>"},
		{name: "structs merge member by member", rows: []string{`{"ctx":{"a":1}}`, `{"ctx":{"b":"x"}}`},
			want: "1: ctx: optional struct<2: a: optional long, 3: b: optional string>"},
		{name: "timestamps only when asked", rows: []string{`{"ts":"2024-05-01T12:30:00Z"}`}, want: "1: ts: optional string"},
		{name: "timestamps", opts: Options{Timestamps: true}, rows: []string{`{"ts":"2024-05-01T12:30:00+02:00"}`},
			want: "1: ts: optional timestamptz"},
		{name: "time field", opts: Options{TimeFields: []string{"at"}}, rows: []string{`{"at":"2024-05-01T12:30:00.123Z","b":"2024-05-01T12:30:00Z"}`},
			want: "1: at: optional timestamptz|2: b: optional string"},
		{name: "a timestamp and a string make string", opts: Options{Timestamps: true}, rows: []string{`{"ts":"2024-05-01T12:30:00Z"}`, `{"ts":"soon"}`},
			want: "1: ts: optional string"},
		{name: "number and string conflict", rows: []string{`{"n":1}`, `{"n":"1"}`}, err: "n: a string value where the column is long"},
		{name: "object and array conflict", rows: []string{`{"o":{"a":1}}`, `{"o":[1]}`}, err: "o: a list value"},
		{name: "list elements disagree", rows: []string{`{"l":[1,"a"]}`}, err: "l[]"},
		{name: "integer beyond long", rows: []string{`{"n":99999999999999999999}`}, err: "beyond long's range"},
		{name: "not an object", rows: []string{`[1]`}, err: "must be a JSON object"},
		{name: "empty name", rows: []string{`{"":1}`}, err: "empty member name"},
		{name: "dotted name", rows: []string{`{"a.b":1}`}, err: "'.'"},
		{name: "control character in a nested name", rows: []string{`{"a":{"x\u0007":1}}`}, err: "control"},
		{name: "bidi control", rows: []string{`{"x\u202e":1}`}, err: "control"},
		{name: "reserved column", opts: Options{Reserved: []string{"_zombi_offset"}}, rows: []string{`{"_zombi_offset":1}`}, err: "Zombi fills"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := schemaOf(t, tc.opts, tc.rows...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range s.Fields() {
				got = append(got, f.String())
			}
			if g := strings.Join(got, "|"); g != tc.want {
				t.Errorf("schema\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}

func TestChanges(t *testing.T) {
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "user", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "n", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "ctx", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 4, Name: "ip", Type: iceberg.PrimitiveTypes.String}}}},
		iceberg.NestedField{ID: 5, Name: "at", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 6, Name: "price", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 7, Name: "f", Type: iceberg.PrimitiveTypes.Float32},
		iceberg.NestedField{ID: 8, Name: "d", Type: iceberg.DecimalTypeOf(5, 2)},
	)
	tests := []struct {
		name, row string
		want      string
		err       string
	}{
		{name: "nothing new", row: `{"user":1,"n":5,"ctx":{"ip":"x"},"at":"2024-05-01T12:30:00Z","price":3}`},
		{name: "new top-level and nested", row: `{"user":1,"coupon":"X","ctx":{"geo":{"cc":"de"}},"empty":null}`,
			want: "add coupon string|add ctx.geo struct<1: cc: optional string>"},
		{name: "int widened to long", row: `{"n":3000000000}`, want: "widen n to long"},
		{name: "int that fits stays", row: `{"n":-2147483648}`},
		{name: "fraction into long", row: `{"user":1.5}`, err: "user: a double value where the column is long"},
		{name: "string into long", row: `{"user":"bob"}`, err: "user"},
		{name: "object into string", row: `{"ctx":{"ip":{"v":4}}}`, err: "ctx.ip"},
		{name: "millis into timestamptz", row: `{"at":1714566600000}`},
		{name: "boolean into double", row: `{"price":true}`, err: "price"},
		{name: "float holds it", row: `{"f":0.5}`},
		{name: "float widened to double", row: `{"f":0.1}`, want: "widen f to double"},
		{name: "float widened for a large integer", row: `{"f":16777217}`, want: "widen f to double"},
		{name: "decimal holds it", row: `{"d":123.45}`},
		{name: "decimal precision widened", row: `{"d":1234567.8}`, want: "widen d to decimal(9, 2)"},
		{name: "decimal scale is not widened", row: `{"d":1.234}`},
		{name: "decimal widened for an integer", row: `{"d":123456789012}`, want: "widen d to decimal(14, 2)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := Row([]byte(tc.row), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ch, err := Changes(schema, rt)
			if tc.err != "" {
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a conflict naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range ch {
				got = append(got, c.String())
			}
			if g := strings.Join(got, "|"); g != tc.want {
				t.Errorf("changes\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}
