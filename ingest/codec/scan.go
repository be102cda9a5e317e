package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of JSON arrays and objects.
const maxDepth = 1000

// scanner reads JSON text (RFC 8259) strictly: strings must be valid UTF-8
// without lone surrogate escapes, numbers follow the JSON grammar, and
// nothing but whitespace may follow the top-level value. It decodes nothing
// it is not asked to; string contents without escapes are returned as
// sub-slices of data.
type scanner struct {
	data []byte
	pos  int
	// spaced is set whenever whitespace is skipped: a value read with it
	// clear is compact JSON.
	spaced bool
}

// plainStringByte marks the bytes a string may contain unescaped that need
// no further check: printable ASCII other than '"' and '\\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) errorf(format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the byte at s.pos where want was expected.
func (s *scanner) unexpected(want string) *SyntaxError {
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of input, expected %s", want)
	}
	return s.errorf("unexpected %q, expected %s", s.data[s.pos], want)
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
			s.spaced = true
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// at returns the byte at s.pos, 0 at the end.
func (s *scanner) at() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// end checks that only whitespace is left.
func (s *scanner) end() error {
	s.skipSpace()
	if s.pos != len(s.data) {
		return s.errorf("unexpected %q after the JSON value", s.data[s.pos])
	}
	return nil
}

