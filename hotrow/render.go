package hotrow

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/apache/iceberg-go"
)

// ValueJSON renders the hot value of event seq of table as a JSON object
// keyed by the column names of schema, the table's current schema, in
// schema order; columns without a value are null. Values map to columns as
// in ArrowBuilder.Append and are written in the forms package codec's
// Converter accepts, so a rendered typed row converts back to the same
// value:
//
//	boolean, int, long     JSON true/false, numbers
//	float, double          JSON numbers (shortest exact form), or the strings
//	                       "NaN", "Infinity", "-Infinity"
//	decimal(P,S)           a string with S fraction digits: "-12.50"
//	date, time             "2024-01-31", "13:45:00.123456" (fraction only if nonzero)
//	timestamp[_ns]         "2024-01-31T13:45:00.123456" (no offset)
//	timestamptz[_ns]       "2024-01-31T13:45:00.123456Z"
//	string, uuid           strings; UUIDs in lower case
//	fixed, binary          standard base64
//	struct, list           objects, arrays
//	map                    an object for string keys, else [{"key":k,"value":v}, ...]
//
// For a raw event, payload is the payload as a string when it is valid
// UTF-8 (and absent otherwise), and payload_base64 (named after the payload
// column) always holds it in base64, so binary payloads survive.
func ValueJSON(schema *iceberg.Schema, table string, seq uint64, value []byte) ([]byte, error) {
	root, err := cachedNode(schema)
	if err != nil {
		return nil, err
	}
	if len(value) == 0 {
		return nil, fmt.Errorf("%w: empty", errValue)
	}
	switch value[0] {
	case FormatEvent:
		return eventJSON(root, table, seq, value)
	case FormatRow:
	default:
		return nil, fmt.Errorf("%w: unknown format %d", errValue, value[0])
	}
	r := valueReader{b: value}
	rowHeader(&r)
	fields := structFields(&r, 0, nil)
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the row", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	var path Path
	return appendStructJSON(make([]byte, 0, 2*len(value)+16*len(root.Fields)), root, fields, &path)
}

// nodeCache holds the prepared nodes of recently used schemas, so that
// rendering many values of one table prepares its schema once.
var nodeCache struct {
	sync.Mutex
	m map[*iceberg.Schema]*Node
}

func cachedNode(schema *iceberg.Schema) (*Node, error) {
	nodeCache.Lock()
	n, ok := nodeCache.m[schema]
	nodeCache.Unlock()
	if ok {
		return n, nil
	}
	n, err := SchemaNode(schema)
	if err != nil {
		return nil, err
	}
	nodeCache.Lock()
	if nodeCache.m == nil || len(nodeCache.m) >= 256 {
		nodeCache.m = make(map[*iceberg.Schema]*Node)
	}
	nodeCache.m[schema] = n
	nodeCache.Unlock()
	return n, nil
}

func eventJSON(root *Node, table string, seq uint64, value []byte) ([]byte, error) {
	ev, err := DecodeEventValue(value)
	if err != nil {
		return nil, err
	}
	ec := eventColumnsOf(root)
	if ec.err != nil {
		return nil, ec.err
	}
	dst := make([]byte, 0, 192+len(table)+len(ev.IdempotencyKey)+len(ev.Payload)*7/3)
	dst = append(dst, '{')
	for i, f := range root.Fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		if ec.field[i] == EventFieldPayload {
			if utf8.Valid(ev.Payload) {
				dst = appendJSONString(dst, f.Name)
				dst = append(dst, ':')
				dst = appendJSONString(dst, ev.Payload)
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, f.Name+"_base64")
			dst = append(dst, ':', '"')
			dst = base64.StdEncoding.AppendEncode(dst, ev.Payload)
			dst = append(dst, '"')
			continue
		}
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, ':')
		switch ec.field[i] {
		case EventFieldSequence:
			dst = strconv.AppendUint(dst, seq, 10)
		case EventFieldTable:
			dst = appendJSONString(dst, validUTF8(table))
		case EventFieldPartition:
			dst = appendIntText(dst, int64(ev.Partition))
		case EventFieldEventTime:
			dst = appendMicrosJSON(dst, ev.EventTime.UnixMicro(), true)
		case EventFieldIngestTime:
			dst = appendMicrosJSON(dst, ev.IngestTime.UnixMicro(), true)
		case EventFieldIdempotencyKey:
			if ev.IdempotencyKey == "" {
				if ec.requiredKey != "" {
					return nil, fmt.Errorf("required column %s has no value: the event has no idempotency key", f.Name)
				}
				dst = append(dst, "null"...)
			} else {
				dst = appendJSONString(dst, validUTF8(ev.IdempotencyKey))
			}
		default:
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}'), nil
}

func appendMicrosJSON(dst []byte, us int64, utc bool) []byte {
	sec, nsec := splitMicros(us)
	dst = append(dst, '"')
	dst = appendTimestamp(dst, sec, nsec, 6, utc)
	return append(dst, '"')
}

func appendStructJSON(dst []byte, n *Node, fields []fieldValue, path *Path) ([]byte, error) {
	dst = append(dst, '{')
	for i, f := range n.Fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, validUTF8(f.Name))
		dst = append(dst, ':')
		path.PushField(f.Name)
		fv, ok := findField(fields, f.ID)
		if !ok {
			if f.Required {
				return nil, path.errorf("required column has no value (the row was written before it was added?)")
			}
			dst = append(dst, "null"...)
		} else {
			var err error
			if dst, err = appendValueJSON(dst, f, fv.tag, fv.body, path); err != nil {
				return nil, err
			}
		}
		path.Pop()
	}
	return append(dst, '}'), nil
}

// appendValueJSON appends a value, null only when n allows it.
func appendValueJSON(dst []byte, n *Node, tag byte, body []byte, path *Path) ([]byte, error) {
	if tag == tagNull {
		if n.Required {
			return nil, path.errorf("null %s, which the column requires", n.Name)
		}
		return append(dst, "null"...), nil
	}
	if !n.Kind.accepts(tag) {
		return nil, path.errorf("stored %s value does not fit column type %s", tagNames[tag], n.Type)
	}
	r := valueReader{b: body}
	switch n.Kind {
	case KindStruct:
		fields := structFields(&r, 0, nil)
		if r.err != nil {
			return nil, r.err
		}
		return appendStructJSON(dst, n, fields, path)
	case KindList:
		count := r.length()
		dst = append(dst, '[')
		for i := 0; i < count; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			tag := r.byte1()
			body := checkValue(&r, tag, 0)
			if r.err != nil {
				return nil, r.err
			}
			var err error
			path.PushIndex(i)
			if dst, err = appendValueJSON(dst, n.Elem, tag, body, path); err != nil {
				return nil, err
			}
			path.Pop()
		}
		return append(dst, ']'), nil
	case KindMap:
		count := r.length()
		object := n.Key.Kind == KindString
		if object {
			dst = append(dst, '{')
		} else {
			dst = append(dst, '[')
		}
		for i := 0; i < count; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			ktag := r.byte1()
			kbody := checkValue(&r, ktag, 0)
			vtag := r.byte1()
			vbody := checkValue(&r, vtag, 0)
			if r.err != nil {
				return nil, r.err
			}
			if !object {
				dst = append(dst, `{"key":`...)
			}
			var err error
			path.PushIndex(i)
			path.PushField("key")
			if dst, err = appendValueJSON(dst, n.Key, ktag, kbody, path); err != nil {
				return nil, err
			}
			path.Pop()
			if object {
				dst = append(dst, ':')
			} else {
				dst = append(dst, `,"value":`...)
			}
			path.PushField("value")
			if dst, err = appendValueJSON(dst, n.Value, vtag, vbody, path); err != nil {
				return nil, err
			}
			path.Pop()
			path.Pop()
			if !object {
				dst = append(dst, '}')
			}
		}
		if object {
			return append(dst, '}'), nil
		}
		return append(dst, ']'), nil
	case KindUnknown, KindUnsupported:
		return nil, path.errorf("stored %s value for a column of type %s", tagNames[tag], n.Type)
	}
	v, err := readScalar(n, tag, body)
	if err != nil {
		return nil, path.errorf("%v", err)
	}
	switch n.Kind {
	case KindBool:
		return strconv.AppendBool(dst, v.i == 1), nil
	case KindInt, KindLong:
		return appendIntText(dst, v.i), nil
	case KindFloat:
		return appendFloatJSON(dst, v.f, 32), nil
	case KindDouble:
		return appendFloatJSON(dst, v.f, 64), nil
	case KindDecimal:
		dst = append(dst, '"')
		dst = appendDecimalText(dst, decimalFromBytes(v.b), n.Scale)
		return append(dst, '"'), nil
	case KindDate:
		dst = append(dst, '"')
		dst = appendDate(dst, v.i)
		return append(dst, '"'), nil
	case KindTime:
		dst = append(dst, '"')
		dst = appendClock(dst, v.i*1000, 6)
		return append(dst, '"'), nil
	case KindTimestamp, KindTimestampTz:
		return appendMicrosJSON(dst, v.i, n.Kind == KindTimestampTz), nil
	case KindTimestampNs, KindTimestampTzNs:
		sec, nsec := splitNanos(v.i)
		dst = append(dst, '"')
		dst = appendTimestamp(dst, sec, nsec, 9, n.Kind == KindTimestampTzNs)
		return append(dst, '"'), nil
	case KindString:
		return appendJSONString(dst, v.b), nil
	case KindUUID:
		dst = append(dst, '"')
		dst = appendUUID(dst, v.b)
		return append(dst, '"'), nil
	case KindFixed, KindBinary:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.b)
		return append(dst, '"'), nil
	}
	return nil, path.errorf("no JSON form for %s", n.Type)
}

func appendFloatJSON(dst []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	// Like encoding/json (and JavaScript): plain digits from 1e-6 to 1e21,
	// an exponent outside, in the fewest digits that read back exactly.
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bitSize)
	if format == 'e' {
		// e-07 to e-7, e+07 to e+7.
		if n := len(dst) - start; n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
