package hotrow

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Format 2, a typed row:
//
//	byte     2 (FormatRow)
//	uvarint  schema ID the row was converted with
//	struct   the row's columns (below, without the leading tag)
//
// Every value starts with a tag byte that says how the rest is encoded, so
// a value is read without the writer's schema: by field ID, and with the
// type promotions Iceberg allows (int to long, float to double, wider
// decimals, date to timestamp) when the current schema has evolved.
//
//	tag               encoding after the tag
//	0  null           nothing; only as a list element or map value
//	1  false, 2 true  nothing
//	3  int            varint, in int32 range
//	4  long           varint
//	5  float          4 bytes, IEEE 754 little-endian
//	6  double         8 bytes, IEEE 754 little-endian
//	7  decimal        uvarint scale (<= 38), uvarint n (1..16), n bytes of the
//	                  unscaled value, big-endian two's complement, minimal
//	8  date           varint days since 1970-01-01, years 0000..9999
//	9  time           varint microseconds since midnight
//	10 timestamp      varint microseconds since 1970-01-01T00:00:00, years 0000..9999
//	11 timestamptz    varint microseconds since 1970-01-01T00:00:00Z, years 0000..9999
//	12 timestamp_ns   varint nanoseconds, as 10
//	13 timestamptz_ns varint nanoseconds, as 11
//	14 string         uvarint n, n bytes of UTF-8
//	15 uuid           16 bytes
//	16 fixed          uvarint n, n bytes
//	17 binary         uvarint n, n bytes
//	18 struct         uvarint n, n × (uvarint field ID, non-null value), field
//	                  IDs ascending; absent fields are null
//	19 list           uvarint n, n × value
//	20 map            uvarint n, n × (non-null key value, value)
//
// varints are zigzag, as encoding/binary.AppendVarint writes them, and
// every varint is minimal: a value has exactly one encoding.
const (
	tagNull byte = iota
	tagFalse
	tagTrue
	tagInt
	tagLong
	tagFloat
	tagDouble
	tagDecimal
	tagDate
	tagTime
	tagTimestamp
	tagTimestampTz
	tagTimestampNs
	tagTimestampTzNs
	tagString
	tagUUID
	tagFixed
	tagBinary
	tagStruct
	tagList
	tagMap
	numTags
)

var tagNames = [numTags]string{
	"null", "boolean", "boolean", "int", "long", "float", "double", "decimal", "date", "time",
	"timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns", "string", "uuid", "fixed",
	"binary", "struct", "list", "map",
}

const maxDecimalDigits = 38

// Dates and timestamps are in the years 0000 to 9999, the years RFC 3339
// and Iceberg's text forms can write: from MinUnixSec to MaxUnixSec, and
// from day MinDay to MaxDay since 1970-01-01.
const (
	MinUnixSec int64 = -62167219200 // 0000-01-01T00:00:00Z
	MaxUnixSec int64 = 253402300799 // 9999-12-31T23:59:59Z
	MinDay           = MinUnixSec / 86400
	MaxDay           = MaxUnixSec / 86400
)

// Bounds of timestamps in microseconds.
const (
	minMicros = MinUnixSec * 1e6
	maxMicros = MaxUnixSec*1e6 + 999_999
)

const microsPerDay = 86400 * 1_000_000

// maxDepth bounds the nesting of a value. It is no less than the nesting
// of JSON that package codec accepts, so every row its Converter writes
// reads back.
const maxDepth = 1000

// Writing format 2: AppendRowHeader, then the row's columns as the body of
// a struct: AppendCount with the number of non-null fields, then for each
// of them, by ascending field ID, AppendFieldID and the field's value. A
// value is written by one of the Append functions below; a struct, list or
// map by AppendStruct, AppendList or AppendMap and then its body: a
// struct's as above, a list's count and elements, a map's count and
// entries (a key, never null, then a value). InsertCount puts a count in
// front of the elements or entries written before it was known.
//
// The Append functions do not check what they write: the caller does, and
// the readers reject a value the format does not allow as malformed
// (a date outside MinDay..MaxDay, a time of a day or more, a timestamp in
// microseconds outside the seconds MinUnixSec..MaxUnixSec, a string that
// is not UTF-8, a decimal scale above 38, a map key that is null, ...).

