package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

var namespaceTests = []test{
	{"CreateLoad", testNamespaceCreateLoad},
	{"CreateExisting", testNamespaceCreateExisting},
	{"LoadMissing", testNamespaceLoadMissing},
	{"SetProperties", testNamespaceSetProperties},
	{"Drop", testNamespaceDrop},
	{"ListChildren", testNamespaceListChildren},
	{"ListPagination", testNamespaceListPagination},
	{"ListByteOrder", testNamespaceListByteOrder},
	{"Names", testNamespaceNames},
	{"Invalid", testNamespaceInvalid},
}

func testNamespaceCreateLoad(t *testing.T, s catalog.Store) {
	for _, tc := range []struct {
		name  string
		ns    catalog.Namespace
		props map[string]string
		want  map[string]string
	}{
		{"NilProps", ns("a"), nil, map[string]string{}},
		{"EmptyProps", ns("b"), map[string]string{}, map[string]string{}},
		{"Props", ns("c"), map[string]string{"owner": "me", "empty": "", "ü": "ñ"}, map[string]string{"owner": "me", "empty": "", "ü": "ñ"}},
		{"Nested", ns("c", "d"), map[string]string{"k": "v"}, map[string]string{"k": "v"}},
		{"Deep", ns("c", "d", "e", "f"), nil, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "Deep" {
				createNamespaces(t, s, ns("c", "d", "e"))
			}
			update(t, s, func(tx catalog.Tx) error { return tx.CreateNamespace(tc.ns, tc.props) })
			wantNamespace(t, s, tc.ns, tc.want)
		})
	}
}

func testNamespaceCreateExisting(t *testing.T, s catalog.Store) {
	update(t, s, func(tx catalog.Tx) error {
		return tx.CreateNamespace(ns("a"), map[string]string{"k": "1"})
	})
	err := s.Update(t.Context(), func(tx catalog.Tx) error {
		return tx.CreateNamespace(ns("a"), map[string]string{"k": "2"})
	})
	wantErr(t, "CreateNamespace(a) again", err, catalog.ErrNamespaceExists)
	wantNamespace(t, s, ns("a"), map[string]string{"k": "1"})
}

func testNamespaceLoadMissing(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("a", "b"))
	for _, n := range []catalog.Namespace{ns("b"), ns("a", "c"), ns("a", "b", "c"), ns("ab"), ns("a b")} {
		wantNoNamespace(t, s, n)
	}
}

func testNamespaceSetProperties(t *testing.T, s catalog.Store) {
	update(t, s, func(tx catalog.Tx) error {
		return tx.CreateNamespace(ns("a"), map[string]string{"keep": "1", "drop": "2"})
	})
	for _, tc := range []struct {
		name  string
		ns    catalog.Namespace
		props map[string]string
		err   error
		want  map[string]string
	}{
		{"Replace", ns("a"), map[string]string{"keep": "3", "new": "4"}, nil, map[string]string{"keep": "3", "new": "4"}},
		{"Empty", ns("a"), map[string]string{}, nil, map[string]string{}},
		{"Again", ns("a"), map[string]string{"x": "y"}, nil, map[string]string{"x": "y"}},
		{"Nil", ns("a"), nil, nil, map[string]string{}},
		{"Missing", ns("b"), map[string]string{"x": "y"}, catalog.ErrNoSuchNamespace, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				return tx.SetNamespaceProperties(tc.ns, tc.props)
			})
			wantErr(t, "SetNamespaceProperties", err, tc.err)
			if tc.err != nil {
				wantNoNamespace(t, s, tc.ns)
				return
			}
			wantNamespace(t, s, tc.ns, tc.want)
		})
	}
}

