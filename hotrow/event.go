package hotrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Hot value formats: the first byte of every value.
const (
	// FormatEvent is a raw event of an event table (AppendEventValue).
	FormatEvent byte = 1
	// FormatRow is a row of a typed table (AppendRowHeader).
	FormatRow byte = 2
)

// Field IDs of the event schema.
const (
	EventFieldSequence       = 1
	EventFieldTable          = 2
	EventFieldPartition      = 3
	EventFieldPayload        = 4
	EventFieldEventTime      = 5
	EventFieldIdempotencyKey = 6
	EventFieldIngestTime     = 7
)

// EventSchema returns the schema of the event tables Zombi creates:
//
//	1 sequence         long         required  per-table sequence number
//	2 table            string       required
//	3 partition        int          required
//	4 payload          binary       required
//	5 event_time       timestamptz  required  producer's time, else ingest time
//	6 idempotency_key  string       optional
//	7 ingest_time      timestamptz  required  when Zombi accepted the event
func EventSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: EventFieldSequence, Name: "sequence", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: EventFieldTable, Name: "table", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: EventFieldPartition, Name: "partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: EventFieldPayload, Name: "payload", Type: iceberg.PrimitiveTypes.Binary, Required: true},
		iceberg.NestedField{ID: EventFieldEventTime, Name: "event_time", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: EventFieldIdempotencyKey, Name: "idempotency_key", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: EventFieldIngestTime, Name: "ingest_time", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
	)
}

// EventPartitionSpec returns the partition spec of event tables,
// hour(event_time) named event_time_hour, for schema (EventSchema()).
func EventPartitionSpec(schema *iceberg.Schema) iceberg.PartitionSpec {
	fieldID := 1000
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldBySourceID(EventFieldEventTime, "event_time_hour", iceberg.HourTransform{}, schema, &fieldID))
	if err != nil {
		panic(fmt.Sprintf("hotrow: event partition spec: %v", err)) // only with a schema that is not EventSchema's
	}
	return spec
}

// EventSortOrder returns the sort order of event tables: event_time
// ascending, then sequence ascending.
func EventSortOrder(schema *iceberg.Schema) table.SortOrder {
	for _, id := range []int{EventFieldEventTime, EventFieldSequence} {
		if _, ok := schema.FindFieldByID(id); !ok {
			panic(fmt.Sprintf("hotrow: event sort order: schema has no field %d", id))
		}
	}
	order, err := table.NewSortOrder(1, []table.SortField{
		{SourceIDs: []int{EventFieldEventTime}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst},
		{SourceIDs: []int{EventFieldSequence}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst},
	})
	if err != nil {
		panic(fmt.Sprintf("hotrow: event sort order: %v", err))
	}
	return order
}

// Event is a raw event, as AppendEventValue stores it and DecodeEventValue
// returns it.
type Event struct {
	Partition int32
	// EventTime is the producer's time of the event, IngestTime when Zombi
	// accepted it. A value holds both to the microsecond: DecodeEventValue
	// returns them in UTC, AppendEventValue takes a zero EventTime for
	// IngestTime.
	EventTime  time.Time
	IngestTime time.Time
	// IdempotencyKey is empty when the event has none. It is as stored:
	// not necessarily UTF-8 when it came from an HTTP header.
	IdempotencyKey string
	// Payload is the event's bytes; decoded, a sub-slice of the value.
	Payload []byte
}

// AppendEventValue appends the hot value of raw event e to dst (format 1):
//
//	byte     1 (FormatEvent)
//	varint   ingest time, microseconds since the Unix epoch
//	varint   event time minus ingest time, microseconds (wrapping)
//	varint   partition
//	uvarint  length of the idempotency key, then its bytes (0: none)
//	uvarint  length of the payload, then its bytes
//
// varint is zigzag-encoded, as encoding/binary.AppendVarint writes it;
// every varint is minimal. The table name and sequence are not stored: the
// reader knows them. Times are truncated to microseconds; a zero
// e.EventTime means e.IngestTime.
func AppendEventValue(dst []byte, e Event) []byte {
	ingest := e.IngestTime.UnixMicro()
	event := ingest
	if !e.EventTime.IsZero() {
		event = e.EventTime.UnixMicro()
	}
	dst = append(dst, FormatEvent)
	dst = binary.AppendVarint(dst, ingest)
	dst = binary.AppendVarint(dst, int64(uint64(event)-uint64(ingest)))
	dst = binary.AppendVarint(dst, int64(e.Partition))
	dst = binary.AppendUvarint(dst, uint64(len(e.IdempotencyKey)))
	dst = append(dst, e.IdempotencyKey...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Payload)))
	return append(dst, e.Payload...)
}

// MaxEventValueLen is the most bytes AppendEventValue appends for e.
func MaxEventValueLen(e Event) int {
	return 1 + 3*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64 + len(e.IdempotencyKey) + len(e.Payload)
}

// errValue is wrapped by the errors for values that are not well-formed.
var errValue = errors.New("malformed hot value")

// DecodeEventValue decodes a value AppendEventValue wrote. It rejects
// anything AppendEventValue cannot have written.
func DecodeEventValue(value []byte) (Event, error) {
	r := valueReader{b: value}
	ingest, event, err := r.eventTimes()
	if err != nil {
		return Event{}, err
	}
	partition := r.varint()
	key := r.bytes()
	payload := r.bytes()
	if r.err != nil {
		return Event{}, r.err
	}
	if partition < math.MinInt32 || partition > math.MaxInt32 {
		return Event{}, fmt.Errorf("%w: partition %d out of range", errValue, partition)
	}
	if len(r.b) != 0 {
		return Event{}, fmt.Errorf("%w: %d bytes after the payload", errValue, len(r.b))
	}
	ev := Event{
		Partition:  int32(partition),
		EventTime:  time.UnixMicro(event).UTC(),
		IngestTime: time.UnixMicro(ingest).UTC(),
		Payload:    payload,
	}
	if len(key) > 0 {
		ev.IdempotencyKey = string(key)
	}
	return ev, nil
}

// EventTime returns the event time of a format 1 value, reading only what
// precedes it.
func EventTime(value []byte) (time.Time, error) {
	r := valueReader{b: value}
	_, event, err := r.eventTimes()
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMicro(event).UTC(), nil
}

// eventTimes reads the format byte and the two times of a format 1 value.
func (r *valueReader) eventTimes() (ingest, event int64, err error) {
	if len(r.b) == 0 || r.b[0] != FormatEvent {
		return 0, 0, fmt.Errorf("%w: not a raw event (format %s)", errValue, formatName(r.b))
	}
	r.b = r.b[1:]
	ingest = r.varint()
	delta := r.varint()
	if r.err != nil {
		return 0, 0, r.err
	}
	return ingest, int64(uint64(ingest) + uint64(delta)), nil
}

func formatName(value []byte) string {
	if len(value) == 0 {
		return "none: empty value"
	}
	return fmt.Sprint(value[0])
}

// valueReader reads the parts of a hot value. The first error sticks and
// turns later reads into zero values.
type valueReader struct {
	b   []byte
	err error
}

func (r *valueReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errValue, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *valueReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail("bad varint")
		return 0
	case n > 1 && r.b[n-1] == 0:
		r.fail("varint not minimal")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *valueReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// length reads a length that must not exceed the bytes left.
func (r *valueReader) length() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("length %d beyond the end", n)
		return 0
	}
	return int(n)
}

func (r *valueReader) bytes() []byte {
	n := r.length()
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *valueReader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *valueReader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("unexpected end")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
