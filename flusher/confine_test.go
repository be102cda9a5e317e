package flusher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/warehouse"
)

// alteringCatalog changes the metadata of every load, as a bug in the
// catalog's own checks would let through.
type alteringCatalog struct {
	*catalog.Service
	alter func(table.Metadata) table.Metadata
}

func (c *alteringCatalog) LoadTable(ctx context.Context, id catalog.Ident) (*catalog.Table, error) {
	t, err := c.Service.LoadTable(ctx, id)
	if err != nil || c.alter == nil {
		return t, err
	}
	altered := *t
	altered.Metadata = c.alter(t.Metadata)
	return &altered, nil
}

// alterJSON returns meta changed by fn, which edits its JSON form.
func alterJSON(t testing.TB, meta table.Metadata, fn func(m map[string]any)) table.Metadata {
	t.Helper()
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	out, err := table.ParseMetadataBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFlushConfinedToTable: the flusher neither writes data files outside
// the table's location (write.data.path elsewhere) nor reads a manifest
// list outside it; the cycle fails with warehouse.ErrOutsideTable, naming
// the file and not showing it, and the events wait in the hot tier for a
// table that is right again.
func TestFlushConfinedToTable(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(secret, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		path  func(e *env) string // the file or directory outside the table
		alter func(m map[string]any, outside string)
	}{
		{
			name: "data path",
			path: func(e *env) string { return e.wh.Root() + "/default/elsewhere" },
			alter: func(m map[string]any, outside string) {
				m["properties"].(map[string]any)["write.data.path"] = outside
			},
		},
		{
			name: "manifest list",
			path: func(*env) string { return secret },
			alter: func(m map[string]any, outside string) {
				cur := m["current-snapshot-id"].(json.Number).String()
				for _, s := range m["snapshots"].([]any) {
					if s := s.(map[string]any); s["snapshot-id"].(json.Number).String() == cur {
						s["manifest-list"] = outside
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := &alteringCatalog{}
			e := newEnv(t, func(o *flusher.Options) {
				cat.Service = o.Catalog.(*catalog.Service)
				o.Catalog = cat
			})
			// Unpartitioned: iceberg-go writes a partitioned table's files
			// under <location>/data whatever write.data.path says.
			id := catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: "confined"}
			e.createTyped(id, *iceberg.UnpartitionedSpec)
			rows := 0
			write := func(n int) {
				e.writeRows("confined", typedRows(n, time.Now(), time.Second))
				rows += n
			}
			write(3)
			e.flush(id)
			outside := tc.path(e)
			cat.alter = func(m table.Metadata) table.Metadata {
				return alterJSON(t, m, func(j map[string]any) { tc.alter(j, outside) })
			}
			write(3)
			_, err := e.fl.Flush(context.Background(), id)
			t.Logf("flush: %v", err)
			switch {
			case !errors.Is(err, warehouse.ErrOutsideTable):
				t.Fatalf("flush: %v, want ErrOutsideTable", err)
			case !strings.Contains(err.Error(), outside):
				t.Errorf("error %q does not name %s", err, outside)
			case strings.Contains(err.Error(), "root:") || strings.Contains(err.Error(), "726f6f74"):
				t.Errorf("error %q shows the file's contents", err)
			}
			if tc.name == "data path" {
				dir := strings.TrimPrefix(outside, "file://")
				err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						t.Errorf("written outside the table: %s", p)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			cat.alter = nil
			e.flush(id)
			if n := len(column(t, e.scan(id), "id")); n != rows {
				t.Errorf("table holds %d rows, want %d", n, rows)
			}
		})
	}
}
