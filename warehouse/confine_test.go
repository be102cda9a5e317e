package warehouse

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/zombi-db/zombi/internal/location"
)

// recorder is a FileIO with every optional method; it records the paths it
// is asked about and succeeds.
type recorder struct {
	mu    sync.Mutex
	calls []string // "op path"
	walk  []string // what WalkDir reports below its root
}

func (r *recorder) record(op, name string) {
	r.mu.Lock()
	r.calls = append(r.calls, op+" "+name)
	r.mu.Unlock()
}

func (r *recorder) reset() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

type nopFile struct{}

func (nopFile) Read([]byte) (int, error)          { return 0, io.EOF }
func (nopFile) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (nopFile) Seek(int64, int) (int64, error)    { return 0, nil }
func (nopFile) Close() error                      { return nil }
func (nopFile) Stat() (fs.FileInfo, error)        { return fileInfo{}, nil }

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error)         { return len(p), nil }
func (nopWriter) Close() error                        { return nil }
func (nopWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

func (r *recorder) Open(name string) (icebergio.File, error) {
	r.record("open", name)
	return nopFile{}, nil
}
func (r *recorder) Remove(name string) error { r.record("remove", name); return nil }
func (r *recorder) ReadFile(name string) ([]byte, error) {
	r.record("read", name)
	return []byte("contents"), nil
}
func (r *recorder) Stat(name string) (fs.FileInfo, error) { r.record("stat", name); return nil, nil }
func (r *recorder) Create(name string) (icebergio.FileWriter, error) {
	r.record("create", name)
	return nopWriter{}, nil
}
func (r *recorder) WriteFile(name string, p []byte) error { r.record("write", name); return nil }
func (r *recorder) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	for _, p := range paths {
		r.record("delete", p)
	}
	return paths, nil
}
func (r *recorder) WalkDir(root string, fn fs.WalkDirFunc) error {
	r.record("walk", root)
	if err := fn(root, fs.FileInfoToDirEntry(dirInfo{}), nil); err != nil {
		return err
	}
	for _, p := range r.walk {
		if err := fn(p, fs.FileInfoToDirEntry(fileInfo{}), nil); err != nil {
			return err
		}
	}
	return nil
}

type dirInfo struct{ fs.FileInfo }

func (dirInfo) IsDir() bool       { return true }
func (dirInfo) Mode() fs.FileMode { return fs.ModeDir }
func (dirInfo) Name() string      { return "dir" }

type fileInfo struct{ fs.FileInfo }

func (fileInfo) IsDir() bool       { return false }
func (fileInfo) Mode() fs.FileMode { return 0 }
func (fileInfo) Name() string      { return "file" }

// capabilities lists the optional interfaces v implements, by asking for
// each one.
func capabilities(v icebergio.IO) []string {
	var out []string
	if _, ok := v.(icebergio.ReadFileIO); ok {
		out = append(out, "ReadFileIO")
	}
	if _, ok := v.(icebergio.WriteFileIO); ok {
		out = append(out, "WriteFileIO")
	}
	if _, ok := v.(icebergio.ListableIO); ok {
		out = append(out, "ListableIO")
	}
	if _, ok := v.(icebergio.BulkRemovableIO); ok {
		out = append(out, "BulkRemovableIO")
	}
	if _, ok := v.(icebergio.StatIO); ok {
		out = append(out, "StatIO")
	}
	return out
}

