package warehouse

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/minio/minio-go/v7"

	"github.com/zombi-db/zombi/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopS3()
	os.Exit(code)
}

// backend opens a fresh, empty warehouse.
type backend struct {
	name string
	open func(t *testing.T) *Warehouse
}

var backends = []backend{
	{"local", func(t *testing.T) *Warehouse {
		w, err := Open(t.Context(), Config{Root: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}},
	{"s3", func(t *testing.T) *Warehouse {
		return openS3(t, testenv.S3(t), "wh", false)
	}},
}

func openS3(t *testing.T, srv testenv.S3Server, prefix string, vend bool) *Warehouse {
	t.Helper()
	root := "s3://" + srv.Bucket
	if prefix != "" {
		root += "/" + prefix
	}
	w, err := Open(t.Context(), Config{
		Root:           root,
		S3Endpoint:     srv.Endpoint,
		S3Region:       srv.Region,
		S3AccessKey:    srv.AccessKey,
		S3SecretKey:    srv.SecretKey,
		S3PathStyle:    true,
		VendStaticKeys: vend,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// forEachBackend runs fn against a fresh warehouse of every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, w *Warehouse)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func wio(t *testing.T, w *Warehouse) interface {
	icebergio.ReadFileIO
	icebergio.WriteFileIO
	icebergio.ListableIO
	icebergio.BulkRemovableIO
	icebergio.StatIO
} {
	t.Helper()
	type full interface {
		icebergio.ReadFileIO
		icebergio.WriteFileIO
		icebergio.ListableIO
		icebergio.BulkRemovableIO
		icebergio.StatIO
	}
	f, ok := w.IO().(full)
	if !ok {
		t.Fatalf("IO() is %T, which lacks an optional interface", w.IO())
	}
	return f
}

func writeFile(t *testing.T, w *Warehouse, loc string, data []byte) {
	t.Helper()
	out, err := wio(t, w).Create(loc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, w *Warehouse, loc string) []byte {
	t.Helper()
	b, err := wio(t, w).ReadFile(loc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestWriteRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		tests := []struct {
			name string
			data []byte
		}{
			{"empty", nil},
			{"small", []byte(`{"format-version":2}`)},
			{"64KiB", pattern(64 << 10)},
		}
		for _, tt := range tests {
			loc := w.Root() + "/ns/tbl/metadata/" + tt.name + ".json"
			writeFile(t, w, loc, tt.data)

			if got := readFile(t, w, loc); !bytes.Equal(got, tt.data) {
				t.Errorf("%s: ReadFile returned %d bytes, want %d", tt.name, len(got), len(tt.data))
			}
			fi, err := fsys.Stat(loc)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != int64(len(tt.data)) || fi.IsDir() || fi.Name() != tt.name+".json" {
				t.Errorf("%s: Stat = name %q size %d dir %v", tt.name, fi.Name(), fi.Size(), fi.IsDir())
			}

			f, err := fsys.Open(loc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("%s: Open+Read returned %d bytes, want %d", tt.name, len(got), len(tt.data))
			}
			if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(tt.data)) {
				t.Errorf("%s: File.Stat = %v, %v", tt.name, fi, err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}

		// WriteFile replaces the contents.
		loc := w.Root() + "/ns/tbl/metadata/small.json"
		if err := fsys.WriteFile(loc, []byte("replaced")); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, w, loc); string(got) != "replaced" {
			t.Errorf("after WriteFile: %q", got)
		}

		// ReadFrom, which iceberg-go's writers may use.
		loc = w.Root() + "/ns/tbl/data/readfrom.bin"
		out, err := fsys.Create(loc)
		if err != nil {
			t.Fatal(err)
		}
		want := pattern(100_000)
		if n, err := out.ReadFrom(bytes.NewReader(want)); err != nil || n != int64(len(want)) {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, w, loc); !bytes.Equal(got, want) {
			t.Errorf("ReadFrom: read back %d bytes, want %d", len(got), len(want))
		}
	})
}

func TestReadAtSeek(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		data := pattern(10_000)
		loc := w.Root() + "/ns/tbl/data/f.parquet"
		writeFile(t, w, loc, data)
		f, err := wio(t, w).Open(loc)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()

		readAts := []struct {
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{0, 100, 100, false},
			{9_000, 1_000, 1_000, false},
			{9_990, 100, 10, true},
			{4_096, 4, 4, false},
			{10_000, 10, 0, true},
			{20_000, 10, 0, true},
		}
		for _, ra := range readAts {
			p := make([]byte, ra.n)
			n, err := f.ReadAt(p, ra.off)
			if n != ra.wantN || (err == io.EOF) != ra.wantEOF || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt(%d bytes, %d) = %d, %v; want %d, EOF %v", ra.n, ra.off, n, err, ra.wantN, ra.wantEOF)
				continue
			}
			if n > 0 && !bytes.Equal(p[:n], data[ra.off:ra.off+int64(n)]) {
				t.Errorf("ReadAt(%d bytes, %d): wrong bytes", ra.n, ra.off)
			}
		}

		// Concurrent ReadAt, as Parquet readers do.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				off := int64(i * 1_000)
				p := make([]byte, 1_000)
				if _, err := f.ReadAt(p, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(p, data[off:off+1_000]) {
					errs <- errors.New("concurrent ReadAt: wrong bytes")
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		seeks := []struct {
			off    int64
			whence int
			want   int64
		}{
			{5_000, io.SeekStart, 5_000},
			{100, io.SeekCurrent, 5_110}, // after reading 10 bytes at 5_000
			{-8, io.SeekEnd, 9_992},
			{0, io.SeekStart, 0},
		}
		for _, s := range seeks {
			pos, err := f.Seek(s.off, s.whence)
			if err != nil || pos != s.want {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", s.off, s.whence, pos, err, s.want)
			}
			p := make([]byte, 10)
			n, err := io.ReadFull(f, p)
			wantN := min(10, len(data)-int(pos))
			if n != wantN || (err != nil && n == 10) {
				t.Fatalf("Read after Seek(%d, %d) = %d, %v", s.off, s.whence, n, err)
			}
			if !bytes.Equal(p[:n], data[pos:pos+int64(n)]) {
				t.Errorf("Read after Seek(%d, %d): wrong bytes", s.off, s.whence)
			}
		}
		// Reading to the end after the seeks and ReadAts.
		if _, err := f.Seek(7_000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(rest, data[7_000:]) {
			t.Errorf("ReadAll after Seek(7000) = %d bytes, %v", len(rest), err)
		}
		if n, err := f.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("Read at EOF = %d, %v; want 0, EOF", n, err)
		}
		if _, err := f.Seek(-1, io.SeekStart); err == nil {
			t.Error("Seek to a negative offset succeeded")
		}
	})
}

func TestNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		loc := w.Root() + "/ns/tbl/metadata/missing.json"
		_, errOpen := fsys.Open(loc)
		_, errRead := fsys.ReadFile(loc)
		_, errStat := fsys.Stat(loc)
		for name, err := range map[string]error{"Open": errOpen, "ReadFile": errRead, "Stat": errStat} {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s of a missing file: %v, want fs.ErrNotExist", name, err)
			}
		}
		var walked []string
		err := fsys.WalkDir(w.Root()+"/ns/missing", func(path string, d fs.DirEntry, err error) error {
			walked = append(walked, path)
			return err
		})
		if !errors.Is(err, fs.ErrNotExist) || len(walked) != 1 {
			t.Errorf("WalkDir of a missing directory: %v after %q, want fs.ErrNotExist for the root", err, walked)
		}
	})
}

