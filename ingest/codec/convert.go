package codec

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/zombi-db/zombi/hotrow"
)

// ConverterOptions configure a Converter.
type ConverterOptions struct {
	// DropUnknown ignores object members that name no field, at any depth,
	// instead of rejecting the row.
	DropUnknown bool
	// SkipEmptyUnknown ignores members that name no field and hold null,
	// [] or {}: values that do not say what column they would need (a
	// table that evolves with its data gets the column once one does).
	SkipEmptyUnknown bool
	// ExactFloats refuses for a float column a number that a float cannot
	// hold exactly, instead of rounding it (a table that evolves with its
	// data widens the column to double for it).
	ExactFloats bool
	// IdempotencyColumn names a top-level string column whose value is the
	// row's idempotency key (none when the value is null or absent).
	IdempotencyColumn string
	// IngestTimeColumn names a top-level optional timestamptz column that
	// Zombi fills with the time it accepts the row (AppendConvertAt's
	// now); a row may not have it.
	IngestTimeColumn string
	// OffsetColumn names a top-level optional long column that the flusher
	// fills with the row's sequence (hotrow.WithOffsetColumn); a row may
	// not have it.
	OffsetColumn string
}

// Converter turns JSON objects into typed rows of one schema. It is safe
// for concurrent use.
type Converter struct {
	schemaID    int
	root        *hotrow.Node
	dropUnknown bool
	skipEmpty   bool
	exactFloats bool
	idem        *hotrow.Node // the idempotency column, or nil
	// timeCol and offsetCol are the indexes in root.Fields of the columns
	// Zombi fills, or -1.
	timeCol, offsetCol int
}

// NewConverter prepares the conversion of JSON objects to rows of schema.
// It fails when a required top-level column has a type rows cannot hold
// (variant, geometry, geography; optional ones must be null or absent) or
// when opts.IdempotencyColumn is not a top-level string column.
//
// A row is a JSON object whose members name columns, exactly (case
// matters). Values convert as follows; any other JSON value is an error
// naming the field and the expected type:
//
//	boolean            true, false
//	int, long          an integer as a JSON number (no fraction or exponent:
//	                   1.0 and 1e3 are rejected) or a string holding one
//	                   ("-12", for producers that quote 64-bit integers), in range
//	float, double      a JSON number (rounded to the nearest value) or one of
//	                   the strings "NaN", "Infinity", "-Infinity"
//	decimal(P,S)       a JSON number or a string, exactly: [+-]d[.d][e[+-]d];
//	                   nonzero digits beyond S fraction digits or more than P
//	                   digits are rejected, trailing zeros are not ("1.50"
//	                   fits decimal(3,1))
//	date               "YYYY-MM-DD", or an integer number of days since 1970-01-01
//	time               "HH:MM:SS" with an optional fraction of up to 9 digits
//	timestamp[_ns]     an RFC 3339 date-time, with or without an offset (with
//	                   one it is converted to UTC), or an integer number of
//	                   milliseconds since 1970-01-01T00:00:00
//	timestamptz[_ns]   an RFC 3339 date-time with an offset (Z or ±HH:MM), or
//	                   an integer number of milliseconds since the epoch
//	string             a string
//	uuid               "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", either case
//	fixed(L), binary   standard base64 with padding (fixed: of exactly L bytes)
//	struct             a JSON object, converted like a row
//	list               a JSON array
//	map                for string keys a JSON object; for any key type an
//	                   array of {"key": k, "value": v} objects. Keys are
//	                   unique and not null.
//	unknown            null only
//
// Dates and timestamps are limited to the years 0000 to 9999. Fractions of
// time and timestamp values finer than the column's precision (microseconds,
// or nanoseconds for the _ns types) are truncated. A null value is the same
// as an absent member; a required field that is absent or null is an error,
// and so is a null element of a list whose elements are required.
func NewConverter(schema *iceberg.Schema, opts ConverterOptions) (*Converter, error) {
	root, err := hotrow.SchemaNode(schema)
	if err != nil {
		return nil, err
	}
	for _, f := range root.Fields {
		if f.Required {
			if u := f.Unsupported(); u != nil {
				return nil, fmt.Errorf("required column %s has type %s, which Zombi cannot convert rows for", f.Name, u.Type)
			}
		}
	}
	c := &Converter{schemaID: schema.ID, root: root, dropUnknown: opts.DropUnknown, skipEmpty: opts.SkipEmptyUnknown, exactFloats: opts.ExactFloats, timeCol: -1, offsetCol: -1}
	for _, z := range []struct {
		name string
		kind hotrow.Kind
		typ  string
		idx  *int
	}{{opts.IngestTimeColumn, hotrow.KindTimestampTz, "timestamptz", &c.timeCol}, {opts.OffsetColumn, hotrow.KindLong, "long", &c.offsetCol}} {
		if z.name == "" {
			continue
		}
		i, ok := root.Names[z.name]
		if !ok {
			return nil, fmt.Errorf("column %q, which Zombi fills, is not a top-level column", z.name)
		}
		if f := root.Fields[i]; f.Kind != z.kind || f.Required {
			return nil, fmt.Errorf("column %q, which Zombi fills, must be an optional %s", z.name, z.typ)
		}
		*z.idx = i
	}
	if col := opts.IdempotencyColumn; col != "" {
		i, ok := root.Names[col]
		if !ok {
			return nil, fmt.Errorf("idempotency column %q is not a top-level column", col)
		}
		if root.Fields[i].Kind != hotrow.KindString {
			return nil, fmt.Errorf("idempotency column %q is %s, not string", col, root.Fields[i].Type)
		}
		c.idem = root.Fields[i]
	}
	return c, nil
}