// TestConfineKeepsCapabilities: for each of the 32 combinations of
// optional interfaces an inner FileIO can have, the confined FileIO has
// exactly the same ones, and no others iceberg-go looks for.
func TestConfineKeepsCapabilities(t *testing.T) {
	names := []string{"ReadFileIO", "WriteFileIO", "ListableIO", "BulkRemovableIO", "StatIO"}
	for mask := range 32 {
		var want []string
		for i, n := range names {
			if mask&(1<<i) != 0 {
				want = append(want, n)
			}
		}
		inner := expose(&recorder{}, mask)
		if got := capabilities(inner); !slices.Equal(got, want) {
			t.Fatalf("mask %#x: the test's inner FileIO has %v, want %v", mask, got, want)
		}
		c := Confine(inner, "/w/t")
		if got := capabilities(c); !slices.Equal(got, want) {
			t.Errorf("inner FileIO with %v: confined one has %v", want, got)
		}
		if _, ok := c.(icebergio.RenameIO); ok {
			t.Errorf("mask %#x: confined FileIO is a RenameIO", mask)
		}
		if _, ok := c.(icebergio.RemoveAllIO); ok {
			t.Errorf("mask %#x: confined FileIO is a RemoveAllIO", mask)
		}
	}
	// The warehouse's own FileIOs keep everything.
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		if got := capabilities(Confine(w.IO(), w.Root()+"/ns/t")); !slices.Equal(got, names) {
			t.Errorf("confined FileIO has %v", got)
		}
		fs, err := ConfineF(w.FS, w.Root()+"/ns/t")(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := capabilities(fs); !slices.Equal(got, names) {
			t.Errorf("ConfineF: confined FileIO has %v", got)
		}
	})
}

// TestConfinePaths: every method forwards paths strictly inside the table
// location, however spelled, and refuses everything else with
// ErrOutsideTable, naming the path and the location and calling nothing.
func TestConfinePaths(t *testing.T) {
	type ops struct {
		name string
		call func(fsys icebergio.IO, p string) error
	}
	all := []ops{
		{"open", func(f icebergio.IO, p string) error { _, err := f.Open(p); return err }},
		{"read", func(f icebergio.IO, p string) error { _, err := f.(icebergio.ReadFileIO).ReadFile(p); return err }},
		{"stat", func(f icebergio.IO, p string) error { _, err := f.(icebergio.StatIO).Stat(p); return err }},
		{"create", func(f icebergio.IO, p string) error { _, err := f.(icebergio.WriteFileIO).Create(p); return err }},
		{"write", func(f icebergio.IO, p string) error { return f.(icebergio.WriteFileIO).WriteFile(p, []byte("x")) }},
		{"remove", func(f icebergio.IO, p string) error { return f.Remove(p) }},
		{"delete", func(f icebergio.IO, p string) error {
			_, err := f.(icebergio.BulkRemovableIO).DeleteFiles(context.Background(), []string{p})
			return err
		}},
	}
	// The table at /zombi-confine-test/w/t (a directory that does not exist
	// on this machine, so that removing resolves no link) or
	// s3://b/w/t, spelled in every way a location can be.
	const dir = "/zombi-confine-test/w/t"
	local := struct{ tables, inside, outside []string }{
		tables: []string{dir, dir + "/", "file:" + dir, "file://" + dir, "file://localhost" + dir + "/", "FILE://" + dir},
		inside: []string{
			dir + "/data/a.parquet",
			"file:" + dir + "/data/a.parquet",
			"file://" + dir + "/metadata/snap-1.avro",
			"file://localhost" + dir + "/x",
			dir + "//data///a.parquet",
			dir + "/data/c=a%2Fb/f.parquet", // an escaped slash is part of the name
			dir + "/data/%2e%2e.parquet",    // not a dot segment
			dir + "/..x",
		},
		outside: []string{
			"/zombi-confine-test/w/t2/data/a.parquet", // prefix sibling
			"/zombi-confine-test/w/t2",
			"/zombi-confine-test/w/t-other/x",
			dir,       // the location itself is no file of it
			dir + "/", //
			"file://" + dir,
			"/zombi-confine-test/w",
			"/zombi-confine-test/w/metadata/v1.metadata.json",
			"/etc/passwd",
			"file:///etc/passwd",
			dir + "/../t2/data/a.parquet",
			dir + "/data/../../t2/a.parquet",
			dir + "/%2e%2e/t2/a.parquet",
			dir + "/%2E%2e/t2/a.parquet",
			dir + "/./data/a.parquet",
			dir + "/data/..",
			"file://host" + dir + "/data/a.parquet",
			"s3://b" + dir + "/data/a.parquet",
			"zombi-confine-test/w/t/data/a.parquet", // relative
			"data/a.parquet",
			"file:zombi-confine-test/w/t/a",
			"",
			dir + "/data/a.parquet?versionId=1",
			dir + "/data/a.parquet#x",
			dir + "/data/a\x00.parquet",
		},
	}
	s3 := struct{ tables, inside, outside []string }{
		tables: []string{"s3://b/w/t", "s3://b/w/t/", "s3a://b/w/t", "S3://B/w/t"},
		inside: []string{
			"s3://b/w/t/data/a.parquet",
			"s3a://b/w/t/data/a.parquet",
			"s3n://b/w/t/metadata/m.avro",
		},
		outside: []string{
			"s3://b2/w/t/data/a.parquet", // other bucket
			"s3://b-other/w/t/a",
			"s3://b/w/t2/data/a.parquet", // prefix sibling
			"s3://b/w/t",
			"s3://b/w",
			"s3://b",
			"s3://b/w/t/../t2/a.parquet",
			"s3://b/w/t/%2e%2e/t2/a.parquet",
			"s3://b/w/t//data/a.parquet", // a different key on S3
			"s3://b/w/t/data/./a.parquet",
			"gs://b/w/t/data/a.parquet",
			"/w/t/data/a.parquet",
			"file:///w/t/data/a.parquet",
			"s3:///w/t/a",
		},
	}
	for _, set := range []struct{ tables, inside, outside []string }{local, s3} {
		for _, table := range set.tables {
			rec := &recorder{}
			c := Confine(expose(rec, 31), table)
			for _, op := range all {
				for _, p := range set.inside {
					if err := op.call(c, p); err != nil {
						t.Errorf("table %q: %s %q: %v", table, op.name, p, err)
					}
					if got := rec.reset(); !slices.Equal(got, []string{op.name + " " + p}) {
						t.Errorf("table %q: %s %q reached the inner FileIO as %q", table, op.name, p, got)
					}
				}
				for _, p := range set.outside {
					err := op.call(c, p)
					if !errors.Is(err, ErrOutsideTable) {
						t.Errorf("table %q: %s %q: %v, want ErrOutsideTable", table, op.name, p, err)
						continue
					}
					if got := rec.reset(); len(got) != 0 {
						t.Errorf("table %q: %s %q reached the inner FileIO: %q", table, op.name, p, got)
					}
					var pe *fs.PathError
					if !errors.As(err, &pe) || pe.Path != p || !strings.Contains(err.Error(), location.Canonical(table)) {
						t.Errorf("table %q: %s %q: error %q does not name the path and the table", table, op.name, p, err)
					}
				}
			}
		}
	}
}

