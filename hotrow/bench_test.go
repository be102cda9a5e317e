package hotrow_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	. "github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/hotrow/hotrowtest"
)

// The ingest path must take 300,000 events/s on 2 cores, and the flusher
// keep up with it; writing and reading hot values is a small part of
// either. Benchmarks report events/s per core.

const benchEvents = 1000

func reportEvents(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchEvents/b.Elapsed().Seconds(), "events/s")
}

// benchEventList returns benchEvents raw events as a bulk write brings
// them, with JSON payloads of about 100 bytes.
func benchEventList(ingestTime time.Time) []Event {
	evs := make([]Event, benchEvents)
	for i := range evs {
		evs[i] = Event{
			Payload:        fmt.Appendf(nil, `{"user_id":"u-%06d","action":"click","page":"/products/%05d","ref":"search","value":%d.25}`, i, i%50000, i%1000),
			Partition:      int32(i % 8),
			EventTime:      time.UnixMilli(1700000000000 + int64(i)).UTC(),
			IngestTime:     ingestTime,
			IdempotencyKey: fmt.Sprintf("evt-%08d", i),
		}
	}
	return evs
}

func BenchmarkAppendEventValue(b *testing.B) {
	evs := benchEventList(time.Now())
	buf := make([]byte, 0, 200*benchEvents)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, ev := range evs {
			buf = AppendEventValue(buf, ev)
		}
	}
	reportEvents(b)
}

func BenchmarkArrowBuilderRows(b *testing.B) {
	schema, rows := hotrowtest.BenchRows(benchEvents)
	values := make([][]byte, len(rows))
	for i, row := range rows {
		values[i] = convert(b, schema, string(row))
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
	evs := benchEventList(time.Now())
	values := make([][]byte, len(evs))
	for i, ev := range evs {
		values[i] = AppendEventValue(nil, ev)
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
	value := AppendEventValue(nil, Event{Payload: []byte(strings.Repeat("x", 100)), IngestTime: time.Now(), IdempotencyKey: "k"})
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