func testNamespaceDrop(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("a", "b"), ns("ab"), ns("c"), ns("c", "d"))
	createTable(t, s, ident(ns("c", "d"), "t"), "loc")
	// Each step runs in order against the same store.
	for _, step := range []struct {
		name string
		ns   catalog.Namespace
		err  error
	}{
		{"WithChild", ns("a"), catalog.ErrNamespaceNotEmpty},
		{"WithTable", ns("c", "d"), catalog.ErrNamespaceNotEmpty},
		{"ParentOfNonEmpty", ns("c"), catalog.ErrNamespaceNotEmpty},
		{"Missing", ns("x"), catalog.ErrNoSuchNamespace},
		{"MissingChild", ns("a", "c"), catalog.ErrNoSuchNamespace},
		{"Leaf", ns("a", "b"), nil},
		{"Again", ns("a", "b"), catalog.ErrNoSuchNamespace},
		{"NowEmpty", ns("a"), nil},
		{"Sibling", ns("ab"), nil},
	} {
		t.Run(step.name, func(t *testing.T) {
			before := dump(t, s)
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DropNamespace(step.ns) })
			wantErr(t, "DropNamespace", err, step.err)
			if step.err != nil {
				wantState(t, s, before)
				return
			}
			wantNoNamespace(t, s, step.ns)
			delete(before.namespaces, step.ns.String())
			wantState(t, s, before)
		})
	}
	t.Run("AfterTableDropped", func(t *testing.T) {
		update(t, s, func(tx catalog.Tx) error {
			if _, err := dropT(tx, ident(ns("c", "d"), "t")); err != nil {
				return err
			}
			if err := tx.DropNamespace(ns("c", "d")); err != nil {
				return err
			}
			return tx.DropNamespace(ns("c"))
		})
		wantState(t, s, state{namespaces: map[string]map[string]string{}, tables: map[string]string{}})
	})
}

// listFixture is a namespace tree whose names share prefixes: the children
// of a are a.b, a.c and a.d only, never ab, "a b" or the single level "a.b".
var listFixture = []catalog.Namespace{
	ns("a"), ns("a", "b"), ns("a", "b", "c"), ns("a", "c"), ns("a", "d"), ns("a", "d", "e"),
	ns("ab"), ns("ab", "c"), ns("a b"), ns("a.b"), ns("b"),
}

func testNamespaceListChildren(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, listFixture...)
	for _, tc := range []struct {
		parent catalog.Namespace
		want   []string
	}{
		{nil, []string{"a", "a b", "a.b", "ab", "b"}},
		{ns(), []string{"a", "a b", "a.b", "ab", "b"}},
		{ns("a"), []string{"a.b", "a.c", "a.d"}},
		{ns("a", "b"), []string{"a.b.c"}},
		{ns("a", "d"), []string{"a.d.e"}},
		{ns("ab"), []string{"ab.c"}},
		{ns("a", "b", "c"), nil},
		{ns("a b"), nil},
		{ns("a.b"), nil},
		{ns("b"), nil},
	} {
		name := "top"
		if tc.parent != nil {
			name = "parent=" + strings.Join(tc.parent, ".")
		}
		t.Run(name, func(t *testing.T) {
			var got []catalog.Namespace
			view(t, s, func(tx catalog.Tx) error {
				var err error
				got, err = tx.ListNamespaces(tc.parent, "", 0)
				return err
			})
			if !slices.Equal(names(got), tc.want) {
				t.Fatalf("ListNamespaces(%q) = %q, want %q", tc.parent, names(got), tc.want)
			}
			for _, n := range got {
				if len(n) != len(tc.parent)+1 || !slices.Equal(n[:len(tc.parent)], tc.parent) {
					t.Fatalf("ListNamespaces(%q) returned %q, not a direct child", tc.parent, n)
				}
			}
		})
	}
}

