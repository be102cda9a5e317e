package planning

import (
	"bytes"
	"io/fs"
	"path"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
)

// overlayIO serves a few files from memory and opens every other path
// through the confined warehouse IO. The in-memory files are the manifest
// list of one page (naming only that page's manifests) and the manifests
// of extra files; they are never written anywhere. It offers only Open,
// all that iceberg-go's planning asks of a FileIO, and refuses Remove.
type overlayIO struct {
	inner icebergio.IO
	files map[string][]byte
}

func (o overlayIO) Open(name string) (icebergio.File, error) {
	if b, ok := o.files[name]; ok {
		return &memFile{Reader: bytes.NewReader(b), name: name, size: int64(len(b))}, nil
	}
	return o.inner.Open(name)
}

func (o overlayIO) Remove(name string) error {
	return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrPermission}
}

// memFile is an in-memory icebergio.File.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Close() error               { return nil }
func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f}, nil }

type memInfo struct{ f *memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return i.f.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
