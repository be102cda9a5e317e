package hotrow

import (
	"math/bits"
	"strconv"
	"time"
)

// Text forms of Iceberg values as ValueJSON renders them: the inverse of
// the parsing of package codec's Converter.

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

func appendIntText(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }
