package flusher

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
)

func TestPageRowLimit(t *testing.T) {
	record := func(rows int, payload func(i int) int) arrow.RecordBatch {
		schema := arrow.NewSchema([]arrow.Field{{Name: "sequence", Type: arrow.PrimitiveTypes.Int64}, {Name: "payload", Type: arrow.BinaryTypes.Binary}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for i := range rows {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			b.Field(1).(*array.BinaryBuilder).Append([]byte(strings.Repeat("x", payload(i))))
		}
		return b.NewRecordBatch()
	}
	for _, c := range []struct {
		name      string
		props     iceberg.Properties
		rec       arrow.RecordBatch
		wantLimit int
		wantOK    bool
	}{
		{"small events keep the default", nil, record(1000, func(int) int { return 100 }), 20000, false},
		{"700 KiB events", nil, record(10, func(int) int { return 700 << 10 }), 11, true},
		{"one large event among small ones", nil, record(1000, func(i int) int { return map[bool]int{true: 1 << 20, false: 50}[i == 500] }), 7, true},
		{"a row wider than a page: one row a page", nil, record(2, func(int) int { return 9 << 20 }), 1, true},
		{"the table's smaller limit stands", iceberg.Properties{"write.parquet.page-row-limit": "5"}, record(10, func(int) int { return 700 << 10 }), 5, false},
		{"the table's larger limit is lowered", iceberg.Properties{"write.parquet.page-row-limit": "100000"}, record(1000, func(int) int { return 100 }), 77672, true},
		{"no rows", nil, record(0, func(int) int { return 0 }), 20000, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer c.rec.Release()
			props := c.props
			if props == nil {
				props = iceberg.Properties{}
			}
			limit, ok := pageRowLimit(props, c.rec)
			if limit != c.wantLimit || ok != c.wantOK {
				t.Errorf("pageRowLimit = %d, %v; want %d, %v", limit, ok, c.wantLimit, c.wantOK)
			}
		})
	}
}
