package hotrow_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"

	. "github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/hotrow/hotrowtest"
	"github.com/zombi-db/zombi/ingest/codec"
)

// The fuzz targets check properties, not only the absence of panics. Seed
// inputs come from f.Add below and from testdata/fuzz/<FuzzName>/.
// Run one with, for example:
//
//	go test ./hotrow -run '^$' -fuzz '^FuzzDecodeValue$' -fuzztime 20s

func FuzzEventValue(f *testing.F) {
	f.Add(int32(0), int64(0), int64(0), "", []byte("p"))
	f.Add(int32(7), int64(1700000000123000), int64(-1000), "key", []byte{0xff, 0})
	f.Add(int32(-1<<31), int64(-1<<63), int64(1<<63-1), strings.Repeat("k", 256), []byte{})
	f.Fuzz(func(t *testing.T, partition int32, ingestMicros, eventMicros int64, key string, payload []byte) {
		ingest := time.UnixMicro(ingestMicros)
		in := Event{Payload: payload, Partition: partition, EventTime: time.UnixMicro(eventMicros), IngestTime: ingest, IdempotencyKey: key}
		value := AppendEventValue([]byte{0xaa}, in)[1:]
		if len(value) > MaxEventValueLen(in) {
			t.Fatalf("value of %+v is %d bytes, MaxEventValueLen says %d", in, len(value), MaxEventValueLen(in))
		}
		ev, err := DecodeEventValue(value)
		if err != nil {
			t.Fatalf("DecodeEventValue(AppendEventValue(%+v)): %v", in, err)
		}
		wantEvent := in.EventTime
		if wantEvent.IsZero() {
			wantEvent = ingest
		}
		if ev.Partition != partition || !ev.IngestTime.Equal(ingest) || !ev.EventTime.Equal(wantEvent) ||
			ev.IdempotencyKey != key || !bytes.Equal(ev.Payload, payload) {
			t.Fatalf("round trip of %+v: %+v", in, ev)
		}
		et, err := EventTime(value)
		if err != nil || !et.Equal(wantEvent) {
			t.Fatalf("EventTime = %v, %v; want %v", et, err, wantEvent)
		}
	})
}

// FuzzDecodeValue feeds arbitrary bytes to the readers of hot values.
func FuzzDecodeValue(f *testing.F) {
	f.Add(AppendEventValue(nil, Event{Payload: []byte("p"), Partition: 3, IdempotencyKey: "k", IngestTime: time.Unix(1, 0)}))
	c, err := codec.NewConverter(hotrowtest.AllTypesSchema(), codec.ConverterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, row := range []string{hotrowtest.AllTypesRow, `{"id":1}`, `{"id":1,"address":{"street":"s","zip":1}}`} {
		v, _, err := c.Convert([]byte(row))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte{2, 0, 1, 1, TagDecimal, 2, 1, 0x80})
	schemas := []struct {
		name   string
		schema func() *iceberg.Schema
	}{{"events", EventSchema}, {"all types", hotrowtest.AllTypesSchema}}
	mem := memory.NewGoAllocator()
	f.Fuzz(func(t *testing.T, value []byte) {
		// A raw event that decodes is in its one canonical encoding.
		if ev, err := DecodeEventValue(value); err == nil {
			if again := AppendEventValue(nil, ev); !bytes.Equal(again, value) {
				t.Fatalf("DecodeEventValue(%x) = %+v, which encodes as %x", value, ev, again)
			}
		}
		// Arrow and JSON readers agree on what they accept.
		for _, s := range schemas {
			schema := s.schema()
			b, err := NewArrowBuilder(mem, schema, "t")
			if err != nil {
				t.Fatal(err)
			}
			appendErr := b.Append(1, value)
			rendered, renderErr := ValueJSON(schema, "t", 1, value)
			if (appendErr == nil) != (renderErr == nil) {
				t.Fatalf("%s: %x: Append: %v; ValueJSON: %v", s.name, value, appendErr, renderErr)
			}
			if renderErr == nil && !json.Valid(rendered) {
				t.Fatalf("%s: ValueJSON(%x) rendered invalid JSON %q", s.name, value, rendered)
			}
			rec := b.NewRecord()
			hotrowtest.Validate(t, rec)
			rec.Release()
			b.Release()
		}
	})
}
