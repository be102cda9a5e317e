package tablefiles

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
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

// TestUnsorted: the writer's copy has the unsorted order as its default;
// the metadata it was made from keeps its order.
func TestUnsorted(t *testing.T) {
	schema := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "t", Type: iceberg.PrimitiveTypes.Int64, Required: true})
	order, err := table.NewSortOrder(1, []table.SortField{{SourceIDs: []int{1}, Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst}})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := table.NewMetadata(schema, iceberg.UnpartitionedSpec, order, "file:///w/t", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unsorted(meta, "file:///w/t/metadata/00000.metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	if !got.SortOrder().IsUnsorted() {
		t.Errorf("Unsorted: default sort order %v", got.SortOrder())
	}
	if meta.SortOrder().IsUnsorted() || meta.SortOrder().Len() != 1 {
		t.Errorf("the original's order changed to %v", meta.SortOrder())
	}
	if got.CurrentSchema().ID != meta.CurrentSchema().ID || got.Location() != meta.Location() {
		t.Error("Unsorted changed more than the sort order")
	}
}
