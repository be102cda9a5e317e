package compaction

import (
	"strconv"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/hotrow"
)

func TestBatchRows(t *testing.T) {
	for _, tc := range []struct {
		props iceberg.Properties
		width int64
		want  int
	}{
		{nil, 150, maxBatchRows},            // 100-byte events: the row cap
		{nil, 0, maxBatchRows},              // no footer read
		{nil, 1 << 20, maxBatchBytes >> 20}, // 1 MiB events: 8 a batch
		{nil, 64 << 20, 1},                  // wider than a batch: one a batch
		{iceberg.Properties{table.ParquetBatchSizeKey: "1000"}, 150, 1000}, // the table's, smaller
		{iceberg.Properties{table.ParquetBatchSizeKey: "1000000"}, 150, maxBatchRows},
		{iceberg.Properties{table.ParquetBatchSizeKey: "100"}, 1 << 20, 8}, // the width's, smaller
		{iceberg.Properties{table.ParquetBatchSizeKey: "x"}, 150, maxBatchRows},
		{iceberg.Properties{table.ParquetBatchSizeKey: "-5"}, 150, maxBatchRows},
	} {
		if got := batchRows(tc.props, tc.width); got != tc.want {
			t.Errorf("batchRows(%v, %d) = %d, want %d", tc.props, tc.width, got, tc.want)
		}
	}
}

// TestBoundRowGroups: the compactor's copy of the metadata gets a row
// group size of at most maxRowGroupBytes; the metadata it was given does
// not change.
func TestBoundRowGroups(t *testing.T) {
	schema := hotrow.EventSchema()
	for _, tc := range []struct {
		set  string // "": not set
		want string // "": not set
	}{
		{"", strconv.Itoa(maxRowGroupBytes)},
		{strconv.Itoa(128 << 20), strconv.Itoa(maxRowGroupBytes)},
		{strconv.Itoa(8 << 20), strconv.Itoa(8 << 20)},
		{"lots", "lots"}, // for the writer to refuse
		{"0", "0"},
	} {
		props := iceberg.Properties{}
		if tc.set != "" {
			props[table.ParquetRowGroupSizeBytesKey] = tc.set
		}
		meta, err := table.NewMetadata(schema, iceberg.UnpartitionedSpec, table.UnsortedSortOrder, "file:///w/t", props)
		if err != nil {
			t.Fatal(err)
		}
		got, err := boundRowGroups(meta, "file:///w/t/metadata/00000.metadata.json")
		if err != nil {
			t.Fatal(err)
		}
		if v := got.Properties()[table.ParquetRowGroupSizeBytesKey]; v != tc.want {
			t.Errorf("set to %q: the compactor writes with %q, want %q", tc.set, v, tc.want)
		}
		if v := meta.Properties()[table.ParquetRowGroupSizeBytesKey]; v != tc.set {
			t.Errorf("set to %q: the metadata given changed to %q", tc.set, v)
		}
	}
}
