package codec

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Protobuf bodies are decoded with protowire rather than through the
// generated ingestpb types: payloads stay sub-slices of the body and
// nothing is allocated per record beyond the Envelope. The decoder accepts
// and rejects exactly what proto.Unmarshal does for zombi.v1.Event and
// zombi.v1.BulkWriteRequest (a test and a fuzz target check it against
// the generated code): unknown fields and known fields with another wire
// type are skipped, the last of a repeated scalar wins, and strings,
// including header keys and values, must be valid UTF-8.

// errProto is the error for a body that is not a valid message.
var errProto = errors.New("invalid Protobuf message")

// protoFields are the field numbers of an event message.
type protoFields struct {
	payload, partition, timestamp, key, headers protowire.Number
}

var (
	eventFields     = protoFields{payload: 1, timestamp: 2, key: 3, headers: 4} // zombi.v1.Event: no partition
	bulkEventFields = protoFields{payload: 1, partition: 2, timestamp: 3, key: 4, headers: 5}
)

// protoEvent is an event message as decoded, before validation.
type protoEvent struct {
	payload     []byte
	partition   int32
	timestampMs int64
	key         []byte
}

// DecodeEnvelopeProto decodes the body of a single write as a
// zombi.v1.Event. partitionHeader is the X-Partition header: empty means
// partition 0, otherwise it must be a decimal integer in 0..2147483647.
// timestamp_ms 0 (Protobuf's default) means no event time; otherwise it
// must be in 1..MaxTimestampMs. Headers are accepted and ignored. Errors
// are *FieldError, with Path "X-Partition" for a bad header and "" for a
// body that is not a valid message.
func DecodeEnvelopeProto(body []byte, partitionHeader string) (Envelope, error) {
	partition, err := parsePartitionHeader(partitionHeader)
	if err != nil {
		return Envelope{}, err
	}
	ev, err := decodeProtoEvent(body, eventFields)
	if err != nil {
		return Envelope{}, fieldErr("", err.Error())
	}
	ev.partition = partition
	env, ferr := ev.envelope()
	if ferr != nil {
		return Envelope{}, ferr
	}
	return env, nil
}

func parsePartitionHeader(h string) (int32, error) {
	if h == "" {
		return 0, nil
	}
	var v int64
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isDigit(c) || i >= 10 {
			return 0, fieldErr("X-Partition", fmt.Sprintf("must be an integer in 0..%d, not %q", math.MaxInt32, h))
		}
		v = v*10 + int64(c-'0')
	}
	if v > math.MaxInt32 {
		return 0, fieldErr("X-Partition", fmt.Sprintf("%s is out of range 0..%d", h, math.MaxInt32))
	}
	return int32(v), nil
}

// DecodeBulkProto decodes a bulk body, a zombi.v1.BulkWriteRequest.
// Results are as for DecodeBulkJSON; each record is validated as in
// DecodeEnvelopeProto, its partition must be 0 or more. err is a
// *FieldError for a body that is not a valid message, or wraps
// ErrTooManyRecords.
func DecodeBulkProto(body []byte) (envs []Envelope, errs []RecordError, err error) {
	n, err := CountBulkProto(body)
	if err != nil {
		return nil, nil, err
	}
	envs = make([]Envelope, 0, n)
	if err := eachBulkProto(body, collect(&envs, &errs)); err != nil {
		return nil, nil, err
	}
	return envs, errs, nil
}

// CountBulkProto counts the records of a bulk body, a
// zombi.v1.BulkWriteRequest, without decoding them; its errors are
// DecodeBulkProto's for a body that is not a message or holds more than
// MaxBulkRecords records.
func CountBulkProto(body []byte) (int, error) {
	n, err := countBulkProto(body)
	if err != nil {
		return 0, fieldErr("", err.Error())
	}
	if n > MaxBulkRecords {
		return 0, ErrTooManyRecords
	}
	return n, nil
}

// EachBulkProto is DecodeBulkProto passing each record to fn, as
// EachBulkJSON does.
func EachBulkProto(body []byte, fn BulkFunc) error {
	if _, err := CountBulkProto(body); err != nil {
		return err
	}
	return eachBulkProto(body, fn)
}

// eachBulkProto is EachBulkProto on a body CountBulkProto accepted.
func eachBulkProto(body []byte, fn BulkFunc) error {
	i := 0
	for b := body; len(b) > 0; {
		num, typ, n := consumeTag(b)
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			m, n := protowire.ConsumeBytes(b)
			b = b[n:]
			ev, err := decodeProtoEvent(m, bulkEventFields)
			if err != nil {
				return fieldErr("", fmt.Sprintf("record %d: %v", i, err))
			}
			env, ferr := ev.envelope()
			var bad *RecordError
			if ferr != nil {
				bad = &RecordError{Index: i, Field: ferr.Path, Reason: ferr.Reason}
			}
			i++
			if err := fn(env, bad); err != nil {
				return err
			}
			continue
		}
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	return nil
}

// countBulkProto checks the framing of a BulkWriteRequest (not its
// records' contents) and counts its records.
func countBulkProto(b []byte) (int, error) {
	count := 0
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return 0, errProto
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			count++
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, errProto
		}
		b = b[n:]
	}
	return count, nil
}

// consumeTag reads a field's tag, rejecting what proto.Unmarshal rejects:
// a bad varint, field number 0 or above the maximum, and an end-group tag
// outside a group.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, n
	}
	num, typ := v>>3, protowire.Type(v&7)
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) || typ == protowire.EndGroupType {
		return 0, 0, -1
	}
	return protowire.Number(num), typ, n
}

// decodeProtoEvent decodes an Event or BulkEvent message.
func decodeProtoEvent(b []byte, f protoFields) (protoEvent, error) {
	var ev protoEvent
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protoEvent{}, errProto
		}
		b = b[n:]
		switch {
		case num == f.payload && typ == protowire.BytesType:
			ev.payload, n = protowire.ConsumeBytes(b)
		case num == f.partition && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			ev.partition = int32(v)
		case num == f.timestamp && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			ev.timestampMs = int64(v)
		case num == f.key && typ == protowire.BytesType:
			ev.key, n = protowire.ConsumeBytes(b)
			if n >= 0 && !utf8.Valid(ev.key) {
				return protoEvent{}, errors.New("idempotency_key is not valid UTF-8")
			}
		case num == f.headers && typ == protowire.BytesType:
			var entry []byte
			entry, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				if err := checkHeaderEntry(entry); err != nil {
					return protoEvent{}, err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protoEvent{}, errProto
		}
		b = b[n:]
	}
	return ev, nil
}

// checkHeaderEntry checks an entry of the map<string, string> headers.
func checkHeaderEntry(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errProto
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			var s []byte
			s, n = protowire.ConsumeBytes(b)
			if n >= 0 && !utf8.Valid(s) {
				return errors.New("a header is not valid UTF-8")
			}
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errProto
		}
		b = b[n:]
	}
	return nil
}

// envelope validates a decoded event message.
func (ev protoEvent) envelope() (Envelope, *FieldError) {
	if ev.partition < 0 {
		return Envelope{}, fieldErr("partition", fmt.Sprintf("%d is out of range 0..%d", ev.partition, math.MaxInt32))
	}
	env := Envelope{Payload: ev.payload, Partition: ev.partition}
	if env.Payload == nil {
		env.Payload = []byte{}
	}
	switch {
	case ev.timestampMs < 0 || ev.timestampMs > MaxTimestampMs:
		return Envelope{}, fieldErr("timestamp_ms", fmt.Sprintf("%d is out of range 0..%d", ev.timestampMs, int64(MaxTimestampMs)))
	case ev.timestampMs > 0:
		env.EventTime = time.UnixMilli(ev.timestampMs).UTC()
	}
	if len(ev.key) > MaxIdempotencyKeyLen {
		return Envelope{}, fieldErr("idempotency_key", fmt.Sprintf("longer than %d bytes", MaxIdempotencyKeyLen))
	}
	env.IdempotencyKey = string(ev.key)
	return env, nil
}
