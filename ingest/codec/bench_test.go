package codec

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/zombi-db/zombi/hotrow/hotrowtest"
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

func BenchmarkConvert(b *testing.B) {
	schema, rows := hotrowtest.BenchRows(benchEvents)
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
