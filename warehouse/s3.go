package warehouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/minio/minio-go/v7"
)

// partSize is the size of a multipart upload part. A file no larger than
// one part is uploaded with a single PUT when its writer closes.
const partSize = 16 << 20

// s3FS is the FileIO for one bucket. Paths are s3:// or s3a:// URIs in that
// bucket; all operations run under ctx.
type s3FS struct {
	ctx    context.Context
	client *minio.Client
	bucket string
}

var (
	_ icebergio.ReadFileIO      = (*s3FS)(nil)
	_ icebergio.WriteFileIO     = (*s3FS)(nil)
	_ icebergio.ListableIO      = (*s3FS)(nil)
	_ icebergio.BulkRemovableIO = (*s3FS)(nil)
	_ icebergio.StatIO          = (*s3FS)(nil)
	_ AbortableWriter           = (*s3Writer)(nil)
)

func newS3FS(ctx context.Context, client *minio.Client, bucket string) *s3FS {
	if ctx == nil {
		ctx = context.Background()
	}
	return &s3FS{ctx: ctx, client: client, bucket: bucket}
}

func (s *s3FS) core() minio.Core { return minio.Core{Client: s.client} }

// key returns the object key named by name, which must be a URI in s's
// bucket.
func (s *s3FS) key(op, name string) (string, error) {
	u, err := parseObjectURI(name)
	if err == nil && u.bucket != s.bucket {
		err = fmt.Errorf("location is outside bucket %q: %w", s.bucket, fs.ErrInvalid)
	}
	if err == nil {
		err = checkKey(u.key)
	}
	if err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	return u.key, nil
}

// isNotFound reports whether err is an S3 "no such key/bucket" error.
func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	switch r.Code {
	case minio.NoSuchKey, minio.NoSuchBucket, "NotFound":
		return true
	}
	return r.StatusCode == http.StatusNotFound
}

