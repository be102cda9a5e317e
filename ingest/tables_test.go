package ingest

import (
	"strings"
	"testing"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/hotrow"
)

func TestTableCacheRefs(t *testing.T) {
	c := tableCache{entries: map[string]*tableState{}}
	id := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "t"}
	other := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "u"}
	old := &tableState{ident: id}
	c.put(old, c.startLoad(id))
	c.putRef("t", old)
	c.putRef("default.t", old)
	u := &tableState{ident: other}
	c.put(u, c.startLoad(other))
	c.putRef("u", u)
	if c.byRef("t") != old || c.byRef("default.t") != old || c.byRef("u") != u {
		t.Fatal("refs not cached")
	}

	// A change to the table drops its refs, and only its refs.
	c.forget(id)
	if c.byRef("t") != nil || c.byRef("default.t") != nil {
		t.Error("refs of a forgotten table still cached")
	}
	if c.byRef("u") != u {
		t.Error("refs of another table dropped")
	}

	// A state loaded before the change is not cached under a ref.
	c.putRef("t", old)
	if c.byRef("t") != nil {
		t.Error("a state that is no longer the table's cached under a ref")
	}
	cur := &tableState{ident: id}
	c.put(cur, c.startLoad(id))
	c.putRef("t", cur)
	if c.byRef("t") != cur {
		t.Error("current state not cached under its ref")
	}
}

// TestTableCacheForget: a change drops the cached state of its table, or
// of every table for the zero Ident, and keeps a load that was in progress
// from caching what it read before the change.
func TestTableCacheForget(t *testing.T) {
	id := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "t"}
	other := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "u"}
	for _, tc := range []struct {
		name     string
		forget   catalog.Ident
		t, other bool // cached after the change
	}{
		{"Table", id, false, true},
		{"Other", other, true, false},
		{"All", catalog.Ident{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(c *tableCache, when string) {
				t.Helper()
				if got := c.get(id) != nil; got != tc.t {
					t.Errorf("%s: t cached: %v, want %v", when, got, tc.t)
				}
				if got := c.get(other) != nil; got != tc.other {
					t.Errorf("%s: u cached: %v, want %v", when, got, tc.other)
				}
			}

			// Cached states.
			c := &tableCache{entries: map[string]*tableState{}}
			for _, i := range []catalog.Ident{id, other} {
				st := &tableState{ident: i}
				c.put(st, c.startLoad(i))
				c.putRef(i.Name, st)
			}
			c.forget(tc.forget)
			check(c, "cached before the change")
			if got := c.byRef("t") != nil; got != tc.t {
				t.Errorf("ref t cached: %v, want %v", got, tc.t)
			}

			// Loads in progress.
			c = &tableCache{entries: map[string]*tableState{}}
			lt, lu := c.startLoad(id), c.startLoad(other)
			c.forget(tc.forget)
			c.put(&tableState{ident: id}, lt)
			c.put(&tableState{ident: other}, lu)
			check(c, "loaded across the change")
			if len(c.loads) != 0 {
				t.Errorf("%d loads left in progress", len(c.loads))
			}
		})
	}
}

// TestEventTableDictionaries: every per-column dictionary setting of an
// event table names one of its columns (a typo would leave the dictionary
// on without a word), and the columns of mostly distinct values have none.
func TestEventTableDictionaries(t *testing.T) {
	schema := hotrow.EventSchema()
	off := map[string]bool{}
	for k, v := range EventTableProperties() {
		col, ok := strings.CutPrefix(k, propDictionaryPrefix)
		if !ok {
			continue
		}
		if _, found := schema.FindFieldByName(col); !found {
			t.Errorf("%s names no column of the event schema", k)
		}
		if v == "false" {
			off[col] = true
		}
	}
	for _, col := range []string{"payload", "sequence", "event_time", "ingest_time"} {
		if !off[col] {
			t.Errorf("event tables keep a dictionary for %s", col)
		}
	}
	for _, col := range []string{"table", "partition"} { // a value or a few per file
		if off[col] {
			t.Errorf("event tables turn off the dictionary for %s", col)
		}
	}
}
