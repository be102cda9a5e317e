package flusher_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/warehouse"
)

// env is a catalog on the embedded store with a local warehouse, a hot
// tier, the ingest service that fills it and a flusher: everything real,
// in one process.
type env struct {
	t      testing.TB
	dir    string
	cat    *catalog.Service
	wh     *warehouse.Warehouse
	hot    *hot.DB
	ing    *ingest.Service
	fl     *flusher.Flusher
	reg    *prometheus.Registry
	opts   flusher.Options
	closed bool
}

// newEnv starts an env; change opts (the flusher's) before the flusher
// starts with tune.
func newEnv(t testing.TB, tune func(*flusher.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	ctx := context.Background()
	store, err := embedded.Open(filepath.Join(e.dir, "catalog"), embedded.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.wh, err = warehouse.Open(ctx, warehouse.Config{Root: filepath.Join(e.dir, "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	e.cat, err = catalog.New(catalog.Options{Store: store, Warehouse: e.wh})
	if err != nil {
		t.Fatal(err)
	}
	e.openHot()
	e.opts = flusher.Options{Catalog: e.cat, Hot: e.hot, FS: e.wh.FS, Interval: time.Hour, Tick: 5 * time.Millisecond}
	if tune != nil {
		tune(&e.opts)
	}
	e.startFlusher()
	t.Cleanup(e.close)
	return e
}

func (e *env) openHot() {
	var err error
	e.hot, err = hot.Open(filepath.Join(e.dir, "hot"), hot.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.ing, err = ingest.New(ingest.Options{Catalog: e.cat, Hot: e.hot, AutoCreate: true,
		Committer: committerFunc(func(ctx context.Context, key string, seq uint64) (int64, error) {
			return e.fl.WaitCommitted(ctx, key, seq)
		})})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) startFlusher() {
	e.t.Helper()
	opts := e.opts
	if h, ok := opts.Hot.(*faultyHot); ok {
		h.DB = e.hot
	} else {
		opts.Hot = e.hot
	}
	e.reg = prometheus.NewRegistry()
	opts.Registerer = e.reg
	var err error
	e.fl, err = flusher.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.closed = false
}

// restart closes the flusher, the ingest service and the hot tier and
// opens them again, as a process restart would.
func (e *env) restart() {
	e.t.Helper()
	e.close()
	e.openHot()
	e.startFlusher()
}

func (e *env) close() {
	if e.closed {
		return
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.fl.Close(ctx); err != nil {
		e.t.Errorf("closing the flusher: %v", err)
	}
	e.ing.Close()
	if err := e.hot.Close(); err != nil {
		e.t.Errorf("closing the hot tier: %v", err)
	}
}

func (e *env) writeBulk(ref, body string) []uint64 {
	e.t.Helper()
	res, err := e.ing.WriteBulk(context.Background(), ref, ingest.Request{MediaType: ingest.MediaNDJSON, Body: []byte(body)})
	if err != nil {
		e.t.Fatalf("bulk write to %s: %v", ref, err)
	}
	return res.Offsets
}

func (e *env) writeRows(ref, jsonArray string) []uint64 {
	e.t.Helper()
	res, err := e.ing.WriteBulk(context.Background(), ref, ingest.Request{MediaType: ingest.MediaJSON, Body: []byte(jsonArray)})
	if err != nil {
		e.t.Fatalf("row write to %s: %v", ref, err)
	}
	return res.Offsets
}

func (e *env) flush(id catalog.Ident) flusher.Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.fl.Flush(ctx, id)
	if err != nil {
		e.t.Fatalf("flush %s: %v", id, err)
	}
	return res
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

// scan reads the table's current snapshot as one Arrow table.
func (e *env) scan(id catalog.Ident) arrow.Table {
	e.t.Helper()
	tbl := e.load(id)
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		e.t.Fatalf("scan %s: %v", id, err)
	}
	e.t.Cleanup(at.Release)
	return at
}

// column returns the named column of at as Go values (nil for null).
func column(t testing.TB, at arrow.Table, name string) []any {
	t.Helper()
	idx := at.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q in %s", name, at.Schema())
	}
	var out []any
	for _, chunk := range at.Column(idx[0]).Data().Chunks() {
		for i := 0; i < chunk.Len(); i++ {
			if chunk.IsNull(i) {
				out = append(out, nil)
				continue
			}
			switch a := chunk.(type) {
			case *array.Int64:
				out = append(out, a.Value(i))
			case *array.Int32:
				out = append(out, a.Value(i))
			case *array.String:
				out = append(out, a.Value(i))
			case *array.Binary:
				out = append(out, string(a.Value(i)))
			case *array.Timestamp:
				out = append(out, time.UnixMicro(int64(a.Value(i))).UTC())
			default:
				out = append(out, a.ValueStr(i))
			}
		}
	}
	return out
}

// rowsBySeq returns sequence → payload of an event table's scan, failing
// on a duplicate sequence.
func rowsBySeq(t *testing.T, at arrow.Table) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	if at == nil {
		return out
	}
	seqs, payloads := column(t, at, "sequence"), column(t, at, "payload")
	for i, s := range seqs {
		seq := uint64(s.(int64))
		if _, dup := out[seq]; dup {
			t.Fatalf("sequence %d is in the table twice", seq)
		}
		out[seq] = payloads[i].(string)
	}
	return out
}

// checkExactly fails unless the table holds exactly want (sequence →
// payload).
func checkExactly(t *testing.T, got, want map[uint64]string) {
	t.Helper()
	var missing, extra, wrong []uint64
	for s, p := range want {
		g, ok := got[s]
		switch {
		case !ok:
			missing = append(missing, s)
		case g != p:
			wrong = append(wrong, s)
		}
	}
	for s := range got {
		if _, ok := want[s]; !ok {
			extra = append(extra, s)
		}
	}
	if len(missing)+len(extra)+len(wrong) > 0 {
		sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
		t.Fatalf("table holds %d rows, want %d: missing %v, unexpected %v, wrong payload %v",
			len(got), len(want), head(missing), head(extra), head(wrong))
	}
}

func head(s []uint64) []uint64 {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// events returns n NDJSON envelopes with payloads prefix-i and, when step
// is not zero, event times from start in steps.
func events(prefix string, n int, start time.Time, step time.Duration) (string, []string) {
	var b strings.Builder
	payloads := make([]string, n)
	for i := range n {
		payloads[i] = fmt.Sprintf("%s-%d", prefix, i)
		if step == 0 {
			fmt.Fprintf(&b, "{\"payload\":%q}\n", payloads[i])
		} else {
			fmt.Fprintf(&b, "{\"payload\":%q,\"timestamp_ms\":%d}\n", payloads[i], start.Add(time.Duration(i)*step).UnixMilli())
		}
	}
	return b.String(), payloads
}

func ident(ns, name string) catalog.Ident {
	return catalog.Ident{Namespace: catalog.Namespace{ns}, Name: name}
}

// counter sums the series of the named counter whose labels include the
// given name/value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(have []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if !slices.ContainsFunc(have, func(l *dto.LabelPair) bool {
			return l.GetName() == want[i] && l.GetValue() == want[i+1]
		}) {
			return false
		}
	}
	return true
}

// faultyHot wraps the hot tier to fail DeleteThrough on demand, or to
// hide the backlog from the scheduler (no cycle for its size).
type faultyHot struct {
	*hot.DB
	failDeletes bool
	hideBacklog bool
	// beforeRead, if set, runs (once) before the next Read.
	beforeRead func()
}

func (h *faultyHot) Read(ctx context.Context, table string, after uint64, limit int) ([]hot.Event, error) {
	if fn := h.beforeRead; fn != nil {
		h.beforeRead = nil
		fn()
	}
	return h.DB.Read(ctx, table, after, limit)
}

func (h *faultyHot) TableBacklog(table string) (int64, int64, time.Time) {
	if h.hideBacklog {
		return 0, 0, time.Time{}
	}
	return h.DB.TableBacklog(table)
}

func (h *faultyHot) DeleteThrough(ctx context.Context, table string, seq uint64) error {
	if h.failDeletes {
		return errors.New("hot: injected delete failure")
	}
	return h.DB.DeleteThrough(ctx, table, seq)
}

func ingestJSON(body string) ingest.Request {
	return ingest.Request{MediaType: ingest.MediaJSON, Body: []byte(body)}
}

type committerFunc func(ctx context.Context, key string, seq uint64) (int64, error)

func (f committerFunc) WaitCommitted(ctx context.Context, key string, seq uint64) (int64, error) {
	return f(ctx, key, seq)
}

// commitTx runs fn on a transaction of the table and commits it through
// the catalog, as an engine's commit would arrive.
func (e *env) commitTx(id catalog.Ident, fn func(tx *table.Transaction) error) {
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

// hookedCatalog lets a test act around the flusher's commits.
type hookedCatalog struct {
	*catalog.Service
	// commit replaces CommitTable when set; next is the real one.
	commit func(ctx context.Context, ch catalog.TableChange, next func() (*catalog.Table, error)) (*catalog.Table, error)
}

func (c *hookedCatalog) CommitTable(ctx context.Context, ch catalog.TableChange, idem *catalog.Idempotency) (*catalog.Table, error) {
	next := func() (*catalog.Table, error) { return c.Service.CommitTable(ctx, ch, idem) }
	if c.commit == nil {
		return next()
	}
	return c.commit(ctx, ch, next)
}

// dataFiles returns the data files of the table's current snapshot.
func (e *env) dataFiles(id catalog.Ident) []iceberg.DataFile {
	e.t.Helper()
	tbl := e.load(id)
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	files := make([]iceberg.DataFile, len(tasks))
	for i, task := range tasks {
		files[i] = task.File
	}
	return files
}

// countParquet counts the Parquet files under the table's location.
func (e *env) countParquet(id catalog.Ident) int {
	e.t.Helper()
	root := strings.TrimPrefix(e.load(id).Location(), "file://")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".parquet") {
			n++
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}
