package embedded

import (
	"bytes"
	"cmp"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
)

func TestStringEncoding(t *testing.T) {
	strs := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "a\x01", "a b", "ab", "b", "\xff", "é", "日本"}
	for _, a := range strs {
		enc := appendString(nil, a)
		got, rest, err := decodeString(append(enc, "tail"...))
		if err != nil || got != a || string(rest) != "tail" {
			t.Errorf("decodeString(appendString(%q)) = %q, %q, %v", a, got, rest, err)
		}
		for _, b := range strs {
			encB := appendString(nil, b)
			if want, got := cmp.Compare(a, b), bytes.Compare(enc, encB); want != got {
				t.Errorf("compare(enc(%q), enc(%q)) = %d, want %d", a, b, got, want)
			}
			if a != b && bytes.HasPrefix(encB, enc) {
				t.Errorf("enc(%q) is a prefix of enc(%q)", a, b)
			}
		}
	}
	for _, bad := range []string{"", "a", "a\x00", "a\x00\x02", "a\x00\xff"} {
		if got, _, err := decodeString([]byte(bad)); err == nil {
			t.Errorf("decodeString(%q) = %q, want an error", bad, got)
		}
	}
}

func TestChildrenPrefix(t *testing.T) {
	for _, tc := range []struct {
		parent, ns catalog.Namespace
		child      bool
	}{
		{nil, catalog.Namespace{"a"}, true},
		{nil, catalog.Namespace{"a", "b"}, false},
		{catalog.Namespace{"a"}, catalog.Namespace{"a", "b"}, true},
		{catalog.Namespace{"a"}, catalog.Namespace{"a", "b", "c"}, false},
		{catalog.Namespace{"a"}, catalog.Namespace{"ab"}, false},
		{catalog.Namespace{"a"}, catalog.Namespace{"ab", "c"}, false},
		{catalog.Namespace{"a"}, catalog.Namespace{"a"}, false},
		{catalog.Namespace{"a", "b"}, catalog.Namespace{"a", "b", "c"}, true},
		{catalog.Namespace{"a", "b"}, catalog.Namespace{"a", "bc", "d"}, false},
	} {
		got := bytes.HasPrefix(namespaceKey(tc.ns), childrenPrefix(tc.parent))
		if got != tc.child {
			t.Errorf("key of %q has the children prefix of %q: %v, want %v", tc.ns, tc.parent, got, tc.child)
		}
	}
	// Tables of a are not tables of a.b or ab.
	for _, other := range []catalog.Namespace{{"a", "b"}, {"ab"}} {
		if bytes.HasPrefix(tableKey(catalog.Ident{Namespace: other, Name: "t"}), tablesPrefix(catalog.Namespace{"a"})) {
			t.Errorf("a table of %q has the tables prefix of a", other)
		}
	}
}

func TestTimeEncoding(t *testing.T) {
	times := []time.Time{
		time.Time{},
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(1, 0),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		if bytes.Compare(appendTime(nil, times[i-1]), appendTime(nil, times[i])) >= 0 {
			t.Errorf("time(%v) does not sort before time(%v)", times[i-1], times[i])
		}
	}
	for _, tm := range times {
		r := catalog.Receipt{Key: "k", Op: "op", Status: -1, Body: []byte{0}, Created: tm}
		got, err := decodeReceipt("k", encodeReceipt(r))
		if err != nil || !got.Created.Equal(tm) || got.Status != -1 || got.Op != "op" || !bytes.Equal(got.Body, []byte{0}) {
			t.Errorf("receipt created %v round trip: %+v, %v", tm, got, err)
		}
	}
}

func TestProps(t *testing.T) {
	for _, props := range []map[string]string{nil, {}, {"": ""}, {"a": "1", "b": "", "ü": "\x00"}} {
		got, err := decodeProps(encodeProps(props))
		if err != nil || got == nil || len(got) != len(props) {
			t.Fatalf("decodeProps(encodeProps(%q)) = %q, %v", props, got, err)
		}
		for k, v := range props {
			if got[k] != v {
				t.Errorf("decodeProps(encodeProps(%q)) = %q", props, got)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0x01}, {0x01, 0x05, 'a'}, {0x00, 'x'}, {0xff}} {
		if _, err := decodeProps(bad); err == nil {
			t.Errorf("decodeProps(%q) succeeded", bad)
		}
	}
}
