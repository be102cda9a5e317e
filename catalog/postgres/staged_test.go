package postgres_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/testenv"
)

// TestStaged: batches round-trip exactly, StagedThrough and StagedTables
// see them per node and table, Unstage removes only what it names, and a
// batch that holds nothing is refused.
func TestStaged(t *testing.T) {
	s := open(t, testenv.Postgres(t))
	ctx := t.Context()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	batch := func(table, node string, after, through uint64) catalog.StagedBatch {
		return catalog.StagedBatch{
			TableUUID: table, Table: catalog.Ident{Namespace: catalog.Namespace{"a", "b"}, Name: "t"}, Node: node,
			After: after, Through: through, Rows: int64(through - after), Oldest: at, FormatVersion: 2,
			Files: []catalog.StagedFile{{SpecID: 0, SchemaID: 1, Data: []byte{0, 1, 2}}, {SpecID: 1, SchemaID: 1, Data: []byte("x")}},
		}
	}
	var ids []int64
	for _, b := range []catalog.StagedBatch{
		batch("t1", "n2", 0, 10), batch("t1", "n1", 5, 9), batch("t1", "n1", 9, 20), batch("t2", "n1", 0, 1),
	} {
		id, err := s.Stage(ctx, b)
		if err != nil {
			t.Fatalf("Stage %+v: %v", b, err)
		}
		ids = append(ids, id)
	}
	got, err := s.StagedBatches(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.StagedBatch{batch("t1", "n1", 5, 9), batch("t1", "n1", 9, 20), batch("t1", "n2", 0, 10)}
	for i, id := range []int64{ids[1], ids[2], ids[0]} {
		want[i].ID = id
	}
	for i := range got {
		if got[i].Created.IsZero() {
			t.Errorf("batch %d has no creation time", got[i].ID)
		}
		got[i].Created = time.Time{}
		got[i].Oldest = got[i].Oldest.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StagedBatches(t1) =\n%+v\nwant\n%+v", got, want)
	}
	for _, tc := range []struct {
		table, node string
		want        uint64
	}{{"t1", "n1", 20}, {"t1", "n2", 10}, {"t1", "n3", 0}, {"t2", "n1", 1}, {"t3", "n1", 0}} {
		if got, err := s.StagedThrough(ctx, tc.table, tc.node); err != nil || got != tc.want {
			t.Errorf("StagedThrough(%s, %s) = %d, %v; want %d", tc.table, tc.node, got, err, tc.want)
		}
	}
	if tables, err := s.StagedTables(ctx); err != nil || !reflect.DeepEqual(tables, []string{"t1", "t2"}) {
		t.Errorf("StagedTables = %v, %v", tables, err)
	}
	// Another table's ID is not removed through t1.
	if err := s.Unstage(ctx, "t1", []int64{ids[0], ids[3], 1 << 40}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.StagedBatches(ctx, "t1"); len(got) != 2 {
		t.Errorf("after Unstage, t1 has %d batches, want 2", len(got))
	}
	if got, _ := s.StagedBatches(ctx, "t2"); len(got) != 1 {
		t.Errorf("Unstage through t1 removed t2's batch")
	}
	for _, b := range []catalog.StagedBatch{batch("t1", "n1", 5, 5), {TableUUID: "t1", Node: "n1", After: 0, Through: 1, Rows: 1}} {
		if _, err := s.Stage(ctx, b); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("Stage of an empty batch (%d, %d], %d files: %v, want ErrInvalid", b.After, b.Through, len(b.Files), err)
		}
	}
}
