package warehouse

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	icebergio "github.com/apache/iceberg-go/io"
)

// localFS is the FileIO for local disk. Paths are file system paths or file:
// URIs. Unlike iceberg-go's LocalFS, writes are atomic: Create writes a
// temporary file in the target directory and renames it into place when the
// writer closes.
type localFS struct{}

var (
	_ icebergio.ReadFileIO      = localFS{}
	_ icebergio.WriteFileIO     = localFS{}
	_ icebergio.ListableIO      = localFS{}
	_ icebergio.BulkRemovableIO = localFS{}
	_ icebergio.StatIO          = localFS{}
	_ AbortableWriter           = (*localWriter)(nil)
)

// resolve returns the file system path named by name for operation op.
func resolve(op, name string) (string, error) {
	p, err := localPath(name)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	return p, nil
}

func (localFS) Open(name string) (icebergio.File, error) {
	p, err := resolve("open", name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (localFS) ReadFile(name string) ([]byte, error) {
	p, err := resolve("read", name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func (localFS) Stat(name string) (fs.FileInfo, error) {
	p, err := resolve("stat", name)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

func (localFS) Remove(name string) error {
	p, err := resolve("remove", name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

// DeleteFiles removes the files; missing files count as deleted.
func (localFS) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	deleted := make([]string, 0, len(paths))
	var errs []error
	for _, name := range paths {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		p, err := resolve("remove", name)
		if err == nil {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, errors.Join(errs...)
}

// Create returns a writer whose data becomes visible at name only when Close
// succeeds. Missing parent directories are created.
func (localFS) Create(name string) (icebergio.FileWriter, error) {
	p, err := resolve("create", name)
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &localWriter{f: f, name: name, path: p}, nil
}

func (l localFS) WriteFile(name string, data []byte) error {
	w, err := l.Create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.(*localWriter).Abort()
		return err
	}
	return w.Close()
}

// WalkDir walks the tree at root with filepath.WalkDir. When root is a file:
// URI the paths passed to fn are file: URIs under root; otherwise they are
// file system paths.
func (localFS) WalkDir(root string, fn fs.WalkDirFunc) error {
	p, err := resolve("walk", root)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(strings.ToLower(root), "file:") {
		return filepath.WalkDir(p, fn)
	}
	base := strings.TrimSuffix(root, "/")
	return filepath.WalkDir(p, func(walked string, d fs.DirEntry, err error) error {
		rel, relErr := filepath.Rel(p, walked)
		if relErr != nil {
			return relErr
		}
		if rel == "." {
			return fn(root, d, err)
		}
		return fn(base+"/"+filepath.ToSlash(rel), d, err)
	})
}

// localWriter writes a temporary file that Close renames to path.
type localWriter struct {
	f      *os.File
	name   string
	path   string
	closed bool
}

func (w *localWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// ReadFrom copies r into the file.
func (w *localWriter) ReadFrom(r io.Reader) (int64, error) { return w.f.ReadFrom(r) }

// Close syncs the temporary file and renames it into place.
func (w *localWriter) Close() error {
	if w.closed {
		return &fs.PathError{Op: "close", Path: w.name, Err: fs.ErrClosed}
	}
	w.closed = true
	tmp := w.f.Name()
	err := w.f.Chmod(0o644)
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, w.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(w.path))
}

// Abort discards the write; the file at path is left as it was.
func (w *localWriter) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	_ = w.f.Close()
	return os.Remove(w.f.Name())
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
