package codec

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/zombi-db/zombi/hotrow"
)

// Limits of producer requests.
const (
	// MaxBulkRecords is the most records one bulk request may hold.
	MaxBulkRecords = 100_000
	// MaxIdempotencyKeyLen is the longest idempotency key, in bytes.
	MaxIdempotencyKeyLen = 256
	// MaxTimestampMs is the latest event time a producer may give:
	// 9999-12-31T23:59:59.999Z in milliseconds since the Unix epoch. The
	// earliest is the epoch itself.
	MaxTimestampMs = 253402300799999
)

// Envelope is one event as a producer sends it to an event table.
type Envelope struct {
	// Payload is the event's bytes. Decoders may return a sub-slice of the
	// request body: keep the body unmodified while the Envelope is in use.
	Payload []byte
	// Partition is the producer's partition, 0..math.MaxInt32.
	Partition int32
	// EventTime is the producer's event time, in UTC with millisecond
	// precision; the zero Time when the producer gave none.
	EventTime time.Time
	// IdempotencyKey is empty when the producer gave none.
	IdempotencyKey string
}

// Event returns the raw event e is when accepted at ingestTime, to be
// stored with hotrow.AppendEventValue. Without an event time its event
// time is the ingest time.
func (e Envelope) Event(ingestTime time.Time) hotrow.Event {
	return hotrow.Event{
		Partition:      e.Partition,
		EventTime:      e.EventTime,
		IngestTime:     ingestTime,
		IdempotencyKey: e.IdempotencyKey,
		Payload:        e.Payload,
	}
}

// Envelope members, as bits of a set.
const (
	memberPayload = 1 << iota
	memberPayloadBase64
	memberPartition
	memberTimestamp
	memberKey
)

// DecodeEnvelopeJSON decodes the JSON body of a single event write:
//
//	{"payload": ..., "payload_base64": "...", "partition": 0,
//	 "timestamp_ms": 1700000000000, "idempotency_key": "..."}
//
// Exactly one of payload and payload_base64 is required. A string payload
// is stored as its UTF-8 bytes; any other JSON value (object, array,
// number, boolean) as its JSON text without insignificant whitespace, its
// numbers and escapes kept as written. payload_base64 is standard base64
// with padding. partition is an integer in 0..2147483647, default 0.
// timestamp_ms is an integer in 0..MaxTimestampMs. idempotency_key is a
// string of at most MaxIdempotencyKeyLen bytes; "" means none. A member
// whose value is null counts as absent; so a JSON null cannot be a payload
// (send it as payload_base64 "bnVsbA=="). Unknown and repeated members are
// errors.
//
// Errors are *SyntaxError for a body that is not JSON and *FieldError,
// naming the member, for one that is not a valid envelope.
func DecodeEnvelopeJSON(body []byte) (Envelope, error) {
	s := scanner{data: body}
	env, ferr, err := decodeEnvelope(&s)
	if err != nil {
		return Envelope{}, err
	}
	if err := s.end(); err != nil {
		return Envelope{}, err
	}
	if ferr != nil {
		return Envelope{}, ferr
	}
	return env, nil
}

// decodeEnvelope reads the envelope object at s.pos. A syntax error ends
// it (err); otherwise it reads the whole object and reports the first
// invalid member in ferr.
func decodeEnvelope(s *scanner) (env Envelope, ferr *FieldError, err error) {
	if c := s.peek(); c != '{' {
		if c == 0 {
			return Envelope{}, nil, s.unexpected("a JSON object")
		}
		if err := s.skipValue(); err != nil {
			return Envelope{}, nil, err
		}
		return Envelope{}, fieldErr("", "an event must be a JSON object, not "+jsonKind(c)), nil
	}
	s.pos++
	var seen, present int
	fail := func(e *FieldError) {
		if ferr == nil {
			ferr = e
		}
	}
	first := true
	for {
		key, more, err := s.nextMember(&first)
		if err != nil {
			return Envelope{}, nil, err
		}
		if !more {
			break
		}
		var bit int
		switch string(key) {
		case "payload":
			bit = memberPayload
		case "payload_base64":
			bit = memberPayloadBase64
		case "partition":
			bit = memberPartition
		case "timestamp_ms":
			bit = memberTimestamp
		case "idempotency_key":
			bit = memberKey
		default:
			fail(fieldErr(keyName(key), "unknown field (an event has payload, payload_base64, partition, timestamp_ms, idempotency_key)"))
			if err := s.skipValue(); err != nil {
				return Envelope{}, nil, err
			}
			continue
		}
		if seen&bit != 0 {
			fail(fieldErr(string(key), "repeated field"))
			if err := s.skipValue(); err != nil {
				return Envelope{}, nil, err
			}
			continue
		}
		seen |= bit
		c := s.at()
		if c == 'n' {
			if err := s.literal("null"); err != nil {
				return Envelope{}, nil, err
			}
			continue
		}
		present |= bit
		var e *FieldError
		switch bit {
		case memberPayload:
			e, err = decodePayload(s, &env)
		case memberPayloadBase64:
			e, err = decodePayloadBase64(s, &env)
		case memberPartition:
			var v int64
			v, e, err = readInt(s, "partition", 0, math.MaxInt32)
			env.Partition = int32(v)
		case memberTimestamp:
			var v int64
			v, e, err = readInt(s, "timestamp_ms", 0, MaxTimestampMs)
			if e == nil && err == nil {
				env.EventTime = time.UnixMilli(v).UTC()
			}
		case memberKey:
			e, err = decodeKey(s, &env)
		}
		if err != nil {
			return Envelope{}, nil, err
		}
		if e != nil {
			fail(e)
		}
	}
	if ferr != nil {
		return Envelope{}, ferr, nil
	}
	switch present & (memberPayload | memberPayloadBase64) {
	case 0:
		return Envelope{}, fieldErr("payload", "required: give payload or payload_base64"), nil
	case memberPayload | memberPayloadBase64:
		return Envelope{}, fieldErr("payload_base64", "give payload or payload_base64, not both"), nil
	}
	return env, nil, nil
}

