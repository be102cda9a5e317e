package codec

import (
	"math/bits"
	"strconv"
	"time"
)

// Text forms of Iceberg values: parsing what producers send and rendering
// what ValueJSON returns, each the inverse of the other.

// Bounds of dates and timestamps: years 0000 to 9999, the years RFC 3339
// and Iceberg's text forms can write.
var (
	minUnixSec = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxUnixSec = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	minDay     = minUnixSec / 86400
	maxDay     = maxUnixSec / 86400
)

const microsPerDay = 86400 * 1_000_000

// digits parses the fixed-width decimal number in b; ok is false unless
// every byte is a digit.
func digits(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, len(b) > 0
}

// parseDate parses YYYY-MM-DD into days since the Unix epoch.
func parseDate(s []byte) (int64, bool) {
	if len(s) != 10 {
		return 0, false
	}
	sec, ok := parseYMD(s)
	return sec / 86400, ok
}

// parseYMD parses YYYY-MM-DD at the start of s (at least 10 bytes) into
// the Unix time of its midnight, in UTC.
func parseYMD(s []byte) (int64, bool) {
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' || m < 1 || m > 12 || d < 1 {
		return 0, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // past the month's end
		return 0, false
	}
	return t.Unix(), true
}

// parseClock parses HH:MM:SS[.fraction] with 1 to 9 fraction digits into
// nanoseconds since midnight. Leap seconds are rejected.
func parseClock(s []byte) (int64, bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, false
	}
	h, ok1 := digits(s[0:2])
	m, ok2 := digits(s[3:5])
	sec, ok3 := digits(s[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 59 {
		return 0, false
	}
	ns := (int64(h)*3600 + int64(m)*60 + int64(sec)) * 1e9
	frac := s[8:]
	if len(frac) == 0 {
		return ns, true
	}
	if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
		return 0, false
	}
	f, ok := digits(frac[1:])
	if !ok {
		return 0, false
	}
	for i := len(frac) - 1; i < 9; i++ {
		f *= 10
	}
	return ns + int64(f), true
}

// parseTimestamp parses an RFC 3339 date-time, YYYY-MM-DDTHH:MM:SS with
// 'T', 't' or ' ' between date and time, an optional fraction of 1 to 9
// digits, and an optional offset (Z, z or ±HH:MM). It returns nanoseconds
// since the Unix epoch as two parts, seconds and nanoseconds, adjusted to
// UTC when an offset is present.
func parseTimestamp(s []byte) (sec int64, nsec int64, hasOffset bool, ok bool) {
	if len(s) < 19 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
		return 0, 0, false, false
	}
	day, ok := parseYMD(s)
	if !ok {
		return 0, 0, false, false
	}
	rest := s[11:]
	end := len(rest)
	var offset int64
	switch {
	case rest[end-1] == 'Z' || rest[end-1] == 'z':
		hasOffset = true
		end--
	case end >= 14 && (rest[end-6] == '+' || rest[end-6] == '-') && rest[end-3] == ':':
		oh, ok1 := digits(rest[end-5 : end-3])
		om, ok2 := digits(rest[end-2 : end])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, 0, false, false
		}
		offset = int64(oh)*3600 + int64(om)*60
		if rest[end-6] == '-' {
			offset = -offset
		}
		hasOffset = true
		end -= 6
	}
	clock, ok := parseClock(rest[:end])
	if !ok {
		return 0, 0, false, false
	}
	sec = day + clock/1e9 - offset
	if sec < minUnixSec || sec > maxUnixSec {
		return 0, 0, false, false
	}
	return sec, clock % 1e9, hasOffset, true
}

