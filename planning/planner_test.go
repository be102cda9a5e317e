package planning

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/zombi-db/zombi/catalog"
)

// TestPlanMatchesLocal plans scans on the server and with iceberg-go
// locally, and checks that both plan the same data files with the same
// delete files, and that reading the server's plan (decoded by
// iceberg-go's REST client) gives the rows the local plan gives.
func TestPlanMatchesLocal(t *testing.T) {
	type setup func(e *env) catalog.Ident
	partitioned := func(e *env) catalog.Ident {
		id := e.create("parts", byCategory, nil)
		e.append(id, slices.Concat(rows(0, 10, "a"), rows(10, 20, "b")))
		e.append(id, slices.Concat(rows(20, 30, "b"), rows(30, 40, "c")))
		return id
	}
	ranges := func(e *env) catalog.Ident {
		id := e.create("ranges", nil, nil)
		for i := int64(0); i < 4; i++ {
			e.append(id, rows(i*100, i*100+50, "x"))
		}
		return id
	}
	posDeletes := func(e *env) catalog.Ident {
		id := e.create("posdel", byCategory, map[string]string{"write.delete.mode": "merge-on-read"})
		e.append(id, slices.Concat(rows(0, 20, "a"), rows(20, 40, "b")))
		e.deleteRows(id, iceberg.LessThan(iceberg.Reference("id"), int64(5)))
		e.deleteRows(id, iceberg.EqualTo(iceberg.Reference("id"), int64(25)))
		return id
	}
	dvs := func(e *env) catalog.Ident {
		id := e.create("dv", byCategory, map[string]string{"format-version": "3", "write.delete.mode": "merge-on-read"})
		e.append(id, slices.Concat(rows(0, 20, "a"), rows(20, 40, "b")))
		e.deleteRows(id, iceberg.LessThan(iceberg.Reference("id"), int64(3)))
		e.deleteRows(id, iceberg.GreaterThan(iceberg.Reference("id"), int64(37)))
		return id
	}
	eqDeletes := func(e *env) catalog.Ident {
		id := e.create("eqdel", nil, nil)
		e.append(id, rows(0, 30, "a"))
		e.eqDelete(id, 3, 7, 11)
		e.append(id, rows(30, 40, "b"))
		return id
	}
	ref := func(n string) iceberg.Reference { return iceberg.Reference(n) }
	tests := []struct {
		name   string
		setup  setup
		filter iceberg.BooleanExpression
		// want are the data files the server plans (0: any number) and
		// the rows read.
		wantFiles int
		wantRows  int
	}{
		{"partition pruning", partitioned, iceberg.EqualTo(ref("category"), "b"), 2, 20},
		{"partition pruning, no match", partitioned, iceberg.EqualTo(ref("category"), "z"), 0, 0},
		{"no filter", partitioned, nil, 4, 40},
		{"stats pruning", ranges, iceberg.GreaterThanEqual(ref("id"), int64(210)), 2, 90},
		{"stats pruning, one file", ranges, iceberg.NewAnd(iceberg.GreaterThanEqual(ref("id"), int64(100)), iceberg.LessThan(ref("id"), int64(120))), 1, 20},
		{"position deletes", posDeletes, nil, 2, 34},
		{"position deletes, filtered", posDeletes, iceberg.EqualTo(ref("category"), "a"), 1, 15},
		{"deletion vectors", dvs, nil, 2, 35},
		{"equality deletes", eqDeletes, nil, 2, 37},
		{"equality deletes, pruned", eqDeletes, iceberg.GreaterThanEqual(ref("id"), int64(30)), 1, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := tc.setup(e)
			req := Request{CaseSensitive: true}
			if tc.filter != nil {
				req.Filter = filterJSON(t, testSchema, tc.filter)
			}
			_, pages := e.plan(id, req)
			server := e.decode(id, pages, testSchema)
			local := e.local(id, tc.filter)
			if got, want := files(server), files(local); !slices.Equal(got, want) {
				t.Errorf("server plan:\n  %s\nlocal plan:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if tc.wantFiles > 0 && len(files(server)) != tc.wantFiles {
				t.Errorf("server planned %d data files, want %d: %v", len(files(server)), tc.wantFiles, files(server))
			}
			got, want := e.read(id, server, tc.filter), e.read(id, local, tc.filter)
			if !slices.Equal(got, want) {
				t.Errorf("rows through the server plan differ from the local plan:\n got %v\nwant %v", got, want)
			}
			if len(got) != tc.wantRows {
				t.Errorf("read %d rows, want %d", len(got), tc.wantRows)
			}
		})
	}
}