func testNamespaceListPagination(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, listFixture...)
	for _, tc := range []struct {
		name   string
		parent catalog.Namespace
		after  string
		limit  int
		want   []string
	}{
		{"TopAll", nil, "", 0, []string{"a", "a b", "a.b", "ab", "b"}},
		{"TopNegativeLimit", nil, "", -1, []string{"a", "a b", "a.b", "ab", "b"}},
		{"TopBigLimit", nil, "", 100, []string{"a", "a b", "a.b", "ab", "b"}},
		{"TopLimit", nil, "", 2, []string{"a", "a b"}},
		{"TopAfter", nil, "a", 2, []string{"a b", "a.b"}},
		{"TopAfterAbsent", nil, "aa", 0, []string{"ab", "b"}},
		{"TopAfterLast", nil, "b", 0, nil},
		{"TopAfterAll", nil, "zzz", 0, nil},
		{"ChildAll", ns("a"), "", 0, []string{"a.b", "a.c", "a.d"}},
		{"ChildLimit", ns("a"), "", 1, []string{"a.b"}},
		{"ChildAfter", ns("a"), "b", 0, []string{"a.c", "a.d"}},
		{"ChildAfterLimit", ns("a"), "b", 1, []string{"a.c"}},
		{"ChildAfterAbsent", ns("a"), "bb", 0, []string{"a.c", "a.d"}},
		{"ChildAfterLast", ns("a"), "d", 0, nil},
		{"ChildAfterFull", ns("a"), "a\x1fb", 0, []string{"a.c", "a.d"}},
		{"ChildAfterFullLimit", ns("a"), "a\x1fc", 1, []string{"a.d"}},
		{"ChildAfterFullLast", ns("a"), "a\x1fd", 0, nil},
		{"DeepAfter", ns("a", "b"), "c", 0, nil},
		{"DeepAfterFull", ns("a", "d"), "a\x1fd\x1f", 0, []string{"a.d.e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []catalog.Namespace
			view(t, s, func(tx catalog.Tx) error {
				var err error
				got, err = tx.ListNamespaces(tc.parent, tc.after, tc.limit)
				return err
			})
			if !slices.Equal(names(got), tc.want) {
				t.Fatalf("ListNamespaces(%q, %q, %d) = %q, want %q", tc.parent, tc.after, tc.limit, names(got), tc.want)
			}
		})
	}
	// Walking page by page, with either form of after, visits every child
	// once.
	for _, tc := range []struct {
		name   string
		parent catalog.Namespace
		token  func(catalog.Namespace) string
		want   []string
	}{
		{"WalkTop", nil, func(n catalog.Namespace) string { return n[len(n)-1] }, []string{"a", "a b", "a.b", "ab", "b"}},
		{"WalkChildren", ns("a"), func(n catalog.Namespace) string { return n[len(n)-1] }, []string{"a.b", "a.c", "a.d"}},
		{"WalkChildrenFull", ns("a"), catalog.Namespace.String, []string{"a.b", "a.c", "a.d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var all []catalog.Namespace
			after := ""
			for page := 0; ; page++ {
				if page > len(tc.want) {
					t.Fatalf("more than %d pages of 1: %q", len(tc.want), names(all))
				}
				var got []catalog.Namespace
				view(t, s, func(tx catalog.Tx) error {
					var err error
					got, err = tx.ListNamespaces(tc.parent, after, 1)
					return err
				})
				if len(got) > 1 {
					t.Fatalf("ListNamespaces(%q, %q, 1) returned %d namespaces", tc.parent, after, len(got))
				}
				if len(got) == 0 {
					break
				}
				all = append(all, got...)
				after = tc.token(got[0])
			}
			if !slices.Equal(names(all), tc.want) {
				t.Fatalf("pages of ListNamespaces(%q) = %q, want %q", tc.parent, names(all), tc.want)
			}
		})
	}
}

func testNamespaceListByteOrder(t *testing.T, s catalog.Store) {
	// Byte-wise, not by any locale: upper case before lower case, ASCII
	// before multi-byte UTF-8, a prefix before its extensions.
	levels := []string{"b", "B", "é", "a", "Z", "_", "~", "a\x01", "a ", "aa", "日本", "e", "\t"}
	var nss []catalog.Namespace
	for _, l := range levels {
		nss = append(nss, ns(l))
	}
	createNamespaces(t, s, nss...)
	want := slices.Sorted(slices.Values(levels))
	var got []catalog.Namespace
	view(t, s, func(tx catalog.Tx) error {
		var err error
		got, err = tx.ListNamespaces(nil, "", 0)
		return err
	})
	if !slices.Equal(names(got), want) {
		t.Fatalf("ListNamespaces = %q, want %q", names(got), want)
	}
	// Also under a parent, and paginated across the multi-byte names.
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(ns("p"), nil); err != nil {
			return err
		}
		for _, l := range levels {
			if err := tx.CreateNamespace(ns("p", l), nil); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx catalog.Tx) error {
		var err error
		got, err = tx.ListNamespaces(ns("p"), "e", 0)
		return err
	})
	var wantAfter []string
	for _, l := range want {
		if l > "e" {
			wantAfter = append(wantAfter, "p."+l)
		}
	}
	if !slices.Equal(names(got), wantAfter) {
		t.Fatalf("ListNamespaces(p, e) = %q, want %q", names(got), wantAfter)
	}
}

