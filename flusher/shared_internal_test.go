package flusher

import (
	"slices"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
)

// TestChainBatches: a commit takes each node's batches that follow its
// watermark without a gap, and drops the ones the table already holds
// (stale) and the ones that follow nothing (broken).
func TestChainBatches(t *testing.T) {
	schema := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int64})
	meta, err := table.NewMetadata(schema, iceberg.UnpartitionedSpec, table.UnsortedSortOrder, "file:///w/t",
		iceberg.Properties{WatermarkProperty("a"): "10", WatermarkProperty("b"): "0", "format-version": "2"})
	if err != nil {
		t.Fatal(err)
	}
	b := func(id int64, node string, after, through uint64) catalog.StagedBatch {
		return catalog.StagedBatch{ID: id, Node: node, After: after, Through: through, Rows: 1, FormatVersion: 2,
			Files: []catalog.StagedFile{{SpecID: 0, SchemaID: 0}}}
	}
	v1 := b(99, "c", 0, 5)
	v1.FormatVersion = 1
	noSpec := b(98, "c", 0, 5)
	noSpec.Files[0].SpecID = 7
	for _, tc := range []struct {
		name          string
		batches       []catalog.StagedBatch
		take          []int64
		marks         map[string]uint64
		stale, broken int
	}{
		{"none", nil, nil, map[string]uint64{}, 0, 0},
		{"follows the watermark", []catalog.StagedBatch{b(1, "a", 10, 20), b(2, "a", 20, 25)}, []int64{1, 2}, map[string]uint64{"a": 25}, 0, 0},
		{"new node", []catalog.StagedBatch{b(1, "n", 0, 3)}, []int64{1}, map[string]uint64{"n": 3}, 0, 0},
		{"stale", []catalog.StagedBatch{b(1, "a", 0, 10), b(2, "a", 10, 12)}, []int64{2}, map[string]uint64{"a": 12}, 1, 0},
		{"gap", []catalog.StagedBatch{b(1, "a", 11, 20)}, nil, map[string]uint64{}, 0, 1},
		{"overlap", []catalog.StagedBatch{b(1, "a", 5, 15)}, nil, map[string]uint64{}, 0, 1},
		{"gap after a taken batch", []catalog.StagedBatch{b(1, "a", 10, 20), b(2, "a", 21, 30)}, []int64{1}, map[string]uint64{"a": 20}, 0, 1},
		{"two nodes", []catalog.StagedBatch{b(3, "b", 0, 4), b(1, "a", 10, 20), b(2, "b", 4, 9)}, []int64{1, 3, 2}, map[string]uint64{"a": 20, "b": 9}, 0, 0},
		{"the same start twice: the first staged", []catalog.StagedBatch{b(2, "a", 10, 30), b(1, "a", 10, 20)}, []int64{1}, map[string]uint64{"a": 20}, 0, 1},
		{"another format version", []catalog.StagedBatch{v1}, nil, map[string]uint64{}, 0, 1},
		{"an unknown spec", []catalog.StagedBatch{noSpec}, nil, map[string]uint64{}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chainBatches(meta, tc.batches)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(c.take); !slices.Equal(got, tc.take) && !(len(got) == 0 && len(tc.take) == 0) {
				t.Errorf("takes %v, want %v", got, tc.take)
			}
			if len(c.marks) != len(tc.marks) {
				t.Errorf("watermarks %v, want %v", c.marks, tc.marks)
			}
			for n, w := range tc.marks {
				if c.marks[n] != w {
					t.Errorf("watermarks %v, want %v", c.marks, tc.marks)
				}
			}
			if c.stale != tc.stale || c.broken != tc.broken || len(c.drop) != tc.stale+tc.broken {
				t.Errorf("drops %v (%d stale, %d broken), want %d stale and %d broken", c.drop, c.stale, c.broken, tc.stale, tc.broken)
			}
		})
	}
}
