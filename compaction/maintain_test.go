package compaction_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/warehouse"
)

// TestMaintainOnS3: snapshot expiry deletes exactly the files no retained
// snapshot needs, and orphan cleanup deletes a stray file only once it is
// older than the window; on a real S3-compatible server.
func TestMaintainOnS3(t *testing.T) {
	s3 := testenv.S3(t)
	e := newEnv(t, &warehouse.Config{
		Root: "s3://" + s3.Bucket + "/wh", S3Endpoint: s3.Endpoint, S3Region: s3.Region,
		S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, S3PathStyle: true,
	})
	ctx := context.Background()
	id := ident("kept")
	want := flushes(e, "kept", 20, 4, 2)

	tbl := e.load(id)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, task := range tasks {
		inputs = append(inputs, task.File.FilePath())
	}
	oldLists := []string{}
	for _, s := range tbl.Metadata().Snapshots() {
		oldLists = append(oldLists, s.ManifestList)
	}
	if _, err := e.comp.Compact(ctx, id); err != nil {
		t.Fatal(err)
	}

	fs, err := e.wh.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stray := e.load(id).Location() + "/data/stray-from-a-crashed-writer.parquet"
	writeFile(t, fs, stray)

	// Keep only the newest snapshot; the orphan window is still an hour.
	e.setProps(id, iceberg.Properties{"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "1"})
	time.Sleep(5 * time.Millisecond)
	res, err := e.comp.Maintain(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("maintenance: %+v", res)
	if res.ExpiredSnapshots < 20 || res.OrphanFiles != 0 {
		t.Fatalf("maintenance %+v: want ≥ 20 snapshots expired and the young stray file kept", res)
	}
	tbl = e.load(id)
	if n := len(tbl.Metadata().Snapshots()); n != 1 {
		t.Fatalf("%d snapshots left, want 1", n)
	}
	for _, p := range append(inputs, oldLists...) {
		if exists(t, fs, p) {
			t.Errorf("%s is only needed by expired snapshots but still exists", p)
		}
	}
	tasks, err = tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if !exists(t, fs, task.File.FilePath()) {
			t.Errorf("%s is needed by the current snapshot but is gone", task.File.FilePath())
		}
	}
	sameRows(t, e.rows(id, 0), want)
	if !exists(t, fs, stray) {
		t.Fatal("a file younger than the orphan window was deleted")
	}

	// Once the stray file is older than the window, it goes.
	e.setProps(id, iceberg.Properties{"zombi.maintenance.orphan-age-ms": "1"})
	time.Sleep(5 * time.Millisecond)
	res, err = e.comp.Maintain(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if exists(t, fs, stray) || res.OrphanFiles < 1 {
		t.Fatalf("maintenance %+v left the stray file", res)
	}
	sameRows(t, e.rows(id, 0), want)
}

func writeFile(t *testing.T, fs icebergio.IO, path string) {
	t.Helper()
	w, err := fs.(icebergio.WriteFileIO).Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("not referenced by any metadata")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, fs icebergio.IO, path string) bool {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