// Convert converts one JSON object into the hot value of a typed row
// (hotrow.FormatRow) and returns the row's idempotency key. Errors are
// *SyntaxError for text that is not JSON and *FieldError for a row that
// does not fit the schema.
func (c *Converter) Convert(obj []byte) (value []byte, idemKey string, err error) {
	value, idemKey, err = c.AppendConvert(make([]byte, 0, 8+len(obj)/2), obj)
	if err != nil {
		return nil, "", err
	}
	return value, idemKey, nil
}

// AppendConvert is Convert appending the value to dst, so that the rows of
// a bulk request can share one buffer. On error it returns dst unchanged.
func (c *Converter) AppendConvert(dst, obj []byte) (value []byte, idemKey string, err error) {
	return c.AppendConvertAt(dst, obj, time.Time{})
}

// AppendConvertAt is AppendConvert for a row accepted at now, the value of
// the ingest time column if the Converter has one.
func (c *Converter) AppendConvertAt(dst, obj []byte, now time.Time) (value []byte, idemKey string, err error) {
	cv := converterPool.Get().(*converter)
	defer cv.release()
	cv.c = c
	cv.now = now.UnixMicro()
	cv.sc = scanner{data: obj}
	s := &cv.sc
	switch ch := s.peek(); ch {
	case '{':
	case 0:
		return dst, "", s.unexpected("a JSON object")
	default:
		if err := s.skipValue(); err != nil {
			return dst, "", err
		}
		if err := s.end(); err != nil {
			return dst, "", err
		}
		return dst, "", fieldErr("", "a row must be a JSON object, not "+jsonKind(ch))
	}
	s.pos++
	spans, err := cv.members(c.root)
	if err != nil {
		return dst, "", err
	}
	for _, i := range []int{c.timeCol, c.offsetCol} {
		if i >= 0 && spans[i].set {
			return dst, "", fieldErr(c.root.Fields[i].Name, "Zombi fills this column itself; a row may not have it")
		}
	}
	if err := s.end(); err != nil {
		return dst, "", err
	}
	value = hotrow.AppendRowHeader(dst, c.schemaID)
	if value, err = cv.structBody(c.root, spans, value); err != nil {
		return dst, "", err
	}
	if c.idem != nil {
		if sp := spans[c.root.Names[c.idem.Name]]; sp.set && obj[sp.pos] == '"' {
			s.pos = sp.pos
			raw, escaped, _ := s.readString()
			key := unquote(raw, escaped)
			if len(key) > MaxIdempotencyKeyLen {
				return dst, "", fieldErr(c.idem.Name, fmt.Sprintf("longer than %d bytes, the limit for an idempotency key", MaxIdempotencyKeyLen))
			}
			idemKey = string(key)
		}
	}
	return value, idemKey, nil
}

