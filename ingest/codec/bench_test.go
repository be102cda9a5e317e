package codec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"

	"github.com/zombi-db/zombi/ingest/ingestpb"
)

// The ingest path must take 300,000 events/s on 2 cores; decoding is a
// small part of it. Benchmarks report events/s per core.

const benchEvents = 1000

// benchPayload returns a JSON object of about 100 bytes for event i.
func benchPayload(i int) string {
	return fmt.Sprintf(`{"user_id":"u-%06d","action":"click","page":"/products/%05d","ref":"search","value":%d.25}`, i, i%50000, i%1000)
}

func benchBulkJSON(stringPayload bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i := range benchEvents {
		if i > 0 {
			b.WriteString(",\n")
		}
		p := benchPayload(i)
		if stringPayload {
			p = string(appendJSONString(nil, p))
		}
		fmt.Fprintf(&b, `{"payload":%s,"partition":%d,"timestamp_ms":%d,"idempotency_key":"evt-%08d"}`, p, i%8, 1700000000000+int64(i), i)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func reportEvents(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeBulkJSON(b *testing.B) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"object-payload", benchBulkJSON(false)},
		{"string-payload", benchBulkJSON(true)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				envs, errs, err := DecodeBulkJSON(tc.body)
				if err != nil || len(errs) != 0 || len(envs) != benchEvents {
					b.Fatal(err, errs)
				}
			}
			reportEvents(b)
		})
	}
}

func BenchmarkDecodeBulkNDJSON(b *testing.B) {
	body := benchBulkJSON(false)
	body = bytes.TrimPrefix(body, []byte(`{"records":[`))
	body = bytes.TrimSuffix(body, []byte("]}"))
	body = bytes.ReplaceAll(body, []byte(",\n"), []byte("\n"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		envs, errs, err := DecodeBulkNDJSON(body)
		if err != nil || len(errs) != 0 || len(envs) != benchEvents {
			b.Fatal(err, errs)
		}
	}
	reportEvents(b)
}

func BenchmarkDecodeBulkProto(b *testing.B) {
	req := &ingestpb.BulkWriteRequest{}
	for i := range benchEvents {
		req.Records = append(req.Records, &ingestpb.BulkEvent{
			Payload: []byte(benchPayload(i)), Partition: int32(i % 8), TimestampMs: 1700000000000 + int64(i),
			IdempotencyKey: fmt.Sprintf("evt-%08d", i),
		})
	}
	body := marshal(b, req)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		envs, errs, err := DecodeBulkProto(body)
		if err != nil || len(errs) != 0 || len(envs) != benchEvents {
			b.Fatal(err, errs)
		}
	}
	reportEvents(b)
}

func BenchmarkAppendEventValue(b *testing.B) {
	envs, _, err := DecodeBulkJSON(benchBulkJSON(false))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	buf := make([]byte, 0, 200*benchEvents)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, env := range envs {
			buf = AppendEventValue(buf, env, now)
		}
	}
	reportEvents(b)
}

// benchRows returns a typed schema and 1,000 rows for it.
func benchRows() (*iceberg.Schema, [][]byte) {
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
	rows := make([][]byte, benchEvents)
	for i := range rows {
		rows[i] = fmt.Appendf(nil, `{"user_id":"u-%06d","action":"click","page":"/products/%05d","ref":"search","value":%d.25,"count":%d,"ts":"2024-01-02T03:04:%02d.123Z","tags":["a","b"]}`,
			i, i%50000, i%1000, i, i%60)
	}
	return schema, rows
}

func BenchmarkConvert(b *testing.B) {
	schema, rows := benchRows()
	c := newConverter(b, schema, ConverterOptions{})
	size := 0
	for _, row := range rows {
		size += len(row)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, row := range rows {
			if _, _, err := c.Convert(row); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportEvents(b)
}

func BenchmarkArrowBuilderRows(b *testing.B) {
	schema, rows := benchRows()
	c := newConverter(b, schema, ConverterOptions{})
	values := make([][]byte, len(rows))
	for i, row := range rows {
		var err error
		if values[i], _, err = c.Convert(row); err != nil {
			b.Fatal(err)
		}
	}
	ab, err := NewArrowBuilder(memory.NewGoAllocator(), schema, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer ab.Release()
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range values {
			if err := ab.Append(0, v); err != nil {
				b.Fatal(err)
			}
		}
		ab.NewRecord().Release()
	}
	reportEvents(b)
}

func BenchmarkArrowBuilderEvents(b *testing.B) {
	envs, _, err := DecodeBulkJSON(benchBulkJSON(false))
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, len(envs))
	for i, env := range envs {
		values[i] = AppendEventValue(nil, env, time.Now())
	}
	ab, err := NewArrowBuilder(memory.NewGoAllocator(), EventSchema(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer ab.Release()
	b.ReportAllocs()
	for b.Loop() {
		for i, v := range values {
			if err := ab.Append(uint64(i), v); err != nil {
				b.Fatal(err)
			}
		}
		ab.NewRecord().Release()
	}
	reportEvents(b)
}

func BenchmarkValueJSONEvents(b *testing.B) {
	value := AppendEventValue(nil, Envelope{Payload: []byte(strings.Repeat("x", 100)), IdempotencyKey: "k"}, time.Now())
	schema := EventSchema()
	b.ReportAllocs()
	for b.Loop() {
		for range benchEvents {
			if _, err := ValueJSON(schema, "bench", 1, value); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportEvents(b)
}

// BenchmarkCountBulk: the count a bulk write is charged by before it is
// decoded, against BenchmarkDecodeBulkJSON's decoding of the same body.
func BenchmarkCountBulk(b *testing.B) {
	body := benchBulkJSON(false)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if n, err := CountBulk(body, false); err != nil || n != benchEvents {
			b.Fatal(n, err)
		}
	}
}
