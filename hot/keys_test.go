package hot

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStrEncoding(t *testing.T) {
	strs := []string{"", "a", "ab", "a.b", "a\x00", "a\x00b", "a\x01", "a\xff", "\x00", "\x00\x00", "b", "events-2026"}
	for _, s := range strs {
		enc := appendStr(nil, s)
		if len(enc) != strLen(s) {
			t.Errorf("strLen(%q) = %d, encoding has %d bytes", s, strLen(s), len(enc))
		}
		got, rest, err := decodeStr(append(enc, "tail"...))
		if err != nil || got != s || string(rest) != "tail" {
			t.Errorf("decodeStr(str(%q)+tail) = %q, %q, %v", s, got, rest, err)
		}
	}
	// No encoding is a prefix of another's, and encodings sort like the
	// strings.
	for _, a := range strs {
		for _, b := range strs {
			ea, eb := appendStr(nil, a), appendStr(nil, b)
			if a != b && bytes.HasPrefix(eb, ea) {
				t.Errorf("str(%q) is a prefix of str(%q)", a, b)
			}
			if c, d := strings.Compare(a, b), bytes.Compare(ea, eb); c != d {
				t.Errorf("compare(%q, %q) = %d, encoded %d", a, b, c, d)
			}
			// The bound of a table's events is above all its keys and
			// below the keys of every other table.
			pa, pb := tableKey(kindEvent, a), tableKey(kindEvent, b)
			if a != b {
				end := prefixEnd(pa)
				if k := eventKey(pb, 1); bytes.Compare(k, pa) >= 0 && bytes.Compare(k, end) < 0 {
					t.Errorf("event key of %q within the range of %q", b, a)
				}
			}
			if k := eventKey(pa, ^uint64(0)); bytes.Compare(k, prefixEnd(pa)) >= 0 {
				t.Errorf("last event key of %q not below its bound", a)
			}
		}
	}
	for _, bad := range []string{"", "abc", "a\x00", "a\x00\x02", "a\x00\xff"} {
		if _, _, err := decodeStr([]byte(bad)); err == nil {
			t.Errorf("decodeStr(%q) succeeded", bad)
		}
	}
}

func TestEventValue(t *testing.T) {
	tests := []struct {
		at    int64
		c     cum
		key   string
		value []byte
	}{
		{0, cum{}, "", nil},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), cum{bytes: 1 << 40, events: 1 << 33}, "key", []byte("value")},
		{-1, cum{bytes: ^uint64(0), events: ^uint64(0)}, strings.Repeat("k", 300), bytes.Repeat([]byte{0}, 1000)},
	}
	for _, tt := range tests {
		v := make([]byte, eventHeaderLen(tt.c, len(tt.key))+len(tt.key)+len(tt.value))
		putEventValue(v, tt.at, tt.c, tt.key, tt.value)
		e, err := decodeEventValue(v)
		if err != nil || e.at != tt.at || e.cum != tt.c || string(e.key) != tt.key || !bytes.Equal(e.value, tt.value) {
			t.Errorf("round trip of %+v: %+v, %v", tt, e, err)
		}
		for i := range min(len(v), 20) {
			if _, err := decodeEventValue(v[:i]); err == nil && i < eventHeaderLen(tt.c, len(tt.key))+len(tt.key) {
				t.Errorf("decoding %d of %d bytes succeeded", i, len(v))
			}
		}
	}
}

func TestExpiryKeyOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	times := []time.Time{t0.Add(-time.Hour * 24 * 365 * 60), t0.Add(-time.Nanosecond), t0, t0.Add(time.Nanosecond), t0.Add(time.Hour)}
	var keys [][]byte
	for _, at := range times {
		k := appendExpiryKey(nil, at, "tbl", "k\x00ey")
		gotAt, table, key, err := decodeExpiryKey(k)
		if err != nil || !gotAt.Equal(at) || table != "tbl" || key != "k\x00ey" {
			t.Errorf("decodeExpiryKey(%v) = %v, %q, %q, %v", at, gotAt, table, key, err)
		}
		keys = append(keys, k)
	}
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Errorf("expiry keys do not sort by time")
	}
	seq, at, err := decodeIdemValue(appendIdemValue(nil, 42, t0))
	if err != nil || seq != 42 || !at.Equal(t0) {
		t.Errorf("idempotency value: %d, %v, %v", seq, at, err)
	}
}
