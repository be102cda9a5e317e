// Package storetest is the conformance suite for catalog.Store
// implementations. An implementation's test calls Run with a function that
// opens a fresh, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) catalog.Store {
//			s, err := Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every subtest opens its own store. Receipt times in the suite have
// microsecond precision, the finest a PostgreSQL timestamptz keeps.
//
// Beyond the documented contract the suite requires: ListNamespaces accepts
// as after either the last level of a child or a child's full
// Namespace.String(); writes inside View fail without changing anything; an
// empty namespace, or a level holding the unit separator (0x1F), is
// catalog.ErrInvalid; and a transaction that checks a parent namespace and
// creates a child in it never leaves an orphan when the parent is dropped
// concurrently.
package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

// test is one subtest: it gets a fresh, empty store.
type test struct {
	name string
	fn   func(t *testing.T, s catalog.Store)
}

// Run runs the conformance suite against the stores open returns. open must
// return a fresh, empty store and arrange for it to be closed with
// t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) catalog.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Namespace", namespaceTests},
		{"Table", tableTests},
		{"Entry", entryTests},
		{"Receipt", receiptTests},
		{"Lease", leaseTests},
		{"Tx", txTests},
		{"Concurrency", concurrencyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, open(t))
				})
			}
		})
	}
}

// ns builds a namespace from its levels.
func ns(levels ...string) catalog.Namespace { return catalog.Namespace(levels) }

// ident builds a table identifier.
func ident(n catalog.Namespace, name string) catalog.Ident {
	return catalog.Ident{Namespace: n, Name: name}
}