// TestResiduals checks the residual filter of each task: what the
// partition does not already guarantee.
func TestResiduals(t *testing.T) {
	ref := func(n string) iceberg.Reference { return iceberg.Reference(n) }
	tests := []struct {
		name   string
		filter iceberg.BooleanExpression
		want   string // residual of every task
	}{
		{"no filter", nil, `true`},
		{"partition column only", iceberg.EqualTo(ref("category"), "a"), `true`},
		{"data column", iceberg.GreaterThan(ref("id"), int64(3)), `{"type":"gt","term":"id","value":3}`},
		{"both", iceberg.NewAnd(iceberg.EqualTo(ref("category"), "a"), iceberg.LessThan(ref("value"), 2.5)),
			`{"type":"lt","term":"value","value":2.5}`},
	}
	e := newEnv(t)
	id := e.create("res", byCategory, nil)
	e.append(id, slices.Concat(rows(0, 10, "a"), rows(10, 20, "b")))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{CaseSensitive: true}
			if tc.filter != nil {
				req.Filter = filterJSON(t, testSchema, tc.filter)
			}
			_, pages := e.plan(id, req)
			n := 0
			for _, p := range pages {
				for _, task := range p.FileScanTasks {
					n++
					if got := string(task.ResidualFilter); got != tc.want {
						t.Errorf("residual of %s = %s, want %s", task.DataFile.FilePath, got, tc.want)
					}
				}
			}
			if n == 0 {
				t.Fatal("no tasks planned")
			}
		})
	}
}

// TestPages cuts a table of many manifests into pages and checks that the
// pages together plan what one local plan does, each page with the delete
// files its own data files need.
func TestPages(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 2 })
	id := e.create("paged", byCategory, map[string]string{"write.delete.mode": "merge-on-read"})
	for i := int64(0); i < 5; i++ {
		e.append(id, rows(i*10, i*10+10, string(rune('a'+i))))
	}
	e.deleteRows(id, iceberg.EqualTo(iceberg.Reference("id"), int64(41)))
	resp, pages := e.plan(id, Request{CaseSensitive: true})
	if len(resp.PlanTasks) != 2 {
		t.Fatalf("plan tasks %v, want 2 (5 one-file manifests, 2 files a page)", resp.PlanTasks)
	}
	for i, p := range pages {
		if len(p.FileScanTasks) != 2 && i < 2 || len(p.FileScanTasks) != 1 && i == 2 {
			t.Errorf("page %d has %d tasks", i, len(p.FileScanTasks))
		}
		for _, d := range p.DeleteFiles {
			refs := 0
			for _, task := range p.FileScanTasks {
				refs += len(task.DeleteFileReferences)
			}
			if refs == 0 {
				t.Errorf("page %d lists delete file %s that no task references", i, d.FilePath)
			}
		}
	}
	server := e.decode(id, pages, testSchema)
	if got, want := files(server), files(e.local(id, nil)); !slices.Equal(got, want) {
		t.Errorf("pages plan\n  %s\nlocal plan\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := len(e.read(id, server, nil)); got != 49 {
		t.Errorf("read %d rows through the pages, want 49", got)
	}
	// A plan task is answered again, the same (a client's retry).
	again, err := e.pl.Tasks(context.Background(), id, resp.PlanTasks[1])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := files(e.decode(id, []rest.ScanTasks{again}, testSchema)), files(e.decode(id, pages[2:], testSchema)); !slices.Equal(got, want) {
		t.Errorf("a repeated fetch answered %v, first %v", got, want)
	}
	// fetchPlanningResult lists every page.
	res, err := e.pl.Result(id, resp.PlanID)
	if err != nil || res.Status != Completed || len(res.PlanTasks) != 3 {
		t.Errorf("Result = %+v, %v; want completed with 3 plan tasks", res, err)
	}
}

// TestMinRows stops after the first page when it surely holds the rows
// asked for.
func TestMinRows(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1 })
	id := e.create("limit", nil, nil)
	for i := int64(0); i < 3; i++ {
		e.append(id, rows(i*10, i*10+10, "a"))
	}
	resp, _ := e.plan(id, Request{CaseSensitive: true, MinRowsRequested: ptr[int64](5)})
	if len(resp.PlanTasks) != 0 || len(resp.FileScanTasks) != 1 {
		t.Errorf("min-rows 5: %d inline tasks, plan tasks %v; want 1 and none", len(resp.FileScanTasks), resp.PlanTasks)
	}
	resp, _ = e.plan(id, Request{CaseSensitive: true, MinRowsRequested: ptr[int64](15)})
	if len(resp.PlanTasks) != 2 {
		t.Errorf("min-rows 15: plan tasks %v, want 2", resp.PlanTasks)
	}
	// A filter leaves rows uncertain: every page.
	resp, _ = e.plan(id, Request{CaseSensitive: true, MinRowsRequested: ptr[int64](1),
		Filter: filterJSON(t, testSchema, iceberg.GreaterThan(iceberg.Reference("id"), int64(1)))})
	if len(resp.PlanTasks) != 2 {
		t.Errorf("min-rows with a filter: plan tasks %v, want 2", resp.PlanTasks)
	}
}

