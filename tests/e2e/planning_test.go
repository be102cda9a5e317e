package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

var planSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "category", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 3, Name: "day", Type: iceberg.PrimitiveTypes.Date},
)

// planRows are ids [from, to) in category cat, a day per ten ids.
func planRows(from, to int64, cat string) arrow.Table {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "category", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := from; i < to; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		b.Field(1).(*array.StringBuilder).Append(cat)
		b.Field(2).(*array.Date32Builder).Append(arrow.Date32(19783 + i/10))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
}

// ids reads a scan's id column, sorted.
func ids(t *testing.T, scan *table.Scan) []int64 {
	t.Helper()
	defer scan.Close()
	tbl, err := scan.ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var out []int64
	col := tbl.Column(tbl.Schema().FieldIndices("id")[0])
	for _, c := range col.Data().Chunks() {
		out = append(out, c.(*array.Int64).Int64Values()...)
	}
	slices.Sort(out)
	return out
}

// TestServerSidePlanning plans scans with iceberg-go's REST client on the
// server and locally, on both shapes, and reads the same rows: partition
// and stats pruning, position deletes, equality deletes, deletion vectors
// (format v3), time travel, plans of several pages. The server's own
// counters show the plans were made there.
func TestServerSidePlanning(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			ctx := context.Background()
			// One manifest a page: every table of more than one commit is
			// planned in pages fetched with fetchScanTasks.
			inst := sh.start(t, "--plan-page-files", "1")
			cat := restCatalog(t, inst)
			if err := cat.CreateNamespace(ctx, table.Identifier{"plan"}, nil); err != nil {
				t.Fatal(err)
			}
			byCategory := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{2}, FieldID: 1000, Name: "category", Transform: iceberg.IdentityTransform{}},
				iceberg.PartitionField{SourceIDs: []int{3}, FieldID: 1001, Name: "day_month", Transform: iceberg.MonthTransform{}})
			create := func(name string, spec *iceberg.PartitionSpec, props iceberg.Properties) table.Identifier {
				t.Helper()
				id := table.Identifier{"plan", name}
				opts := []catalog.CreateTableOpt{catalog.WithProperties(props)}
				if spec != nil {
					opts = append(opts, catalog.WithPartitionSpec(spec))
				}
				if _, err := cat.CreateTable(ctx, id, planSchema, opts...); err != nil {
					t.Fatal(err)
				}
				return id
			}
			load := func(id table.Identifier) *table.Table {
				t.Helper()
				tbl, err := cat.LoadTable(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return tbl
			}
			commit := func(id table.Identifier, fn func(tx *table.Transaction) error) {
				t.Helper()
				tx := load(id).NewTransaction()
				if err := fn(tx); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			appendRows := func(id table.Identifier, data arrow.Table) {
				t.Helper()
				defer data.Release()
				commit(id, func(tx *table.Transaction) error { return tx.AppendTable(ctx, data, 1<<20, nil) })
			}
			deleteRows := func(id table.Identifier, filter iceberg.BooleanExpression) {
				t.Helper()
				commit(id, func(tx *table.Transaction) error { return tx.Delete(ctx, filter, nil) })
			}
			mor := iceberg.Properties{"write.delete.mode": "merge-on-read"}
			ref := func(n string) iceberg.Reference { return iceberg.Reference(n) }

			v2 := create("v2", &byCategory, mor)
			appendRows(v2, planRows(0, 40, "a"))
			appendRows(v2, planRows(40, 80, "b"))
			first := load(v2).CurrentSnapshot().SnapshotID
			appendRows(v2, planRows(80, 120, "c"))
			deleteRows(v2, iceberg.LessThan(ref("id"), int64(5)))
			deleteRows(v2, iceberg.EqualTo(ref("id"), int64(85)))

			v3 := create("v3", &byCategory, iceberg.Properties{"format-version": "3", "write.delete.mode": "merge-on-read"})
			appendRows(v3, planRows(0, 40, "a"))
			appendRows(v3, planRows(40, 80, "b"))
			deleteRows(v3, iceberg.GreaterThan(ref("id"), int64(75)))

			eq := create("eq", nil, nil)
			appendRows(eq, planRows(0, 30, "a"))
			keys := array.NewInt64Builder(memory.DefaultAllocator)
			keys.AppendValues([]int64{2, 4, 6}, nil)
			keyCol := keys.NewArray()
			keyRec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{keyCol}, 3)
			commit(eq, func(tx *table.Transaction) error {
				return tx.CommitEqualityDeletes(ctx, []int{1}, func(yield func(arrow.RecordBatch, error) bool) { yield(keyRec, nil) }, nil)
			})
			appendRows(eq, planRows(30, 40, "b"))

			cases := []struct {
				name string
				id   table.Identifier
				opts []table.ScanOption
				want int // rows
			}{
				{"no filter, position deletes", v2, nil, 114},
				{"partition filter", v2, []table.ScanOption{table.WithRowFilter(iceberg.EqualTo(ref("category"), "b"))}, 40},
				{"month partition and stats", v2, []table.ScanOption{table.WithRowFilter(iceberg.LessThan(ref("day"), "2024-03-02"))}, 5},
				{"time travel", v2, []table.ScanOption{table.WithSnapshotID(first)}, 80},
				{"deletion vectors", v3, nil, 76},
				{"equality deletes", eq, nil, 37},
				{"equality deletes, filtered", eq, []table.ScanOption{table.WithRowFilter(iceberg.LessThan(ref("id"), int64(10)))}, 7},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tbl := load(tc.id)
					local := ids(t, tbl.Scan(tc.opts...))
					plans := metric(t, inst.URL, "zombi_planning_plans_total")
					pages := metric(t, inst.URL, `zombi_planning_pages_total{outcome="ok"}`)
					remote := ids(t, tbl.Scan(append(slices.Clone(tc.opts), table.WithScanPlanningMode(table.ScanPlanningRemote))...))
					if !slices.Equal(remote, local) {
						t.Errorf("server plan read %v\nlocal plan read  %v", remote, local)
					}
					if len(local) != tc.want {
						t.Errorf("read %d rows, want %d", len(local), tc.want)
					}
					if got := metric(t, inst.URL, "zombi_planning_plans_total") - plans; got != 1 {
						t.Errorf("the server made %v plans for the scan, want 1", got)
					}
					if got := metric(t, inst.URL, `zombi_planning_pages_total{outcome="ok"}`) - pages; got < 2 {
						t.Errorf("the server planned %v pages, want several (plan tasks fetched)", got)
					}
				})
			}

			// Incremental scans (not in iceberg-go's remote planner yet),
			// over HTTP: the files appended after the first snapshot.
			cur := load(v2).CurrentSnapshot().SnapshotID
			body := fmt.Sprintf(`{"start-snapshot-id":%d,"end-snapshot-id":%d}`, first, cur)
			var plan struct {
				ID    string   `json:"plan-id"`
				Tasks []string `json:"plan-tasks"`
				Files []struct {
					DataFile struct {
						Path    string `json:"file-path"`
						Records int64  `json:"record-count"`
					} `json:"data-file"`
				} `json:"file-scan-tasks"`
			}
			if err := json.Unmarshal(mustCall(t, 200, "POST", inst.URL+"/v1/namespaces/plan/tables/v2/plan", body), &plan); err != nil {
				t.Fatal(err)
			}
			records := int64(0)
			for _, f := range plan.Files {
				records += f.DataFile.Records
			}
			for _, h := range plan.Tasks {
				var page struct {
					Files []struct {
						DataFile struct {
							Records int64 `json:"record-count"`
						} `json:"data-file"`
					} `json:"file-scan-tasks"`
				}
				if err := json.Unmarshal(mustCall(t, 200, "POST", inst.URL+"/v1/namespaces/plan/tables/v2/tasks", fmt.Sprintf(`{"plan-task":%q}`, h)), &page); err != nil {
					t.Fatal(err)
				}
				for _, f := range page.Files {
					records += f.DataFile.Records
				}
			}
			if records != 40 {
				t.Errorf("incremental plan (%d, %d] holds %d rows, want the 40 of the third append", first, cur, records)
			}
			mustCall(t, 204, "DELETE", inst.URL+"/v1/namespaces/plan/tables/v2/plan/"+plan.ID, "")
			if len(plan.Tasks) > 0 {
				mustCall(t, 404, "POST", inst.URL+"/v1/namespaces/plan/tables/v2/tasks", fmt.Sprintf(`{"plan-task":%q}`, plan.Tasks[0]))
			}
		})
	}
}

