package embedded_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/catalog/storetest"
)

func open(t *testing.T, dir string, opts ...embedded.Option) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) catalog.Store
	}{
		{"Disk", func(t *testing.T) catalog.Store { return open(t, t.TempDir()) }},
		{"Memory", func(t *testing.T) catalog.Store { return open(t, "", embedded.WithFS(vfs.NewMem())) }},
	} {
		t.Run(tc.name, func(t *testing.T) { storetest.Run(t, tc.open) })
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ns := catalog.Namespace{"a", "b c"}
	id := catalog.Ident{Namespace: ns, Name: "t"}
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(t.Context(), func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(ns[:1], nil); err != nil {
			return err
		}
		if err := tx.CreateNamespace(ns, map[string]string{"k": "v"}); err != nil {
			return err
		}
		if err := tx.Create(id, catalog.Entry{Kind: catalog.KindTable, MetadataLocation: "v1"}); err != nil {
			return err
		}
		if err := tx.Swap(id, "v1", catalog.Entry{Kind: catalog.KindTable, MetadataLocation: "v2"}); err != nil {
			return err
		}
		return tx.PutReceipt(catalog.Receipt{Key: "r", Op: "op", Status: 200, Body: []byte("b"), Created: created})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, catalog.ErrUnavailable) {
		t.Fatalf("Ping after Close: %v, want ErrUnavailable", err)
	}
	if err := s.Update(t.Context(), func(catalog.Tx) error { return nil }); !errors.Is(err, catalog.ErrUnavailable) {
		t.Fatalf("Update after Close: %v, want ErrUnavailable", err)
	}

	s = open(t, dir)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	err = s.View(t.Context(), func(tx catalog.Tx) error {
		props, err := tx.LoadNamespace(ns)
		if err != nil {
			return err
		}
		if len(props) != 1 || props["k"] != "v" {
			t.Errorf("LoadNamespace = %v", props)
		}
		children, err := tx.ListNamespaces(ns[:1], "", 0)
		if err != nil {
			return err
		}
		if len(children) != 1 || children[0].String() != ns.String() {
			t.Errorf("ListNamespaces = %q", children)
		}
		e, err := tx.Load(catalog.KindTable, id)
		loc := e.MetadataLocation
		if err != nil {
			return err
		}
		if loc != "v2" {
			t.Errorf("LoadTable = %q, want v2", loc)
		}
		r, err := tx.LoadReceipt("r")
		if err != nil {
			return err
		}
		if r == nil || r.Status != 200 || string(r.Body) != "b" || !r.Created.Equal(created) {
			t.Errorf("LoadReceipt = %+v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenForeignDatabase(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, "db", embedded.WithFS(fs))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A store of another layout version is refused rather than misread.
	if err := embedded.SetFormat(fs, "db", "999"); err != nil {
		t.Fatal(err)
	}
	if s, err := embedded.Open("db", embedded.WithFS(fs)); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a store with an unknown format")
	}
}

// TestCorruptFile: a corrupt table file makes opening or reading the store
// fail with an error; it never panics (Pebble's default for corruption).
func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		// The second Open flushes the first one's log into a table file.
		s, err := embedded.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(t.Context(), func(tx catalog.Tx) error {
			for i := range 50 {
				if err := tx.CreateNamespace(catalog.Namespace{fmt.Sprintf("ns%d-%d", round, i)}, map[string]string{"k": strings.Repeat("v", 100)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file to corrupt")
	}
	b, err := os.ReadFile(ssts[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 97 {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(ssts[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Open(dir)
	if err != nil {
		t.Logf("Open: %v", err)
		return
	}
	defer s.Close()
	err = s.View(t.Context(), func(tx catalog.Tx) error {
		_, err := tx.ListNamespaces(nil, "", 0)
		return err
	})
	if err == nil {
		t.Fatal("reading a corrupt store succeeded")
	}
	// Background work (table statistics) meets the corruption too; give it
	// the time to, so that a panic there would fail this test.
	time.Sleep(200 * time.Millisecond)
}
