package flusher_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/ingest"
)

// BenchmarkFlushEvents times one flush cycle of 15,000 events (one second
// at the ingest benchmark's latency rate) into an event table, the events
// written to the hot tier untimed before each. It compares the Parquet
// settings auto-created event tables get with Iceberg's defaults, for
// random payloads (the ingest benchmark's) and small JSON objects, and
// reports the data files' bytes per event.
//
//	go test ./flusher -run '^$' -bench FlushEvents -count 5
func BenchmarkFlushEvents(b *testing.B) {
	const events = 15000
	payloads := []struct {
		name string
		make func(i int, raw []byte) string
	}{
		{"payload=random100B", func(i int, raw []byte) string {
			return strconv.Quote(base64.StdEncoding.EncodeToString(raw)[:100])
		}},
		{"payload=json", func(i int, raw []byte) string {
			return fmt.Sprintf(`{"user":"u%d","event":"click","page":"/products/%d","session":"%s"}`,
				i%500, i%97, base64.RawURLEncoding.EncodeToString(raw[:12]))
		}},
	}
	for _, p := range payloads {
		for _, props := range []string{"auto-created", "iceberg-defaults"} {
			b.Run(p.name+"/props="+props, func(b *testing.B) {
				e := newEnv(b, nil)
				id := catalog.Ident{Namespace: []string{"default"}, Name: "ev"}
				e.writeBulk("ev", `{"payload":"first"}`)
				if props == "iceberg-defaults" {
					keys := slices.DeleteFunc(slices.Collect(maps.Keys(ingest.EventTableProperties())),
						func(k string) bool { return k == ingest.PropFormat })
					e.commitTx(id, func(tx *table.Transaction) error { return tx.RemoveProperties(keys) })
				}
				e.flush(id)

				lines := make([]string, events)
				raw := make([]byte, 76)
				var fileBytes int64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					for j := range lines {
						rand.Read(raw)
						lines[j] = fmt.Sprintf(`{"payload":%s,"partition":%d}`, p.make(j, raw), j%8)
					}
					e.writeBulk("ev", strings.Join(lines, "\n"))
					b.StartTimer()
					res := e.flush(id)
					if res.Rows != events {
						b.Fatalf("flushed %d events, want %d", res.Rows, events)
					}
					fileBytes += res.Bytes
				}
				b.ReportMetric(float64(fileBytes)/float64(b.N*events), "file-B/event")
			})
		}
	}
}