// readString reads the string starting at s.pos (a '"') and returns its
// raw contents, between the quotes, and whether they contain escapes.
func (s *scanner) readString() (raw []byte, escaped bool, err error) {
	data := s.data
	start := s.pos + 1
	i := start
	for {
		// Eight bytes at a time while none of them needs a look.
		for i+8 <= len(data) && !special8(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < len(data) && plainStringByte[data[i]] {
			i++
		}
		if i >= len(data) {
			s.pos = i
			return nil, false, s.errorf("unexpected end of input in a string")
		}
		switch c := data[i]; {
		case c == '"':
			s.pos = i + 1
			return data[start:i], escaped, nil
		case c == '\\':
			escaped = true
			n, msg := escapeLen(data[i:])
			if msg != "" {
				s.pos = i
				return nil, false, s.errorf("%s", msg)
			}
			i += n
		case c < 0x20:
			s.pos = i
			return nil, false, s.errorf("control character %q in a string (escape it)", c)
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				s.pos = i
				return nil, false, s.errorf("invalid UTF-8 in a string")
			}
			i += size
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 reports whether one of the eight bytes in x may be a '"', a
// '\\', a control character or not ASCII. It may report false positives,
// never false negatives: (v - ones) &^ v has the high bit of each byte set
// at the lowest zero byte of v, and at no byte below it that is not zero,
// and likewise (x - n*ones) &^ x at the lowest byte below n.
func special8(x uint64) bool {
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(x-ones*0x20)&^x|x)&highs != 0
}

// escapeLen returns the length of the escape sequence at the start of b,
// or a reason it is invalid. A surrogate pair counts as one escape.
func escapeLen(b []byte) (int, string) {
	if len(b) < 2 {
		return 0, "unexpected end of input in a string"
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, ""
	case 'u':
	default:
		return 0, fmt.Sprintf("invalid escape %q in a string", b[:2])
	}
	r, ok := hex4(b[2:])
	if !ok {
		return 0, "invalid \\u escape in a string"
	}
	switch {
	case r < 0xD800 || r > 0xDFFF:
		return 6, ""
	case r >= 0xDC00:
		return 0, "lone surrogate \\u escape in a string"
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return 0, "lone surrogate \\u escape in a string"
	}
	lo, ok := hex4(b[8:])
	if !ok || lo < 0xDC00 || lo > 0xDFFF {
		return 0, "lone surrogate \\u escape in a string"
	}
	return 12, ""
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unquote returns the decoded contents of a string readString returned:
// raw itself when there are no escapes, else a new slice.
func unquote(raw []byte, escaped bool) []byte {
	if !escaped {
		return raw
	}
	return appendUnquoted(make([]byte, 0, len(raw)), raw)
}

// appendUnquoted appends the decoded contents of a validated raw string.
func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(raw[i+8:])
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// readNumber reads the number starting at s.pos and returns its text and
// whether it is an integer (no fraction, no exponent).
func (s *scanner) readNumber() (text []byte, isInt bool, err error) {
	data := s.data
	start := s.pos
	i := start
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	default:
		s.pos = i
		return nil, false, s.unexpected("a digit")
	}
	isInt = true
	if i < len(data) && data[i] == '.' {
		isInt = false
		i++
		if i >= len(data) || !isDigit(data[i]) {
			s.pos = i
			return nil, false, s.unexpected("a digit after the decimal point")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		isInt = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			s.pos = i
			return nil, false, s.unexpected("a digit in the exponent")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	s.pos = i
	return data[start:i], isInt, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// literal reads one of true, false, null at s.pos.
func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.unexpected("a JSON value")
	}
	s.pos += len(word)
	return nil
}

// skipValue checks and skips the value at s.pos.
func (s *scanner) skipValue() error { return s.skip(0) }

// emptyValue reports whether the value at s.pos is null, [] or {}, without
// moving past it.
func (s *scanner) emptyValue() bool {
	switch s.peek() {
	case 'n':
		return bytes.HasPrefix(s.data[s.pos:], []byte("null"))
	case '[', '{':
		close := byte(']')
		if s.data[s.pos] == '{' {
			close = '}'
		}
		for i := s.pos + 1; i < len(s.data); i++ {
			switch s.data[i] {
			case ' ', '\t', '\r', '\n':
				continue
			case close:
				return true
			}
			return false
		}
	}
	return false
}

func (s *scanner) skip(depth int) error {
	switch c := s.peek(); c {
	case '"':
		_, _, err := s.readString()
		return err
	case '{', '[':
		if depth >= maxDepth {
			return s.errorf("nested deeper than %d levels", maxDepth)
		}
		s.pos++
		first := true
		for {
			var more bool
			var err error
			if c == '{' {
				_, more, err = s.nextMember(&first)
			} else {
				more, err = s.nextElement(&first)
			}
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || isDigit(c) {
			_, _, err := s.readNumber()
			return err
		}
		return s.unexpected("a JSON value")
	}
}

// nextMember moves to the next member of an object whose '{' has been
// consumed. It returns the member's decoded key with s.pos at its value,
// or more == false after consuming the closing '}'. first must be true
// before the first call for an object.
func (s *scanner) nextMember(first *bool) (key []byte, more bool, err error) {
	c := s.peek()
	if *first {
		*first = false
		if c == '}' {
			s.pos++
			return nil, false, nil
		}
	} else {
		switch c {
		case ',':
			s.pos++
			c = s.peek()
		case '}':
			s.pos++
			return nil, false, nil
		default:
			return nil, false, s.unexpected("',' or '}'")
		}
	}
	if c != '"' {
		return nil, false, s.unexpected("a string (object key)")
	}
	raw, escaped, err := s.readString()
	if err != nil {
		return nil, false, err
	}
	if s.peek() != ':' {
		return nil, false, s.unexpected("':'")
	}
	s.pos++
	s.skipSpace()
	return unquote(raw, escaped), true, nil
}

// nextElement moves to the next element of an array whose '[' has been
// consumed: more == false after consuming the closing ']'.
func (s *scanner) nextElement(first *bool) (more bool, err error) {
	c := s.peek()
	if *first {
		*first = false
		if c == ']' {
			s.pos++
			return false, nil
		}
		return true, nil
	}
	switch c {
	case ',':
		s.pos++
		s.skipSpace()
		return true, nil
	case ']':
		s.pos++
		return false, nil
	}
	return false, s.unexpected("',' or ']'")
}

// compactJSON returns validated JSON text without insignificant
// whitespace: text itself when it has none.
func compactJSON(text []byte) []byte {
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			return appendCompact(append(make([]byte, 0, len(text)), text[:i]...), text[i:])
		}
	}
	return text
}

// appendCompact appends text, which starts outside a string, without
// whitespace outside strings.
func appendCompact(dst, text []byte) []byte {
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if inString {
			dst = append(dst, c)
			if c == '\\' {
				i++
				dst = append(dst, text[i])
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inString = true
		}
		dst = append(dst, c)
	}
	return dst
}
