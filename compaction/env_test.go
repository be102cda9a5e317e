package compaction_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/compaction"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/internal/location"
	"github.com/zombi-db/zombi/warehouse"
)

// env is the whole write path in one process: catalog (embedded store),
// warehouse (local, or S3 when given), hot tier, ingest, flusher, and the
// compactor under test, whose options tune may change.
type env struct {
	t     testing.TB
	cat   *catalog.Service
	wh    *warehouse.Warehouse
	hot   *hot.DB
	ing   *ingest.Service
	fl    *flusher.Flusher
	comp  *compaction.Compactor
	hooks *hookedCatalog
	// seen records the paths the compactor hands the warehouse's FileIO.
	seen *seenIO
}

func newEnv(t testing.TB, whCfg *warehouse.Config, tune ...func(*compaction.Options)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	store, err := embedded.Open(filepath.Join(dir, "catalog"), embedded.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := warehouse.Config{Root: filepath.Join(dir, "warehouse")}
	if whCfg != nil {
		cfg = *whCfg
	}
	e := &env{t: t}
	if e.wh, err = warehouse.Open(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if e.cat, err = catalog.New(catalog.Options{Store: store, Warehouse: e.wh}); err != nil {
		t.Fatal(err)
	}
	if e.hot, err = hot.Open(filepath.Join(dir, "hot"), hot.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if e.ing, err = ingest.New(ingest.Options{Catalog: e.cat, Hot: e.hot, AutoCreate: true}); err != nil {
		t.Fatal(err)
	}
	if e.fl, err = flusher.New(flusher.Options{Catalog: e.cat, Hot: e.hot, FS: e.wh.FS, Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	e.hooks = &hookedCatalog{Service: e.cat}
	e.seen = &seenIO{}
	opts := compaction.Options{Catalog: e.hooks, FS: e.seen.fs(e.wh.FS), NodeID: "test-node"}
	for _, fn := range tune {
		fn(&opts)
	}
	if e.comp, err = compaction.New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.comp.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.fl.Close(ctx); err != nil {
			t.Error(err)
		}
		e.ing.Close()
		e.hot.Close()
	})
	return e
}

func (e *env) writeBulk(ref, ndjson string) []uint64 {
	e.t.Helper()
	res, err := e.ing.WriteBulk(context.Background(), ref, ingest.Request{MediaType: ingest.MediaNDJSON, Body: []byte(ndjson)})
	if err != nil {
		e.t.Fatalf("bulk write to %s: %v", ref, err)
	}
	return res.Offsets
}

func (e *env) flush(id catalog.Ident) flusher.Result {
	e.t.Helper()
	res, err := e.fl.Flush(context.Background(), id)
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

// commitTx runs fn on a transaction and commits it through the catalog,
// as an engine's commit would arrive.
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

func (e *env) setProps(id catalog.Ident, props iceberg.Properties) {
	e.t.Helper()
	e.commitTx(id, func(tx *table.Transaction) error { return tx.SetProperties(props) })
}

// rows returns sequence → payload of the event table at a snapshot (0:
// the current one); a sequence present twice fails the test.
func (e *env) rows(id catalog.Ident, snapshot int64) map[int64]string {
	e.t.Helper()
	tbl := e.load(id)
	var opts []table.ScanOption
	if snapshot != 0 {
		opts = append(opts, table.WithSnapshotID(snapshot))
	}
	at, err := tbl.Scan(opts...).ToArrowTable(context.Background())
	if err != nil {
		e.t.Fatalf("scan %s at %d: %v", id, snapshot, err)
	}
	defer at.Release()
	out := map[int64]string{}
	seqCol := at.Column(at.Schema().FieldIndices("sequence")[0]).Data().Chunks()
	payCol := at.Column(at.Schema().FieldIndices("payload")[0]).Data().Chunks()
	for c := range seqCol {
		seqs, pays := seqCol[c], payCol[c]
		for i := 0; i < seqs.Len(); i++ {
			s := seqs.(interface{ Value(int) int64 }).Value(i)
			if _, dup := out[s]; dup {
				e.t.Fatalf("sequence %d twice in %s", s, id)
			}
			out[s] = string(pays.(interface{ Value(int) []byte }).Value(i))
		}
	}
	return out
}

// hookedCatalog lets a test act just before the compactor's commits and
// see and change its loads.
type hookedCatalog struct {
	*catalog.Service
	beforeCommit func()          // before the next commit only
	everyCommit  func()          // before every commit
	onLoad       func(time.Time) // after every load, with when it began
	// alter changes the metadata of every load: metadata the catalog
	// would not accept, as a bug in its checks would let through.
	alter func(table.Metadata) table.Metadata
}

func (h *hookedCatalog) CommitTable(ctx context.Context, ch catalog.TableChange, idem *catalog.Idempotency) (*catalog.Table, error) {
	if fn := h.beforeCommit; fn != nil {
		h.beforeCommit = nil
		fn()
	}
	if fn := h.everyCommit; fn != nil {
		fn()
	}
	return h.Service.CommitTable(ctx, ch, idem)
}

func (h *hookedCatalog) LoadTable(ctx context.Context, id catalog.Ident) (*catalog.Table, error) {
	start := time.Now()
	t, err := h.Service.LoadTable(ctx, id)
	if fn := h.onLoad; fn != nil {
		fn(start)
	}
	if fn := h.alter; fn != nil && err == nil {
		altered := *t
		altered.Metadata = fn(t.Metadata)
		t = &altered
	}
	return t, err
}

// seenIO records every path a FileIO is asked about.
type seenIO struct {
	mu    sync.Mutex
	paths []string
}

// fullIO is every FileIO interface the warehouse implements.
type fullIO interface {
	icebergio.ReadFileIO
	icebergio.WriteFileIO
	icebergio.ListableIO
	icebergio.BulkRemovableIO
	icebergio.StatIO
}

func (s *seenIO) fs(inner table.FSysF) table.FSysF {
	return func(ctx context.Context) (icebergio.IO, error) {
		f, err := inner(ctx)
		if err != nil {
			return nil, err
		}
		return recordingIO{f.(fullIO), s}, nil
	}
}

func (s *seenIO) add(paths ...string) {
	s.mu.Lock()
	s.paths = append(s.paths, paths...)
	s.mu.Unlock()
}

// outside returns the paths seen so far that are not inside dir.
func (s *seenIO) outside(dir string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.paths {
		if !location.Within(dir, p) {
			out = append(out, p)
		}
	}
	return out
}

func (s *seenIO) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.paths)
}

type recordingIO struct {
	fullIO
	s *seenIO
}

func (r recordingIO) Open(name string) (icebergio.File, error) {
	r.s.add(name)
	return r.fullIO.Open(name)
}
func (r recordingIO) Remove(name string) error { r.s.add(name); return r.fullIO.Remove(name) }
func (r recordingIO) ReadFile(name string) ([]byte, error) {
	r.s.add(name)
	return r.fullIO.ReadFile(name)
}
func (r recordingIO) Stat(name string) (fs.FileInfo, error) {
	r.s.add(name)
	return r.fullIO.Stat(name)
}
func (r recordingIO) Create(name string) (icebergio.FileWriter, error) {
	r.s.add(name)
	return r.fullIO.Create(name)
}
func (r recordingIO) WriteFile(name string, p []byte) error {
	r.s.add(name)
	return r.fullIO.WriteFile(name, p)
}
func (r recordingIO) WalkDir(root string, fn fs.WalkDirFunc) error {
	r.s.add(root)
	return r.fullIO.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		r.s.add(p)
		return fn(p, d, err)
	})
}
func (r recordingIO) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	r.s.add(paths...)
	return r.fullIO.DeleteFiles(ctx, paths)
}

