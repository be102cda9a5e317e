package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCatalog measures loadTable and commit throughput of a running
// zombi over HTTP with parallel clients (b.SetParallelism × GOMAXPROCS
// goroutines), for each shape. Run:
//
//	go test ./tests/e2e -run '^$' -bench Catalog -benchtime 3s -count 5
//
// With ZOMBI_BENCH_PPROF=127.0.0.1:6060 the server serves /debug/pprof
// there, to profile it under the benchmark's load.
func BenchmarkCatalog(b *testing.B) {
	var extra []string
	if addr := os.Getenv("ZOMBI_BENCH_PPROF"); addr != "" {
		extra = []string{"--pprof-listen", addr}
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			inst := sh.start(b, extra...)
			base := inst.URL
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			do := func(method, url, body string, hdr ...string) int {
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, url, rd)
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			if s := do("POST", base+"/v1/namespaces", `{"namespace":["bench"]}`); s != 200 {
				b.Fatalf("create namespace: %d", s)
			}
			const tables = 64
			for i := 0; i < tables; i++ {
				if s := do("POST", base+"/v1/namespaces/bench/tables", fmt.Sprintf(simpleTable, fmt.Sprintf("t%d", i))); s != 200 {
					b.Fatalf("create table: %d", s)
				}
			}
			_, hdr, _ := call(b, "GET", base+"/v1/namespaces/bench/tables/t0", "")
			etag := hdr.Get("ETag")

			b.Run("LoadTable", func(b *testing.B) {
				b.SetParallelism(8)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if s := do("GET", base+"/v1/namespaces/bench/tables/t0", ""); s != 200 {
							b.Errorf("load: %d", s)
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "loads/s")
			})
			b.Run("LoadTableNotModified", func(b *testing.B) {
				b.SetParallelism(8)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if s := do("GET", base+"/v1/namespaces/bench/tables/t0", "", "If-None-Match", etag); s != 304 {
							b.Errorf("conditional load: %d", s)
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "loads/s")
			})
			b.Run("Commit", func(b *testing.B) {
				// Each client commits to its own table: throughput of the
				// commit path without conflicts.
				var next, seq atomic.Int64
				b.SetParallelism(4)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					tbl := fmt.Sprintf("t%d", next.Add(1)%tables)
					for pb.Next() {
						body := fmt.Sprintf(`{"requirements":[],"updates":[{"action":"set-properties","updates":{"n":"%d"}}]}`, seq.Add(1))
						if s := do("POST", base+"/v1/namespaces/bench/tables/"+tbl, body); s != 200 {
							b.Errorf("commit: %d", s)
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
			})
		})
	}
}