// span locates a member's value in the JSON text.
type span struct {
	pos int
	set bool
}

type converter struct {
	c    *Converter
	sc   scanner
	s    *scanner // &sc
	path hotrow.Path
	// spans holds the spans of the structs being converted.
	spans []span
	// lastStart is where the value integerText read starts.
	lastStart int
	// now is the ingest time column's value, in microseconds.
	now int64
}

// converterPool recycles the scratch space of conversions.
var converterPool = sync.Pool{New: func() any {
	cv := new(converter)
	cv.s = &cv.sc
	return cv
}}

// release returns cv to the pool, keeping no references to the request.
func (cv *converter) release() {
	cv.c, cv.sc = nil, scanner{}
	clear(cv.path[:cap(cv.path)])
	cv.path, cv.spans = cv.path[:0], cv.spans[:0]
	if cap(cv.spans) > 4096 || cap(cv.path) > 4096 {
		return // not worth keeping
	}
	converterPool.Put(cv)
}

// newSpans returns n cleared spans from cv.spans. Slices returned earlier
// stay valid.
func (cv *converter) newSpans(n int) []span {
	start := len(cv.spans)
	cv.spans = slices.Grow(cv.spans, n)[:start+n]
	sp := cv.spans[start : start+n : start+n]
	clear(sp)
	return sp
}

func (cv *converter) errorf(format string, args ...any) *FieldError {
	return &FieldError{Path: cv.path.String(), Reason: fmt.Sprintf(format, args...)}
}

// fieldErrorf is the error for field name of the current struct.
func (cv *converter) fieldErrorf(name string, format string, args ...any) *FieldError {
	cv.path.PushField(name)
	return cv.errorf(format, args...)
}

// members reads the members of an object whose '{' has been consumed and
// returns where each field's value is, by field index.
func (cv *converter) members(n *hotrow.Node) ([]span, error) {
	s := cv.s
	spans := cv.newSpans(len(n.Fields))
	first := true
	for {
		key, more, err := s.nextMember(&first)
		if err != nil {
			return nil, err
		}
		if !more {
			return spans, nil
		}
		i, ok := n.Names[string(key)]
		switch {
		case !ok && cv.c.dropUnknown:
		case !ok && cv.c.skipEmpty && s.emptyValue():
		case !ok:
			return nil, cv.fieldErrorf(keyName(key), "no such column (the schema has %s)", fieldNames(n))
		case spans[i].set:
			return nil, cv.fieldErrorf(n.Fields[i].Name, "repeated field")
		default:
			spans[i] = span{pos: s.pos, set: true}
		}
		if err := s.skipValue(); err != nil {
			return nil, err
		}
	}
}

func fieldNames(n *hotrow.Node) string {
	var b []byte
	for i, f := range n.Fields {
		if i == 8 {
			b = fmt.Appendf(b, " and %d more", len(n.Fields)-i)
			break
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, f.Name...)
	}
	if len(b) == 0 {
		return "no fields"
	}
	return string(b)
}

