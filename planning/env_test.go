package planning

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/warehouse"
)

// env is a catalog (embedded store in memory) over a local warehouse in a
// temporary directory, and a Planner under test on a fake clock.
type env struct {
	t     testing.TB
	cat   *catalog.Service
	wh    *warehouse.Warehouse
	pl    *Planner
	reg   *prometheus.Registry
	clock *clock
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newEnv(t testing.TB, tune ...func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := embedded.Open("catalog", embedded.WithFS(vfs.NewMem()), embedded.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, reg: prometheus.NewRegistry(), clock: &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	if e.wh, err = warehouse.Open(ctx, warehouse.Config{Root: filepath.Join(t.TempDir(), "warehouse")}); err != nil {
		t.Fatal(err)
	}
	if e.cat, err = catalog.New(catalog.Options{Store: store, Warehouse: e.wh}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.CreateNamespace(ctx, catalog.Namespace{"ns"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	opts := Options{FS: e.wh.FS, Registerer: e.reg, Now: e.clock.Now}
	for _, fn := range tune {
		fn(&opts)
	}
	if e.pl, err = New(opts); err != nil {
		t.Fatal(err)
	}
	return e
}

var testSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "category", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 3, Name: "value", Type: iceberg.PrimitiveTypes.Float64},
)

var byCategory = ptr(iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{2}, FieldID: 1000, Name: "category", Transform: iceberg.IdentityTransform{}}))

// create makes table ns.name.
func (e *env) create(name string, spec *iceberg.PartitionSpec, props map[string]string) catalog.Ident {
	e.t.Helper()
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: name}
	if _, err := e.cat.CreateTable(context.Background(), catalog.CreateTableRequest{
		Ident: id, Schema: testSchema, Spec: spec, Properties: props,
	}, nil); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) load(id catalog.Ident) *table.Table {
	e.t.Helper()
	t, err := e.cat.LoadTable(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	ident := append(append(table.Identifier{}, id.Namespace...), id.Name)
	return table.New(ident, t.Metadata, t.MetadataLocation, e.wh.FS, nil)
}

// commit runs fn on a transaction and commits it through the catalog.
func (e *env) commit(id catalog.Ident, fn func(tx *table.Transaction) error) {
	e.t.Helper()
	tx := e.load(id).NewTransaction()
	if err := fn(tx); err != nil {
		e.t.Fatal(err)
	}
	tc, err := tx.TableCommit()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.cat.CommitTable(context.Background(), catalog.TableChange{Ident: id, Requirements: tc.Requirements, Updates: tc.Updates}, nil); err != nil {
		e.t.Fatalf("commit to %s: %v", id, err)
	}
}

type row struct {
	id       int64
	category string
	value    float64
}

// rows are ids [from, to) in category cat.
func rows(from, to int64, cat string) []row {
	var out []row
	for i := from; i < to; i++ {
		out = append(out, row{id: i, category: cat, value: float64(i) / 2})
	}
	return out
}

// arrowRows is rs in an Arrow table whose third column is named value.
func arrowRows(rs []row, value string) arrow.Table {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "category", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: value, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, r := range rs {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		b.Field(1).(*array.StringBuilder).Append(r.category)
		b.Field(2).(*array.Float64Builder).Append(r.value)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
}

// append commits rs as one snapshot and returns its ID.
func (e *env) append(id catalog.Ident, rs []row) int64 {
	e.t.Helper()
	value, _ := e.load(id).Schema().FindColumnName(3)
	tbl := arrowRows(rs, value)
	defer tbl.Release()
	e.commit(id, func(tx *table.Transaction) error { return tx.AppendTable(context.Background(), tbl, 1<<20, nil) })
	return e.load(id).Metadata().CurrentSnapshot().SnapshotID
}

// deleteRows deletes the rows matching filter (merge-on-read when the
// table says so).
func (e *env) deleteRows(id catalog.Ident, filter iceberg.BooleanExpression) {
	e.t.Helper()
	e.commit(id, func(tx *table.Transaction) error { return tx.Delete(context.Background(), filter, nil) })
}

// eqDelete commits an equality delete of the given ids.
func (e *env) eqDelete(id catalog.Ident, ids ...int64) {
	e.t.Helper()
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{"1"})}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, v := range ids {
		b.Field(0).(*array.Int64Builder).Append(v)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	e.commit(id, func(tx *table.Transaction) error {
		return tx.CommitEqualityDeletes(context.Background(), []int{1}, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }, nil)
	})
}

