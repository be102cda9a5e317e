package storetest

import (
	"slices"
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

var tableTests = []test{
	{"CreateLoad", testTableCreateLoad},
	{"Swap", testTableSwap},
	{"Drop", testTableDrop},
	{"Rename", testTableRename},
	{"List", testTableList},
}

func testTableCreateLoad(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("a", "b"), ns("ab"))
	for _, step := range []struct {
		name     string
		id       catalog.Ident
		location string
		err      error
	}{
		{"Create", ident(ns("a"), "t"), "loc-a-t", nil},
		// The same name in other namespaces is another table.
		{"SameNameChild", ident(ns("a", "b"), "t"), "loc-a.b-t", nil},
		{"SameNameSibling", ident(ns("ab"), "t"), "loc-ab-t", nil},
		{"PrefixName", ident(ns("a"), "t2"), "loc-a-t2", nil},
		{"Existing", ident(ns("a"), "t"), "other", catalog.ErrTableExists},
		{"MissingNamespace", ident(ns("x"), "t"), "loc", catalog.ErrNoSuchNamespace},
		{"MissingChildNamespace", ident(ns("a", "c"), "t"), "loc", catalog.ErrNoSuchNamespace},
	} {
		t.Run(step.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return createT(tx, step.id, step.location) })
			wantErr(t, "CreateTable", err, step.err)
			switch step.err {
			case nil:
				wantTable(t, s, step.id, step.location)
			case catalog.ErrNoSuchNamespace:
				wantNoTable(t, s, step.id)
			}
		})
	}
	wantState(t, s, state{
		namespaces: map[string]map[string]string{"a": {}, "a\x1fb": {}, "ab": {}},
		tables: map[string]string{
			"a\x00t":      "loc-a-t",
			"a\x00t2":     "loc-a-t2",
			"a\x1fb\x00t": "loc-a.b-t",
			"ab\x00t":     "loc-ab-t",
		},
	})
	for _, id := range []catalog.Ident{ident(ns("a"), "T"), ident(ns("a"), "t "), ident(ns("a", "b"), "t2"), ident(ns("b"), "t")} {
		wantNoTable(t, s, id)
	}
}

func testTableSwap(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	id := ident(ns("a"), "t")
	other := ident(ns("a"), "u")
	createTable(t, s, id, "v1")
	createTable(t, s, other, "v1")
	// Each step runs in order against the same store.
	for _, step := range []struct {
		name           string
		id             catalog.Ident
		expected, next string
		err            error
		want           string
	}{
		{"Win", id, "v1", "v2", nil, "v2"},
		{"LoseToStale", id, "v1", "v3", catalog.ErrCommitFailed, "v2"},
		{"LoseToPrefix", id, "v", "v3", catalog.ErrCommitFailed, "v2"},
		{"LoseToEmpty", id, "", "v3", catalog.ErrCommitFailed, "v2"},
		{"WinAgain", id, "v2", "v3", nil, "v3"},
		{"SameLocation", id, "v3", "v3", nil, "v3"},
		{"Missing", ident(ns("a"), "x"), "v1", "v2", catalog.ErrNoSuchTable, ""},
		{"MissingNamespace", ident(ns("b"), "t"), "v1", "v2", catalog.ErrNoSuchTable, ""},
	} {
		t.Run(step.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return swapT(tx, step.id, step.expected, step.next) })
			wantErr(t, "SwapTable", err, step.err)
			if step.err == catalog.ErrNoSuchTable {
				wantNoTable(t, s, step.id)
			} else {
				wantTable(t, s, step.id, step.want)
			}
			wantTable(t, s, other, "v1")
		})
	}
}

func testTableDrop(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("a", "b"))
	createTable(t, s, ident(ns("a"), "t"), "loc-t")
	createTable(t, s, ident(ns("a", "b"), "t"), "loc-b-t")
	for _, step := range []struct {
		name string
		id   catalog.Ident
		want string
		err  error
	}{
		{"Drop", ident(ns("a"), "t"), "loc-t", nil},
		{"Again", ident(ns("a"), "t"), "", catalog.ErrNoSuchTable},
		{"Missing", ident(ns("a"), "x"), "", catalog.ErrNoSuchTable},
		{"MissingNamespace", ident(ns("x"), "t"), "", catalog.ErrNoSuchTable},
	} {
		t.Run(step.name, func(t *testing.T) {
			var got string
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				var err error
				got, err = dropT(tx, step.id)
				return err
			})
			wantErr(t, "DropTable", err, step.err)
			if got != step.want {
				t.Fatalf("DropTable(%v) = %q, want %q", step.id, got, step.want)
			}
			wantNoTable(t, s, step.id)
			wantTable(t, s, ident(ns("a", "b"), "t"), "loc-b-t")
		})
	}
	t.Run("Recreate", func(t *testing.T) {
		createTable(t, s, ident(ns("a"), "t"), "loc-t2")
		wantTable(t, s, ident(ns("a"), "t"), "loc-t2")
	})
}