// structBody appends the encoded fields of a struct whose members are at
// spans: count, then ID and value of each non-null field by ascending ID.
func (cv *converter) structBody(n *hotrow.Node, spans []span, dst []byte) ([]byte, error) {
	root := n == cv.c.root
	count := 0
	for i, f := range n.Fields {
		if spans[i].set && cv.s.data[spans[i].pos] != 'n' || root && i == cv.c.timeCol {
			count++
			continue
		}
		if f.Required {
			if spans[i].set {
				return nil, cv.fieldErrorf(f.Name, "required field is null")
			}
			return nil, cv.fieldErrorf(f.Name, "required field is missing")
		}
	}
	dst = hotrow.AppendCount(dst, count)
	for _, i := range n.ByID {
		if root && i == cv.c.timeCol {
			dst = hotrow.AppendFieldID(dst, n.Fields[i].ID)
			dst = hotrow.AppendTimestamp(dst, hotrow.KindTimestampTz, cv.now)
			continue
		}
		sp := spans[i]
		if !sp.set || cv.s.data[sp.pos] == 'n' {
			continue
		}
		f := n.Fields[i]
		dst = hotrow.AppendFieldID(dst, f.ID)
		var err error
		cv.s.pos = sp.pos
		cv.path.PushField(f.Name)
		if dst, err = cv.value(f, dst); err != nil {
			return nil, err
		}
		cv.path.Pop()
	}
	return dst, nil
}

// value converts the non-null JSON value at s.pos for node n.
func (cv *converter) value(n *hotrow.Node, dst []byte) ([]byte, error) {
	s := cv.s
	c := s.at()
	switch n.Kind {
	case hotrow.KindBool:
		switch c {
		case 't':
			s.pos += 4
			return hotrow.AppendBool(dst, true), nil
		case 'f':
			s.pos += 5
			return hotrow.AppendBool(dst, false), nil
		}
	case hotrow.KindInt, hotrow.KindLong:
		text, ok := cv.integerText(c)
		if !ok {
			break
		}
		lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
		if n.Kind == hotrow.KindLong {
			lo, hi = math.MinInt64, math.MaxInt64
		}
		v, ok := parseInt(text)
		if text == nil || !ok || v < lo || v > hi {
			return nil, cv.errorf("expected %s: %s is not an integer in %d..%d", n.Type, shorten(cv.valueText()), lo, hi)
		}
		if n.Kind == hotrow.KindLong {
			return hotrow.AppendLong(dst, v), nil
		}
		return hotrow.AppendInt(dst, int32(v)), nil
	case hotrow.KindFloat, hotrow.KindDouble:
		return cv.float(n, c, dst)
	case hotrow.KindDecimal:
		var text []byte
		switch {
		case c == '"':
			text = cv.stringValue()
		case c == '-' || isDigit(c):
			text, _, _ = s.readNumber()
		default:
			return nil, cv.mismatch(n, c)
		}
		x, reason := parseDecimal(text, n.Precision, n.Scale)
		switch reason {
		case decimalSyntax:
			return nil, cv.errorf("expected %s: %q is not a decimal number", n.Type, text)
		case decimalTooManyFractionDigits:
			return nil, cv.errorf("expected %s: %s has more than %d digits after the decimal point", n.Type, text, n.Scale)
		case decimalTooManyDigits:
			return nil, cv.errorf("expected %s: %s has more than %d digits", n.Type, text, n.Precision)
		}
		return hotrow.AppendDecimal(dst, n.Scale, x), nil
	case hotrow.KindDate:
		var days int64
		switch {
		case c == '"':
			text := cv.stringValue()
			var ok bool
			if days, ok = parseDate(text); !ok {
				return nil, cv.errorf("expected date: %q is not a date YYYY-MM-DD in years 0000..9999", text)
			}
		case c == '-' || isDigit(c):
			text, isInt, _ := s.readNumber()
			v, ok := parseInt(text)
			if !isInt || !ok || v < hotrow.MinDay || v > hotrow.MaxDay {
				return nil, cv.errorf("expected date: %s is not a whole number of days since 1970-01-01 in %d..%d", text, hotrow.MinDay, hotrow.MaxDay)
			}
			days = v
		default:
			return nil, cv.mismatch(n, c)
		}
		return hotrow.AppendDate(dst, int32(days)), nil
	case hotrow.KindTime:
		if c != '"' {
			break
		}
		text := cv.stringValue()
		ns, ok := parseClock(text)
		if !ok {
			return nil, cv.errorf("expected time: %q is not a time HH:MM:SS[.ffffff]", text)
		}
		return hotrow.AppendTime(dst, ns/1000), nil
	case hotrow.KindTimestamp, hotrow.KindTimestampTz, hotrow.KindTimestampNs, hotrow.KindTimestampTzNs:
		return cv.timestamp(n, c, dst)
	case hotrow.KindString:
		if c != '"' {
			break
		}
		return hotrow.AppendString(dst, cv.stringValue()), nil
	case hotrow.KindUUID:
		if c != '"' {
			break
		}
		text := cv.stringValue()
		u, ok := parseUUID(text)
		if !ok {
			return nil, cv.errorf("expected uuid: %q is not a UUID xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", text)
		}
		return hotrow.AppendUUID(dst, u), nil
	case hotrow.KindFixed, hotrow.KindBinary:
		if c != '"' {
			break
		}
		text := cv.stringValue()
		b := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
		m, err := base64.StdEncoding.Decode(b, text)
		if err != nil {
			return nil, cv.errorf("expected %s as base64 (standard alphabet, padded): %v", n.Type, err)
		}
		if n.Kind == hotrow.KindFixed {
			if m != n.Length {
				return nil, cv.errorf("expected %s: base64 of %d bytes, not %d", n.Type, n.Length, m)
			}
			return hotrow.AppendFixed(dst, b[:m]), nil
		}
		return hotrow.AppendBinary(dst, b[:m]), nil
	case hotrow.KindStruct:
		if c != '{' {
			break
		}
		s.pos++
		spans, err := cv.members(n)
		if err != nil {
			return nil, err
		}
		end := s.pos
		if dst, err = cv.structBody(n, spans, hotrow.AppendStruct(dst)); err != nil {
			return nil, err
		}
		s.pos = end
		return dst, nil
	case hotrow.KindList:
		if c != '[' {
			break
		}
		return cv.list(n, dst)
	case hotrow.KindMap:
		switch {
		case c == '{' && n.Key.Kind == hotrow.KindString:
			return cv.mapObject(n, dst)
		case c == '[':
			return cv.mapEntries(n, dst)
		}
	}
	return nil, cv.mismatch(n, c)
}