// AppendRowHeader appends the start of a row in the schema with ID
// schemaID: the format byte and the schema ID.
func AppendRowHeader(dst []byte, schemaID int) []byte {
	return binary.AppendUvarint(append(dst, FormatRow), uint64(schemaID))
}

// AppendCount appends the number of fields of a struct, elements of a list
// or entries of a map.
func AppendCount(dst []byte, n int) []byte { return binary.AppendUvarint(dst, uint64(n)) }

// InsertCount inserts count n at dst[at], in front of the elements or
// entries of a list or map appended since at.
func InsertCount(dst []byte, at, n int) []byte {
	var b [binary.MaxVarintLen64]byte
	enc := binary.AppendUvarint(b[:0], uint64(n))
	dst = append(dst, enc...)
	copy(dst[at+len(enc):], dst[at:len(dst)-len(enc)])
	copy(dst[at:], enc)
	return dst
}

// AppendFieldID appends the field ID of the struct field whose value
// follows.
func AppendFieldID(dst []byte, id int) []byte { return binary.AppendUvarint(dst, uint64(id)) }

// AppendNull appends a null list element or map value.
func AppendNull(dst []byte) []byte { return append(dst, tagNull) }

// AppendBool appends a boolean.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, tagTrue)
	}
	return append(dst, tagFalse)
}

// AppendInt appends an int.
func AppendInt(dst []byte, v int32) []byte { return binary.AppendVarint(append(dst, tagInt), int64(v)) }

// AppendLong appends a long.
func AppendLong(dst []byte, v int64) []byte { return binary.AppendVarint(append(dst, tagLong), v) }

// AppendFloat appends a float.
func AppendFloat(dst []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(append(dst, tagFloat), math.Float32bits(v))
}

// AppendDouble appends a double.
func AppendDouble(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(append(dst, tagDouble), math.Float64bits(v))
}

