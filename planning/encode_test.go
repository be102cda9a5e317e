package planning

import (
	"math"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
)

// TestPartitionValue pins the JSON of partition values to what Iceberg's
// Java SingleValueParser reads: it refuses an integral number for a
// double, lower-case hex, and a timestamptz without its +00:00 offset.
func TestPartitionValue(t *testing.T) {
	day := iceberg.Date(19783) // 2024-03-01
	ts := iceberg.Timestamp(time.Date(2024, 3, 1, 12, 30, 0, 1000, time.UTC).UnixMicro())
	lit, err := iceberg.StringLiteral("-12.50").To(iceberg.DecimalTypeOf(4, 2))
	if err != nil {
		t.Fatal(err)
	}
	dec := lit.(iceberg.DecimalLiteral)
	tests := []struct {
		name string
		v    any
		typ  iceberg.Type
		want string
	}{
		{"null", nil, iceberg.PrimitiveTypes.Int32, `null`},
		{"bool", true, iceberg.PrimitiveTypes.Bool, `true`},
		{"int", int32(-7), iceberg.PrimitiveTypes.Int32, `-7`},
		{"long", int64(1) << 40, iceberg.PrimitiveTypes.Int64, `1099511627776`},
		{"hour (int result)", int32(473000), iceberg.PrimitiveTypes.Int32, `473000`},
		{"double, integral", 3.0, iceberg.PrimitiveTypes.Float64, `3.0`},
		{"double", 2.5, iceberg.PrimitiveTypes.Float64, `2.5`},
		{"double, exponent", 1e300, iceberg.PrimitiveTypes.Float64, `1e+300`},
		{"float", float32(0.1), iceberg.PrimitiveTypes.Float32, `0.1`},
		{"date", day, iceberg.PrimitiveTypes.Date, `"2024-03-01"`},
		{"date as int", int32(0), iceberg.PrimitiveTypes.Date, `"1970-01-01"`},
		{"time", iceberg.Time(3723000001), iceberg.PrimitiveTypes.Time, `"01:02:03.000001"`},
		{"timestamp", ts, iceberg.PrimitiveTypes.Timestamp, `"2024-03-01T12:30:00.000001"`},
		{"timestamptz", ts, iceberg.PrimitiveTypes.TimestampTz, `"2024-03-01T12:30:00.000001+00:00"`},
		{"timestamp_ns", iceberg.TimestampNano(1), iceberg.PrimitiveTypes.TimestampNs, `"1970-01-01T00:00:00.000000001"`},
		{"string", `a"b`, iceberg.PrimitiveTypes.String, `"a\"b"`},
		{"uuid", uuid.MustParse("f79c3e09-677c-4bbd-a479-3f349cb785e7"), iceberg.PrimitiveTypes.UUID, `"f79c3e09-677c-4bbd-a479-3f349cb785e7"`},
		{"binary", []byte{0xab, 0x01}, iceberg.PrimitiveTypes.Binary, `"AB01"`},
		{"fixed", []byte{0x0f}, iceberg.FixedTypeOf(1), `"0F"`},
		{"decimal", dec, iceberg.DecimalTypeOf(4, 2), `"-12.50"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := partitionValue(tc.v, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("partitionValue(%v, %s) = %s, want %s", tc.v, tc.typ, got, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		v   any
		typ iceberg.Type
	}{
		{math.NaN(), iceberg.PrimitiveTypes.Float64},
		{"x", iceberg.PrimitiveTypes.Int32},
		{int32(1), iceberg.PrimitiveTypes.String},
	} {
		if got, err := partitionValue(bad.v, bad.typ); err == nil {
			t.Errorf("partitionValue(%v, %s) = %s, want an error", bad.v, bad.typ, got)
		}
	}
}