func testNamespaceNames(t *testing.T, s catalog.Store) {
	// Levels holding dots, spaces and multi-byte characters are opaque.
	a := ns("dotted.level")
	b := ns("dotted.level", "with space")
	c := ns("dotted.level", "with space", "ünïcødé 😀 名前")
	props := map[string]string{"dotted.key": "a value with spaces", "ключ": "значение"}
	update(t, s, func(tx catalog.Tx) error {
		for _, n := range []catalog.Namespace{a, b} {
			if err := tx.CreateNamespace(n, nil); err != nil {
				return err
			}
		}
		return tx.CreateNamespace(c, props)
	})
	wantNamespace(t, s, c, props)
	for _, n := range []catalog.Namespace{ns("dotted"), ns("dotted", "level"), ns("dotted.level", "with"), ns("dotted.level", "with space", "ünïcødé")} {
		wantNoNamespace(t, s, n)
	}
	var got []catalog.Namespace
	view(t, s, func(tx catalog.Tx) error {
		var err error
		got, err = tx.ListNamespaces(b, "", 0)
		return err
	})
	if len(got) != 1 || !slices.Equal(got[0], c) {
		t.Fatalf("ListNamespaces(%q) = %q, want [%q]", b, got, c)
	}
	id := ident(c, "table.name with spaces ✓")
	createTable(t, s, id, "s3://bucket/ü/metadata.json")
	wantTable(t, s, id, "s3://bucket/ü/metadata.json")
	wantNoTable(t, s, ident(c, "table"))
	var ids []catalog.Ident
	view(t, s, func(tx catalog.Tx) error {
		var err error
		ids, err = listT(tx, c, "", 0)
		return err
	})
	if len(ids) != 1 || !slices.Equal(ids[0].Namespace, c) || ids[0].Name != id.Name {
		t.Fatalf("ListTables(%q) = %q, want [%v]", c, tableNames(ids), id)
	}
	to := ident(a, "renamed · table")
	update(t, s, func(tx catalog.Tx) error { return renameT(tx, id, to) })
	wantNoTable(t, s, id)
	wantTable(t, s, to, "s3://bucket/ü/metadata.json")
	update(t, s, func(tx catalog.Tx) error {
		if _, err := dropT(tx, to); err != nil {
			return err
		}
		for _, n := range []catalog.Namespace{c, b, a} {
			if err := tx.DropNamespace(n); err != nil {
				return err
			}
		}
		return nil
	})
	wantNoNamespace(t, s, a)
}

func testNamespaceInvalid(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("a", "b"))
	createTable(t, s, ident(ns("a", "b"), "t"), "loc")
	before := dump(t, s)
	// A level holding the unit separator would make a.b and "a\x1fb" one
	// namespace; the empty namespace is the root, not a namespace.
	for _, tc := range []struct {
		name string
		fn   func(tx catalog.Tx) error
	}{
		{"CreateEmpty", func(tx catalog.Tx) error { return tx.CreateNamespace(ns(), nil) }},
		{"CreateSeparator", func(tx catalog.Tx) error { return tx.CreateNamespace(ns("a\x1fc"), nil) }},
		{"LoadSeparator", func(tx catalog.Tx) error { _, err := tx.LoadNamespace(ns("a\x1fb")); return err }},
		{"DropSeparator", func(tx catalog.Tx) error { return tx.DropNamespace(ns("a\x1fb")) }},
		{"LoadTableSeparator", func(tx catalog.Tx) error { _, err := loadT(tx, ident(ns("a\x1fb"), "t")); return err }},
		{"ListTablesSeparator", func(tx catalog.Tx) error { _, err := listT(tx, ns("a\x1fb"), "", 0); return err }},
		{"CreateTableEmpty", func(tx catalog.Tx) error { return createT(tx, ident(ns(), "t"), "loc") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), tc.fn)
			wantErr(t, tc.name, err, catalog.ErrInvalid)
			wantState(t, s, before)
		})
	}
}