// mismatch is the error for a JSON value of the wrong kind for n.
func (cv *converter) mismatch(n *hotrow.Node, c byte) *FieldError {
	var want string
	switch n.Kind {
	case hotrow.KindBool:
		want = "true or false"
	case hotrow.KindInt, hotrow.KindLong:
		want = "an integer, as a JSON number or a string"
	case hotrow.KindFloat, hotrow.KindDouble:
		want = `a JSON number or "NaN", "Infinity", "-Infinity"`
	case hotrow.KindDecimal:
		want = "a decimal number, as a JSON number or a string"
	case hotrow.KindDate:
		want = `"YYYY-MM-DD" or days since 1970-01-01`
	case hotrow.KindTime:
		want = `"HH:MM:SS[.ffffff]"`
	case hotrow.KindTimestamp, hotrow.KindTimestampNs, hotrow.KindTimestampTz, hotrow.KindTimestampTzNs:
		want = "an RFC 3339 string or milliseconds since 1970-01-01"
	case hotrow.KindString:
		want = "a string"
	case hotrow.KindUUID:
		want = "a UUID string"
	case hotrow.KindFixed, hotrow.KindBinary:
		want = "a base64 string"
	case hotrow.KindStruct:
		want = "a JSON object"
	case hotrow.KindList:
		want = "a JSON array"
	case hotrow.KindMap:
		if n.Key.Kind == hotrow.KindString {
			want = `a JSON object or an array of {"key": ..., "value": ...}`
		} else {
			want = `an array of {"key": ..., "value": ...}`
		}
	default:
		return cv.errorf("columns of type %s can only be null here", n.Type)
	}
	return cv.errorf("expected %s (%s), not %s", n.Type, want, jsonKind(c))
}

