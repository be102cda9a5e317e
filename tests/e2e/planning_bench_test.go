package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// BenchmarkPlan measures server-side planning of a table of 10,000 data
// files (10 appends of 1,000, partitioned by day and category, with
// column statistics for 4 columns) over HTTP: one plan is the planTableScan
// call and a fetchScanTasks call for each further page, one after the
// other, as one client would. Run:
//
//	go test ./tests/e2e -run '^$' -bench Plan -benchtime 20x -count 5
//
// "all" plans every file, "day" one day of 100 (partition pruning), "id"
// one file by column statistics; "local" is iceberg-go planning the whole
// table itself from the same manifests, for comparison. With
// ZOMBI_BENCH_PPROF=127.0.0.1:6060 the server serves /debug/pprof there.
func BenchmarkPlan(b *testing.B) {
	var extra []string
	if addr := os.Getenv("ZOMBI_BENCH_PPROF"); addr != "" {
		extra = []string{"--pprof-listen", addr}
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			ctx := context.Background()
			inst := sh.start(b, extra...)
			cat := restCatalog(b, inst)
			tbl := tenThousandFiles(b, cat)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			post := func(path, body string) []byte {
				resp, err := client.Post(inst.URL+path, "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				out, err := io.ReadAll(resp.Body)
				if err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode != 200 {
					b.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
				}
				return out
			}
			type page struct {
				Tasks []string          `json:"plan-tasks"`
				Files []json.RawMessage `json:"file-scan-tasks"`
			}
			plan := func(body string) (files, pages int) {
				var first page
				if err := json.Unmarshal(post("/v1/namespaces/bench/tables/files/plan", body), &first); err != nil {
					b.Fatal(err)
				}
				files, pages = len(first.Files), 1
				for _, h := range first.Tasks {
					var p page
					if err := json.Unmarshal(post("/v1/namespaces/bench/tables/files/tasks", fmt.Sprintf(`{"plan-task":%q}`, h)), &p); err != nil {
						b.Fatal(err)
					}
					files += len(p.Files)
					pages++
				}
				return files, pages
			}
			for _, bc := range []struct {
				name, body string
				want       int
			}{
				{"all", `{}`, 10000},
				{"day", `{"filter":{"type":"and","left":{"type":"gt-eq","term":"ts","value":"2024-03-05T00:00:00"},"right":{"type":"lt","term":"ts","value":"2024-03-06T00:00:00"}}}`, 100},
				{"id", `{"filter":{"type":"eq","term":"id","value":4242424}}`, 1},
			} {
				b.Run(bc.name, func(b *testing.B) {
					var files, pages int
					start := time.Now()
					for b.Loop() {
						files, pages = plan(bc.body)
					}
					if files != bc.want {
						b.Fatalf("planned %d files, want %d", files, bc.want)
					}
					b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/plan")
					b.ReportMetric(float64(pages), "pages")
				})
			}
			b.Run("local", func(b *testing.B) {
				var n int
				start := time.Now()
				for b.Loop() {
					tasks, err := tbl.Scan().PlanFiles(ctx)
					if err != nil {
						b.Fatal(err)
					}
					n = len(tasks)
				}
				if n != 10000 {
					b.Fatalf("planned %d files locally", n)
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/plan")
			})
		})
	}
}

// tenThousandFiles creates bench.files: 10 appends of 1,000 data files,
// 100 days × 4 categories, each file with statistics for its 4 columns.
// The files are never read (planning reads manifests only), so they are
// not written.
func tenThousandFiles(b *testing.B, cat catalog.Catalog) *table.Table {
	b.Helper()
	ctx := context.Background()
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.Timestamp},
		iceberg.NestedField{ID: 3, Name: "category", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 4, Name: "value", Type: iceberg.PrimitiveTypes.Float64},
	)
	spec := iceberg.NewPartitionSpec(
		iceberg.PartitionField{SourceIDs: []int{2}, FieldID: 1000, Name: "ts_day", Transform: iceberg.DayTransform{}},
		iceberg.PartitionField{SourceIDs: []int{3}, FieldID: 1001, Name: "category", Transform: iceberg.IdentityTransform{}},
	)
	ident := table.Identifier{"bench", "files"}
	if err := cat.CreateNamespace(ctx, table.Identifier{"bench"}, nil); err != nil {
		b.Fatal(err)
	}
	tbl, err := cat.CreateTable(ctx, ident, schema, catalog.WithPartitionSpec(&spec))
	if err != nil {
		b.Fatal(err)
	}
	cats := []string{"alpha", "beta", "gamma", "delta"}
	le := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	const epochDay = 19783 // 2024-03-01
	for c := 0; c < 10; c++ {
		files := make([]iceberg.DataFile, 0, 1000)
		for j := 0; j < 1000; j++ {
			i := c*1000 + j
			day, category := i/4%100, cats[i%4]
			dayStart := int64(epochDay+day) * 86_400_000_000
			db, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData,
				fmt.Sprintf("%s/data/ts_day=%d/category=%s/%05d.parquet", tbl.Location(), day, category, i),
				iceberg.ParquetFile, map[int]any{1000: iceberg.Date(epochDay + day), 1001: category},
				map[int]string{1000: "date"}, nil, 1000, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			db.ColumnSizes(map[int]int64{1: 8000, 2: 8000, 3: 4000, 4: 8000}).
				ValueCounts(map[int]int64{1: 1000, 2: 1000, 3: 1000, 4: 1000}).
				NullValueCounts(map[int]int64{1: 0, 2: 0, 3: 0, 4: 10}).
				LowerBoundValues(map[int][]byte{1: le(uint64(i * 1000)), 2: le(uint64(dayStart)), 3: []byte(category), 4: le(math.Float64bits(0))}).
				UpperBoundValues(map[int][]byte{1: le(uint64(i*1000 + 999)), 2: le(uint64(dayStart + 86_399_999_999)), 3: []byte(category), 4: le(math.Float64bits(1000))})
			files = append(files, db.Build())
		}
		tx := tbl.NewTransaction()
		if err := tx.AddDataFiles(ctx, files, nil); err != nil {
			b.Fatal(err)
		}
		if tbl, err = tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return tbl
}