// TestConfineError: the error names the path and the canonical table
// location.
func TestConfineError(t *testing.T) {
	c := Confine(expose(&recorder{}, 31), "file:/w/t/")
	_, err := c.Open("/etc/passwd")
	if got, want := err.Error(), "open /etc/passwd: not inside the table location file:///w/t"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	_, err = c.Open("/w/t/../t2/x")
	if got := err.Error(); !strings.Contains(got, "/w/t/../t2/x") || !strings.Contains(got, "file:///w/t") {
		t.Errorf("error %q does not name the path and the table", got)
	}
	if err := CheckInTable("s3://b/w/t", "s3a://b/w/t/data/x"); err != nil {
		t.Errorf("CheckInTable inside: %v", err)
	}
	if err := CheckInTable("s3://b/w/t", "s3://b/w/t2/x"); !errors.Is(err, ErrOutsideTable) {
		t.Errorf("CheckInTable outside: %v", err)
	}
	// A table location that cannot be read confines to nothing.
	for _, table := range []string{"", "w/t", "/w/../t", "s3://b/w//t"} {
		c := Confine(expose(&recorder{}, 31), table)
		if _, err := c.Open("/w/t/x"); !errors.Is(err, ErrOutsideTable) {
			t.Errorf("table %q: open: %v", table, err)
		}
		if err := c.(icebergio.ListableIO).WalkDir(table, func(string, fs.DirEntry, error) error { return nil }); !errors.Is(err, ErrOutsideTable) {
			t.Errorf("table %q: walk: %v", table, err)
		}
		if err := CheckInTable(table, "/w/t/x"); !errors.Is(err, ErrOutsideTable) {
			t.Errorf("CheckInTable(%q): %v", table, err)
		}
	}
}

// TestConfineDeleteFiles: a bulk delete deletes the files inside and
// reports the others, one error each.
func TestConfineDeleteFiles(t *testing.T) {
	rec := &recorder{}
	c := Confine(expose(rec, 31), "/zombi-confine-test/t").(icebergio.BulkRemovableIO)
	in := []string{"/zombi-confine-test/t/a", "file:///zombi-confine-test/t/b"}
	out := []string{"/zombi-confine-test/t2/a", "/etc/passwd"}
	deleted, err := c.DeleteFiles(context.Background(), []string{in[0], out[0], in[1], out[1]})
	if !slices.Equal(deleted, in) {
		t.Errorf("deleted %q, want %q", deleted, in)
	}
	if !errors.Is(err, ErrOutsideTable) {
		t.Errorf("error %v, want ErrOutsideTable", err)
	}
	for _, p := range out {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
	if got := rec.reset(); !slices.Equal(got, []string{"delete " + in[0], "delete " + in[1]}) {
		t.Errorf("inner FileIO deleted %q", got)
	}
	// Nothing inside: nothing reaches the inner FileIO.
	if deleted, err := c.DeleteFiles(context.Background(), out); len(deleted) != 0 || !errors.Is(err, ErrOutsideTable) {
		t.Errorf("DeleteFiles(outside) = %q, %v", deleted, err)
	}
	if deleted, err := c.DeleteFiles(context.Background(), nil); len(deleted) != 0 || err != nil {
		t.Errorf("DeleteFiles(nil) = %q, %v", deleted, err)
	}
	if got := rec.reset(); len(got) != 0 {
		t.Errorf("inner FileIO deleted %q", got)
	}
}

// TestConfineWalk: a walk starts at the location or inside it, and stops
// at anything outside it or at the metadata of a table nested in it.
func TestConfineWalk(t *testing.T) {
	const table = "s3://b/w/ns"
	for _, tc := range []struct {
		name string
		root string
		walk []string
		ok   bool // the walk completes
	}{
		{"own files", table, []string{table + "/data/a.parquet", table + "/metadata/v1.metadata.json", table + "/metadata/version-hint.text", table + "/data/x.metadata.json"}, true},
		{"below the root", table + "/data", []string{table + "/data/a.parquet"}, true},
		{"root outside", "s3://b/w", nil, false},
		{"root sibling", "s3://b/w/ns2", nil, false},
		{"root unreadable", table + "/../x", nil, false},
		{"entry outside", table, []string{table + "/data/a.parquet", "s3://b/w/ns2/data/b.parquet", table + "/data/c.parquet"}, false},
		{"entry unreadable", table, []string{table + "/data/../../x"}, false},
		{"nested table", table, []string{table + "/data/a.parquet", table + "/t2/data/b.parquet", table + "/t2/metadata/00001-x.metadata.json"}, false},
		{"nested hadoop table", table, []string{table + "/t2/metadata/version-hint.text"}, false},
		{"nested view", table, []string{table + "/v/metadata/00000-x.gz.metadata.json"}, false},
		{"nested deeper", table, []string{table + "/a/b/metadata/v2.metadata.json"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{walk: tc.walk}
			c := Confine(expose(rec, 31), table).(icebergio.ListableIO)
			var seen []string
			err := c.WalkDir(tc.root, func(p string, d fs.DirEntry, err error) error {
				seen = append(seen, p)
				return err
			})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if want := append([]string{tc.root}, tc.walk...); !slices.Equal(seen, want) {
					t.Errorf("walked %q, want %q", seen, want)
				}
				return
			}
			if !errors.Is(err, ErrOutsideTable) {
				t.Fatalf("walk: %v, want ErrOutsideTable", err)
			}
			for _, p := range seen {
				if !strings.HasPrefix(p, table+"/") && p != table {
					t.Errorf("fn saw %q, outside the table", p)
				}
				if strings.Contains(p, "metadata.json") || strings.Contains(p, "version-hint") {
					t.Errorf("fn saw %q, another table's metadata", p)
				}
			}
		})
	}
}