func ident(name string) catalog.Ident {
	return catalog.Ident{Namespace: catalog.Namespace{"default"}, Name: name}
}

func sameRows(t testing.TB, got, want map[int64]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for s, p := range want {
		if got[s] != p {
			t.Fatalf("sequence %d: %q, want %q", s, got[s], p)
		}
	}
}

// damagingFS returns inner whose Parquet writers store damage(off, p)
// in place of each p written at offset off, while telling the writer all
// of p was written: storage that corrupts, cuts or pads a file.
func damagingFS(inner table.FSysF, damage func(off int64, p []byte) []byte) table.FSysF {
	return func(ctx context.Context) (icebergio.IO, error) {
		f, err := inner(ctx)
		if err != nil {
			return nil, err
		}
		return damagingIO{f.(fullIO), damage}, nil
	}
}

type damagingIO struct {
	fullIO
	damage func(off int64, p []byte) []byte
}

func (d damagingIO) Create(name string) (icebergio.FileWriter, error) {
	w, err := d.fullIO.Create(name)
	if err != nil || !strings.HasSuffix(name, ".parquet") {
		return w, err
	}
	return &damagingWriter{FileWriter: w, damage: d.damage}, nil
}

type damagingWriter struct {
	icebergio.FileWriter
	damage func(off int64, p []byte) []byte
	off    int64
}

func (w *damagingWriter) Write(p []byte) (int, error) {
	if _, err := w.FileWriter.Write(w.damage(w.off, p)); err != nil {
		return 0, err
	}
	w.off += int64(len(p))
	return len(p), nil
}

func (w *damagingWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{w}, r)
}