func TestWalkDir(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		base := w.Root() + "/ns/tbl"
		files := []string{
			"data/a=1/f1.parquet",
			"data/a=1/f2.parquet",
			"data/a=2/f3.parquet",
			"data/a=2-b/f4.parquet",
			"data/c=gr%C3%BC%C3%9Fe/f5.parquet", // URL-encoded partition values,
			"data/c=a+b%2Fc/f6.parquet",         // kept verbatim
			"metadata/v1.metadata.json",
			"top.txt",
		}
		for i, f := range files {
			writeFile(t, w, base+"/"+f, pattern(i+1))
		}
		writeFile(t, w, w.Root()+"/ns/tbl2/other.txt", []byte("x")) // shares a prefix with tbl

		type entry struct {
			path string
			dir  bool
			size int64
		}
		walk := func(root string, skip map[string]error) ([]entry, error) {
			var got []entry
			err := fsys.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				e := entry{path: path, dir: d.IsDir()}
				if !d.IsDir() {
					fi, err := d.Info()
					if err != nil {
						return err
					}
					e.size = fi.Size()
				}
				got = append(got, e)
				return skip[path]
			})
			return got, err
		}

		got, err := walk(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[0] != (entry{path: base, dir: true}) {
			t.Fatalf("first entry = %v, want the root %s", got, base)
		}
		var gotFiles, gotDirs []string
		for _, e := range got[1:] {
			rel, ok := strings.CutPrefix(e.path, base+"/")
			if !ok {
				t.Errorf("walked %s, outside %s", e.path, base)
				continue
			}
			if e.dir {
				gotDirs = append(gotDirs, rel)
				continue
			}
			gotFiles = append(gotFiles, rel)
			if i := slices.Index(files, rel); i >= 0 && e.size != int64(i+1) {
				t.Errorf("%s: size %d, want %d", rel, e.size, i+1)
			}
		}
		slices.Sort(gotFiles)
		slices.Sort(gotDirs)
		if want := slices.Sorted(slices.Values(files)); !slices.Equal(gotFiles, want) {
			t.Errorf("files = %q\nwant %q", gotFiles, want)
		}
		wantDirs := []string{"data", "data/a=1", "data/a=2", "data/a=2-b", "data/c=a+b%2Fc", "data/c=gr%C3%BC%C3%9Fe", "metadata"}
		if !slices.Equal(gotDirs, wantDirs) {
			t.Errorf("dirs = %q\nwant %q", gotDirs, wantDirs)
		}

		// fs.SkipDir on a directory skips its contents; on a file, the rest
		// of its directory.
		got, err = walk(base, map[string]error{
			base + "/data/a=1":              fs.SkipDir,
			base + "/data/a=2-b/f4.parquet": fs.SkipDir,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if strings.HasPrefix(e.path, base+"/data/a=1/") {
				t.Errorf("walked %s inside a skipped directory", e.path)
			}
		}
		if !slices.ContainsFunc(got, func(e entry) bool { return e.path == base+"/data/a=2/f3.parquet" }) {
			t.Errorf("SkipDir skipped too much: %v", got)
		}

		// fs.SkipAll stops the walk without an error.
		n := 0
		err = fsys.WalkDir(base, func(string, fs.DirEntry, error) error {
			n++
			return fs.SkipAll
		})
		if err != nil || n != 1 {
			t.Errorf("SkipAll: %d calls, %v", n, err)
		}
	})
}

func TestRemoveAndDeleteFiles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		base := w.Root() + "/ns/tbl/data/"
		locs := []string{base + "a", base + "b", base + "c"}
		for _, l := range locs {
			writeFile(t, w, l, []byte(l))
		}
		if err := fsys.Remove(base + "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Stat(base + "a"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after Remove: %v", err)
		}

		// A missing file counts as deleted.
		paths := []string{base + "a", base + "b", base + "c", base + "never"}
		deleted, err := fsys.DeleteFiles(t.Context(), paths)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(deleted)
		if !slices.Equal(deleted, paths) {
			t.Errorf("deleted = %q, want %q", deleted, paths)
		}
		for _, l := range locs {
			if _, err := fsys.Stat(l); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s after DeleteFiles: %v", l, err)
			}
		}
		if deleted, err := fsys.DeleteFiles(t.Context(), nil); err != nil || len(deleted) != 0 {
			t.Errorf("DeleteFiles(nil) = %v, %v", deleted, err)
		}
	})
}

func TestAbortedWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		tests := []struct {
			name string
			size int
		}{
			{"small", 1_000},
			{"multipart", partSize + 1<<20},
		}
		for _, tt := range tests {
			loc := w.Root() + "/ns/tbl/data/" + tt.name + ".parquet"
			existing := w.Root() + "/ns/tbl/data/" + tt.name + "-existing.parquet"
			writeFile(t, w, existing, []byte("old"))

			for _, target := range []string{loc, existing} {
				out, err := fsys.Create(target)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := out.Write(pattern(tt.size)); err != nil {
					t.Fatal(err)
				}
				// Not visible while the write is open: an abandoned writer
				// leaves nothing.
				if target == loc {
					if _, err := fsys.Stat(loc); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s: visible before Close: %v", tt.name, err)
					}
				}
				aw, ok := out.(AbortableWriter)
				if !ok {
					t.Fatalf("writer %T does not implement AbortableWriter", out)
				}
				if err := aw.Abort(); err != nil {
					t.Fatal(err)
				}
				if err := out.Close(); err == nil {
					t.Errorf("%s: Close after Abort succeeded", tt.name)
				}
			}
			if _, err := fsys.Stat(loc); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: aborted write left a file: %v", tt.name, err)
			}
			if got := readFile(t, w, existing); string(got) != "old" {
				t.Errorf("%s: aborted overwrite changed the file to %d bytes", tt.name, len(got))
			}
		}

		// Nothing but the finished files is left in the directory (no
		// temporary files, no incomplete uploads counted as objects).
		var names []string
		err := fsys.WalkDir(w.Root()+"/ns/tbl/data", func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, d.Name())
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		if want := []string{"multipart-existing.parquet", "small-existing.parquet"}; !slices.Equal(names, want) {
			t.Errorf("files left = %q, want %q", names, want)
		}
		if s3fs, ok := w.IO().(*s3FS); ok {
			for u := range s3fs.client.ListIncompleteUploads(t.Context(), s3fs.bucket, "", true) {
				t.Errorf("incomplete upload left behind: %+v", u)
			}
		}
	})
}

func TestLargeWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		loc := w.Root() + "/ns/tbl/data/large.parquet"
		data := pattern(2*partSize + 3<<20)
		out, err := fsys.Create(loc)
		if err != nil {
			t.Fatal(err)
		}
		for chunk := range slices.Chunk(data, 1<<20+17) {
			if _, err := out.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fsys.Stat(loc); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("visible before Close: %v", err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		if s3fs, ok := w.IO().(*s3FS); ok {
			// Three parts: two full ones and the rest.
			key := strings.TrimPrefix(loc, "s3://"+s3fs.bucket+"/")
			info, err := s3fs.client.StatObject(t.Context(), s3fs.bucket, key, minio.StatObjectOptions{})
			if err != nil || !strings.HasSuffix(info.ETag, "-3") {
				t.Errorf("ETag %q, %v: want a 3-part multipart upload", info.ETag, err)
			}
		}
		got := readFile(t, w, loc)
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
		}
		f, err := fsys.Open(loc)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := make([]byte, 100)
		off := int64(partSize - 50) // across the first part boundary
		if _, err := f.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+100]) {
			t.Errorf("ReadAt across a part boundary: %v", err)
		}
	})
}

func TestDeletePrefix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		fsys := wio(t, w)
		root := w.Root()
		tbl := root + "/ns/tbl"
		for _, f := range []string{"metadata/v1.json", "data/a=1/f1.parquet", "data/a=2/f2.parquet"} {
			writeFile(t, w, tbl+"/"+f, []byte(f))
		}
		keep := []string{root + "/ns/tbl2/data/f.parquet", root + "/ns/tbl.txt"}
		for _, k := range keep {
			writeFile(t, w, k, []byte("keep"))
		}

		n, err := w.DeletePrefix(t.Context(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("DeletePrefix deleted %d files, want 3", n)
		}
		err = fsys.WalkDir(tbl, func(path string, d fs.DirEntry, err error) error {
			if err == nil {
				t.Errorf("%s survived DeletePrefix", path)
			}
			return err
		})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("WalkDir after DeletePrefix: %v", err)
		}
		for _, k := range keep {
			if got := readFile(t, w, k); string(got) != "keep" {
				t.Errorf("%s changed", k)
			}
		}

		// A missing location deletes nothing; a trailing slash is the same
		// location.
		if n, err := w.DeletePrefix(t.Context(), tbl+"/"); err != nil || n != 0 {
			t.Errorf("DeletePrefix of a missing location = %d, %v", n, err)
		}
	})
}

func TestDeleteRefusesOutsideRoot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		root := w.Root()
		victim := root + "/ns/tbl/data/f.parquet"
		writeFile(t, w, victim, []byte("x"))

		var outside []string
		if strings.HasPrefix(root, "s3://") {
			bucket := strings.TrimPrefix(root, "s3://")
			bucket, _, _ = strings.Cut(bucket, "/")
			outside = []string{
				"s3://" + bucket,                      // bucket root, above the warehouse
				"s3://" + bucket + "/",                //
				"s3://" + bucket + "/wh2/ns",          // sibling sharing the prefix
				"s3://" + bucket + "-other/wh/ns/tbl", // other bucket
				"s3a://" + bucket + "x/wh/ns",         // other bucket, other scheme
				"file:///tmp",                         // other backend
				"/tmp",                                //
				"gs://" + bucket + "/wh/ns",           // unknown scheme
				root + "//ns",                         // empty segment
			}
		} else {
			dir := strings.TrimPrefix(root, "file://")
			outside = []string{
				filepath.Dir(dir),
				dir + "-sibling/ns",
				"file:///etc",
				"s3://bucket/wh/ns",
				"relative/path",
			}
		}
		outside = append(outside,
			"",
			root,
			root+"/",
			root+"/ns/..",
			root+"/ns/tbl/../../..",
			root+"/./ns",
		)
		for _, loc := range outside {
			if n, err := w.DeletePrefix(t.Context(), loc); !errors.Is(err, ErrOutsideWarehouse) || n != 0 {
				t.Errorf("DeletePrefix(%q) = %d, %v; want ErrOutsideWarehouse", loc, n, err)
			}
			if err := w.Delete(t.Context(), []string{victim, loc}); !errors.Is(err, ErrOutsideWarehouse) {
				t.Errorf("Delete(%q) = %v; want ErrOutsideWarehouse", loc, err)
			}
		}
		// Delete refuses the whole batch: the victim inside is still there.
		if got := readFile(t, w, victim); string(got) != "x" {
			t.Errorf("victim changed: %q", got)
		}

		if err := w.Delete(t.Context(), []string{victim, root + "/ns/tbl/data/missing"}); err != nil {
			t.Fatal(err)
		}
		if _, err := wio(t, w).Stat(victim); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Delete: %v", err)
		}
	})
}

func TestDeletePrefixSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	precious := filepath.Join(outside, "tbl", "precious")
	if err := os.MkdirAll(filepath.Dir(precious), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(precious, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(t.Context(), Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimPrefix(w.Root(), "file://")
	if err := os.Symlink(outside, filepath.Join(root, "ns")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DeletePrefix(t.Context(), w.Root()+"/ns/tbl"); !errors.Is(err, ErrOutsideWarehouse) {
		t.Errorf("DeletePrefix through a symlink: %v, want ErrOutsideWarehouse", err)
	}
	if err := w.Delete(t.Context(), []string{w.Root() + "/ns/tbl/precious"}); !errors.Is(err, ErrOutsideWarehouse) {
		t.Errorf("Delete through a symlink: %v, want ErrOutsideWarehouse", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("file outside the warehouse: %v", err)
	}
}

func TestPing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		if err := w.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoadFSWithIOProps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		loc := w.Root() + "/ns/tbl/metadata/v1.metadata.json"
		writeFile(t, w, loc, []byte("via warehouse"))

		loaded, err := icebergio.LoadFS(t.Context(), w.IOProps(), loc)
		if err != nil {
			t.Fatal(err)
		}
		if s3fs, ok := w.IO().(*s3FS); ok {
			l, ok := loaded.(*s3FS)
			if !ok {
				t.Fatalf("LoadFS returned %T, want *s3FS", loaded)
			}
			if l.client != s3fs.client {
				t.Error("LoadFS with IOProps made a new client instead of reusing the warehouse's")
			}
		}
		rf, ok := loaded.(icebergio.ReadFileIO)
		if !ok {
			t.Fatalf("LoadFS returned %T without ReadFile", loaded)
		}
		if got, err := rf.ReadFile(loc); err != nil || string(got) != "via warehouse" {
			t.Errorf("ReadFile through LoadFS = %q, %v", got, err)
		}
		wf, ok := loaded.(icebergio.WriteFileIO)
		if !ok {
			t.Fatalf("LoadFS returned %T without WriteFile", loaded)
		}
		loc2 := w.Root() + "/ns/tbl/metadata/v2.metadata.json"
		if err := wf.WriteFile(loc2, []byte("via LoadFS")); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, w, loc2); string(got) != "via LoadFS" {
			t.Errorf("read back %q", got)
		}
	})
}

