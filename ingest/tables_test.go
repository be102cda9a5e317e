package ingest

import (
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

func TestTableCacheRefs(t *testing.T) {
	c := tableCache{entries: map[string]*tableState{}}
	id := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "t"}
	other := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "u"}
	old := &tableState{ident: id}
	c.put(old)
	c.putRef("t", old)
	c.putRef("default.t", old)
	u := &tableState{ident: other}
	c.put(u)
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
	c.put(cur)
	c.putRef("t", cur)
	if c.byRef("t") != cur {
		t.Error("current state not cached under its ref")
	}
}
