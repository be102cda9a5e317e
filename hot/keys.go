package hot

import (
	"encoding/binary"
	"errors"
	"time"
)

// Key layout.
//
// Strings inside keys are encoded order-preservingly and self-delimited:
// 0x00 becomes 0x00 0xFF and the string ends with 0x00 0x01 (written str(s)
// below). No str(a) is a proper prefix of a different str(b), so every key
// that starts with kind str(table) belongs to that table: tables "a", "ab"
// and "a.b" never share a prefix. seq(n) is n as 8 bytes big-endian, so
// events sort by sequence; time(t) is t.UnixNano() as 8 bytes big-endian
// with the sign bit flipped, so times sort chronologically.
//
//	0x00 "format"                      layout version ("1")
//	0x00 "node"                        the node ID (DB.NodeID)
//	'l' str(table)                     the table's label (DB.SetLabel)
//	'n' str(table)                     sequence lease: seq(n), the highest
//	                                   sequence the table may hand out
//	                                   before it writes a new lease
//	'd' str(table)                     seq(n): events <= n were deleted
//	'e' str(table) seq(n)              event n (value below)
//	'k' str(table) str(key)            idempotency key: seq(n) time(appended)
//	'x' time(appended) str(table) str(key)
//	                                   empty; idempotency keys by time, so
//	                                   expiry scans from the start of 'x'
//	                                   to the cutoff
//
// An event's value is
//
//	time(appended) uvarint(cumBytes) uvarint(cumEvents) uvarint(len(key)) key value
//
// where cumBytes and cumEvents count the records the table assigned
// sequences to up to and including this one (tableState.assigned). The
// difference of the counters of two stored events is the backlog between
// them, so Open finds a table's backlog from its first and last event
// without reading the others.
//
// Why a lease rather than the last stored event: the sequence of an append
// that failed (or that a crash cut off after a reader saw it in the
// memtable, with Async durability) may be at or below a high watermark
// that a flusher persisted elsewhere, yet no stored event records it. Recovery starts after the lease, which is written
// (synced) before any sequence above the previous lease is handed out, so
// no sequence is ever handed out twice. The cost is a gap of at most
// leaseBlock sequences at each restart.
const (
	kindFormat  = 0x00
	kindLease   = 'n'
	kindDeleted = 'd'
	kindEvent   = 'e'
	kindIdem    = 'k'
	kindExpiry  = 'x'
	kindLabel   = 'l'
)

const layoutVersion = "1"

var formatKey = []byte{kindFormat, 'f', 'o', 'r', 'm', 'a', 't'}

// strLen is the encoded length of s.
func strLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			n++
		}
	}
	return n
}

// appendStr appends str(s) to b.
func appendStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xFF)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 1)
}

var errBadKey = errors.New("hot: malformed key")

// decodeStr decodes a str() at the start of b and returns the string and
// the rest of b.
func decodeStr(b []byte) (string, []byte, error) {
	var s []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 == len(b) {
			return "", nil, errBadKey
		}
		switch b[i+1] {
		case 1:
			if s == nil {
				return string(b[:i]), b[i+2:], nil
			}
			s = append(s, b[:i]...)
			return string(s), b[i+2:], nil
		case 0xFF:
			s = append(s, b[:i+1]...)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, errBadKey
		}
	}
	return "", nil, errBadKey
}

func appendSeq(b []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(b, seq)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano())^(1<<63))
}

func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63)))
}

// tableKey returns kind str(table).
func tableKey(kind byte, table string) []byte {
	b := make([]byte, 0, 1+strLen(table))
	return appendStr(append(b, kind), table)
}

// eventKey appends seq(n) to the event prefix of a table.
func eventKey(prefix []byte, seq uint64) []byte {
	b := make([]byte, 0, len(prefix)+8)
	return appendSeq(append(b, prefix...), seq)
}

// prefixEnd returns the exclusive upper bound of the keys that start with
// kind str(table): the prefix ends with the terminator 0x00 0x01, and no
// encoded string continues with 0x00 0x02.
func prefixEnd(prefix []byte) []byte {
	b := append([]byte(nil), prefix...)
	b[len(b)-1]++
	return b
}

// appendIdemKey appends 'k' str(table) str(key) to b.
func appendIdemKey(b []byte, table, key string) []byte {
	return appendStr(appendStr(append(b, kindIdem), table), key)
}

// appendExpiryKey appends 'x' time(at) str(table) str(key) to b.
func appendExpiryKey(b []byte, at time.Time, table, key string) []byte {
	return appendStr(appendStr(appendTime(append(b, kindExpiry), at), table), key)
}

// decodeExpiryKey splits an expiry key.
func decodeExpiryKey(k []byte) (at time.Time, table, key string, err error) {
	if len(k) < 9 || k[0] != kindExpiry {
		return time.Time{}, "", "", errBadKey
	}
	at = decodeTime(k[1:9])
	table, rest, err := decodeStr(k[9:])
	if err != nil {
		return time.Time{}, "", "", err
	}
	key, rest, err = decodeStr(rest)
	if err != nil || len(rest) != 0 {
		return time.Time{}, "", "", errBadKey
	}
	return at, table, key, nil
}

// idemValueLen is the length of an idempotency key's value.
const idemValueLen = 16

func appendIdemValue(b []byte, seq uint64, at time.Time) []byte {
	return appendTime(appendSeq(b, seq), at)
}

func decodeIdemValue(v []byte) (seq uint64, at time.Time, err error) {
	if len(v) != idemValueLen {
		return 0, time.Time{}, errors.New("hot: malformed idempotency entry")
	}
	return binary.BigEndian.Uint64(v), decodeTime(v[8:]), nil
}

// cum counts the records a table has assigned sequences to.
type cum struct {
	bytes  uint64
	events uint64
}

// eventHeaderLen is the length of an event value without key and value.
func eventHeaderLen(c cum, keyLen int) int {
	return 8 + uvarintLen(c.bytes) + uvarintLen(c.events) + uvarintLen(uint64(keyLen))
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// putEventValue writes an event value into dst, which has exactly the
// required length.
func putEventValue(dst []byte, at int64, c cum, key string, value []byte) {
	binary.BigEndian.PutUint64(dst, uint64(at)^(1<<63))
	n := 8
	n += binary.PutUvarint(dst[n:], c.bytes)
	n += binary.PutUvarint(dst[n:], c.events)
	n += binary.PutUvarint(dst[n:], uint64(len(key)))
	n += copy(dst[n:], key)
	copy(dst[n:], value)
}

var errBadEvent = errors.New("hot: malformed event")

// decodedEvent aliases the buffer it was decoded from.
type decodedEvent struct {
	at    int64
	cum   cum
	key   []byte
	value []byte
}

func decodeEventValue(v []byte) (decodedEvent, error) {
	var e decodedEvent
	if len(v) < 8 {
		return e, errBadEvent
	}
	e.at = int64(binary.BigEndian.Uint64(v) ^ (1 << 63))
	v = v[8:]
	var n int
	if e.cum.bytes, n = binary.Uvarint(v); n <= 0 {
		return e, errBadEvent
	}
	v = v[n:]
	if e.cum.events, n = binary.Uvarint(v); n <= 0 {
		return e, errBadEvent
	}
	v = v[n:]
	kl, n := binary.Uvarint(v)
	if n <= 0 || kl > uint64(len(v)-n) {
		return e, errBadEvent
	}
	v = v[n:]
	e.key, e.value = v[:kl], v[kl:]
	return e, nil
}

// recordSize is what a record counts against the backlog.
func recordSize(r *Record) uint64 {
	return uint64(len(r.Key) + len(r.Value))
}