// AppendDecimal appends a decimal of scale scale, as its unscaled value.
func AppendDecimal(dst []byte, scale int, unscaled decimal128.Num) []byte {
	dst = binary.AppendUvarint(append(dst, tagDecimal), uint64(scale))
	var buf [16]byte
	b := appendDecimalBytes(buf[:0], int128{uint64(unscaled.HighBits()), unscaled.LowBits()})
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendDate appends a date, in days since 1970-01-01.
func AppendDate(dst []byte, days int32) []byte {
	return binary.AppendVarint(append(dst, tagDate), int64(days))
}

// AppendTime appends a time, in microseconds since midnight.
func AppendTime(dst []byte, micros int64) []byte {
	return binary.AppendVarint(append(dst, tagTime), micros)
}

// AppendTimestamp appends a timestamp of kind k since 1970-01-01T00:00:00
// (UTC for the tz kinds): in microseconds for KindTimestamp and
// KindTimestampTz, nanoseconds for KindTimestampNs and KindTimestampTzNs.
func AppendTimestamp(dst []byte, k Kind, v int64) []byte {
	return binary.AppendVarint(append(dst, k.tag()), v)
}

// AppendString appends a string.
func AppendString(dst, s []byte) []byte {
	dst = binary.AppendUvarint(append(dst, tagString), uint64(len(s)))
	return append(dst, s...)
}

// AppendUUID appends a UUID.
func AppendUUID(dst []byte, u [16]byte) []byte { return append(append(dst, tagUUID), u[:]...) }

// AppendFixed appends a fixed value.
func AppendFixed(dst, b []byte) []byte {
	dst = binary.AppendUvarint(append(dst, tagFixed), uint64(len(b)))
	return append(dst, b...)
}

// AppendBinary appends a binary value.
func AppendBinary(dst, b []byte) []byte {
	dst = binary.AppendUvarint(append(dst, tagBinary), uint64(len(b)))
	return append(dst, b...)
}

// AppendStruct appends the start of a struct; its body follows.
func AppendStruct(dst []byte) []byte { return append(dst, tagStruct) }

// AppendList appends the start of a list; its count and elements follow.
func AppendList(dst []byte) []byte { return append(dst, tagList) }

// AppendMap appends the start of a map; its count and entries follow.
func AppendMap(dst []byte) []byte { return append(dst, tagMap) }

// fieldValue is one field of an encoded struct: its tag and the bytes of
// its value after the tag.
type fieldValue struct {
	id   int
	tag  byte
	body []byte
}

// rowHeader reads the format byte and schema ID of a format 2 value.
func rowHeader(r *valueReader) (schemaID int) {
	if len(r.b) == 0 || r.b[0] != FormatRow {
		r.fail("not a typed row (format %s)", formatName(r.b))
		return 0
	}
	r.b = r.b[1:]
	id := r.uvarint()
	if id > math.MaxInt32 {
		r.fail("schema ID %d out of range", id)
	}
	return int(id)
}

// structFields reads and checks the body of a struct, appending its
// fields to buf.
func structFields(r *valueReader, depth int, buf []fieldValue) []fieldValue {
	n := r.length()
	prev := 0
	for i := 0; i < n && r.err == nil; i++ {
		id := r.uvarint()
		if r.err == nil && (id <= uint64(prev) || id > math.MaxInt32) {
			r.fail("field ID %d out of order", id)
		}
		prev = int(id)
		tag := r.byte1()
		if r.err == nil && tag == tagNull {
			r.fail("null struct field %d", id)
		}
		body := checkValue(r, tag, depth+1)
		buf = append(buf, fieldValue{id: int(id), tag: tag, body: body})
	}
	return buf
}

// checkValue checks and skips the value after tag, returning its bytes.
func checkValue(r *valueReader, tag byte, depth int) []byte {
	if r.err != nil {
		return nil
	}
	if depth > maxDepth {
		r.fail("nested deeper than %d levels", maxDepth)
		return nil
	}
	start := r.b
	switch tag {
	case tagNull, tagFalse, tagTrue:
	case tagInt:
		if v := r.varint(); v < math.MinInt32 || v > math.MaxInt32 {
			r.fail("int %d out of range", v)
		}
	case tagLong, tagTimestampNs, tagTimestampTzNs:
		r.varint()
	case tagFloat:
		r.fixed(4)
	case tagDouble:
		r.fixed(8)
	case tagDecimal:
		if scale := r.uvarint(); scale > maxDecimalDigits {
			r.fail("decimal scale %d out of range", scale)
		}
		b := r.bytes()
		switch {
		case r.err != nil:
		case len(b) == 0 || len(b) > 16:
			r.fail("decimal of %d bytes", len(b))
		case len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0):
			r.fail("decimal bytes not minimal")
		}
	case tagDate:
		if v := r.varint(); v < MinDay || v > MaxDay {
			r.fail("date %d out of range", v)
		}
	case tagTime:
		if v := r.varint(); v < 0 || v >= microsPerDay {
			r.fail("time %d out of range", v)
		}
	case tagTimestamp, tagTimestampTz:
		if v := r.varint(); v < minMicros || v > maxMicros {
			r.fail("timestamp %d out of range", v)
		}
	case tagString:
		if b := r.bytes(); !utf8.Valid(b) {
			r.fail("string is not UTF-8")
		}
	case tagUUID:
		r.fixed(16)
	case tagFixed, tagBinary:
		r.bytes()
	case tagStruct:
		structFields(r, depth, nil)
	case tagList:
		n := r.length()
		for i := 0; i < n && r.err == nil; i++ {
			checkValue(r, r.byte1(), depth+1)
		}
	case tagMap:
		n := r.length()
		for i := 0; i < n && r.err == nil; i++ {
			if k := r.byte1(); k == tagNull {
				r.fail("null map key")
			} else {
				checkValue(r, k, depth+1)
			}
			checkValue(r, r.byte1(), depth+1)
		}
	default:
		r.fail("unknown tag %d", tag)
	}
	if r.err != nil {
		return nil
	}
	return start[:len(start)-len(r.b)]
}