// stringValue reads the string at s.pos and returns its contents.
func (cv *converter) stringValue() []byte {
	raw, escaped, _ := cv.s.readString()
	return unquote(raw, escaped)
}

// valueText returns the JSON text of the value just read, for errors.
func (cv *converter) valueText() []byte {
	return cv.s.data[cv.lastStart:cv.s.pos]
}

// integerText reads an integer given as a JSON number or string. ok is
// false for other kinds of values (s.pos unmoved); text is nil when the
// value is a number or string but not an integer.
func (cv *converter) integerText(c byte) (text []byte, ok bool) {
	s := cv.s
	cv.lastStart = s.pos
	switch {
	case c == '-' || isDigit(c):
		text, isInt, _ := s.readNumber()
		if !isInt {
			return nil, true
		}
		return text, true
	case c == '"':
		text := cv.stringValue()
		inner := scanner{data: text}
		num, isInt, err := inner.readNumber()
		if err != nil || !isInt || inner.pos != len(text) {
			return nil, true
		}
		return num, true
	}
	return nil, false
}

// shorten cuts a value's JSON text for an error message.
func shorten(text []byte) string {
	if len(text) > 64 {
		return string(text[:64]) + "..."
	}
	return string(text)
}

func (cv *converter) float(n *hotrow.Node, c byte, dst []byte) ([]byte, error) {
	s := cv.s
	bitSize := 64
	if n.Kind == hotrow.KindFloat {
		bitSize = 32
	}
	var v float64
	switch {
	case c == '-' || isDigit(c):
		text, _, _ := s.readNumber()
		var err error
		if v, err = strconv.ParseFloat(string(text), bitSize); err != nil {
			return nil, cv.errorf("expected %s: %s is out of range", n.Type, shorten(text))
		}
		if bitSize == 32 && cv.c.exactFloats {
			if d, _ := strconv.ParseFloat(string(text), 64); float64(float32(d)) != d {
				return nil, cv.errorf("expected %s: %s needs a double to be held exactly", n.Type, shorten(text))
			}
		}
	case c == '"':
		text := cv.stringValue()
		switch string(text) {
		case "NaN":
			v = math.NaN()
		case "Infinity":
			v = math.Inf(1)
		case "-Infinity":
			v = math.Inf(-1)
		default:
			return nil, cv.errorf(`expected %s: a JSON number or "NaN", "Infinity", "-Infinity", not the string %q`, n.Type, shorten(text))
		}
	default:
		return nil, cv.mismatch(n, c)
	}
	if n.Kind == hotrow.KindFloat {
		return hotrow.AppendFloat(dst, float32(v)), nil
	}
	return hotrow.AppendDouble(dst, v), nil
}

// Nanosecond timestamps span 1677-09-21T00:12:43.145224192Z to
// 2262-04-11T23:47:16.854775807Z.
const (
	maxNanosSec  = math.MaxInt64 / 1_000_000_000
	maxNanosNsec = math.MaxInt64 % 1_000_000_000
	minNanosSec  = math.MinInt64/1_000_000_000 - 1
	minNanosNsec = 1_000_000_000 + math.MinInt64%1_000_000_000
)