// update runs fn in an Update and fails the test if it returns an error.
func update(t *testing.T, s catalog.Store, fn func(catalog.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View and fails the test if it returns an error.
func view(t *testing.T, s catalog.Store, fn func(catalog.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// createNamespaces creates each namespace, in order, with no properties.
func createNamespaces(t *testing.T, s catalog.Store, nss ...catalog.Namespace) {
	t.Helper()
	update(t, s, func(tx catalog.Tx) error {
		for _, n := range nss {
			if err := tx.CreateNamespace(n, nil); err != nil {
				return fmt.Errorf("CreateNamespace(%q): %w", n, err)
			}
		}
		return nil
	})
}

// createTable creates id pointing at location.
func createTable(t *testing.T, s catalog.Store, id catalog.Ident, location string) {
	t.Helper()
	update(t, s, func(tx catalog.Tx) error { return createT(tx, id, location) })
}

// loadTable reads id's pointer in a View.
func loadTable(t *testing.T, s catalog.Store, id catalog.Ident) (string, error) {
	t.Helper()
	var loc string
	err := s.View(t.Context(), func(tx catalog.Tx) error {
		var err error
		loc, err = loadT(tx, id)
		return err
	})
	return loc, err
}

// wantTable fails the test unless id points at location.
func wantTable(t *testing.T, s catalog.Store, id catalog.Ident, location string) {
	t.Helper()
	got, err := loadTable(t, s, id)
	if err != nil {
		t.Fatalf("LoadTable(%v): %v, want %q", id, err, location)
	}
	if got != location {
		t.Fatalf("LoadTable(%v) = %q, want %q", id, got, location)
	}
}

// wantNoTable fails the test unless id is absent.
func wantNoTable(t *testing.T, s catalog.Store, id catalog.Ident) {
	t.Helper()
	got, err := loadTable(t, s, id)
	if !errors.Is(err, catalog.ErrNoSuchTable) {
		t.Fatalf("LoadTable(%v) = %q, %v; want ErrNoSuchTable", id, got, err)
	}
}

// loadNamespace reads n's properties in a View.
func loadNamespace(t *testing.T, s catalog.Store, n catalog.Namespace) (map[string]string, error) {
	t.Helper()
	var props map[string]string
	err := s.View(t.Context(), func(tx catalog.Tx) error {
		var err error
		props, err = tx.LoadNamespace(n)
		return err
	})
	return props, err
}

// wantNamespace fails the test unless n exists with exactly props.
func wantNamespace(t *testing.T, s catalog.Store, n catalog.Namespace, props map[string]string) {
	t.Helper()
	got, err := loadNamespace(t, s, n)
	if err != nil {
		t.Fatalf("LoadNamespace(%q): %v", n, err)
	}
	if got == nil {
		t.Fatalf("LoadNamespace(%q) returned nil properties", n)
	}
	if !maps.Equal(got, props) {
		t.Fatalf("LoadNamespace(%q) = %v, want %v", n, got, props)
	}
}

// wantNoNamespace fails the test unless n is absent.
func wantNoNamespace(t *testing.T, s catalog.Store, n catalog.Namespace) {
	t.Helper()
	got, err := loadNamespace(t, s, n)
	if !errors.Is(err, catalog.ErrNoSuchNamespace) {
		t.Fatalf("LoadNamespace(%q) = %v, %v; want ErrNoSuchNamespace", n, got, err)
	}
}

// wantErr fails the test unless errors.Is(err, target), or err is nil when
// target is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if target == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// names renders namespaces as their String()s, readable in failures.
func names(nss []catalog.Namespace) []string {
	out := make([]string, len(nss))
	for i, n := range nss {
		out[i] = strings.Join(n, ".")
	}
	return out
}

// tableNames renders identifiers as strings.
func tableNames(ids []catalog.Ident) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// state is everything a store holds apart from receipts, as read by dump.
type state struct {
	namespaces map[string]map[string]string // Namespace.String() → props
	tables     map[string]string            // namespace String() + "\x00" + name → location
}

func (a state) equal(b state) bool {
	return maps.EqualFunc(a.namespaces, b.namespaces, func(x, y map[string]string) bool { return maps.Equal(x, y) }) &&
		maps.Equal(a.tables, b.tables)
}

func (a state) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a.namespaces)) {
		fmt.Fprintf(&b, "namespace %q %v\n", k, a.namespaces[k])
	}
	for _, k := range slices.Sorted(maps.Keys(a.tables)) {
		fmt.Fprintf(&b, "table %q → %q\n", k, a.tables[k])
	}
	return b.String()
}

// dump reads every namespace and table reachable from the top level in one
// View.
func dump(t *testing.T, s catalog.Store) state {
	t.Helper()
	var st state
	view(t, s, func(tx catalog.Tx) error {
		st = state{namespaces: map[string]map[string]string{}, tables: map[string]string{}}
		var walk func(parent catalog.Namespace) error
		walk = func(parent catalog.Namespace) error {
			children, err := tx.ListNamespaces(parent, "", 0)
			if err != nil {
				return err
			}
			for _, n := range children {
				props, err := tx.LoadNamespace(n)
				if err != nil {
					return err
				}
				st.namespaces[n.String()] = props
				ids, err := listT(tx, n, "", 0)
				if err != nil {
					return err
				}
				for _, id := range ids {
					loc, err := loadT(tx, id)
					if err != nil {
						return err
					}
					st.tables[id.Namespace.String()+"\x00"+id.Name] = loc
				}
				if err := walk(n); err != nil {
					return err
				}
			}
			return nil
		}
		return walk(nil)
	})
	return st
}

// wantState fails the test unless the store holds want.
func wantState(t *testing.T, s catalog.Store, want state) {
	t.Helper()
	if got := dump(t, s); !got.equal(want) {
		t.Fatalf("store holds:\n%s\nwant:\n%s", got, want)
	}
}

// The table operations most tests use, on table entries that hold only a
// metadata location (no location or UUID, so no uniqueness checks).

func tableEntry(metadataLocation string) catalog.Entry {
	return catalog.Entry{Kind: catalog.KindTable, MetadataLocation: metadataLocation}
}

func loadT(tx catalog.Tx, id catalog.Ident) (string, error) {
	e, err := tx.Load(catalog.KindTable, id)
	return e.MetadataLocation, err
}

func createT(tx catalog.Tx, id catalog.Ident, metadataLocation string) error {
	return tx.Create(id, tableEntry(metadataLocation))
}

func swapT(tx catalog.Tx, id catalog.Ident, expected, next string) error {
	return tx.Swap(id, expected, tableEntry(next))
}

func dropT(tx catalog.Tx, id catalog.Ident) (string, error) {
	e, err := tx.Drop(catalog.KindTable, id)
	return e.MetadataLocation, err
}

func renameT(tx catalog.Tx, from, to catalog.Ident) error {
	return tx.Rename(catalog.KindTable, from, to)
}

func listT(tx catalog.Tx, ns catalog.Namespace, after string, limit int) ([]catalog.Ident, error) {
	return tx.List(catalog.KindTable, ns, after, limit)
}
