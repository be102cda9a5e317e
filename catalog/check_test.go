package catalog_test

import (
	"context"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/warehouse"
)

// objectStore presents a local warehouse as an object store at
// s3://bucket/wh, so that the catalog treats its files as remote, and
// counts the existence checks (Stat, a HEAD on S3) the catalog asks of it.
type objectStore struct {
	catalog.Warehouse
	local string // the local warehouse's root, file:///…
	stats atomic.Int64
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

func (w objectIO) Open(name string) (icebergio.File, error) { return w.local().Open(w.o.path(name)) }
func (w objectIO) Remove(name string) error                 { return w.local().Remove(w.o.path(name)) }

func (w objectIO) ReadFile(name string) ([]byte, error) {
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

// TestMetadataCheckOnObjectStore pins down when loadTable asks an object
// store whether the current metadata file still exists: once per
// MetadataCheckInterval, and not at all right after this node wrote the
// file itself (the ingest path reloads a table after each flush commit and
// must not wait on a store that has stopped answering). A file another
// process wrote is checked on its first load.
func TestMetadataCheckOnObjectStore(t *testing.T) {
	store, err := embedded.Open("db", embedded.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dir := t.TempDir()
	local, err := warehouse.Open(t.Context(), warehouse.Config{Root: dir + "/wh"})
	if err != nil {
		t.Fatal(err)
	}
	obj := &objectStore{Warehouse: local, local: strings.TrimSuffix(local.Root(), "/")}
	clk := &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	open := func() *catalog.Service {
		svc, err := catalog.New(catalog.Options{Store: store, Warehouse: obj, Now: clk.Now, MetadataCheckInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc, other := open(), open()
	ctx := t.Context()
	if _, err := svc.CreateNamespace(ctx, catalog.Namespace{"ns"}, nil, nil); err != nil {
		t.Fatal(err)
	}
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
		wantStats int64 // checks the load after do makes
	}{
		{"own create", func() {}, 0},
		{"again within the interval", func() { clk.add(500 * time.Millisecond) }, 0},
		{"after the interval", func() { clk.add(time.Second) }, 1},
		{"own commit", func() { setProp(svc, "1") }, 0},
		{"own commit, interval later", func() { clk.add(1100 * time.Millisecond) }, 1},
		{"another process's commit", func() { setProp(other, "2") }, 1},
		{"another process's commit, again", func() {}, 0},
	}
	for _, st := range steps {
		st.do()
		before := obj.stats.Load()
		tbl, err := svc.LoadTable(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !strings.HasPrefix(tbl.MetadataLocation, objectRoot+"/") {
			t.Fatalf("%s: metadata at %s, want it below %s", st.name, tbl.MetadataLocation, objectRoot)
		}
		if got := obj.stats.Load() - before; got != st.wantStats {
			t.Errorf("%s: loadTable made %d existence checks, want %d", st.name, got, st.wantStats)
		}
	}
}