// TestSnapshots plans old snapshots (time travel, with and without the
// snapshot's schema) and incremental ranges.
func TestSnapshots(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PageFiles = 1 })
	id := e.create("history", nil, nil)
	s1 := e.append(id, rows(0, 10, "a"))
	s2 := e.append(id, rows(10, 20, "b"))
	e.renameValue(id)
	s3 := e.append(id, rows(20, 30, "c"))
	s4 := e.append(id, rows(30, 40, "d"))
	count := func(pages []rest.ScanTasks) int {
		n := 0
		for _, p := range pages {
			n += len(p.FileScanTasks)
		}
		return n
	}
	_, pages := e.plan(id, Request{CaseSensitive: true, SnapshotID: &s2})
	if got := count(pages); got != 2 {
		t.Errorf("snapshot %d: %d files, want 2", s2, got)
	}
	// The old name binds with the snapshot's schema, the new one without.
	old := iceberg.GreaterThan(iceberg.Reference("value"), 1.0)
	_, pages = e.plan(id, Request{CaseSensitive: true, SnapshotID: &s1, UseSnapshotSchema: true, Filter: filterJSON(t, testSchema, old)})
	if got := count(pages); got != 1 {
		t.Errorf("snapshot %d, old column name: %d files, want 1", s1, got)
	}
	// Java binds residuals to the current schema and to the scan's: one on
	// a renamed column binds in neither everywhere, and is sent as true.
	if got := string(pages[0].FileScanTasks[0].ResidualFilter); got != `true` {
		t.Errorf("residual of a time-travel scan on a renamed column: %s, want true", got)
	}
	_, pages = e.plan(id, Request{CaseSensitive: true, SnapshotID: &s1, UseSnapshotSchema: true,
		Filter: filterJSON(t, testSchema, iceberg.GreaterThan(iceberg.Reference("id"), int64(1)))})
	if got := string(pages[0].FileScanTasks[0].ResidualFilter); got != `{"type":"gt","term":"id","value":1}` {
		t.Errorf("residual of a time-travel scan on a column both schemas name alike: %s", got)
	}
	renamed := e.load(id).Schema()
	_, pages = e.plan(id, Request{CaseSensitive: true, SnapshotID: &s1, Filter: filterJSON(t, renamed, iceberg.GreaterThan(iceberg.Reference("amount"), 1.0))})
	if got := count(pages); got != 1 {
		t.Errorf("snapshot %d, current column name: %d files, want 1", s1, got)
	}
	// Names the snapshot's schema does not have bind to the current one,
	// as Spark means them: it pins the current snapshot with
	// use-snapshot-schema on every scan, with the current schema's names.
	_, pages = e.plan(id, Request{CaseSensitive: true, SnapshotID: &s2, UseSnapshotSchema: true, Select: []string{"id", "amount"},
		Filter: filterJSON(t, renamed, iceberg.GreaterThan(iceberg.Reference("amount"), 1.0))})
	if got := count(pages); got != 2 {
		t.Errorf("snapshot %d with use-snapshot-schema, current column name: %d files, want 2", s2, got)
	}
	if _, err := e.pl.Plan(context.Background(), CatalogSource{e.cat}, id, &Request{CaseSensitive: true, SnapshotID: &s1, UseSnapshotSchema: true,
		Filter: []byte(`{"type":"gt","term":"neither","value":1}`)}, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "neither") {
		t.Errorf("a column in neither schema: %v, want ErrInvalid naming it", err)
	}
	// Incremental: what s2..s4 appended after s1, one snapshot a page.
	resp, pages := e.plan(id, Request{CaseSensitive: true, StartSnapshotID: &s1, EndSnapshotID: &s4, UseSnapshotSchema: true})
	if got := count(pages); got != 3 || len(resp.PlanTasks) != 2 {
		t.Errorf("incremental (%d, %d]: %d files in %d pages, want 3 in 3", s1, s4, got, len(pages))
	}
	tasks := e.decode(id, pages, renamed)
	if got := len(e.read(id, tasks, nil)); got != 30 {
		t.Errorf("incremental read %d rows, want 30", got)
	}
	_, pages = e.plan(id, Request{CaseSensitive: true, StartSnapshotID: &s2, EndSnapshotID: &s3})
	if got := count(pages); got != 1 {
		t.Errorf("incremental (%d, %d]: %d files, want 1", s2, s3, got)
	}
	for _, bad := range []Request{
		{StartSnapshotID: &s3, EndSnapshotID: &s1},
		{StartSnapshotID: &s1},
		{SnapshotID: &s1, StartSnapshotID: &s1, EndSnapshotID: &s2},
		{SnapshotID: ptr[int64](12345)},
	} {
		if _, err := e.pl.Plan(context.Background(), CatalogSource{e.cat}, id, &bad, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Plan(%s) = %v, want ErrInvalid", bad.String(), err)
		}
	}
}