// s3Error wraps an S3 error in a *fs.PathError; not-found errors also match
// fs.ErrNotExist.
func s3Error(op, name string, err error) error {
	if isNotFound(err) {
		err = fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open opens the object for reading. It checks that the object exists;
// reads are ranged GETs pinned to the object's ETag.
func (s *s3FS) Open(name string) (icebergio.File, error) {
	key, err := s.key("open", name)
	if err != nil {
		return nil, err
	}
	info, err := s.client.StatObject(s.ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, s3Error("open", name, err)
	}
	return &s3File{s: s, name: name, key: key, info: info}, nil
}

// ReadFile reads the whole object with one GET.
func (s *s3FS) ReadFile(name string) ([]byte, error) {
	key, err := s.key("read", name)
	if err != nil {
		return nil, err
	}
	body, info, _, err := s.core().GetObject(s.ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s3Error("read", name, err)
	}
	defer body.Close()
	var buf bytes.Buffer
	if info.Size > 0 {
		buf.Grow(int(info.Size))
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, s3Error("read", name, err)
	}
	return buf.Bytes(), nil
}

// Stat returns the object's size and modification time.
func (s *s3FS) Stat(name string) (fs.FileInfo, error) {
	key, err := s.key("stat", name)
	if err != nil {
		return nil, err
	}
	info, err := s.client.StatObject(s.ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, s3Error("stat", name, err)
	}
	return objectFileInfo(info), nil
}

// Remove deletes the object. Removing a missing object succeeds: S3 does
// not tell the difference.
func (s *s3FS) Remove(name string) error {
	key, err := s.key("remove", name)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(s.ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return s3Error("remove", name, err)
	}
	return nil
}

// DeleteFiles deletes the objects with multi-object DELETE requests. Missing
// objects count as deleted.
func (s *s3FS) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	var errs []error
	names := make(map[string][]string, len(paths)) // key -> paths naming it
	objects := make([]minio.ObjectInfo, 0, len(paths))
	for _, p := range paths {
		key, err := s.key("remove", p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := names[key]; !dup {
			objects = append(objects, minio.ObjectInfo{Key: key})
		}
		names[key] = append(names[key], p)
	}
	deleted := make([]string, 0, len(paths))
	if len(objects) == 0 {
		return deleted, errors.Join(errs...)
	}
	results, err := s.client.RemoveObjectsWithIter(ctx, s.bucket, slices.Values(objects), minio.RemoveObjectsOptions{})
	if err != nil {
		return deleted, errors.Join(append(errs, err)...)
	}
	for r := range results {
		ps, ok := names[r.ObjectName]
		if !ok {
			continue
		}
		delete(names, r.ObjectName)
		if r.Err != nil && !isNotFound(r.Err) {
			for _, p := range ps {
				errs = append(errs, s3Error("remove", p, r.Err))
			}
			continue
		}
		deleted = append(deleted, ps...)
	}
	for _, o := range objects {
		for _, p := range names[o.Key] {
			err := ctx.Err()
			if err == nil {
				err = errors.New("no result from the server")
			}
			errs = append(errs, &fs.PathError{Op: "remove", Path: p, Err: err})
		}
	}
	return deleted, errors.Join(errs...)
}

// Create returns a writer for the object. Nothing is visible until Close
// succeeds; data beyond one part streams as a multipart upload, which Close
// completes and a failure or Abort aborts.
func (s *s3FS) Create(name string) (icebergio.FileWriter, error) {
	key, err := s.key("create", name)
	if err != nil {
		return nil, err
	}
	return &s3Writer{s: s, name: name, key: key}, nil
}

// WriteFile writes the object with a single upload.
func (s *s3FS) WriteFile(name string, p []byte) error {
	key, err := s.key("write", name)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(s.ctx, s.bucket, key, bytes.NewReader(p), int64(len(p)), minio.PutObjectOptions{})
	if err != nil {
		return s3Error("write", name, err)
	}
	return nil
}

// WalkDir walks the objects under root like fs.WalkDir walks a directory
// tree: directories are derived from the "/" separators in keys, objects
// are visited in key order, and every path passed to fn is a URI with the
// scheme and bucket of root. A root with no objects under it is reported to
// fn as not existing, unless it names an object itself.
func (s *s3FS) WalkDir(root string, fn fs.WalkDirFunc) error {
	u, err := parseObjectURI(root)
	if err == nil && u.bucket != s.bucket {
		err = fmt.Errorf("location is outside bucket %q: %w", s.bucket, fs.ErrInvalid)
	}
	if err == nil {
		err = checkSegments(u.key)
	}
	if err != nil {
		return &fs.PathError{Op: "walk", Path: root, Err: err}
	}
	err = s.walk(root, strings.TrimSuffix(u.key, "/"), fn)
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func (s *s3FS) walk(root, rootKey string, fn fs.WalkDirFunc) error {
	base := strings.TrimSuffix(root, "/")
	prefix := ""
	if rootKey != "" {
		prefix = rootKey + "/"
	}
	var (
		started bool
		dirs    []string // directories (relative to root) around the current key
		skip    string   // relative prefix being skipped after fs.SkipDir
	)
	for obj := range s.client.ListObjectsIter(s.ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			err := s3Error("walk", root, obj.Err)
			if !started {
				return fn(root, nil, err)
			}
			return err
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		if rel == "" {
			continue // a directory marker for root itself
		}
		if !started {
			started = true
			name := path.Base(rootKey)
			if rootKey == "" {
				name = s.bucket
			}
			if err := fn(root, dirEntry(name), nil); err != nil {
				return err
			}
		}
		if skip != "" && strings.HasPrefix(rel, skip) {
			continue
		}
		isMarker := strings.HasSuffix(rel, "/")
		rel = strings.TrimSuffix(rel, "/")
		dir := path.Dir(rel)
		if isMarker {
			dir = rel
		}
		// Leave the directories that do not contain this key, enter (and
		// visit) the ones that do.
		for len(dirs) > 0 && dir != dirs[len(dirs)-1] && !strings.HasPrefix(dir, dirs[len(dirs)-1]+"/") {
			dirs = dirs[:len(dirs)-1]
		}
		skipped := false
		if dir != "." {
			parts := strings.Split(dir, "/")
			for i := len(dirs); i < len(parts); i++ {
				d := strings.Join(parts[:i+1], "/")
				err := fn(base+"/"+d, dirEntry(parts[i]), nil)
				if err == fs.SkipDir {
					skip = d + "/"
					skipped = true
					break
				}
				if err != nil {
					return err
				}
				dirs = append(dirs, d)
			}
		}
		if skipped || isMarker {
			continue
		}
		err := fn(base+"/"+rel, fs.FileInfoToDirEntry(objectFileInfo(obj)), nil)
		if err == fs.SkipDir {
			if dir == "." {
				return nil
			}
			skip = dir + "/"
			continue
		}
		if err != nil {
			return err
		}
	}
	if started {
		return nil
	}
	// Nothing under root: root is an object or does not exist.
	if rootKey != "" && !strings.HasSuffix(root, "/") {
		info, err := s.client.StatObject(s.ctx, s.bucket, rootKey, minio.StatObjectOptions{})
		if err == nil {
			return fn(root, fs.FileInfoToDirEntry(objectFileInfo(info)), nil)
		}
		if !isNotFound(err) {
			return fn(root, nil, s3Error("walk", root, err))
		}
	}
	return fn(root, nil, &fs.PathError{Op: "walk", Path: root, Err: fs.ErrNotExist})
}

// s3File reads an object. Read streams from the current offset with one GET
// kept open across calls; ReadAt issues an independent ranged GET per call
// and is safe for concurrent use. All reads are pinned to the ETag seen by
// Open, so an object replaced while open fails instead of mixing versions.
type s3File struct {
	s    *s3FS
	name string
	key  string
	info minio.ObjectInfo

	mu      sync.Mutex
	offset  int64
	body    io.ReadCloser // open GET positioned at bodyOff
	bodyOff int64
	closed  bool
}

func (f *s3File) Stat() (fs.FileInfo, error) { return objectFileInfo(f.info), nil }

func (f *s3File) getOptions() minio.GetObjectOptions {
	var opts minio.GetObjectOptions
	if f.info.ETag != "" {
		if err := opts.SetMatchETag(f.info.ETag); err != nil {
			return minio.GetObjectOptions{}
		}
	}
	return opts
}

func (f *s3File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if f.offset >= f.info.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if f.body != nil && f.bodyOff != f.offset {
		f.body.Close()
		f.body = nil
	}
	if f.body == nil {
		opts := f.getOptions()
		if f.offset > 0 {
			if err := opts.SetRange(f.offset, 0); err != nil {
				return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
			}
		}
		body, _, _, err := f.s.core().GetObject(f.s.ctx, f.s.bucket, f.key, opts)
		if err != nil {
			return 0, s3Error("read", f.name, err)
		}
		f.body, f.bodyOff = body, f.offset
	}
	n, err := f.body.Read(p)
	f.offset += int64(n)
	f.bodyOff = f.offset
	if err == io.EOF {
		f.body.Close()
		f.body = nil
		if f.offset < f.info.Size {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		return n, s3Error("read", f.name, err)
	}
	return n, err
}

func (f *s3File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("negative offset")}
	}
	if off >= f.info.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.info.Size-off)
	if n == 0 {
		return 0, nil
	}
	opts := f.getOptions()
	if err := opts.SetRange(off, off+n-1); err != nil {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
	}
	body, _, _, err := f.s.core().GetObject(f.s.ctx, f.s.bucket, f.key, opts)
	if err != nil {
		return 0, s3Error("read", f.name, err)
	}
	defer body.Close()
	read, err := io.ReadFull(body, p[:n])
	if err != nil {
		return read, s3Error("read", f.name, err)
	}
	if read < len(p) {
		return read, io.EOF
	}
	return read, nil
}

func (f *s3File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrClosed}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.offset
	case io.SeekEnd:
		offset += f.info.Size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fmt.Errorf("invalid whence %d", whence)}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errors.New("negative position")}
	}
	f.offset = offset
	return offset, nil
}

