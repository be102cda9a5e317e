package codec

import (
	"math/bits"
	"time"

	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/zombi-db/zombi/hotrow"
)

// Text forms of Iceberg values as producers send them: the inverse of
// what hotrow.ValueJSON renders. Dates and timestamps are limited to the
// years hotrow stores, 0000 to 9999.

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
	if sec < hotrow.MinUnixSec || sec > hotrow.MaxUnixSec {
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
func parseDecimal(s []byte, precision, scale int) (decimal128.Num, decimalReason) {
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
			return decimal128.Num{}, decimalSyntax
		}
	}
	exp10 = zeros - fracDigits
	if intDigits == 0 {
		return decimal128.Num{}, decimalSyntax
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return decimal128.Num{}, decimalSyntax
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
		return decimal128.Num{}, decimalSyntax
	}
	if overflow {
		return decimal128.Num{}, decimalTooManyDigits
	}
	if n == 0 {
		return decimal128.Num{}, decimalOK
	}
	shift := exp10 + scale // the unscaled value is sig × 10^shift
	if shift < 0 {
		return decimal128.Num{}, decimalTooManyFractionDigits
	}
	if n+shift > precision {
		return decimal128.Num{}, decimalTooManyDigits
	}
	var hi, lo uint64
	for k := 0; k < n+shift; k++ {
		d := uint64(0)
		if k < n {
			d = uint64(sig[k] - '0')
		}
		h, l := bits.Mul64(lo, 10)
		l, carry := bits.Add64(l, d, 0)
		hi, lo = hi*10+h+carry, l
	}
	x := decimal128.New(int64(hi), lo)
	if neg {
		x = x.Negate()
	}
	return x, decimalOK
}