func decodePayload(s *scanner, env *Envelope) (*FieldError, error) {
	if s.at() == '"' {
		raw, escaped, err := s.readString()
		if err != nil {
			return nil, err
		}
		env.Payload = unquote(raw, escaped)
		if env.Payload == nil {
			env.Payload = []byte{}
		}
		return nil, nil
	}
	start := s.pos
	s.spaced = false
	if err := s.skipValue(); err != nil {
		return nil, err
	}
	env.Payload = s.data[start:s.pos]
	if s.spaced {
		env.Payload = compactJSON(env.Payload)
	}
	return nil, nil
}

func decodePayloadBase64(s *scanner, env *Envelope) (*FieldError, error) {
	c := s.at()
	if c != '"' {
		if err := s.skipValue(); err != nil {
			return nil, err
		}
		return fieldErr("payload_base64", "must be a base64 string, not "+jsonKind(c)), nil
	}
	raw, escaped, err := s.readString()
	if err != nil {
		return nil, err
	}
	text := unquote(raw, escaped)
	p := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(p, text)
	if err != nil {
		return fieldErr("payload_base64", "invalid base64 (standard alphabet, padded): "+err.Error()), nil
	}
	env.Payload = p[:n]
	return nil, nil
}

func decodeKey(s *scanner, env *Envelope) (*FieldError, error) {
	c := s.at()
	if c != '"' {
		if err := s.skipValue(); err != nil {
			return nil, err
		}
		return fieldErr("idempotency_key", "must be a string, not "+jsonKind(c)), nil
	}
	raw, escaped, err := s.readString()
	if err != nil {
		return nil, err
	}
	key := unquote(raw, escaped)
	if len(key) > MaxIdempotencyKeyLen {
		return fieldErr("idempotency_key", fmt.Sprintf("longer than %d bytes", MaxIdempotencyKeyLen)), nil
	}
	env.IdempotencyKey = string(key)
	return nil, nil
}

// CheckIdempotencyKey checks an idempotency key given outside a body, such
// as an Idempotency-Key header, by the rules of envelope keys: valid UTF-8
// of at most MaxIdempotencyKeyLen bytes. name names it in the error.
func CheckIdempotencyKey(name, key string) error {
	if len(key) > MaxIdempotencyKeyLen {
		return fieldErr(name, fmt.Sprintf("longer than %d bytes", MaxIdempotencyKeyLen))
	}
	if !utf8.ValidString(key) {
		return fieldErr(name, "not valid UTF-8")
	}
	return nil
}

// readInt reads an integer in lo..hi at s.pos for the named member.
func readInt(s *scanner, name string, lo, hi int64) (int64, *FieldError, error) {
	c := s.at()
	if c != '-' && !isDigit(c) {
		if err := s.skipValue(); err != nil {
			return 0, nil, err
		}
		return 0, fieldErr(name, fmt.Sprintf("must be an integer in %d..%d, not %s", lo, hi, jsonKind(c))), nil
	}
	text, isInt, err := s.readNumber()
	if err != nil {
		return 0, nil, err
	}
	if !isInt {
		return 0, fieldErr(name, fmt.Sprintf("must be an integer in %d..%d, not %s", lo, hi, text)), nil
	}
	v, ok := parseInt(text)
	if !ok || v < lo || v > hi {
		return 0, fieldErr(name, fmt.Sprintf("%s is out of range %d..%d", text, lo, hi)), nil
	}
	return v, nil, nil
}

// parseInt parses a decimal integer: an optional '-' and digits. ok is
// false on overflow or bad syntax.
func parseInt(text []byte) (int64, bool) {
	neg := len(text) > 0 && text[0] == '-'
	if neg {
		text = text[1:]
	}
	if len(text) == 0 || len(text) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range text {
		if !isDigit(c) {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// DecodeBulkJSON decodes a bulk body {"records": [envelope, ...]} (a bare
// array of envelopes is accepted too). envs has one entry per record, in
// order; errs lists the invalid records by index, and their entries in
// envs are the zero Envelope and must not be written. err rejects the body
// as a whole: not JSON (*SyntaxError), not of that shape (*FieldError), or
// more than MaxBulkRecords records (wraps ErrTooManyRecords).
func DecodeBulkJSON(body []byte) (envs []Envelope, errs []RecordError, err error) {
	envs = make([]Envelope, 0, min(len(body)/128+1, 4096))
	err = EachBulkJSON(body, collect(&envs, &errs))
	if err != nil {
		return nil, nil, err
	}
	return envs, errs, nil
}

// BulkFunc receives the records of a bulk body in order: a valid record's
// Envelope with bad nil, or an invalid record's error with the zero
// Envelope. Payload and IdempotencyKey may alias the body. A non-nil error
// stops the decoding, which returns it.
type BulkFunc func(env Envelope, bad *RecordError) error

// collect is the BulkFunc of the Decode functions.
func collect(envs *[]Envelope, errs *[]RecordError) BulkFunc {
	return func(env Envelope, bad *RecordError) error {
		if bad != nil {
			*errs = append(*errs, *bad)
		}
		*envs = append(*envs, env)
		return nil
	}
}

// EachBulkJSON decodes a bulk body as DecodeBulkJSON does, passing each
// record to fn as it is decoded instead of collecting them: what fn does
// not keep of a record is garbage at once. fn may have seen records of a
// body that turns out to be invalid further on.
func EachBulkJSON(body []byte, fn BulkFunc) error {
	s := scanner{data: body}
	inObject, err := openRecords(&s)
	if err != nil {
		return err
	}
	first := true
	for i := 0; ; i++ {
		more, err := s.nextElement(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if i == MaxBulkRecords {
			return ErrTooManyRecords
		}
		env, ferr, err := decodeEnvelope(&s)
		if err != nil {
			return err
		}
		var bad *RecordError
		if ferr != nil {
			bad = &RecordError{Index: i, Field: ferr.Path, Reason: ferr.Reason}
		}
		if err := fn(env, bad); err != nil {
			return err
		}
	}
	return closeRecords(&s, inObject)
}

// CountBulk counts the records of a JSON bulk body (ndjson false: an
// array or {"records": [...]}) or of an NDJSON one, as the Decode and
// Each functions and SplitBulkRows see them of a body they accept,
// without decoding them: it reads only the structure of a JSON body, at a
// fraction of the cost of decoding it. Its errors are theirs for a body
// that is not of the shape or holds more than MaxBulkRecords records; it
// need not reject a body they reject.
func CountBulk(body []byte, ndjson bool) (int, error) {
	if ndjson {
		n := 0
		if err := ndjsonLines(body, func([]byte) { n++ }); err != nil {
			return 0, err
		}
		return n, nil
	}
	s := scanner{data: body}
	if _, err := openRecords(&s); err != nil {
		return 0, err
	}
	n, ok := countElements(body[s.pos:])
	if n > MaxBulkRecords {
		return 0, ErrTooManyRecords
	}
	if !ok {
		return countChecked(&s)
	}
	return n, nil
}

// countElements counts the elements of the JSON array that b starts in,
// after its '[', from its strings, brackets and commas alone. ok is false
// when b does not hold a well-bracketed array, or n passes MaxBulkRecords.
func countElements(b []byte) (n int, ok bool) {
	depth, empty := 0, true
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			// The closing quote is the next one after an even number
			// of backslashes.
			for {
				j := bytes.IndexByte(b[i+1:], '"')
				if j < 0 {
					return n, false
				}
				i += 1 + j
				k := i - 1
				for b[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
			empty = false
		case '[', '{':
			depth++
			empty = false
		case ']', '}':
			if depth > 0 {
				depth--
				continue
			}
			if c != ']' {
				return n, false
			}
			if !empty {
				n++
			}
			return n, true
		case ',':
			if depth == 0 {
				if n++; n > MaxBulkRecords {
					return n, false
				}
			}
		default:
			empty = false
		}
	}
	return n, false
}

// countChecked counts the records after s.pos, in the records array of a
// bulk body, checking that it is JSON: the count, or more likely the
// error, of a body countElements could not count.
func countChecked(s *scanner) (int, error) {
	first := true
	for n := 0; ; n++ {
		more, err := s.nextElement(&first)
		if err != nil {
			return 0, err
		}
		if !more {
			return n, nil
		}
		if n == MaxBulkRecords {
			return 0, ErrTooManyRecords
		}
		// A record's members are one level deeper than a payload's own
		// nesting, which is what the decoders limit: skip the record at
		// level -1 so that no body they take is refused here.
		if err := s.skip(-1); err != nil {
			return 0, err
		}
	}
}

// openRecords moves s into the records array of a bulk body: past its '['
// in {"records": [ or in a bare [. inObject tells which.
func openRecords(s *scanner) (inObject bool, err error) {
	switch c := s.peek(); c {
	case '[':
		s.pos++
		return false, nil
	case '{':
		s.pos++
	case 0:
		return false, s.unexpected("a JSON object")
	default:
		if err := s.skipValue(); err != nil {
			return false, err
		}
		return false, fieldErr("", `a bulk body must be a JSON object {"records": [...]} or an array, not `+jsonKind(c))
	}
	first := true
	key, more, err := s.nextMember(&first)
	if err != nil {
		return false, err
	}
	if !more {
		return false, fieldErr("records", `required: a bulk body is {"records": [...]}`)
	}
	if string(key) != "records" {
		if err := s.skipValue(); err != nil {
			return false, err
		}
		return false, fieldErr(keyName(key), `unknown field (a bulk body is {"records": [...]})`)
	}
	if c := s.at(); c != '[' {
		if err := s.skipValue(); err != nil {
			return false, err
		}
		return false, fieldErr("records", "must be an array, not "+jsonKind(c))
	}
	s.pos++
	return true, nil
}

// closeRecords checks what follows the records array.
func closeRecords(s *scanner, inObject bool) error {
	if inObject {
		first := false
		key, more, err := s.nextMember(&first)
		if err != nil {
			return err
		}
		if more {
			if err := s.skipValue(); err != nil {
				return err
			}
			if string(key) == "records" {
				return fieldErr("records", "repeated field")
			}
			return fieldErr(keyName(key), `unknown field (a bulk body is {"records": [...]})`)
		}
	}
	return s.end()
}

// DecodeBulkNDJSON decodes a bulk body of newline-delimited envelopes, one
// JSON object a line. Lines are split at '\n' (a '\r' before it is
// whitespace); blank lines are skipped and are not records; the last line
// needs no newline. Results are as for DecodeBulkJSON, except that a line
// that is not JSON is an invalid record, not an invalid body.
func DecodeBulkNDJSON(body []byte) (envs []Envelope, errs []RecordError, err error) {
	envs = make([]Envelope, 0, min(len(body)/128+1, 4096))
	if err := EachBulkNDJSON(body, collect(&envs, &errs)); err != nil {
		return nil, nil, err
	}
	return envs, errs, nil
}

// EachBulkNDJSON is DecodeBulkNDJSON passing each record to fn, as
// EachBulkJSON does.
func EachBulkNDJSON(body []byte, fn BulkFunc) error {
	i := 0
	var fnErr error
	err := ndjsonLines(body, func(line []byte) {
		if fnErr != nil {
			return
		}
		s := scanner{data: line}
		s.skipSpace()
		env, ferr, err := decodeEnvelope(&s)
		if err == nil {
			err = s.end()
		}
		var bad *RecordError
		switch {
		case err != nil:
			bad = &RecordError{Index: i, Reason: err.Error()}
			env = Envelope{}
		case ferr != nil:
			bad = &RecordError{Index: i, Field: ferr.Path, Reason: ferr.Reason}
		}
		i++
		fnErr = fn(env, bad)
	})
	if err != nil {
		return err
	}
	return fnErr
}

// ndjsonLines calls fn with each non-blank line of an NDJSON body: lines
// end at '\n' (a '\r' before it is whitespace), blank lines are skipped and
// the last line needs no newline. More than MaxBulkRecords lines is
// ErrTooManyRecords.
func ndjsonLines(body []byte, fn func(line []byte)) error {
	n := 0
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		s := scanner{data: line}
		if s.skipSpace(); s.pos == len(line) {
			continue // blank
		}
		if n == MaxBulkRecords {
			return ErrTooManyRecords
		}
		n++
		fn(line)
	}
	return nil
}