func (f *s3File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	if f.body != nil {
		f.body.Close()
		f.body = nil
	}
	return nil
}

// s3Writer buffers up to one part. Close uploads a buffered file with one
// PUT; a larger file is a multipart upload whose parts are uploaded as the
// buffer fills and which Close completes. A failed write, a failed Close or
// Abort aborts the upload, so no object appears.
type s3Writer struct {
	s    *s3FS
	name string
	key  string

	buf      []byte
	uploadID string
	parts    []minio.CompletePart
	err      error // sticky: the first failure
	closed   bool
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, &fs.PathError{Op: "write", Path: w.name, Err: fs.ErrClosed}
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, min(max(len(p), 64<<10), partSize))
		}
		n := min(len(p), partSize-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		written += n
		if len(w.buf) == partSize {
			if err := w.uploadPart(); err != nil {
				w.fail(err)
				return written, w.err
			}
		}
	}
	return written, nil
}

// ReadFrom copies r into the object.
func (w *s3Writer) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{w}, r)
}

func (w *s3Writer) uploadPart() error {
	core := w.s.core()
	if w.uploadID == "" {
		id, err := core.NewMultipartUpload(w.s.ctx, w.s.bucket, w.key, minio.PutObjectOptions{})
		if err != nil {
			return err
		}
		w.uploadID = id
	}
	n := len(w.parts) + 1
	part, err := core.PutObjectPart(w.s.ctx, w.s.bucket, w.key, w.uploadID, n,
		bytes.NewReader(w.buf), int64(len(w.buf)), minio.PutObjectPartOptions{})
	if err != nil {
		return err
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: part.ETag})
	w.buf = w.buf[:0]
	return nil
}