// accepts reports whether a column of kind k can hold a value with tag,
// as written or promoted.
func (k Kind) accepts(tag byte) bool {
	switch k {
	case KindBool:
		return tag == tagFalse || tag == tagTrue
	case KindInt:
		return tag == tagInt
	case KindLong:
		return tag == tagInt || tag == tagLong
	case KindFloat:
		return tag == tagFloat
	case KindDouble:
		return tag == tagFloat || tag == tagDouble
	case KindTimestamp:
		return tag == tagTimestamp || tag == tagDate
	case KindTimestampNs:
		return tag == tagTimestampNs || tag == tagDate
	}
	return k.tag() == tag
}

// tag returns the tag of values of kind k; tagNull for kinds that hold no
// values.
func (k Kind) tag() byte {
	switch k {
	case KindBool:
		return tagTrue
	case KindInt:
		return tagInt
	case KindLong:
		return tagLong
	case KindFloat:
		return tagFloat
	case KindDouble:
		return tagDouble
	case KindDecimal:
		return tagDecimal
	case KindDate:
		return tagDate
	case KindTime:
		return tagTime
	case KindTimestamp:
		return tagTimestamp
	case KindTimestampTz:
		return tagTimestampTz
	case KindTimestampNs:
		return tagTimestampNs
	case KindTimestampTzNs:
		return tagTimestampTzNs
	case KindString:
		return tagString
	case KindUUID:
		return tagUUID
	case KindFixed:
		return tagFixed
	case KindBinary:
		return tagBinary
	case KindStruct:
		return tagStruct
	case KindList:
		return tagList
	case KindMap:
		return tagMap
	}
	return tagNull
}

// scalar is a checked primitive value read for a column, promoted to the
// column's type: i holds booleans (0, 1), ints, longs, dates, times and
// timestamps; f floats and doubles; b decimal bytes, strings, UUIDs,
// fixed and binary values.
type scalar struct {
	i int64
	f float64
	b []byte
}

// readScalar reads the checked primitive value body with tag for a column
// of node n (n.kind.accepts(tag)).
func readScalar(n *Node, tag byte, body []byte) (scalar, error) {
	r := valueReader{b: body}
	var v scalar
	switch tag {
	case tagFalse:
	case tagTrue:
		v.i = 1
	case tagInt, tagLong, tagTime, tagTimestamp, tagTimestampTz, tagTimestampNs, tagTimestampTzNs:
		v.i = r.varint()
	case tagDate:
		v.i = r.varint()
		switch n.Kind {
		case KindTimestamp:
			v.i *= microsPerDay
		case KindTimestampNs:
			if v.i < math.MinInt64/(microsPerDay*1000) || v.i > math.MaxInt64/(microsPerDay*1000) {
				return v, fmt.Errorf("date %s does not fit timestamp_ns", appendDate(nil, v.i))
			}
			v.i *= microsPerDay * 1000
		}
	case tagFloat:
		v.f = float64(math.Float32frombits(le32(r.fixed(4))))
	case tagDouble:
		v.f = math.Float64frombits(le64(r.fixed(8)))
	case tagDecimal:
		scale := int(r.uvarint())
		v.b = r.bytes()
		if scale != n.Scale {
			return v, fmt.Errorf("stored decimal has scale %d, column %s", scale, n.Type)
		}
		if !fitsPrecision(decimalFromBytes(v.b), n.Precision) {
			return v, fmt.Errorf("stored decimal %s does not fit column %s", appendDecimalText(nil, decimalFromBytes(v.b), scale), n.Type)
		}
	case tagString, tagFixed, tagBinary:
		v.b = r.bytes()
		if tag == tagFixed && len(v.b) != n.Length {
			return v, fmt.Errorf("stored fixed value has %d bytes, column %s", len(v.b), n.Type)
		}
	case tagUUID:
		v.b = r.fixed(16)
	}
	return v, r.err
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 {
	return uint64(le32(b)) | uint64(le32(b[4:]))<<32
}

// findField returns the value of field id among fields (ascending IDs).
func findField(fields []fieldValue, id int) (fieldValue, bool) {
	lo, hi := 0, len(fields)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if fields[m].id < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(fields) && fields[lo].id == id {
		return fields[lo], true
	}
	return fieldValue{}, false
}