func (cv *converter) timestamp(n *hotrow.Node, c byte, dst []byte) ([]byte, error) {
	s := cv.s
	nanos := n.Kind == hotrow.KindTimestampNs || n.Kind == hotrow.KindTimestampTzNs
	var sec, nsec int64
	switch {
	case c == '"':
		text := cv.stringValue()
		var hasOffset, ok bool
		sec, nsec, hasOffset, ok = parseTimestamp(text)
		if !ok {
			return nil, cv.errorf("expected %s: %q is not an RFC 3339 date-time in years 0000..9999", n.Type, shorten(text))
		}
		if !hasOffset && (n.Kind == hotrow.KindTimestampTz || n.Kind == hotrow.KindTimestampTzNs) {
			return nil, cv.errorf("expected %s: %q has no UTC offset (add Z or ±HH:MM)", n.Type, shorten(text))
		}
	case c == '-' || isDigit(c):
		text, isInt, _ := s.readNumber()
		ms, ok := parseInt(text)
		if !isInt || !ok || ms < hotrow.MinUnixSec*1000 || ms > hotrow.MaxUnixSec*1000+999 {
			return nil, cv.errorf("expected %s: %s is not a whole number of milliseconds since 1970-01-01 in years 0000..9999", n.Type, shorten(text))
		}
		rem := ms % 1000
		sec = ms / 1000
		if rem < 0 {
			sec, rem = sec-1, rem+1000
		}
		nsec = rem * 1e6
	default:
		return nil, cv.mismatch(n, c)
	}
	if !nanos {
		return hotrow.AppendTimestamp(dst, n.Kind, sec*1e6+nsec/1000), nil
	}
	if sec > maxNanosSec || sec == maxNanosSec && nsec > maxNanosNsec || sec < minNanosSec || sec == minNanosSec && nsec < minNanosNsec {
		return nil, cv.errorf("expected %s: outside the years 1677 to 2262 that nanosecond timestamps cover", n.Type)
	}
	return hotrow.AppendTimestamp(dst, n.Kind, sec*1e9+nsec), nil
}

// list converts the array at s.pos.
func (cv *converter) list(n *hotrow.Node, dst []byte) ([]byte, error) {
	s := cv.s
	s.pos++
	dst = hotrow.AppendList(dst)
	at := len(dst)
	count := 0
	first := true
	for {
		more, err := s.nextElement(&first)
		if err != nil {
			return nil, err
		}
		if !more {
			return hotrow.InsertCount(dst, at, count), nil
		}
		cv.path.PushIndex(count)
		count++
		if dst, err = cv.element(n.Elem, dst); err != nil {
			return nil, err
		}
		cv.path.Pop()
	}
}

// element converts a list element or map value at s.pos, which may be null.
func (cv *converter) element(n *hotrow.Node, dst []byte) ([]byte, error) {
	s := cv.s
	if s.at() == 'n' {
		s.pos += 4
		if n.Required {
			return nil, cv.errorf("required %s is null", n.Name)
		}
		return hotrow.AppendNull(dst), nil
	}
	return cv.value(n, dst)
}

// mapObject converts a map with string keys given as a JSON object.
func (cv *converter) mapObject(n *hotrow.Node, dst []byte) ([]byte, error) {
	s := cv.s
	s.pos++
	dst = hotrow.AppendMap(dst)
	at := len(dst)
	var keys keySet
	count := 0
	first := true
	for {
		key, more, err := s.nextMember(&first)
		if err != nil {
			return nil, err
		}
		if !more {
			return hotrow.InsertCount(dst, at, count), nil
		}
		cv.path.PushKey(key)
		start := len(dst)
		dst = hotrow.AppendString(dst, key)
		if keys.add(dst, start) {
			return nil, cv.errorf("repeated key")
		}
		count++
		if dst, err = cv.element(n.Value, dst); err != nil {
			return nil, err
		}
		cv.path.Pop()
	}
}

