package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/hot"
)

// inferBulk is a bulk body of n rows of about 100 bytes of JSON each;
// with extra, every row also has member extra.
func inferBulk(n int, extra string) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uid":%d,"action":"click","price":%d.25,"ctx":{"ip":"10.0.%d.%d","ua":"bench"}`, i, i%100, i%250, i%200)
		if extra != "" {
			fmt.Fprintf(&b, `,%q:"x"`, extra)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// BenchmarkBulkInferred compares bulk writes of 1,000 plain JSON rows to a
// row table created through the catalog with the same columns (typed),
// to a table made from the data (inferred: it fills _zombi_ingest_time
// and checks the Zombi columns), and to that table while every 100th
// request brings a new field (evolving: one schema commit per new field).
// Writes acknowledge without waiting for the sync (hot.Async), so the
// figures are CPU. rows/s is the figure to compare.
func BenchmarkBulkInferred(b *testing.B) {
	const rows = 1000
	body := inferBulk(rows, "")
	run := func(b *testing.B, ts *testServer, table string, next func(i int) []byte) {
		b.Helper()
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/tables/"+table+"/bulk", bytes.NewReader(body)))
		if w.Code != http.StatusAccepted {
			b.Fatalf("first write: %d %s", w.Code, w.Body)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		i := 0
		for b.Loop() {
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/tables/"+table+"/bulk", bytes.NewReader(next(i))))
			if w.Code != http.StatusAccepted {
				b.Fatalf("write %d: %d %s", i, w.Code, w.Body)
			}
			i++
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("typed", func(b *testing.B) {
		ts := newTestServer(b, testOptions{durability: hot.Async})
		for _, c := range []struct{ path, body string }{
			{"/v1/namespaces", `{"namespace":["bench"]}`},
			{"/v1/namespaces/bench/tables", `{"name":"typed","schema":{"type":"struct","fields":[
				{"id":1,"name":"uid","type":"long","required":false},
				{"id":2,"name":"action","type":"string","required":false},
				{"id":3,"name":"price","type":"double","required":false},
				{"id":4,"name":"ctx","type":{"type":"struct","fields":[
					{"id":5,"name":"ip","type":"string","required":false},
					{"id":6,"name":"ua","type":"string","required":false}]},"required":false}]}}`},
		} {
			if w := ts.call("POST", c.path, c.body, ""); w.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", c.path, w.Code, w.Body)
			}
		}
		run(b, ts, "bench.typed", func(int) []byte { return body })
	})
	b.Run("inferred", func(b *testing.B) {
		ts := newTestServer(b, testOptions{durability: hot.Async})
		run(b, ts, "bench.inferred", func(int) []byte { return body })
	})
	b.Run("evolving", func(b *testing.B) {
		ts := newTestServer(b, testOptions{durability: hot.Async})
		run(b, ts, "bench.evolving", func(i int) []byte {
			if i%100 == 0 {
				return inferBulk(rows, fmt.Sprintf("new_%d", i))
			}
			return body
		})
	})
}