// fail records err and aborts the upload.
func (w *s3Writer) fail(err error) {
	w.err = s3Error("write", w.name, err)
	w.abortUpload()
}

func (w *s3Writer) abortUpload() {
	w.buf = nil
	if w.uploadID == "" {
		return
	}
	// Abort even if the writer's context is done; an upload left behind is
	// invisible but holds storage until a lifecycle rule removes it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.s.ctx), time.Minute)
	defer cancel()
	_ = w.s.core().AbortMultipartUpload(ctx, w.s.bucket, w.key, w.uploadID)
	w.uploadID = ""
}

// Close publishes the object.
func (w *s3Writer) Close() error {
	if w.closed {
		return &fs.PathError{Op: "close", Path: w.name, Err: fs.ErrClosed}
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.uploadID == "" {
		_, err := w.s.client.PutObject(w.s.ctx, w.s.bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)),
			minio.PutObjectOptions{DisableMultipart: true})
		w.buf = nil
		if err != nil {
			w.err = s3Error("close", w.name, err)
			return w.err
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.uploadPart(); err != nil {
			w.fail(err)
			return w.err
		}
	}
	_, err := w.s.core().CompleteMultipartUpload(w.s.ctx, w.s.bucket, w.key, w.uploadID, w.parts, minio.PutObjectOptions{})
	if err != nil {
		w.fail(err)
		return w.err
	}
	w.buf, w.uploadID = nil, ""
	return nil
}

// Abort discards the write; the object is left as it was.
func (w *s3Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.abortUpload()
	return nil
}

// objectInfo describes an object or a directory derived from keys. It
// implements fs.FileInfo.
type objectInfo struct {
	name    string
	size    int64
	modTime time.Time
	dir     bool
}

func objectFileInfo(o minio.ObjectInfo) objectInfo {
	return objectInfo{name: path.Base(o.Key), size: o.Size, modTime: o.LastModified}
}

func dirEntry(name string) fs.DirEntry {
	return fs.FileInfoToDirEntry(objectInfo{name: name, dir: true})
}

func (o objectInfo) Name() string       { return o.name }
func (o objectInfo) Size() int64        { return o.size }
func (o objectInfo) ModTime() time.Time { return o.modTime }
func (o objectInfo) IsDir() bool        { return o.dir }
func (o objectInfo) Sys() any           { return nil }
func (o objectInfo) Mode() fs.FileMode {
	if o.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