// parseUUID parses the canonical 8-4-4-4-12 hex form, either case.
func parseUUID(s []byte) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := hexVal(s[i])
		lo, ok2 := hexVal(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// int128 is a two's complement 128-bit integer.
type int128 struct {
	hi, lo uint64
}

func (x int128) neg() int128 {
	lo, borrow := bits.Sub64(0, x.lo, 0)
	hi, _ := bits.Sub64(0, x.hi, borrow)
	return int128{hi, lo}
}

func (x int128) isNeg() bool { return int64(x.hi) < 0 }

// decimalReason explains why parseDecimal rejected its input.
type decimalReason int

const (
	decimalOK decimalReason = iota
	decimalSyntax
	decimalTooManyFractionDigits
	decimalTooManyDigits
)

// parseDecimal parses a decimal number, [+-]digits[.digits][(e|E)[+-]digits],
// into its unscaled value at the given scale, exactly: a value with nonzero
// digits beyond the scale or with more than precision digits is rejected.
// Trailing zeros beyond the scale are accepted ("1.50" is decimal(3,1)
// 1.5). precision is at most 38.
func parseDecimal(s []byte, precision, scale int) (int128, decimalReason) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	// Significant digits, leading zeros dropped and trailing zeros held
	// back in zeros; the value is sig × 10^exp10.
	var sig [40]byte
	n, zeros := 0, 0
	exp10 := 0
	intDigits, fracDigits := 0, 0
	overflow := false
	addDigit := func(c byte) {
		if c == '0' {
			if n > 0 {
				zeros++
			}
			return
		}
		for ; zeros > 0 && !overflow; zeros-- {
			overflow = n == len(sig)
			if !overflow {
				sig[n] = '0'
				n++
			}
		}
		if n == len(sig) {
			overflow = true
			return
		}
		sig[n] = c
		n++
	}
	for ; i < len(s) && isDigit(s[i]); i++ {
		addDigit(s[i])
		intDigits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && isDigit(s[i]); i++ {
			addDigit(s[i])
			fracDigits++
		}
		if fracDigits == 0 {
			return int128{}, decimalSyntax
		}
	}
	exp10 = zeros - fracDigits
	if intDigits == 0 {
		return int128{}, decimalSyntax
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return int128{}, decimalSyntax
		}
		e := 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			if e < 1e6 {
				e = e*10 + int(s[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp10 += e
	}
	if i != len(s) {
		return int128{}, decimalSyntax
	}
	if overflow {
		return int128{}, decimalTooManyDigits
	}
	if n == 0 {
		return int128{}, decimalOK
	}
	shift := exp10 + scale // the unscaled value is sig × 10^shift
	if shift < 0 {
		return int128{}, decimalTooManyFractionDigits
	}
	if n+shift > precision {
		return int128{}, decimalTooManyDigits
	}
	var x int128
	for k := 0; k < n+shift; k++ {
		d := uint64(0)
		if k < n {
			d = uint64(sig[k] - '0')
		}
		hi, lo := bits.Mul64(x.lo, 10)
		lo, carry := bits.Add64(lo, d, 0)
		x = int128{x.hi*10 + hi + carry, lo}
	}
	if neg {
		x = x.neg()
	}
	return x, decimalOK
}

// appendDecimalBytes appends x as big-endian two's complement in the
// fewest bytes (at least one).
func appendDecimalBytes(dst []byte, x int128) []byte {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(x.hi >> (56 - 8*i))
		b[8+i] = byte(x.lo >> (56 - 8*i))
	}
	i := 0
	for i < 15 && (b[i] == 0 && b[i+1]&0x80 == 0 || b[i] == 0xff && b[i+1]&0x80 != 0) {
		i++
	}
	return append(dst, b[i:]...)
}

// decimalFromBytes reads big-endian two's complement bytes (1 to 16).
func decimalFromBytes(b []byte) int128 {
	var x int128
	if b[0]&0x80 != 0 {
		x = int128{^uint64(0), ^uint64(0)}
	}
	for _, c := range b {
		x = int128{x.hi<<8 | x.lo>>56, x.lo<<8 | uint64(c)}
	}
	return x
}

// appendDecimalText appends x with scale fraction digits: "-12.340".
func appendDecimalText(dst []byte, x int128, scale int) []byte {
	if x.isNeg() {
		dst = append(dst, '-')
		x = x.neg()
	}
	var buf [48]byte
	i := len(buf)
	for nd := 0; x.hi != 0 || x.lo != 0 || nd <= scale; {
		var r uint64
		x.hi, r = bits.Div64(0, x.hi, 10)
		x.lo, r = bits.Div64(r, x.lo, 10)
		i--
		buf[i] = byte('0' + r)
		nd++
		if nd == scale {
			i--
			buf[i] = '.'
		}
	}
	return append(dst, buf[i:]...)
}

// fitsPrecision reports whether x has at most precision digits.
func fitsPrecision(x int128, precision int) bool {
	if x.isNeg() {
		x = x.neg()
		if x.isNeg() { // -2^127
			return false
		}
	}
	var limit int128 = int128{0, 1} // 10^precision
	for range precision {
		hi, lo := bits.Mul64(limit.lo, 10)
		limit = int128{limit.hi*10 + hi, lo}
	}
	return x.hi < limit.hi || x.hi == limit.hi && x.lo < limit.lo
}

// appendDate appends days since the epoch as YYYY-MM-DD.
func appendDate(dst []byte, days int64) []byte {
	return time.Unix(days*86400, 0).UTC().AppendFormat(dst, "2006-01-02")
}

// appendClock appends nanoseconds since midnight as HH:MM:SS with the
// fraction digits needed, at most digits of them.
func appendClock(dst []byte, ns int64, fracDigits int) []byte {
	sec := ns / 1e9
	dst = append2(dst, int(sec/3600))
	dst = append(dst, ':')
	dst = append2(dst, int(sec/60%60))
	dst = append(dst, ':')
	dst = append2(dst, int(sec%60))
	return appendFraction(dst, ns%1e9, fracDigits)
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// appendFraction appends "." and the nanoseconds ns at a precision of
// digits, trailing zeros removed; nothing for 0.
func appendFraction(dst []byte, ns int64, digits int) []byte {
	if ns == 0 {
		return dst
	}
	var b [10]byte
	b[0] = '.'
	for i := 9; i >= 1; i-- {
		b[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 1 + digits
	for b[n-1] == '0' {
		n--
	}
	return append(dst, b[:n]...)
}

// appendTimestamp appends an RFC 3339 date-time for sec and nsec since the
// epoch, in UTC, with "Z" when utc is set and no offset otherwise.
func appendTimestamp(dst []byte, sec, nsec int64, fracDigits int, utc bool) []byte {
	dst = time.Unix(sec, 0).UTC().AppendFormat(dst, "2006-01-02T15:04:05")
	dst = appendFraction(dst, nsec, fracDigits)
	if utc {
		dst = append(dst, 'Z')
	}
	return dst
}

// splitMicros splits microseconds since the epoch into seconds and
// nanoseconds, the nanoseconds non-negative.
func splitMicros(us int64) (sec, nsec int64) {
	sec, r := us/1e6, us%1e6
	if r < 0 {
		sec, r = sec-1, r+1e6
	}
	return sec, r * 1e3
}

func splitNanos(ns int64) (sec, nsec int64) {
	sec, r := ns/1e9, ns%1e9
	if r < 0 {
		sec, r = sec-1, r+1e9
	}
	return sec, r
}

var hexDigits = "0123456789abcdef"

// appendUUID appends the canonical lower-case form of u.
func appendUUID(dst []byte, u []byte) []byte {
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }
