package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

var entryTests = []test{
	{"KindsShareNames", testEntryKinds},
	{"RoundTrip", testEntryRoundTrip},
	{"LocationOverlap", testEntryLocationOverlap},
	{"SwapMovesLocation", testEntrySwapLocation},
	{"UUIDUnique", testEntryUUIDUnique},
	{"RenameKeepsIndexes", testEntryRenameIndexes},
	{"Overlapping", testEntryOverlapping},
	{"ConcurrentOverlap", testEntryConcurrentOverlap},
	{"EntryLoader", testEntryLoader},
	{"EntryLister", testEntryLister},
}

func viewEntry(metadataLocation string) catalog.Entry {
	return catalog.Entry{Kind: catalog.KindView, MetadataLocation: metadataLocation}
}

func entryAt(kind catalog.Kind, meta, loc, uuid string) catalog.Entry {
	return catalog.Entry{Kind: kind, MetadataLocation: meta, Location: loc, UUID: uuid}
}

// testEntryKinds: a name is a table or a view, never both, and each kind's
// operations see only their own kind.
func testEntryKinds(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	tbl, vw := ident(ns("a"), "t"), ident(ns("a"), "v")
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.Create(tbl, tableEntry("t1")); err != nil {
			return err
		}
		return tx.Create(vw, viewEntry("v1"))
	})
	for _, step := range []struct {
		name string
		fn   func(tx catalog.Tx) error
		err  error
	}{
		{"ViewOverTable", func(tx catalog.Tx) error { return tx.Create(tbl, viewEntry("x")) }, catalog.ErrTableExists},
		{"TableOverView", func(tx catalog.Tx) error { return tx.Create(vw, tableEntry("x")) }, catalog.ErrViewExists},
		{"LoadTableAsView", func(tx catalog.Tx) error { _, err := tx.Load(catalog.KindView, tbl); return err }, catalog.ErrNoSuchView},
		{"LoadViewAsTable", func(tx catalog.Tx) error { _, err := tx.Load(catalog.KindTable, vw); return err }, catalog.ErrNoSuchTable},
		{"SwapViewAsTable", func(tx catalog.Tx) error { return tx.Swap(vw, "v1", tableEntry("x")) }, catalog.ErrNoSuchTable},
		{"DropViewAsTable", func(tx catalog.Tx) error { _, err := tx.Drop(catalog.KindTable, vw); return err }, catalog.ErrNoSuchTable},
		{"DropTableAsView", func(tx catalog.Tx) error { _, err := tx.Drop(catalog.KindView, tbl); return err }, catalog.ErrNoSuchView},
		{"RenameViewAsTable", func(tx catalog.Tx) error { return tx.Rename(catalog.KindTable, vw, ident(ns("a"), "x")) }, catalog.ErrNoSuchTable},
		{"RenameTableOntoView", func(tx catalog.Tx) error { return tx.Rename(catalog.KindTable, tbl, vw) }, catalog.ErrViewExists},
		{"RenameViewOntoTable", func(tx catalog.Tx) error { return tx.Rename(catalog.KindView, vw, tbl) }, catalog.ErrTableExists},
		{"CreateUnknownKind", func(tx catalog.Tx) error { return tx.Create(ident(ns("a"), "k"), catalog.Entry{Kind: 9}) }, catalog.ErrInvalid},
	} {
		t.Run(step.name, func(t *testing.T) {
			err := s.Update(t.Context(), step.fn)
			wantErr(t, step.name, err, step.err)
		})
	}
	view(t, s, func(tx catalog.Tx) error {
		tables, err := tx.List(catalog.KindTable, ns("a"), "", 0)
		if err != nil {
			return err
		}
		views, err := tx.List(catalog.KindView, ns("a"), "", 0)
		if err != nil {
			return err
		}
		if got := tableNames(tables); !slices.Equal(got, []string{"a.t"}) {
			t.Errorf("List(table) = %q, want [a.t]", got)
		}
		if got := tableNames(views); !slices.Equal(got, []string{"a.v"}) {
			t.Errorf("List(view) = %q, want [a.v]", got)
		}
		return nil
	})
	// A namespace holding only a view is not empty.
	err := s.Update(t.Context(), func(tx catalog.Tx) error {
		if _, err := tx.Drop(catalog.KindTable, tbl); err != nil {
			return err
		}
		return tx.DropNamespace(ns("a"))
	})
	wantErr(t, "DropNamespace with a view", err, catalog.ErrNamespaceNotEmpty)
	update(t, s, func(tx catalog.Tx) error {
		e, err := tx.Drop(catalog.KindView, vw)
		if err != nil {
			return err
		}
		if e != viewEntry("v1") {
			t.Errorf("Drop(view) = %+v", e)
		}
		return nil
	})
}

// testEntryRoundTrip: every field of an entry reads back as written,
// through create, swap and rename.
func testEntryRoundTrip(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("b"))
	id := ident(ns("a"), "v")
	e1 := entryAt(catalog.KindView, "file:///w/a/v/metadata/1.json", "file:///w/a/v", "u-1")
	e2 := entryAt(catalog.KindView, "file:///w/a/v/metadata/2.json", "file:///w/a/v", "u-1")
	load := func(id catalog.Ident) catalog.Entry {
		t.Helper()
		var e catalog.Entry
		view(t, s, func(tx catalog.Tx) error {
			var err error
			e, err = tx.Load(catalog.KindView, id)
			return err
		})
		return e
	}
	update(t, s, func(tx catalog.Tx) error { return tx.Create(id, e1) })
	if got := load(id); got != e1 {
		t.Fatalf("after Create: %+v, want %+v", got, e1)
	}
	update(t, s, func(tx catalog.Tx) error { return tx.Swap(id, e1.MetadataLocation, e2) })
	if got := load(id); got != e2 {
		t.Fatalf("after Swap: %+v, want %+v", got, e2)
	}
	to := ident(ns("b"), "w")
	update(t, s, func(tx catalog.Tx) error { return tx.Rename(catalog.KindView, id, to) })
	if got := load(to); got != e2 {
		t.Fatalf("after Rename: %+v, want %+v", got, e2)
	}
}

// testEntryLocationOverlap: no two entries' locations may be equal or
// nested; siblings that share a string prefix are fine.
func testEntryLocationOverlap(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	update(t, s, func(tx catalog.Tx) error {
		return tx.Create(ident(ns("a"), "t"), entryAt(catalog.KindTable, "m", "file:///w/a/t", "u-t"))
	})
	for _, step := range []struct {
		name, loc string
		kind      catalog.Kind
		err       error
	}{
		{"Same", "file:///w/a/t", catalog.KindTable, catalog.ErrLocationInUse},
		{"Inside", "file:///w/a/t/data", catalog.KindTable, catalog.ErrLocationInUse},
		{"ViewInside", "file:///w/a/t/v", catalog.KindView, catalog.ErrLocationInUse},
		{"Contains", "file:///w/a", catalog.KindTable, catalog.ErrLocationInUse},
		{"ContainsFar", "file:///w", catalog.KindView, catalog.ErrLocationInUse},
		{"Root", "file:///", catalog.KindTable, catalog.ErrLocationInUse},
		{"PrefixSibling", "file:///w/a/t2", catalog.KindTable, nil},
		{"SiblingBelowPrefix", "file:///w/a/t-x/y", catalog.KindTable, nil},
		{"OtherScheme", "s3://w/a/t", catalog.KindTable, nil},
	} {
		t.Run(step.name, func(t *testing.T) {
			id := ident(ns("a"), step.name)
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				return tx.Create(id, entryAt(step.kind, "m-"+step.name, step.loc, ""))
			})
			wantErr(t, "Create at "+step.loc, err, step.err)
			if step.err != nil {
				// Nothing was written.
				if errors.Is(s.View(t.Context(), func(tx catalog.Tx) error {
					_, err := tx.Load(step.kind, id)
					return err
				}), nil) {
					t.Fatalf("refused Create left %s behind", id)
				}
			}
		})
	}
	// Entries without a location (written before stores kept it) never
	// conflict.
	update(t, s, func(tx catalog.Tx) error { return tx.Create(ident(ns("a"), "legacy"), tableEntry("m")) })
}

// testEntrySwapLocation: a swap may move an entry's location, checked like
// a create, the entry itself excepted.
func testEntrySwapLocation(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	t1, t2 := ident(ns("a"), "t1"), ident(ns("a"), "t2")
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.Create(t1, entryAt(catalog.KindTable, "m1", "file:///w/t1", "u1")); err != nil {
			return err
		}
		return tx.Create(t2, entryAt(catalog.KindTable, "m2", "file:///w/t2", "u2"))
	})
	for _, step := range []struct {
		name   string
		next   catalog.Entry
		expect string
		err    error
	}{
		{"KeepLocation", entryAt(catalog.KindTable, "m1b", "file:///w/t1", "u1"), "m1", nil},
		{"IntoOther", entryAt(catalog.KindTable, "m1c", "file:///w/t2/x", "u1"), "m1b", catalog.ErrLocationInUse},
		{"OverOther", entryAt(catalog.KindTable, "m1c", "file:///w", "u1"), "m1b", catalog.ErrLocationInUse},
		{"InsideItself", entryAt(catalog.KindTable, "m1c", "file:///w/t1/sub", "u1"), "m1b", nil},
		{"Elsewhere", entryAt(catalog.KindTable, "m1d", "file:///w/t3", "u1"), "m1c", nil},
		// The old location is free again.
		{"StaleExpected", entryAt(catalog.KindTable, "m1e", "file:///w/t3", "u1"), "m1b", catalog.ErrCommitFailed},
	} {
		t.Run(step.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.Swap(t1, step.expect, step.next) })
			wantErr(t, step.name, err, step.err)
		})
	}
	update(t, s, func(tx catalog.Tx) error {
		return tx.Create(ident(ns("a"), "t4"), entryAt(catalog.KindTable, "m4", "file:///w/t1", "u4"))
	})
}

// testEntryUUIDUnique: no two entries share a UUID; a dropped entry's UUID
// is free again.
func testEntryUUIDUnique(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	t1 := ident(ns("a"), "t1")
	update(t, s, func(tx catalog.Tx) error {
		return tx.Create(t1, entryAt(catalog.KindTable, "m1", "file:///w/t1", "same"))
	})
	err := s.Update(t.Context(), func(tx catalog.Tx) error {
		return tx.Create(ident(ns("a"), "t2"), entryAt(catalog.KindTable, "m2", "file:///w/t2", "same"))
	})
	wantErr(t, "Create with a taken UUID", err, catalog.ErrLocationInUse)
	update(t, s, func(tx catalog.Tx) error {
		return tx.Create(ident(ns("a"), "t3"), entryAt(catalog.KindTable, "m3", "file:///w/t3", "other"))
	})
	err = s.Update(t.Context(), func(tx catalog.Tx) error {
		return tx.Swap(ident(ns("a"), "t3"), "m3", entryAt(catalog.KindTable, "m3b", "file:///w/t3", "same"))
	})
	wantErr(t, "Swap to a taken UUID", err, catalog.ErrLocationInUse)
	update(t, s, func(tx catalog.Tx) error {
		if _, err := tx.Drop(catalog.KindTable, t1); err != nil {
			return err
		}
		return tx.Create(ident(ns("a"), "t4"), entryAt(catalog.KindTable, "m4", "file:///w/t4", "same"))
	})
}

// testEntryRenameIndexes: a renamed entry keeps its location and UUID, and
// they stay its own: the new name does not conflict with the old.
func testEntryRenameIndexes(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("b"))
	from, to := ident(ns("a"), "t"), ident(ns("b"), "u")
	e := entryAt(catalog.KindTable, "m", "file:///w/a/t", "u1")
	update(t, s, func(tx catalog.Tx) error { return tx.Create(from, e) })
	update(t, s, func(tx catalog.Tx) error { return tx.Rename(catalog.KindTable, from, to) })
	update(t, s, func(tx catalog.Tx) error {
		return tx.Swap(to, "m", entryAt(catalog.KindTable, "m2", "file:///w/a/t", "u1"))
	})
	var owners []catalog.Owner
	view(t, s, func(tx catalog.Tx) error {
		var err error
		owners, err = tx.Overlapping("file:///w/a/t", 0)
		return err
	})
	if len(owners) != 1 || owners[0].Ident.String() != "b.u" || owners[0].Entry.MetadataLocation != "m2" {
		t.Fatalf("Overlapping after rename = %+v, want b.u at m2", owners)
	}
	err := s.Update(t.Context(), func(tx catalog.Tx) error {
		return tx.Create(ident(ns("a"), "t"), entryAt(catalog.KindTable, "m3", "file:///w/a/t", "u3"))
	})
	wantErr(t, "Create at the renamed table's location", err, catalog.ErrLocationInUse)
}

// testEntryOverlapping: the lookup finds the entries at, above and below
// a location, and none beside it.
func testEntryOverlapping(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	locs := map[string]string{
		"x": "file:///w/x", "y": "file:///w/y/z", "xy": "file:///w/xy", "s": "s3://w/x", "d": "file:///w/x-d",
	}
	update(t, s, func(tx catalog.Tx) error {
		for name, loc := range locs {
			if err := tx.Create(ident(ns("a"), name), entryAt(catalog.KindTable, "m-"+name, loc, "")); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	for _, tc := range []struct {
		loc  string
		want []string
	}{
		{"file:///w/x", []string{"a.x"}},
		{"/w/x/deep/er", []string{"a.x"}},
		{"file:///w", []string{"a.d", "a.x", "a.xy", "a.y"}},
		{"file:///w/y", []string{"a.y"}},
		{"file:///w/q", nil},
		{"s3a://w", []string{"a.s"}},
	} {
		var got []string
		view(t, s, func(tx catalog.Tx) error {
			owners, err := tx.Overlapping(tc.loc, 0)
			for _, o := range owners {
				got = append(got, o.Ident.String())
				if o.Entry.Location != locs[o.Ident.Name] {
					t.Errorf("Overlapping(%q): %s at %q, want %q", tc.loc, o.Ident, o.Entry.Location, locs[o.Ident.Name])
				}
			}
			return err
		})
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Overlapping(%q) = %q, want %q", tc.loc, got, tc.want)
		}
	}
	var n int
	view(t, s, func(tx catalog.Tx) error {
		owners, err := tx.Overlapping("file:///", 2)
		n = len(owners)
		return err
	})
	if n != 2 {
		t.Errorf("Overlapping with limit 2 returned %d", n)
	}
}

// testEntryConcurrentOverlap: of concurrent creates at nested locations
// under different names, exactly one succeeds.
func testEntryConcurrentOverlap(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	errs := make([]error, goroutines)
	parallel(goroutines, func(i int) {
		loc := "file:///w/t"
		for range i % 3 {
			loc += "/sub"
		}
		errs[i] = s.Update(t.Context(), func(tx catalog.Tx) error {
			return tx.Create(ident(ns("a"), fmt.Sprintf("t%d", i)), entryAt(catalog.KindTable, "m", loc, fmt.Sprintf("u%d", i)))
		})
	})
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, catalog.ErrLocationInUse):
			t.Fatalf("Create in goroutine %d: %v, want ErrLocationInUse", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d overlapping creates succeeded, want 1", won, goroutines)
	}
}

// testEntryLoader: a store that reads single entries outside transactions
// (catalog.EntryLoader) answers as Tx.Load does.
func testEntryLoader(t *testing.T, s catalog.Store) {
	l, ok := s.(catalog.EntryLoader)
	if !ok {
		return // optional
	}
	createNamespaces(t, s, ns("a"))
	tbl := entryAt(catalog.KindTable, "m-t", "file:///w/a/t", "u-t")
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.Create(ident(ns("a"), "t"), tbl); err != nil {
			return err
		}
		return tx.Create(ident(ns("a"), "v"), viewEntry("m-v"))
	})
	for _, tc := range []struct {
		name string
		kind catalog.Kind
		id   catalog.Ident
	}{
		{"Table", catalog.KindTable, ident(ns("a"), "t")},
		{"View", catalog.KindView, ident(ns("a"), "v")},
		{"ViewAsTable", catalog.KindTable, ident(ns("a"), "v")},
		{"TableAsView", catalog.KindView, ident(ns("a"), "t")},
		{"Missing", catalog.KindTable, ident(ns("a"), "x")},
		{"MissingNamespace", catalog.KindTable, ident(ns("b"), "t")},
		{"Separator", catalog.KindTable, ident(ns("a\x1fb"), "t")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotErr := l.LoadEntry(t.Context(), tc.kind, tc.id)
			var want catalog.Entry
			wantErr := s.View(t.Context(), func(tx catalog.Tx) error {
				var err error
				want, err = tx.Load(tc.kind, tc.id)
				return err
			})
			if got != want {
				t.Fatalf("LoadEntry = %+v, Tx.Load = %+v", got, want)
			}
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("LoadEntry error %v, Tx.Load error %v", gotErr, wantErr)
			}
			for _, sentinel := range []error{catalog.ErrNoSuchTable, catalog.ErrNoSuchView, catalog.ErrInvalid} {
				if errors.Is(gotErr, sentinel) != errors.Is(wantErr, sentinel) {
					t.Fatalf("LoadEntry error %v, Tx.Load error %v", gotErr, wantErr)
				}
			}
		})
	}
}

// testEntryLister: a store that lists outside transactions
// (catalog.EntryLister) answers as Tx.List does.
func testEntryLister(t *testing.T, s catalog.Store) {
	l, ok := s.(catalog.EntryLister)
	if !ok {
		return // optional
	}
	createNamespaces(t, s, ns("a"), ns("e"))
	update(t, s, func(tx catalog.Tx) error {
		for i := range 5 {
			if err := tx.Create(ident(ns("a"), fmt.Sprintf("t%d", i)), entryAt(catalog.KindTable, fmt.Sprintf("m-t%d", i), "", "")); err != nil {
				return err
			}
		}
		return tx.Create(ident(ns("a"), "v"), viewEntry("m-v"))
	})
	for _, tc := range []struct {
		name  string
		kind  catalog.Kind
		ns    catalog.Namespace
		after string
		limit int
	}{
		{"Tables", catalog.KindTable, ns("a"), "", 0},
		{"Views", catalog.KindView, ns("a"), "", 0},
		{"Page", catalog.KindTable, ns("a"), "", 2},
		{"After", catalog.KindTable, ns("a"), "t1", 2},
		{"AfterAll", catalog.KindTable, ns("a"), "t4", 0},
		{"Empty", catalog.KindTable, ns("e"), "", 0},
		{"MissingNamespace", catalog.KindTable, ns("b"), "", 0},
		{"Separator", catalog.KindTable, ns("a\x1fb"), "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotErr := l.ListEntries(t.Context(), tc.kind, tc.ns, tc.after, tc.limit)
			var want []catalog.Ident
			wantErr := s.View(t.Context(), func(tx catalog.Tx) error {
				var err error
				want, err = tx.List(tc.kind, tc.ns, tc.after, tc.limit)
				return err
			})
			if !slices.EqualFunc(got, want, func(a, b catalog.Ident) bool { return a.String() == b.String() }) {
				t.Fatalf("ListEntries = %v, Tx.List = %v", got, want)
			}
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("ListEntries error %v, Tx.List error %v", gotErr, wantErr)
			}
			for _, sentinel := range []error{catalog.ErrNoSuchNamespace, catalog.ErrInvalid} {
				if errors.Is(gotErr, sentinel) != errors.Is(wantErr, sentinel) {
					t.Fatalf("ListEntries error %v, Tx.List error %v", gotErr, wantErr)
				}
			}
		})
	}
}