// mapEntries converts a map given as an array of {"key": k, "value": v}.
func (cv *converter) mapEntries(n *hotrow.Node, dst []byte) ([]byte, error) {
	s := cv.s
	s.pos++
	dst = hotrow.AppendMap(dst)
	at := len(dst)
	var keys keySet
	count := 0
	first := true
	for {
		more, err := s.nextElement(&first)
		if err != nil {
			return nil, err
		}
		if !more {
			return hotrow.InsertCount(dst, at, count), nil
		}
		cv.path.PushIndex(count)
		count++
		if c := s.at(); c != '{' {
			return nil, cv.errorf(`expected a map entry {"key": ..., "value": ...}, not %s`, jsonKind(c))
		}
		s.pos++
		keyPos, valuePos := -1, -1
		firstMember := true
		for {
			name, more, err := s.nextMember(&firstMember)
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
			switch {
			case string(name) == "key" && keyPos < 0:
				keyPos = s.pos
			case string(name) == "value" && valuePos < 0:
				valuePos = s.pos
			case string(name) == "key" || string(name) == "value":
				return nil, cv.fieldErrorf(string(name), "repeated field")
			default:
				return nil, cv.fieldErrorf(keyName(name), `unknown field (a map entry has "key" and "value")`)
			}
			if err := s.skipValue(); err != nil {
				return nil, err
			}
		}
		end := s.pos
		if keyPos < 0 || s.data[keyPos] == 'n' {
			return nil, cv.fieldErrorf("key", "required map key is missing or null")
		}
		start := len(dst)
		s.pos = keyPos
		cv.path.PushField("key")
		if dst, err = cv.value(n.Key, dst); err != nil {
			return nil, err
		}
		if keys.add(dst, start) {
			return nil, cv.errorf("repeated key")
		}
		cv.path.Pop()
		cv.path.PushField("value")
		if valuePos < 0 {
			if n.Value.Required {
				return nil, cv.errorf("required map value is missing")
			}
			dst = hotrow.AppendNull(dst)
		} else {
			s.pos = valuePos
			if dst, err = cv.element(n.Value, dst); err != nil {
				return nil, err
			}
		}
		cv.path.Pop()
		cv.path.Pop() // the entry
		s.pos = end
	}
}

// keySet detects repeated map keys by their encoding, which is unique.
type keySet struct {
	spans [][2]int
	set   map[string]struct{}
}

// add records the key encoded in dst[start:] and reports whether it was
// there already.
func (k *keySet) add(dst []byte, start int) bool {
	key := dst[start:]
	if k.set != nil {
		if _, dup := k.set[string(key)]; dup {
			return true
		}
		k.set[string(key)] = struct{}{}
		return false
	}
	for _, sp := range k.spans {
		if bytes.Equal(dst[sp[0]:sp[1]], key) {
			return true
		}
	}
	k.spans = append(k.spans, [2]int{start, len(dst)})
	if len(k.spans) > 16 {
		k.set = make(map[string]struct{}, 2*len(k.spans))
		for _, sp := range k.spans {
			k.set[string(dst[sp[0]:sp[1]])] = struct{}{}
		}
	}
	return false
}

// SplitBulkRows splits a bulk body for a typed table into its rows: a JSON
// array of objects, {"records": [...]}, or with ndjson one object a line
// (blank lines skipped). The rows are sub-slices of body. A JSON body must
// be well-formed as a whole; an NDJSON line is checked only when its row
// is converted. More than MaxBulkRecords rows is an error wrapping
// ErrTooManyRecords.
func SplitBulkRows(body []byte, ndjson bool) ([][]byte, error) {
	var rows [][]byte
	if ndjson {
		err := ndjsonLines(body, func(line []byte) { rows = append(rows, line) })
		if err != nil {
			return nil, err
		}
		return rows, nil
	}
	s := scanner{data: body}
	inObject, err := openRecords(&s)
	if err != nil {
		return nil, err
	}
	first := true
	for {
		more, err := s.nextElement(&first)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		if len(rows) == MaxBulkRecords {
			return nil, ErrTooManyRecords
		}
		start := s.pos
		if err := s.skipValue(); err != nil {
			return nil, err
		}
		rows = append(rows, body[start:s.pos])
	}
	if err := closeRecords(&s, inObject); err != nil {
		return nil, err
	}
	return rows, nil
}
