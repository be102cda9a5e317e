package ingest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

func TestParseTableRef(t *testing.T) {
	tests := []struct {
		ref, ns, name string
		ok            bool
	}{
		{"clicks", "default", "clicks", true},
		{"shop.orders", "shop", "orders", true},
		{"a.b.c", "a\x1fb", "c", true},
		{"Ev_1-x", "default", "Ev_1-x", true},
		{"", "", "", false},
		{"1abc", "", "", false},
		{"a..b", "", "", false},
		{".a", "", "", false},
		{"a.", "", "", false},
		{"a:b", "", "", false},
		{"a/b", "", "", false},
		{"_x", "", "", false},
		{"é", "", "", false},
		{strings.Repeat("a", 128), "default", strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), "", "", false},
	}
	for _, tc := range tests {
		id, err := ParseTableRef(tc.ref, "default")
		if (err == nil) != tc.ok {
			t.Errorf("ParseTableRef(%q): err %v, want ok=%v", tc.ref, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Errorf("ParseTableRef(%q): %v is not ErrInvalid", tc.ref, err)
			}
			continue
		}
		if id.Namespace.String() != tc.ns || id.Name != tc.name {
			t.Errorf("ParseTableRef(%q) = %q.%q, want %q.%q", tc.ref, id.Namespace.String(), id.Name, tc.ns, tc.name)
		}
	}
}

func TestInFlight(t *testing.T) {
	l := NewInFlight(100)
	if !l.Acquire(60) || l.Acquire(60) || !l.Acquire(40) || l.Acquire(1) {
		t.Fatal("reservations past the limit must fail, within it succeed")
	}
	l.Release(60)
	l.Release(40)
	if l.Bytes() != 0 {
		t.Fatalf("%d bytes reserved after releasing everything", l.Bytes())
	}
	// A request larger than the limit still goes through alone.
	if !l.Acquire(500) || l.Acquire(1) {
		t.Fatal("an oversized request must pass alone and block others")
	}
	l.Release(500)

	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				if l.Acquire(30) {
					mu.Lock()
					peak = max(peak, l.Bytes())
					mu.Unlock()
					l.Release(30)
				}
			}
		}()
	}
	wg.Wait()
	if peak > 100 || l.Bytes() != 0 {
		t.Fatalf("peak %d (limit 100), %d left reserved", peak, l.Bytes())
	}
}

// FuzzParseTableRef: an accepted reference splits into parts that each
// match the name rule and join back to the reference; nothing else is
// accepted.
func FuzzParseTableRef(f *testing.F) {
	for _, s := range []string{"clicks", "shop.orders", "a.b.c", "a..b", "../etc", "a:b", "", "x\x00y", "ünï", strings.Repeat("z", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		id, err := ParseTableRef(ref, "default")
		if err != nil {
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		parts := append(append([]string{}, id.Namespace...), id.Name)
		for _, p := range parts {
			if !namePart.MatchString(p) {
				t.Fatalf("accepted part %q of %q breaks the name rule", p, ref)
			}
		}
		joined := strings.Join(parts, ".")
		if !strings.Contains(ref, ".") {
			joined = id.Name
		}
		if joined != ref {
			t.Fatalf("%q parsed to %v, which joins to %q", ref, parts, joined)
		}
		if err := catalog.ValidateIdent(id); err != nil {
			t.Fatalf("accepted %q but the catalog refuses %v: %v", ref, id, err)
		}
	})
}
