package tablefiles

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/warehouse"
)

// TestRemoveConfined: Remove deletes the table's own files and never one
// outside the table's location, however it is spelled.
func TestRemoveConfined(t *testing.T) {
	w, err := warehouse.Open(t.Context(), warehouse.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimPrefix(w.Root(), "file://")
	tbl := root + "/ns/t"
	mine := []string{tbl + "/data/a.parquet", "file://" + tbl + "/data/b.parquet"}
	theirs := []string{
		root + "/ns/t2/data/a.parquet",
		tbl + "/../t2/data/b.parquet",
		tbl + "/%2e%2e/t2/data/c.parquet",
	}
	for _, p := range []string{tbl + "/data/a.parquet", tbl + "/data/b.parquet", root + "/ns/t2/data/a.parquet", root + "/ns/t2/data/b.parquet", root + "/ns/t/%2e%2e/t2/data/c.parquet"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var files []iceberg.DataFile
	for _, p := range append(append([]string{}, mine...), theirs...) {
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, p, iceberg.ParquetFile, nil, nil, nil, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b.Build())
	}
	var logged strings.Builder
	Remove(context.Background(), w.FS, "file://"+tbl, slog.New(slog.NewTextHandler(&logged, nil)), files)

	for _, p := range []string{tbl + "/data/a.parquet", tbl + "/data/b.parquet"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it deleted", p, err)
		}
	}
	for _, p := range []string{root + "/ns/t2/data/a.parquet", root + "/ns/t2/data/b.parquet", root + "/ns/t/%2e%2e/t2/data/c.parquet"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, outside the table: %v", p, err)
		}
	}
	for _, p := range theirs {
		if !strings.Contains(logged.String(), p) {
			t.Errorf("not logged: %s\n%s", p, logged.String())
		}
	}
}
