package compaction_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/compaction"
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
	}, noFloors)
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

// noFloors lowers the server's maintenance floors out of the way, as an
// operator can with --min-orphan-age=0 and --min-snapshot-age=0, for tests
// of what the table's own retention does.
func noFloors(o *compaction.Options) { o.MinOrphanAge, o.MinSnapshotAge = -1, -1 }

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

// TestOrphanAgeFloor: a table asking for a 1 ms orphan window gets the
// server's (an hour by default): a file written a moment ago survives.
// Only the operator lowers the floor.
func TestOrphanAgeFloor(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := ident("young")
	want := flushes(e, "young", 2, 2, 1)
	e.setProps(id, iceberg.Properties{compaction.PropOrphanAge: "1", compaction.PropEnabled: "true"})
	fs, err := e.wh.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stray := e.load(id).Location() + "/data/in-flight.parquet"
	writeFile(t, fs, stray)
	time.Sleep(5 * time.Millisecond)
	res, err := e.comp.Maintain(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.OrphanFiles != 0 || !exists(t, fs, stray) {
		t.Fatalf("maintenance %+v deleted a file younger than the floor", res)
	}

	lowered, err := compaction.New(compaction.Options{Catalog: e.cat, FS: e.wh.FS, NodeID: "operator", MinOrphanAge: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lowered.Close()
	if res, err = lowered.Maintain(ctx, id); err != nil {
		t.Fatal(err)
	}
	if res.OrphanFiles != 1 || exists(t, fs, stray) {
		t.Fatalf("with the floor lowered, maintenance %+v left the stray file", res)
	}
	sameRows(t, e.rows(id, 0), want)
}

// TestSnapshotAgeFloor: a table (and its main branch) asking to keep
// snapshots for 1 ms gets the server's floor: snapshots current less than
// 15 minutes ago stay.
func TestSnapshotAgeFloor(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := ident("recent")
	flushes(e, "recent", 4, 2, 1)
	e.setProps(id, iceberg.Properties{"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "1"})
	cur := e.load(id).CurrentSnapshot().SnapshotID
	e.commit(id, []table.Requirement{table.AssertRefSnapshotID("main", &cur)},
		table.NewSetSnapshotRefUpdate("main", cur, table.BranchRef, 0, 1, 1))
	time.Sleep(5 * time.Millisecond)
	res, err := e.comp.Maintain(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.load(id).Metadata().Snapshots()); res.ExpiredSnapshots != 0 || n != 4 {
		t.Fatalf("maintenance %+v left %d of 4 snapshots made a moment ago", res, n)
	}

	lowered, err := compaction.New(compaction.Options{Catalog: e.cat, FS: e.wh.FS, NodeID: "operator", MinSnapshotAge: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lowered.Close()
	if res, err = lowered.Maintain(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := len(e.load(id).Metadata().Snapshots()); res.ExpiredSnapshots != 3 || n != 1 {
		t.Fatalf("with the floor lowered, maintenance %+v left %d snapshots, want 1", res, n)
	}
}

// TestExpiryKeepsRefs: expiry keeps the snapshot of every tag and branch
// and the snapshots a branch's own retention asks for, whatever the
// table's retention says, and their files stay readable.
func TestExpiryKeepsRefs(t *testing.T) {
	e := newEnv(t, nil, noFloors)
	ctx := context.Background()
	id := ident("refs")
	var want []map[int64]string // rows at s1..s6
	rows := map[int64]string{}
	for range 6 {
		for s, p := range flushes(e, "refs", 1, 2, 1) {
			rows[s] = p
		}
		want = append(want, maps.Clone(rows))
	}
	snaps := e.load(id).Metadata().Snapshots()
	if len(snaps) != 6 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	s := func(i int) int64 { return snaps[i-1].SnapshotID }
	e.commit(id, nil,
		table.NewSetSnapshotRefUpdate("keep", s(2), table.TagRef, 0, 0, 0),
		table.NewSetSnapshotRefUpdate("audit", s(4), table.BranchRef, 0, 0, 2))
	e.setProps(id, iceberg.Properties{"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "1"})
	time.Sleep(5 * time.Millisecond)

	res, err := e.comp.Maintain(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var left []int64
	for _, sn := range e.load(id).Metadata().Snapshots() {
		left = append(left, sn.SnapshotID)
	}
	slices.Sort(left)
	wantLeft := []int64{s(2), s(3), s(4), s(6)} // tag, branch's last two, main
	slices.Sort(wantLeft)
	if res.ExpiredSnapshots != 2 || !slices.Equal(left, wantLeft) {
		t.Fatalf("maintenance %+v left snapshots %v, want %v", res, left, wantLeft)
	}
	for _, i := range []int{2, 3, 4, 6} {
		sameRows(t, e.rows(id, s(i)), want[i-1])
	}
}

// commit commits updates to the table through the catalog.
func (e *env) commit(id catalog.Ident, reqs []table.Requirement, updates ...table.Update) {
	e.t.Helper()
	if _, err := e.cat.CommitTable(context.Background(), catalog.TableChange{Ident: id, Requirements: reqs, Updates: updates}, nil); err != nil {
		e.t.Fatalf("commit to %s: %v", id, err)
	}
}