// TestScanPlanningMode: loadTable tells clients who plans, from the table
// property or the server's default, and /v1/config advertises the plan
// endpoints either way.
func TestScanPlanningMode(t *testing.T) {
	for _, def := range []string{"client", "server"} {
		t.Run(def, func(t *testing.T) {
			inst := shapes[0].start(t, "--scan-planning", def)
			base := inst.URL
			var cfg struct {
				Defaults  map[string]string `json:"defaults"`
				Endpoints []string          `json:"endpoints"`
			}
			if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/config", ""), &cfg); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(cfg.Endpoints, "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan") ||
				!slices.Contains(cfg.Endpoints, "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks") {
				t.Errorf("/v1/config endpoints lack the plan endpoints: %v", cfg.Endpoints)
			}
			if got, want := cfg.Defaults["scan-planning-mode"], map[string]string{"server": "server"}[def]; got != want {
				t.Errorf("/v1/config defaults scan-planning-mode = %q, want %q", got, want)
			}
			mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["modes"]}`)
			for name, prop := range map[string]string{"plain": "", "srv": "server", "cli": "client"} {
				props := ""
				if prop != "" {
					props = fmt.Sprintf(`,"properties":{"zombi.read.planning":%q}`, prop)
				}
				mustCall(t, 200, "POST", base+"/v1/namespaces/modes/tables",
					fmt.Sprintf(`{"name":%q,"schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}%s}`, name, props))
				var lt struct {
					Config map[string]string `json:"config"`
				}
				if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/modes/tables/"+name, ""), &lt); err != nil {
					t.Fatal(err)
				}
				want := prop
				if want == "" && def == "server" {
					want = "server"
				}
				if got := lt.Config["scan-planning-mode"]; got != want {
					t.Errorf("table %s (property %q): loadTable config scan-planning-mode = %q, want %q", name, prop, got, want)
				}
			}
		})
	}
}
