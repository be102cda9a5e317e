package catalog_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/zombi-db/zombi/catalog"
)

// objectStore presents a local warehouse as an object store at
// s3://bucket/wh, so that the catalog treats its files as remote, and
// counts the existence checks (Stat, a HEAD on S3) and the reads (a GET)
// the catalog asks of it.
type objectStore struct {
	catalog.Warehouse
	local string // the local warehouse's root, file:///…
	stats atomic.Int64
	reads atomic.Int64
}

const objectRoot = "s3://bucket/wh"

func (o *objectStore) Root() string     { return objectRoot }
func (o *objectStore) IO() icebergio.IO { return objectIO{o} }

func (o *objectStore) path(name string) string {
	return o.local + strings.TrimPrefix(name, objectRoot)
}

func (o *objectStore) Delete(ctx context.Context, uris []string) error {
	local := make([]string, len(uris))
	for i, u := range uris {
		local[i] = o.path(u)
	}
	return o.Warehouse.Delete(ctx, local)
}

func (o *objectStore) DeletePrefix(ctx context.Context, uri string) (int, error) {
	return o.Warehouse.DeletePrefix(ctx, o.path(uri))
}

type objectIO struct{ o *objectStore }

func (w objectIO) local() icebergio.IO { return w.o.Warehouse.IO() }

func (w objectIO) Remove(name string) error { return w.local().Remove(w.o.path(name)) }

func (w objectIO) Open(name string) (icebergio.File, error) {
	w.o.reads.Add(1)
	return w.local().Open(w.o.path(name))
}

func (w objectIO) ReadFile(name string) ([]byte, error) {
	w.o.reads.Add(1)
	return w.local().(icebergio.ReadFileIO).ReadFile(w.o.path(name))
}

func (w objectIO) Stat(name string) (fs.FileInfo, error) {
	w.o.stats.Add(1)
	return w.local().(interface {
		Stat(string) (fs.FileInfo, error)
	}).Stat(w.o.path(name))
}

func (w objectIO) Create(name string) (icebergio.FileWriter, error) {
	return w.local().(icebergio.WriteFileIO).Create(w.o.path(name))
}

func (w objectIO) WriteFile(name string, p []byte) error {
	return w.local().(icebergio.WriteFileIO).WriteFile(w.o.path(name), p)
}

// clock is a settable time for catalog.Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMetadataCheckOnObjectStore pins down what loadTable asks of an
// object store about the current metadata file: nothing right after this
// node wrote the file itself (the ingest path reloads a table after each
// flush commit and must not wait on a store that has stopped answering);
// a read, and no existence check, for a file another process wrote; and
// for a file it has parsed, an existence check once per
// MetadataCheckInterval.
func TestMetadataCheckOnObjectStore(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	var obj *objectStore
	var opts catalog.Options
	svc, _ := newService(t, func(o *catalog.Options) {
		obj = &objectStore{Warehouse: o.Warehouse, local: strings.TrimSuffix(o.Warehouse.Root(), "/")}
		o.Warehouse, o.Now, o.MetadataCheckInterval = obj, clk.Now, time.Second
		opts = *o
	})
	// Another process on the same store and warehouse.
	other, err := catalog.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t"}
	schema := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int64})
	if _, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: id, Schema: schema}, nil); err != nil {
		t.Fatal(err)
	}

	setProp := func(s *catalog.Service, v string) {
		t.Helper()
		ch := change(t, "t", `{"updates":[{"action":"set-properties","updates":{"k":"`+v+`"}}]}`)
		if _, err := s.CommitTable(ctx, ch, nil); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name      string
		do        func()
		wantStats int64 // existence checks the load after do makes
		wantReads int64 // and reads
	}{
		{"own create", func() {}, 0, 0},
		{"again within the interval", func() { clk.add(500 * time.Millisecond) }, 0, 0},
		{"after the interval", func() { clk.add(time.Second) }, 1, 0},
		{"own commit", func() { setProp(svc, "1") }, 0, 0},
		{"own commit, interval later", func() { clk.add(1100 * time.Millisecond) }, 1, 0},
		{"another process's commit", func() { setProp(other, "2") }, 0, 1},
		{"another process's commit, again", func() {}, 0, 0},
		{"another process's commit, interval later", func() { clk.add(1100 * time.Millisecond) }, 1, 0},
	}
	for _, st := range steps {
		st.do()
		stats, reads := obj.stats.Load(), obj.reads.Load()
		tbl, err := svc.LoadTable(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !strings.HasPrefix(tbl.MetadataLocation, objectRoot+"/") {
			t.Fatalf("%s: metadata at %s, want it below %s", st.name, tbl.MetadataLocation, objectRoot)
		}
		if got := obj.stats.Load() - stats; got != st.wantStats {
			t.Errorf("%s: loadTable made %d existence checks, want %d", st.name, got, st.wantStats)
		}
		if got := obj.reads.Load() - reads; got != st.wantReads {
			t.Errorf("%s: loadTable made %d reads, want %d", st.name, got, st.wantReads)
		}
	}

	// A current metadata file deleted under the catalog is missing to
	// loadTable, whether it had parsed the file (seen at the next check)
	// or not (seen by the read).
	gone := func(name string) {
		t.Helper()
		tbl, err := other.LoadTable(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := obj.IO().Remove(tbl.MetadataLocation); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.LoadTable(ctx, id); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("%s: loadTable of a table whose metadata file is gone: %v, want ErrNotFound", name, err)
		}
	}
	clk.add(1100 * time.Millisecond)
	gone("parsed before")
	setProp(other, "3")
	gone("never parsed")
}