// TestRequestChecks refuses what cannot be planned, before any work.
func TestRequestChecks(t *testing.T) {
	e := newEnv(t)
	id := e.create("checks", nil, nil)
	e.append(id, rows(0, 10, "a"))
	deep := strings.Repeat(`{"type":"not","child":`, MaxFilterDepth+1) + "true" + strings.Repeat("}", MaxFilterDepth+1)
	wide := `{"type":"in","term":"id","values":[` + strings.Repeat("1,", MaxFilterNodes) + `1]}`
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"unknown column in filter", Request{CaseSensitive: true, Filter: []byte(`{"type":"eq","term":"nope","value":1}`)}, ErrInvalid},
		{"wrong case, case-sensitive", Request{CaseSensitive: true, Filter: []byte(`{"type":"eq","term":"ID","value":1}`)}, ErrInvalid},
		{"wrong case, insensitive", Request{Filter: []byte(`{"type":"eq","term":"ID","value":1}`)}, nil},
		{"malformed filter", Request{CaseSensitive: true, Filter: []byte(`{"type":"eq"`)}, ErrInvalid},
		{"unknown expression", Request{CaseSensitive: true, Filter: []byte(`{"type":"like","term":"id","value":1}`)}, ErrInvalid},
		{"deep filter", Request{CaseSensitive: true, Filter: []byte(deep)}, ErrInvalid},
		{"wide filter", Request{CaseSensitive: true, Filter: []byte(wide)}, ErrInvalid},
		{"huge filter", Request{CaseSensitive: true, Filter: make([]byte, MaxFilterBytes+1)}, ErrInvalid},
		{"unknown select", Request{CaseSensitive: true, Select: []string{"id", "nope"}}, ErrInvalid},
		{"metadata columns in select", Request{CaseSensitive: true, Select: []string{"id", "_file", "_pos", "_partition.category"}}, nil},
		{"unknown stats field", Request{CaseSensitive: true, StatsFields: []string{"nope"}}, ErrInvalid},
		{"negative min rows", Request{CaseSensitive: true, MinRowsRequested: ptr[int64](-1)}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.pl.Plan(context.Background(), CatalogSource{e.cat}, id, &tc.req, "")
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Plan = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.pl.Plan(context.Background(), CatalogSource{e.cat}, catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "missing"}, &Request{}, ""); !errors.Is(err, catalog.ErrNoSuchTable) {
		t.Errorf("plan of a missing table: %v, want ErrNoSuchTable", err)
	}
}

// TestStatsFields sends the column statistics asked for, and none
// otherwise.
func TestStatsFields(t *testing.T) {
	e := newEnv(t)
	id := e.create("stats", nil, nil)
	e.append(id, rows(0, 10, "a"))
	_, pages := e.plan(id, Request{CaseSensitive: true})
	if df := pages[0].FileScanTasks[0].DataFile; df.LowerBounds != nil || df.ValueCounts != nil {
		t.Errorf("stats without stats-fields: %+v", df)
	}
	_, pages = e.plan(id, Request{CaseSensitive: true, StatsFields: []string{"id"}})
	df := pages[0].FileScanTasks[0].DataFile
	if df.LowerBounds == nil || !slices.Equal(df.LowerBounds.Keys, []int{1}) || df.LowerBounds.Values[0] != "0000000000000000" {
		t.Errorf("lower bounds for stats-fields [id]: %+v", df.LowerBounds)
	}
	if df.UpperBounds == nil || df.UpperBounds.Values[0] != "0900000000000000" {
		t.Errorf("upper bounds for stats-fields [id]: %+v", df.UpperBounds)
	}
	if df.ValueCounts == nil || !slices.Equal(df.ValueCounts.Keys, []int{1}) || df.ValueCounts.Values[0] != 10 {
		t.Errorf("value counts for stats-fields [id]: %+v", df.ValueCounts)
	}
}