// plan plans req on id through the catalog source and fetches every page.
func (e *env) plan(id catalog.Ident, req Request) (*Response, []rest.ScanTasks) {
	e.t.Helper()
	resp, err := e.pl.Plan(context.Background(), CatalogSource{Tables: e.cat}, id, &req, "")
	if err != nil {
		e.t.Fatalf("plan %s: %v", id, err)
	}
	pages := []rest.ScanTasks{resp.ScanTasks}
	for _, h := range resp.PlanTasks {
		st, err := e.pl.Tasks(context.Background(), id, h)
		if err != nil {
			e.t.Fatalf("fetching plan task %s: %v", h, err)
		}
		pages = append(pages, st)
	}
	return resp, pages
}

// decode turns wire pages back into iceberg-go tasks with iceberg-go's own
// REST decoder: what an iceberg-go client gets.
func (e *env) decode(id catalog.Ident, pages []rest.ScanTasks, schema *iceberg.Schema) []table.FileScanTask {
	e.t.Helper()
	meta := e.load(id).Metadata()
	var out []table.FileScanTask
	for i, p := range pages {
		// Round-trip through JSON, as a client reads it.
		b, err := json.Marshal(p)
		if err != nil {
			e.t.Fatal(err)
		}
		var back rest.ScanTasks
		if err := json.Unmarshal(b, &back); err != nil {
			e.t.Fatal(err)
		}
		tasks, err := rest.DecodeScanTasks(back, meta, schema, iceberg.AlwaysTrue{})
		if err != nil {
			e.t.Fatalf("decoding page %d: %v\n%s", i, err, b)
		}
		out = append(out, tasks...)
	}
	return out
}

// read reads tasks of table id (projected to the whole schema) and
// returns the rows by id, applying the filter as a client would.
func (e *env) read(id catalog.Ident, tasks []table.FileScanTask, filter iceberg.BooleanExpression) []row {
	e.t.Helper()
	var opts []table.ScanOption
	if filter != nil {
		opts = append(opts, table.WithRowFilter(filter))
	}
	scan := e.load(id).Scan(opts...)
	_, it, err := scan.ReadTasks(context.Background(), tasks)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []row
	for rec, err := range it {
		if err != nil {
			e.t.Fatal(err)
		}
		ids := rec.Column(0).(*array.Int64)
		cats := rec.Column(1).(*array.String)
		vals := rec.Column(2).(*array.Float64)
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, row{ids.Value(i), cats.Value(i), vals.Value(i)})
		}
		rec.Release()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// local plans the same scan with iceberg-go locally: the reference.
func (e *env) local(id catalog.Ident, filter iceberg.BooleanExpression, opts ...table.ScanOption) []table.FileScanTask {
	e.t.Helper()
	if filter != nil {
		opts = append(opts, table.WithRowFilter(filter))
	}
	tasks, err := e.load(id).Scan(opts...).PlanFiles(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return tasks
}

// files summarises tasks as "data <- deletes" lines, sorted.
func files(tasks []table.FileScanTask) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range tasks {
		var dels []string
		for _, d := range slices.Concat(t.DeleteFiles, t.EqualityDeleteFiles, t.DeletionVectorFiles) {
			dels = append(dels, filepath.Base(d.FilePath()))
		}
		slices.Sort(dels)
		s := fmt.Sprintf("%s <- %v", filepath.Base(t.File.FilePath()), dels)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func filterJSON(t testing.TB, schema *iceberg.Schema, e iceberg.BooleanExpression) json.RawMessage {
	t.Helper()
	b, err := iceberg.BindExpr(schema, e, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// renameValue renames column value to amount (a new current schema, no
// snapshot), as an engine's ALTER TABLE commits it.
func (e *env) renameValue(id catalog.Ident) {
	e.t.Helper()
	renamed := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "category", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "amount", Type: iceberg.PrimitiveTypes.Float64},
	)
	if _, err := e.cat.CommitTable(context.Background(), catalog.TableChange{Ident: id, Updates: []table.Update{
		table.NewAddSchemaUpdate(renamed), table.NewSetCurrentSchemaUpdate(-1),
		// The old name mapping names the column value; the writer derives
		// a new one without it.
		table.NewRemovePropertiesUpdate([]string{"schema.name-mapping.default"}),
	}}, nil); err != nil {
		e.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