func testTableRename(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("b"), ns("b", "c"))
	createTable(t, s, ident(ns("a"), "t"), "loc-t")
	createTable(t, s, ident(ns("a"), "u"), "loc-u")
	// Each step runs in order against the same store.
	for _, step := range []struct {
		name     string
		from, to catalog.Ident
		err      error
	}{
		{"SameNamespace", ident(ns("a"), "t"), ident(ns("a"), "t1"), nil},
		{"CrossNamespace", ident(ns("a"), "t1"), ident(ns("b", "c"), "t2"), nil},
		{"Back", ident(ns("b", "c"), "t2"), ident(ns("a"), "t"), nil},
		{"ToExisting", ident(ns("a"), "t"), ident(ns("a"), "u"), catalog.ErrTableExists},
		{"ToItself", ident(ns("a"), "t"), ident(ns("a"), "t"), catalog.ErrTableExists},
		{"FromMissing", ident(ns("a"), "x"), ident(ns("a"), "y"), catalog.ErrNoSuchTable},
		{"FromMissingNamespace", ident(ns("x"), "t"), ident(ns("a"), "y"), catalog.ErrNoSuchTable},
		{"ToMissingNamespace", ident(ns("a"), "t"), ident(ns("x"), "t"), catalog.ErrNoSuchNamespace},
		{"ToMissingChildNamespace", ident(ns("a"), "t"), ident(ns("a", "x"), "t"), catalog.ErrNoSuchNamespace},
	} {
		t.Run(step.name, func(t *testing.T) {
			before := dump(t, s)
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return renameT(tx, step.from, step.to) })
			wantErr(t, "RenameTable", err, step.err)
			if step.err != nil {
				wantState(t, s, before)
				return
			}
			loc := before.tables[step.from.Namespace.String()+"\x00"+step.from.Name]
			wantNoTable(t, s, step.from)
			wantTable(t, s, step.to, loc)
			delete(before.tables, step.from.Namespace.String()+"\x00"+step.from.Name)
			before.tables[step.to.Namespace.String()+"\x00"+step.to.Name] = loc
			wantState(t, s, before)
		})
	}
	t.Run("SourceNamespaceDroppable", func(t *testing.T) {
		update(t, s, func(tx catalog.Tx) error {
			if err := renameT(tx, ident(ns("a"), "t"), ident(ns("b"), "t")); err != nil {
				return err
			}
			if err := renameT(tx, ident(ns("a"), "u"), ident(ns("b"), "u")); err != nil {
				return err
			}
			return tx.DropNamespace(ns("a"))
		})
		wantNoNamespace(t, s, ns("a"))
		wantTable(t, s, ident(ns("b"), "t"), "loc-t")
		wantTable(t, s, ident(ns("b"), "u"), "loc-u")
	})
}

func testTableList(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("a", "b"), ns("ab"), ns("e"))
	names := []string{"t", "B", "a", "é", "t2", "t 2", "日本", "Z", "t.x"}
	update(t, s, func(tx catalog.Tx) error {
		for _, n := range names {
			if err := createT(tx, ident(ns("a"), n), "loc-"+n); err != nil {
				return err
			}
		}
		for _, id := range []catalog.Ident{ident(ns("a", "b"), "child"), ident(ns("ab"), "sibling")} {
			if err := createT(tx, id, "loc"); err != nil {
				return err
			}
		}
		return nil
	})
	sorted := slices.Sorted(slices.Values(names))
	// suffix returns the sorted names after after, at most limit of them.
	suffix := func(after string, limit int) []string {
		var out []string
		for _, n := range sorted {
			if n > after && (limit <= 0 || len(out) < limit) {
				out = append(out, "a."+n)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		ns    catalog.Namespace
		after string
		limit int
		want  []string
		err   error
	}{
		{"All", ns("a"), "", 0, suffix("", 0), nil},
		{"NegativeLimit", ns("a"), "", -5, suffix("", 0), nil},
		{"Limit", ns("a"), "", 3, suffix("", 3), nil},
		{"After", ns("a"), "t", 0, suffix("t", 0), nil},
		{"AfterLimit", ns("a"), "B", 2, suffix("B", 2), nil},
		{"AfterAbsent", ns("a"), "s", 0, suffix("s", 0), nil},
		{"AfterMultiByte", ns("a"), "é", 0, suffix("é", 0), nil},
		{"AfterLast", ns("a"), "日本", 0, nil, nil},
		{"Child", ns("a", "b"), "", 0, []string{"a.b.child"}, nil},
		{"Sibling", ns("ab"), "", 0, []string{"ab.sibling"}, nil},
		{"Empty", ns("e"), "", 0, nil, nil},
		{"MissingNamespace", ns("x"), "", 0, nil, catalog.ErrNoSuchNamespace},
		{"MissingChildNamespace", ns("a", "x"), "", 0, nil, catalog.ErrNoSuchNamespace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []catalog.Ident
			err := s.View(t.Context(), func(tx catalog.Tx) error {
				var err error
				got, err = listT(tx, tc.ns, tc.after, tc.limit)
				return err
			})
			wantErr(t, "ListTables", err, tc.err)
			if !slices.Equal(tableNames(got), tc.want) {
				t.Fatalf("ListTables(%q, %q, %d) = %q, want %q", tc.ns, tc.after, tc.limit, tableNames(got), tc.want)
			}
			for _, id := range got {
				if !slices.Equal(id.Namespace, tc.ns) {
					t.Fatalf("ListTables(%q) returned %q in namespace %q", tc.ns, id.Name, id.Namespace)
				}
			}
		})
	}
	t.Run("Walk", func(t *testing.T) {
		var all []catalog.Ident
		after := ""
		for page := 0; ; page++ {
			if page > len(names) {
				t.Fatalf("more than %d pages of 2", len(names))
			}
			var got []catalog.Ident
			view(t, s, func(tx catalog.Tx) error {
				var err error
				got, err = listT(tx, ns("a"), after, 2)
				return err
			})
			if len(got) > 2 {
				t.Fatalf("ListTables(a, %q, 2) returned %d tables", after, len(got))
			}
			if len(got) == 0 {
				break
			}
			all = append(all, got...)
			after = got[len(got)-1].Name
		}
		if !slices.Equal(tableNames(all), suffix("", 0)) {
			t.Fatalf("pages of ListTables(a) = %q, want %q", tableNames(all), suffix("", 0))
		}
	})
}