func TestS3AliasesAndBucketBinding(t *testing.T) {
	srv := testenv.S3(t)
	w := openS3(t, srv, "", false)
	if got, want := w.Root(), "s3://"+srv.Bucket; got != want {
		t.Errorf("Root() = %q, want %q", got, want)
	}
	fsys := wio(t, w)
	writeFile(t, w, "s3a://"+srv.Bucket+"/ns/t/f", []byte("a"))
	if got := readFile(t, w, "s3://"+srv.Bucket+"/ns/t/f"); string(got) != "a" {
		t.Errorf("s3a and s3 name different objects: %q", got)
	}

	// LoadFS serves the s3a scheme too.
	loaded, err := icebergio.LoadFS(t.Context(), w.IOProps(), "s3a://"+srv.Bucket+"/ns/t/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := loaded.(*s3FS); !ok {
		t.Errorf("LoadFS(s3a://) returned %T", loaded)
	}

	for _, bad := range []string{
		"s3://other-bucket/ns/t/f",
		"s3://" + srv.Bucket,
		"s3://" + srv.Bucket + "/ns/../f",
		"s3://" + srv.Bucket + "/ns/t/",
		"/local/path",
	} {
		if _, err := fsys.ReadFile(bad); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%q) = %v, want a refusal", bad, err)
		}
		if _, err := fsys.Create(bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}

	// Directory markers written by other tools are directories, not files.
	client := w.s3.client
	if _, err := client.PutObject(t.Context(), srv.Bucket, "ns/t/empty/", bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var files, dirs []string
	err = fsys.WalkDir("s3://"+srv.Bucket+"/ns", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		} else {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantDirs := []string{"s3://" + srv.Bucket + "/ns", "s3://" + srv.Bucket + "/ns/t", "s3://" + srv.Bucket + "/ns/t/empty"}
	slices.Sort(dirs)
	if !slices.Equal(dirs, wantDirs) || !slices.Equal(files, []string{"s3://" + srv.Bucket + "/ns/t/f"}) {
		t.Errorf("WalkDir: dirs %q files %q", dirs, files)
	}
}

func TestIcebergMetadataRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, w *Warehouse) {
		ctx := t.Context()
		schema := iceberg.NewSchema(0,
			iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
			iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz},
			iceberg.NestedField{ID: 3, Name: "payload", Type: iceberg.PrimitiveTypes.String},
		)
		spec := iceberg.NewPartitionSpec(iceberg.PartitionField{
			SourceIDs: []int{2}, FieldID: 1000, Name: "ts_hour", Transform: iceberg.HourTransform{},
		})
		location := w.Root() + "/ns/events"
		meta, err := table.NewMetadata(schema, &spec, table.UnsortedSortOrder, location, iceberg.Properties{"owner": "zombi"})
		if err != nil {
			t.Fatal(err)
		}
		metaLoc := location + "/metadata/00000-test.metadata.json"
		out, err := wio(t, w).Create(metaLoc)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewEncoder(out).Encode(meta); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}

		tbl, err := table.NewFromLocation(ctx, table.Identifier{"ns", "events"}, metaLoc, w.FS, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !tbl.Metadata().Equals(meta) {
			t.Error("metadata read back differs from the metadata written")
		}
		if got := tbl.Location(); got != location {
			t.Errorf("Location() = %q, want %q", got, location)
		}

		// And through LoadFS with the warehouse's properties, the way a
		// server-side iceberg-go table loads its files.
		parsed, err := table.NewFromLocation(ctx, table.Identifier{"ns", "events"}, metaLoc,
			icebergio.LoadFSFunc(w.IOProps(), metaLoc), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !parsed.Metadata().Equals(meta) {
			t.Error("metadata read through LoadFS differs")
		}
		raw := readFile(t, w, metaLoc)
		if m, err := table.ParseMetadataBytes(raw); err != nil || m.Properties()["owner"] != "zombi" {
			t.Errorf("ParseMetadataBytes: %v", err)
		}
	})
}

func TestClientConfig(t *testing.T) {
	srv := testenv.S3(t)
	for _, vend := range []bool{false, true} {
		w := openS3(t, srv, "wh", vend)
		got := w.ClientConfig()
		want := map[string]string{
			"s3.endpoint":                 srv.Endpoint,
			"s3.region":                   srv.Region,
			"client.region":               srv.Region,
			"s3.path-style-access":        "true",
			"s3.force-virtual-addressing": "false",
		}
		if vend {
			want["s3.access-key-id"] = srv.AccessKey
			want["s3.secret-access-key"] = srv.SecretKey
		}
		if !mapsEqual(got, want) {
			t.Errorf("VendStaticKeys=%v: ClientConfig() = %v\nwant %v", vend, got, want)
		}
		props := w.IOProps()
		if props["s3.access-key-id"] != srv.AccessKey || props["s3.secret-access-key"] != srv.SecretKey ||
			props["s3.endpoint"] != srv.Endpoint || props["s3.path-style-access"] != "true" {
			t.Errorf("IOProps() = %v", props)
		}
	}

	local, err := Open(t.Context(), Config{Root: t.TempDir(), VendStaticKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(local.ClientConfig()) != 0 || len(local.IOProps()) != 0 {
		t.Errorf("local: ClientConfig %v, IOProps %v; want both empty", local.ClientConfig(), local.IOProps())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestOpenErrors(t *testing.T) {
	srv := testenv.S3(t)
	s3cfg := func(root string) Config {
		return Config{
			Root: root, S3Endpoint: srv.Endpoint, S3Region: srv.Region,
			S3AccessKey: srv.AccessKey, S3SecretKey: srv.SecretKey, S3PathStyle: true,
		}
	}
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"empty root", Config{}, "root is empty"},
		{"unknown scheme", Config{Root: "gs://bucket/wh"}, "not a local path"},
		{"no bucket", s3cfg("s3:///wh"), "no bucket"},
		{"invalid bucket", s3cfg("s3://Not_A_Bucket/wh"), "Bucket name"},
		{"missing bucket", s3cfg("s3://" + srv.Bucket + "-missing/wh"), "does not exist"},
		{"dot segment", s3cfg("s3://" + srv.Bucket + "/wh/../x"), `"." or ".."`},
		{"key without secret", Config{Root: "s3://" + srv.Bucket, S3AccessKey: "k"}, "set together"},
		{"endpoint with path", Config{Root: "s3://" + srv.Bucket, S3Endpoint: "http://127.0.0.1:1/s3"}, "scheme://host[:port] only"},
		{"bad endpoint scheme", Config{Root: "s3://" + srv.Bucket, S3Endpoint: "ftp://127.0.0.1:1"}, "http or https"},
		{"file URI with host", Config{Root: "file://host/dir"}, "has a host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Open(t.Context(), tt.cfg)
			if err == nil {
				t.Fatalf("Open succeeded with root %q", w.Root())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestLocalRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b", "wh")
	for _, root := range []string{dir, dir + "/", fileURI(dir), "file://" + dir} {
		w, err := Open(t.Context(), Config{Root: root})
		if err != nil {
			t.Fatalf("Open(%q): %v", root, err)
		}
		if got, want := w.Root(), "file://"+dir; got != want {
			t.Errorf("Open(%q).Root() = %q, want %q", root, got, want)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("root directory not created: %v", err)
	}

	// A relative root is made absolute.
	t.Chdir(t.TempDir())
	w, err := Open(t.Context(), Config{Root: "zombi-data"})
	if err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.Root(), fileURI(filepath.Join(cwd, "zombi-data")); got != want {
		t.Errorf("Root() = %q, want %q", got, want)
	}

	// The IO accepts plain paths and file: URIs for the same file, and
	// WalkDir reports paths in the form of its root.
	fsys := wio(t, w)
	p := filepath.Join(cwd, "zombi-data", "ns", "f")
	if err := fsys.WriteFile(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"file:" + p, "file://" + p, "file://localhost" + p} {
		if got, err := fsys.ReadFile(name); err != nil || string(got) != "x" {
			t.Errorf("ReadFile(%q) = %q, %v", name, got, err)
		}
	}
	for root, want := range map[string]string{
		w.Root() + "/ns":                       w.Root() + "/ns/f",
		filepath.Join(cwd, "zombi-data", "ns"): p,
	} {
		var files []string
		err := fsys.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return err
		})
		if err != nil || !slices.Equal(files, []string{want}) {
			t.Errorf("WalkDir(%q) = %q, %v; want [%q]", root, files, err, want)
		}
	}
}

func TestS3ParamsFromProps(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]string
		want    s3Params
		wantErr string
	}{
		{
			name:  "defaults are AWS",
			props: map[string]string{},
			want:  s3Params{host: "s3.amazonaws.com", secure: true, lookup: minio.BucketLookupAuto},
		},
		{
			name: "standard keys",
			props: map[string]string{
				"s3.endpoint": "http://127.0.0.1:9000", "s3.region": "eu-west-1", "s3.path-style-access": "true",
				"s3.access-key-id": "ak", "s3.secret-access-key": "sk", "s3.session-token": "tok",
			},
			want: s3Params{host: "127.0.0.1:9000", region: "eu-west-1", lookup: minio.BucketLookupPath,
				accessKey: "ak", secretKey: "sk", sessionToken: "tok"},
		},
		{
			name:  "client.region",
			props: map[string]string{"client.region": "ap-south-1", "s3.endpoint": "https://r2.example.com"},
			want:  s3Params{host: "r2.example.com", secure: true, region: "ap-south-1", lookup: minio.BucketLookupAuto},
		},
		{
			name:  "bare endpoint is https",
			props: map[string]string{"s3.endpoint": "minio.internal:9000"},
			want:  s3Params{host: "minio.internal:9000", secure: true, lookup: minio.BucketLookupAuto},
		},
		{
			name:  "force virtual addressing",
			props: map[string]string{"s3.force-virtual-addressing": "true"},
			want:  s3Params{host: "s3.amazonaws.com", secure: true, lookup: minio.BucketLookupDNS},
		},
		{
			name:  "force virtual addressing off is path style",
			props: map[string]string{"s3.force-virtual-addressing": "false"},
			want:  s3Params{host: "s3.amazonaws.com", secure: true, lookup: minio.BucketLookupPath},
		},
		{
			name:  "path-style-access wins",
			props: map[string]string{"s3.force-virtual-addressing": "true", "s3.path-style-access": "true"},
			want:  s3Params{host: "s3.amazonaws.com", secure: true, lookup: minio.BucketLookupPath},
		},
		{name: "bad bool", props: map[string]string{"s3.path-style-access": "yes please"}, wantErr: "s3.path-style-access"},
		{name: "half a key pair", props: map[string]string{"s3.access-key-id": "ak"}, wantErr: "set together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s3ParamsFromProps(tt.props)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			// props() maps back to the same parameters.
			again, err := s3ParamsFromProps(got.props())
			if err != nil || again != got {
				t.Errorf("round trip through props() = %+v, %v", again, err)
			}
		})
	}
}

// TestLocalLocationsVerbatim: a file: location names the file whose path
// is the location's path as written, the way Spark, PyIceberg, DuckDB and
// Trino read it. Iceberg writes partition directories URL-encoded, so a
// decoding IO put the files of a partition value like "grüße" or "a b/c"
// where no engine finds them (and took the engines' files for orphans).
func TestLocalLocationsVerbatim(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(t.Context(), Config{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	fsys := wio(t, w)
	rel := "t/data/c=gr%C3%BC%C3%9Fe/d=a+b%2Fc/f.parquet"
	writeFile(t, w, w.Root()+"/"+rel, []byte("zombi"))
	if got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel))); err != nil || string(got) != "zombi" {
		t.Fatalf("file at the literal path: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "t", "data", "c=grüße")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a decoded directory exists: %v", err)
	}

	// A file another engine wrote at its literal path reads back at the
	// location it recorded.
	other := "t/data/c=%E6%97%A5/g.parquet"
	if err := os.MkdirAll(filepath.Join(dir, "t", "data", "c=%E6%97%A5"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(other)), []byte("spark"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := fsys.ReadFile("file:" + filepath.Join(dir, filepath.FromSlash(other))); err != nil || string(got) != "spark" {
		t.Errorf("ReadFile of the engine's location: %q, %v", got, err)
	}

	// WalkDir reports the locations the files were written at, so orphan
	// cleanup matches them with the locations the metadata holds.
	var files []string
	err = fsys.WalkDir(w.Root()+"/t", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	want := []string{w.Root() + "/" + other, w.Root() + "/" + rel}
	if err != nil || !slices.Equal(files, want) {
		t.Errorf("WalkDir = %q, %v\nwant %q", files, err, want)
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "/abs/p", want: "/abs/p"},
		{in: "rel/p", want: "rel/p"},
		{in: "file:///abs/p", want: "/abs/p"},
		{in: "file:/abs/p", want: "/abs/p"},
		{in: "FILE:///abs/p", want: "/abs/p"},
		{in: "file://localhost/abs/p", want: "/abs/p"},
		{in: "file:///abs/a%20b", want: "/abs/a%20b"},
		{in: "file:///abs/a b", want: "/abs/a b"},
		{in: "file:/abs/c=gr%C3%BC%C3%9Fe/a+b%2Fc", want: "/abs/c=gr%C3%BC%C3%9Fe/a+b%2Fc"},
		{in: "file:///", want: "/"},
		{in: "file://localhost", wantErr: true},
		{in: "file:rel/p", wantErr: true},
		{in: "file:", wantErr: true},
		{in: "/abs/partition:2026/f", want: "/abs/partition:2026/f"},
		{in: "file://host/abs", wantErr: true},
		{in: "s3://bucket/key", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := localPath(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("localPath(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestAllowedLocations: deletes inside an allowed location work as inside
// the root; the allowed location itself and its siblings stay refused.
func TestAllowedLocations(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	if err := os.MkdirAll(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := Open(t.Context(), Config{Root: filepath.Join(dir, "wh"), Allowed: []string{"file:" + allowed}})
	if err != nil {
		t.Fatal(err)
	}
	inside := "file://" + allowed + "/ns/t/metadata/x.json"
	writeFile(t, w, inside, []byte("x"))
	for _, loc := range []string{"file://" + allowed, allowed + "-sibling/x", dir + "/x", allowed + "/../x"} {
		if err := w.Delete(t.Context(), []string{loc}); !errors.Is(err, ErrOutsideWarehouse) {
			t.Errorf("Delete(%q) = %v; want ErrOutsideWarehouse", loc, err)
		}
	}
	if n, err := w.DeletePrefix(t.Context(), "file://"+allowed+"/ns/t"); err != nil || n != 1 {
		t.Fatalf("DeletePrefix in an allowed location = %d, %v; want 1 file", n, err)
	}

	for _, bad := range []Config{
		{Root: filepath.Join(dir, "wh"), Allowed: []string{"relative"}},
		{Root: filepath.Join(dir, "wh"), Allowed: []string{"/"}},
		{Root: filepath.Join(dir, "wh"), Allowed: []string{"s3://bucket/x"}},
	} {
		if _, err := Open(t.Context(), bad); err == nil {
			t.Errorf("Open with allowed %q succeeded", bad.Allowed)
		}
	}
}