// TestConfineOnWarehouse: on both backends, a confined FileIO reads,
// writes, lists and deletes the table's files, and neither reads, lists
// nor deletes the files of the table next to it, whose location shares
// its prefix.
func TestConfineOnWarehouse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		tbl := w.Root() + "/ns/t"
		mine := tbl + "/data/a.parquet"
		victim := w.Root() + "/ns/t2/data/a.parquet"
		secret := []byte("root:x:0:0:secret")
		writeFile(t, w, mine, []byte("mine"))
		writeFile(t, w, victim, secret)
		c := Confine(w.IO(), tbl)

		b, err := c.(icebergio.ReadFileIO).ReadFile(mine)
		if err != nil || string(b) != "mine" {
			t.Fatalf("ReadFile(mine) = %q, %v", b, err)
		}
		for _, read := range []func() error{
			func() error { _, err := c.(icebergio.ReadFileIO).ReadFile(victim); return err },
			func() error { _, err := c.Open(victim); return err },
			func() error { _, err := c.(icebergio.StatIO).Stat(victim); return err },
			func() error { return c.Remove(victim) },
			func() error {
				_, err := c.(icebergio.BulkRemovableIO).DeleteFiles(t.Context(), []string{victim})
				return err
			},
			func() error { _, err := c.(icebergio.WriteFileIO).Create(victim); return err },
		} {
			err := read()
			if !errors.Is(err, ErrOutsideTable) {
				t.Errorf("%v, want ErrOutsideTable", err)
			} else if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "726f6f74") {
				t.Errorf("error %q shows the file's contents", err)
			}
		}
		var walked []string
		err = c.(icebergio.ListableIO).WalkDir(tbl, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				walked = append(walked, p)
			}
			return nil
		})
		if err != nil || !slices.Equal(walked, []string{mine}) {
			t.Errorf("walk = %q, %v; want only %s", walked, err, mine)
		}
		// Writers keep their Abort.
		out, err := c.(icebergio.WriteFileIO).Create(tbl + "/data/b.parquet")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := out.(AbortableWriter); !ok {
			t.Errorf("writer %T is not an AbortableWriter", out)
		}
		_ = out.(AbortableWriter).Abort()

		deleted, err := c.(icebergio.BulkRemovableIO).DeleteFiles(t.Context(), []string{mine, victim})
		if !slices.Equal(deleted, []string{mine}) || !errors.Is(err, ErrOutsideTable) {
			t.Errorf("DeleteFiles = %q, %v", deleted, err)
		}
		if got := readFile(t, w, victim); string(got) != string(secret) {
			t.Errorf("the other table's file changed: %q", got)
		}
		if _, err := wio(t, w).Stat(mine); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the table's own file was not deleted: %v", err)
		}

		// A location holding another table (here: the namespace
		// directory) cannot be listed.
		err = Confine(w.IO(), w.Root()+"/ns").(icebergio.ListableIO).WalkDir(w.Root()+"/ns", func(string, fs.DirEntry, error) error { return nil })
		if err != nil {
			t.Fatalf("walking a directory without table metadata: %v", err)
		}
		writeFile(t, w, w.Root()+"/ns/t2/metadata/00000-x.metadata.json", []byte("{}"))
		err = Confine(w.IO(), w.Root()+"/ns").(icebergio.ListableIO).WalkDir(w.Root()+"/ns", func(string, fs.DirEntry, error) error { return nil })
		if !errors.Is(err, ErrOutsideTable) {
			t.Errorf("walking a directory holding a table: %v, want ErrOutsideTable", err)
		}
	})
}

// TestConfineRemoveSymlink: a link inside the table to a directory
// outside it cannot lead a deletion there; the link itself can be
// removed.
func TestConfineRemoveSymlink(t *testing.T) {
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	if err := os.WriteFile(precious, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl := filepath.Join(t.TempDir(), "t")
	if err := os.MkdirAll(filepath.Join(tbl, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tbl, "data", "link")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	c := Confine(localFS{}, "file://"+tbl)
	if err := c.Remove(link + "/precious"); !errors.Is(err, ErrOutsideTable) {
		t.Errorf("Remove through a link: %v, want ErrOutsideTable", err)
	}
	if _, err := c.(icebergio.BulkRemovableIO).DeleteFiles(t.Context(), []string{link + "/precious"}); !errors.Is(err, ErrOutsideTable) {
		t.Errorf("DeleteFiles through a link: %v, want ErrOutsideTable", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("the file the link leads to: %v", err)
	}
	if err := c.Remove(link); err != nil {
		t.Errorf("removing the link itself: %v", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("the file the link led to: %v", err)
	}
}
