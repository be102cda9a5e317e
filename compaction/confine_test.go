package compaction_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/compaction"
	"github.com/zombi-db/zombi/warehouse"
)

// doctor returns meta changed by fn, which edits its JSON form.
func doctor(t testing.TB, meta table.Metadata, fn func(m map[string]any)) table.Metadata {
	t.Helper()
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // snapshot IDs do not fit a float64
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	out, err := table.ParseMetadataBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// setManifestList points the manifest list of snapshot id (0: the current
// one) at path.
func setManifestList(t testing.TB, meta table.Metadata, id int64, path string) table.Metadata {
	if id == 0 {
		id = meta.CurrentSnapshot().SnapshotID
	}
	return doctor(t, meta, func(m map[string]any) {
		for _, s := range m["snapshots"].([]any) {
			s := s.(map[string]any)
			if n, _ := s["snapshot-id"].(json.Number).Int64(); n == id {
				s["manifest-list"] = path
			}
		}
	})
}

// secretFile writes a file outside the warehouse, as /etc/passwd is.
func secretFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkOutsideErr: err is warehouse.ErrOutsideTable, names the path and
// shows nothing of its contents.
func checkOutsideErr(t testing.TB, what string, err error, path string) {
	t.Helper()
	switch {
	case !errors.Is(err, warehouse.ErrOutsideTable):
		t.Errorf("%s: %v, want ErrOutsideTable", what, err)
	case !strings.Contains(err.Error(), path):
		t.Errorf("%s: error %q does not name %s", what, err, path)
	case strings.Contains(err.Error(), "root:") || strings.Contains(err.Error(), "726f6f74"):
		t.Errorf("%s: error %q shows the file's contents", what, err)
	}
}

func noSnapshotFloor(o *compaction.Options) { o.MinSnapshotAge = -1 }

// TestMaintainStatisticsOutsideTable: the table's metadata (as a bug in
// the catalog's checks would let through) names statistics files of an
// expiring snapshot in another table and outside the warehouse. Expiry
// removes the snapshot but deletes neither file, and fails with
// ErrOutsideTable.
func TestMaintainStatisticsOutsideTable(t *testing.T) {
	e := newEnv(t, nil, noSnapshotFloor)
	ctx := context.Background()
	id := ident("stats")
	flushes(e, "stats", 3, 2, 1)
	otherRows := flushes(e, "other", 1, 2, 1)
	tasks, err := e.load(ident("other")).Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victims := []string{tasks[0].File.FilePath(), secretFile(t)}
	e.setProps(id, iceberg.Properties{"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "1"})
	tbl := e.load(id)
	first := tbl.Metadata().Snapshots()[0].SnapshotID
	e.hooks.alter = func(m table.Metadata) table.Metadata {
		return doctor(t, m, func(j map[string]any) {
			j["statistics"] = []any{map[string]any{
				"snapshot-id": first, "statistics-path": victims[0],
				"file-size-in-bytes": 10, "file-footer-size-in-bytes": 5, "blob-metadata": []any{},
			}}
			j["partition-statistics"] = []any{map[string]any{
				"snapshot-id": first, "statistics-path": victims[1], "file-size-in-bytes": 10,
			}}
		})
	}
	time.Sleep(5 * time.Millisecond)

	res, err := e.comp.Maintain(ctx, id)
	t.Logf("maintenance: %+v, %v", res, err)
	checkOutsideErr(t, "maintenance", err, victims[0])
	for _, v := range victims {
		if _, err := os.Stat(strings.TrimPrefix(v, "file://")); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	if out := e.seen.outside(tbl.Location()); len(out) > 0 {
		t.Errorf("the warehouse's FileIO was handed paths outside the table: %q", out)
	}
	sameRows(t, e.rows(ident("other"), 0), otherRows)
}

// TestManifestListOutsideTable: a snapshot's manifest list is a file
// outside the warehouse (as "manifest-list": "/etc/passwd" once was).
// Compaction and maintenance fail with ErrOutsideTable, naming the file
// and not showing it, and never hand its path to the warehouse's FileIO.
func TestManifestListOutsideTable(t *testing.T) {
	e := newEnv(t, nil, noSnapshotFloor)
	ctx := context.Background()
	id := ident("hostile")
	secret := secretFile(t)
	flushes(e, "hostile", 3, 2, 1)
	tbl := e.load(id)
	e.setProps(id, iceberg.Properties{"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "1"})
	first := tbl.Metadata().Snapshots()[0].SnapshotID

	// The current snapshot's: nothing can be planned or merged.
	for _, spelling := range []string{secret, "file://" + secret} {
		e.hooks.alter = func(m table.Metadata) table.Metadata { return setManifestList(t, m, 0, spelling) }
		_, err := e.comp.Compact(ctx, id)
		checkOutsideErr(t, "compaction", err, spelling)
		_, err = e.comp.Maintain(ctx, id)
		checkOutsideErr(t, "maintenance", err, spelling)
	}
	// An expiring snapshot's: expiry commits, then refuses to read it
	// for the files to delete.
	e.hooks.alter = func(m table.Metadata) table.Metadata { return setManifestList(t, m, first, secret) }
	time.Sleep(5 * time.Millisecond)
	res, err := e.comp.Maintain(ctx, id)
	checkOutsideErr(t, "maintenance", err, secret)
	if res.ExpiredSnapshots == 0 {
		t.Errorf("maintenance %+v expired nothing", res)
	}
	if out := e.seen.outside(tbl.Location()); len(out) > 0 {
		t.Errorf("the warehouse's FileIO was handed paths outside the table: %q", out)
	}
}

// TestSchedulerHaltsOutsideTable: the scheduler meets a table whose
// metadata names a file outside it, logs it once and leaves the table
// alone until restart, rather than retrying every check interval.
func TestSchedulerHaltsOutsideTable(t *testing.T) {
	logs := &recordLog{}
	e := newEnv(t, nil, func(o *compaction.Options) {
		o.CheckInterval = 5 * time.Millisecond
		o.Logger = slog.New(logs)
	})
	secret := secretFile(t)
	loads := make(chan struct{}, 1000)
	e.hooks.onLoad = func(time.Time) {
		select {
		case loads <- struct{}{}:
		default:
		}
	}
	// An ingest table (maintained by default) that asks for maintenance
	// at every check.
	e.hooks.alter = func(m table.Metadata) table.Metadata {
		if m.CurrentSnapshot() == nil {
			return m
		}
		m = setManifestList(t, m, 0, secret)
		return doctor(t, m, func(j map[string]any) {
			j["properties"].(map[string]any)[compaction.PropInterval] = "1"
		})
	}
	flushes(e, "halted", 2, 2, 1)

	deadline := time.After(2 * time.Minute)
	for logs.count("maintenance halted for this table until restart") == 0 {
		select {
		case <-loads:
		case <-deadline:
			t.Fatalf("the scheduler did not halt the table; log: %q", logs.messages())
		}
	}
	seen := e.seen.count()
	// Several more rounds of the scheduler, each loading the table.
	for range 20 {
		select {
		case <-loads:
		case <-deadline:
			t.Fatal("the scheduler stopped")
		}
	}
	if n := e.seen.count(); n != seen {
		t.Errorf("the scheduler kept working on the halted table: %d more FileIO calls", n-seen)
	}
	if n := logs.count("maintenance halted for this table until restart"); n != 1 {
		t.Errorf("halted %d times; log: %q", n, logs.messages())
	}
	if n := logs.count("scheduled maintenance failed"); n != 1 {
		t.Errorf("%d failed runs logged, want 1; log: %q", n, logs.messages())
	}
}

// recordLog is a slog.Handler that keeps the messages.
type recordLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordLog) WithGroup(string) slog.Handler      { return l }

func (l *recordLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func (l *recordLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// TestCompactDataFileOutsideTable: a table holds a data file outside its
// location besides its own (the Iceberg REST compatibility kit appends
// such files, and the catalog takes them). Maintenance works; compaction
// fails with ErrOutsideTable without reading the file, which stays.
func TestCompactDataFileOutsideTable(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := ident("external")
	flushes(e, "external", 3, 2, 1)
	tbl := e.load(id)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(strings.TrimPrefix(tasks[0].File.FilePath(), "file://"))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "external.parquet")
	if err := os.WriteFile(outside, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.commitTx(id, func(tx *table.Transaction) error { return tx.AddFiles(ctx, []string{outside}, nil, false) })

	if _, err := e.comp.Maintain(ctx, id); err != nil {
		t.Fatalf("maintenance: %v", err)
	}
	_, err = e.comp.Compact(ctx, id)
	t.Logf("compaction: %v", err)
	checkOutsideErr(t, "compaction", err, outside)
	if _, err := os.Stat(outside); err != nil {
		t.Error(err)
	}
	if out := e.seen.outside(tbl.Location()); len(out) > 0 {
		t.Errorf("the warehouse's FileIO was handed paths outside the table: %q", out)
	}
	// The table reads, the external file included (its rows twice).
	at, err := e.load(id).Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	if n := at.NumRows(); n != 8 {
		t.Errorf("%d rows, want 8", n)
	}
}
