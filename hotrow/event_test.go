package hotrow_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"

	. "github.com/zombi-db/zombi/hotrow"
)

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestEventSchema(t *testing.T) {
	s := EventSchema()
	want := `table {
	1: sequence: required long
	2: table: required string
	3: partition: required int
	4: payload: required binary
	5: event_time: required timestamptz
	6: idempotency_key: optional string
	7: ingest_time: required timestamptz
}`
	if got := s.String(); got != want {
		t.Fatalf("EventSchema() =\n%s\nwant\n%s", got, want)
	}

	spec := EventPartitionSpec(s)
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"spec-id":0,"fields":[{"source-id":5,"field-id":1000,"name":"event_time_hour","transform":"hour"}]}`; string(b) != want {
		t.Errorf("EventPartitionSpec = %s, want %s", b, want)
	}

	order := EventSortOrder(s)
	b, err = json.Marshal(order)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"order-id":1,"fields":[{"source-id":5,"transform":"identity","direction":"asc","null-order":"nulls-first"},{"source-id":1,"transform":"identity","direction":"asc","null-order":"nulls-first"}]}`; string(b) != want {
		t.Errorf("EventSortOrder = %s, want %s", b, want)
	}
	if err := order.CheckCompatibility(s); err != nil {
		t.Errorf("sort order does not fit the schema: %v", err)
	}
}

func TestAppendEventValue(t *testing.T) {
	ingest := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC) // 1704164645123456 µs
	for _, tc := range []struct {
		name string
		in   Event
		want []byte
	}{
		{
			"no event time, no key",
			Event{Payload: []byte("hi"), IngestTime: ingest},
			// 1, zigzag(1704164645123456) as varint, delta 0, partition 0, key len 0, payload len 2, "hi"
			[]byte{1, 0x80, 0xd6, 0xfd, 0x84, 0xb8, 0xfb, 0x86, 0x06, 0, 0, 0, 2, 'h', 'i'},
		},
		{
			"event time 1ms earlier, partition 3, key",
			Event{Payload: []byte{}, Partition: 3, EventTime: ingest.Add(-time.Millisecond), IngestTime: ingest, IdempotencyKey: "k"},
			// delta -1000 µs: zigzag 1999 = 0xcf 0x0f; partition zigzag 6
			[]byte{1, 0x80, 0xd6, 0xfd, 0x84, 0xb8, 0xfb, 0x86, 0x06, 0xcf, 0x0f, 6, 1, 'k', 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendEventValue([]byte("prefix"), tc.in)
			if !bytes.Equal(got, append([]byte("prefix"), tc.want...)) {
				t.Fatalf("AppendEventValue = %x, want prefix + %x", got, tc.want)
			}
			ev, err := DecodeEventValue(got[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			wantEvent := tc.in.EventTime
			if wantEvent.IsZero() {
				wantEvent = ingest
			}
			if !ev.IngestTime.Equal(ingest.Truncate(time.Microsecond)) || !ev.EventTime.Equal(wantEvent.Truncate(time.Microsecond)) ||
				ev.Partition != tc.in.Partition || ev.IdempotencyKey != tc.in.IdempotencyKey || !bytes.Equal(ev.Payload, tc.in.Payload) {
				t.Fatalf("DecodeEventValue = %+v, want %+v", ev, tc.in)
			}
			if ev.EventTime.Location() != time.UTC || ev.IngestTime.Location() != time.UTC {
				t.Fatal("times are not in UTC")
			}
			et, err := EventTime(got[len("prefix"):])
			if err != nil || !et.Equal(ev.EventTime) {
				t.Fatalf("EventTime = %v, %v; want %v", et, err, ev.EventTime)
			}
		})
	}
}

func TestEventValueExtremes(t *testing.T) {
	for _, tc := range []struct {
		ingest, event time.Time
	}{
		{time.Unix(0, 0), time.Unix(0, 0)},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Unix(0, 0)},
		{time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{time.UnixMicro(-1 << 62), time.UnixMicro(1<<62 - 1)}, // the delta wraps
		{time.UnixMicro(1<<63 - 1), time.UnixMicro(-1 << 63)},
	} {
		for _, p := range []int32{0, 1, -1, 1<<31 - 1, -1 << 31} {
			in := Event{Payload: bytes.Repeat([]byte{0xab}, 300), Partition: p, EventTime: tc.event, IngestTime: tc.ingest, IdempotencyKey: strings.Repeat("é", 128)}
			v := AppendEventValue(nil, in)
			ev, err := DecodeEventValue(v)
			if err != nil {
				t.Fatal(err)
			}
			if !ev.EventTime.Equal(tc.event) || !ev.IngestTime.Equal(tc.ingest) || ev.Partition != p ||
				ev.IdempotencyKey != in.IdempotencyKey || !bytes.Equal(ev.Payload, in.Payload) {
				t.Fatalf("round trip of %+v at %v = %+v", in, tc.ingest, ev)
			}
		}
	}
}

func TestDecodeEventValueErrors(t *testing.T) {
	good := AppendEventValue(nil, Event{Payload: []byte("p"), Partition: 1, IdempotencyKey: "k", IngestTime: time.Unix(1, 0)})
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty", nil, "not a raw event (format none: empty value)"},
		{"row format", []byte{2, 0, 0}, "not a raw event (format 2)"},
		{"unknown format", []byte{9}, "not a raw event (format 9)"},
		{"truncated varint", good[:2], "bad varint"},
		{"truncated payload", good[:len(good)-1], "beyond the end"},
		{"no payload", good[:len(good)-2], "bad varint"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 bytes after the payload"},
		{"non-minimal varint", []byte{1, 0x80, 0x00, 0, 0, 0, 0}, "varint not minimal"},
		{"overlong varint", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "bad varint"},
		{"partition out of range", []byte{1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0}, "partition 2147483648 out of range"},
		{"huge length", []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "beyond the end"},
	} {
		_, err := DecodeEventValue(tc.value)
		if !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeEventValue(%x) = %v, want %q", tc.name, tc.value, err, tc.want)
		}
	}
	if _, err := EventTime([]byte{1, 0}); err == nil || !strings.Contains(err.Error(), "bad varint") {
		t.Errorf("EventTime of a truncated value: %v", err)
	}
	if _, err := EventTime([]byte{2}); err == nil {
		t.Error("EventTime of a row value: no error")
	}
}

func TestEventPartitionSpecPanicsOnForeignSchema(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	EventPartitionSpec(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.String}))
}

// TestEventKeyNotUTF8 covers keys that came from an HTTP header without
// being checked: readers still produce valid strings.
func TestEventKeyNotUTF8(t *testing.T) {
	value := AppendEventValue(nil, Event{Payload: []byte("p"), IdempotencyKey: "a\xffb", IngestTime: time.Unix(0, 0)})
	ev, err := DecodeEventValue(value)
	if err != nil || ev.IdempotencyKey != "a\xffb" {
		t.Fatalf("DecodeEventValue: %q, %v", ev.IdempotencyKey, err)
	}
	rendered, err := ValueJSON(EventSchema(), "t", 1, value)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(rendered) || !bytes.Contains(rendered, []byte(`"idempotency_key":"a`+"\uFFFD"+`b"`)) {
		t.Fatalf("ValueJSON = %s", rendered)
	}
}
