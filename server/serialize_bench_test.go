package server

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/openapi"
)

// benchMetadata is a table metadata document with n snapshots.
func benchMetadata(n int) openapi.RawJSON {
	var b strings.Builder
	b.WriteString(`{"format-version":2,"table-uuid":"9c12d441-03fe-4693-9a96-a0705ddf69c1","location":"file:///w/ns/t","last-sequence-number":1,"last-updated-ms":1,"last-column-id":2,"current-schema-id":0,"schemas":[{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","required":true,"type":"long"},{"id":2,"name":"v","required":false,"type":"string"}]}],"default-spec-id":0,"partition-specs":[{"spec-id":0,"fields":[]}],"last-partition-id":999,"properties":{"write.parquet.compression-codec":"zstd"},"snapshots":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"snapshot-id":%d,"sequence-number":%d,"timestamp-ms":1733580000000,"manifest-list":"file:///w/ns/t/metadata/snap-%d-1-bench.avro","summary":{"operation":"append","added-data-files":"1","added-records":"1"},"schema-id":0}`, i+1, i+1, i+1)
	}
	b.WriteString(`],"sort-orders":[{"order-id":0,"fields":[]}],"default-sort-order-id":0}`)
	return openapi.RawJSON(b.String())
}

// BenchmarkSerializeLoadTable: a loadTable answer written by the
// serializer, against encoding it whole with an encoder.
func BenchmarkSerializeLoadTable(b *testing.B) {
	loc := "file:///w/ns/t/metadata/00001-x.metadata.json"
	for _, n := range []int{0, 100} {
		v := openapi.LoadTableResult{Metadata: benchMetadata(n), MetadataLocation: &loc}
		e := echo.New()
		b.Run(fmt.Sprintf("snapshots=%d/serializer", n), func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				if err := (jsonSerializer{}).Serialize(e.NewContext(nil, rec), v, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("snapshots=%d/encoder", n), func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				enc := json.NewEncoder(rec)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
