package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Config says where the warehouse is and how to reach it.
type Config struct {
	// Root is the warehouse location: a local directory ("/abs/dir",
	// "file:///abs/dir"; a relative path is made absolute) or an S3 bucket
	// with an optional key prefix ("s3://bucket/prefix").
	Root string

	// S3Endpoint is the S3 API endpoint, "http://host:port" or
	// "https://host"; empty means AWS S3.
	S3Endpoint string
	// S3Region is the bucket's region; empty means us-east-1.
	S3Region string
	// S3AccessKey, S3SecretKey and S3SessionToken are static credentials.
	// Without them the client reads AWS_*/MINIO_* environment variables,
	// the shared credentials file, then the instance or pod identity.
	S3AccessKey    string
	S3SecretKey    string
	S3SessionToken string
	// S3PathStyle forces path-style requests (http://host/bucket/key), which
	// MinIO and most self-hosted servers need. Without it the client uses
	// virtual-host style for AWS endpoints and path style for others.
	S3PathStyle bool

	// Allowed are further locations, beside Root, where tables may live
	// and files may be deleted: directories for a local warehouse, or
	// prefixes in the same bucket for an S3 one.
	Allowed []string

	// VendStaticKeys makes ClientConfig hand the static credentials to
	// catalog clients. It is an operator opt-in: every client that can load
	// a table gets the keys.
	VendStaticKeys bool

	// STS makes Vend hand out temporary credentials from the object
	// store's STS (AssumeRole with the static keys and a session policy
	// limited to one table). ClientConfig then never holds keys.
	STS bool
	// STSEndpoint is the STS endpoint; empty means S3Endpoint.
	STSEndpoint string
	// STSRoleARN is the role to assume (AWS); MinIO needs none.
	STSRoleARN string
	// STSDuration is the lifetime of vended credentials; zero means an
	// hour.
	STSDuration time.Duration
}

// AbortableWriter is implemented by the writers of Warehouse.IO. Abort
// discards everything written so far: no file appears and an existing file
// at the same location is left unchanged. Close after Abort is an error;
// Abort after Close does nothing.
type AbortableWriter interface {
	icebergio.FileWriter
	Abort() error
}

// Warehouse is an opened warehouse. It is safe for concurrent use.
type Warehouse struct {
	cfg  Config
	root string // canonical root URI

	// Local backend.
	dir  string   // absolute root directory
	dirs []string // dir and the allowed directories

	// S3 backend.
	params   s3Params
	s3       *s3FS
	bucket   string
	prefix   string   // root key prefix, no leading or trailing slash
	prefixes []string // prefix and the allowed ones
	vend     vendCache
}

// Open validates cfg and opens the warehouse: for a local root it creates
// the directory, for S3 it checks that the bucket exists (one request).
func Open(ctx context.Context, cfg Config) (*Warehouse, error) {
	root := strings.TrimSpace(cfg.Root)
	if root == "" {
		return nil, errors.New("warehouse: root is empty")
	}
	w := &Warehouse{cfg: cfg}
	if scheme, _, ok := strings.Cut(root, "://"); ok && isS3Scheme(scheme) {
		if err := w.openS3(ctx, root); err != nil {
			return nil, err
		}
		return w, nil
	}
	if cfg.STS {
		return nil, errors.New("warehouse: STS credentials need an S3 warehouse")
	}
	if err := w.openLocal(root); err != nil {
		return nil, err
	}
	return w, nil
}

// allowLocal adds the allowed locations of a local warehouse.
func (w *Warehouse) allowLocal() error {
	w.dirs = []string{w.dir}
	for _, a := range w.cfg.Allowed {
		p, err := localPath(strings.TrimSpace(a))
		if err != nil {
			return fmt.Errorf("warehouse: allowed location %q: %w", a, err)
		}
		if !filepath.IsAbs(p) || checkSegments(filepath.ToSlash(p)) != nil {
			return fmt.Errorf("warehouse: allowed location %q is not an absolute directory", a)
		}
		p = filepath.Clean(p)
		if p == string(filepath.Separator) {
			return fmt.Errorf("warehouse: allowed location %q is the file system root", a)
		}
		w.dirs = append(w.dirs, p)
	}
	return nil
}

// allowS3 adds the allowed locations of an S3 warehouse.
func (w *Warehouse) allowS3() error {
	w.prefixes = []string{w.prefix}
	for _, a := range w.cfg.Allowed {
		u, err := parseObjectURI(strings.TrimSpace(a))
		if err != nil {
			return fmt.Errorf("warehouse: allowed location %q: %w", a, err)
		}
		if u.bucket != w.bucket {
			return fmt.Errorf("warehouse: allowed location %q is not in the warehouse's bucket %s", a, w.bucket)
		}
		prefix := strings.Trim(u.key, "/")
		if prefix == "" || checkKey(prefix) != nil {
			return fmt.Errorf("warehouse: allowed location %q needs a valid key prefix", a)
		}
		w.prefixes = append(w.prefixes, prefix)
	}
	return nil
}

func (w *Warehouse) openLocal(root string) error {
	p, err := localPath(root)
	if err != nil {
		return fmt.Errorf("warehouse: root %q: %w", root, err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return fmt.Errorf("warehouse: root %q: %w", root, err)
	}
	if err := checkSegments(filepath.ToSlash(p)); err != nil {
		return fmt.Errorf("warehouse: root %q: %w", root, err)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("warehouse: creating root: %w", err)
	}
	w.dir = p
	w.root = fileURI(p)
	return w.allowLocal()
}

func (w *Warehouse) openS3(ctx context.Context, root string) error {
	u, err := parseObjectURI(root)
	if err != nil {
		return fmt.Errorf("warehouse: root: %w", err)
	}
	if err := s3utils.CheckValidBucketNameStrict(u.bucket); err != nil {
		return fmt.Errorf("warehouse: root %q: %w", root, err)
	}
	prefix := strings.Trim(u.key, "/")
	if prefix != "" {
		if err := checkKey(prefix); err != nil {
			return fmt.Errorf("warehouse: root %q: %w", root, err)
		}
	}
	if (w.cfg.S3AccessKey == "") != (w.cfg.S3SecretKey == "") {
		return errors.New("warehouse: S3 access key and secret key must be set together")
	}
	if err := w.checkSTS(); err != nil {
		return err
	}
	host, secure, err := parseEndpoint(w.cfg.S3Endpoint)
	if err != nil {
		return err
	}
	region := w.cfg.S3Region
	if region == "" {
		region = defaultS3Region
	}
	w.params = s3Params{
		host:         host,
		secure:       secure,
		region:       region,
		lookup:       minio.BucketLookupAuto,
		accessKey:    w.cfg.S3AccessKey,
		secretKey:    w.cfg.S3SecretKey,
		sessionToken: w.cfg.S3SessionToken,
	}
	if w.cfg.S3PathStyle {
		w.params.lookup = minio.BucketLookupPath
	}
	client, err := s3Client(w.params)
	if err != nil {
		return err
	}
	w.bucket, w.prefix = u.bucket, prefix
	if err := w.allowS3(); err != nil {
		return err
	}
	w.s3 = newS3FS(context.Background(), client, u.bucket)
	w.root = "s3://" + u.bucket
	if prefix != "" {
		w.root += "/" + prefix
	}
	ok, err := client.BucketExists(ctx, u.bucket)
	if err != nil {
		return fmt.Errorf("warehouse: checking bucket %q at %s: %w", u.bucket, w.params.endpointURL(), err)
	}
	if !ok {
		return fmt.Errorf("warehouse: bucket %q does not exist at %s", u.bucket, w.params.endpointURL())
	}
	return nil
}

// Root returns the canonical root URI: "file:///abs/dir" or
// "s3://bucket/prefix", without a trailing slash.
func (w *Warehouse) Root() string { return w.root }

// IO returns the FileIO for the warehouse. Besides icebergio.IO it
// implements ReadFileIO, WriteFileIO, ListableIO, BulkRemovableIO and
// StatIO, and its writers implement AbortableWriter. Paths are full URIs
// (s3://bucket/key) or local paths and file: URIs. The S3 FileIO serves the
// warehouse's bucket only.
func (w *Warehouse) IO() icebergio.IO {
	if w.s3 != nil {
		return w.s3
	}
	return localFS{}
}

// FS returns the FileIO for the warehouse, with its S3 requests bound to
// ctx. Its signature is iceberg-go's table.FSysF, so it can be passed to
// table.New.
func (w *Warehouse) FS(ctx context.Context) (icebergio.IO, error) {
	if w.s3 != nil {
		return newS3FS(ctx, w.s3.client, w.bucket), nil
	}
	return localFS{}, nil
}

// IOProps returns the iceberg FileIO properties of the warehouse:
// icebergio.LoadFS with them and a location in the warehouse returns a
// FileIO backed by the same S3 client. For a local warehouse the map is
// empty (LoadFS then returns iceberg-go's own LocalFS, whose writes are not
// atomic; use IO or FS instead).
func (w *Warehouse) IOProps() map[string]string {
	if w.s3 == nil {
		return map[string]string{}
	}
	return w.params.props()
}

// ClientConfig returns the FileIO properties that loadTable and createTable
// hand to catalog clients (Spark, PyIceberg, ...): endpoint, region and
// addressing style, plus the static credentials only if VendStaticKeys is
// set. For a local warehouse the map is empty.
func (w *Warehouse) ClientConfig() map[string]string {
	if w.s3 == nil {
		return map[string]string{}
	}
	m := w.params.props()
	if w.params.lookup == minio.BucketLookupPath {
		// PyIceberg reads this key rather than s3.path-style-access.
		m[propForceVirtual] = "false"
	}
	if !w.cfg.VendStaticKeys || w.cfg.STS {
		delete(m, propAccessKey)
		delete(m, propSecretKey)
		delete(m, propSessionToken)
	}
	return m
}

// Ping checks that the warehouse is usable: the local root is writable, or
// the bucket is reachable.
func (w *Warehouse) Ping(ctx context.Context) error {
	if w.s3 == nil {
		f, err := os.CreateTemp(w.dir, ".ping-*")
		if err != nil {
			return fmt.Errorf("warehouse: root not writable: %w", err)
		}
		name := f.Name()
		err = f.Close()
		if rerr := os.Remove(name); err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("warehouse: root not writable: %w", err)
		}
		return nil
	}
	ok, err := w.s3.client.BucketExists(ctx, w.bucket)
	if err != nil {
		return fmt.Errorf("warehouse: bucket %q: %w", w.bucket, err)
	}
	if !ok {
		return fmt.Errorf("warehouse: bucket %q does not exist", w.bucket)
	}
	return nil
}

// ErrOutsideWarehouse is returned by DeletePrefix and Delete for a location
// that is not strictly inside the warehouse root or an allowed location.
var ErrOutsideWarehouse = errors.New("location is not inside the warehouse")

// DeletePrefix deletes every file under location, a directory (a key
// prefix on S3) strictly inside the warehouse root or an allowed location,
// and returns how many
// files it deleted. A missing location deletes nothing.
func (w *Warehouse) DeletePrefix(ctx context.Context, location string) (int, error) {
	if w.s3 != nil {
		key, err := w.s3Key(location)
		if err != nil {
			return 0, err
		}
		return w.deleteS3Prefix(ctx, key+"/")
	}
	p, err := w.localFile(location)
	if err != nil {
		return 0, err
	}
	return deleteLocalTree(ctx, p)
}

// Delete deletes the files at locations, all of which must be strictly
// inside the warehouse root or an allowed location; nothing is deleted if
// one is not. Missing files are not an error.
func (w *Warehouse) Delete(ctx context.Context, locations []string) error {
	for _, l := range locations {
		var err error
		if w.s3 != nil {
			_, err = w.s3Key(l)
		} else {
			_, err = w.localFile(l)
		}
		if err != nil {
			return err
		}
	}
	var err error
	if w.s3 != nil {
		_, err = w.s3.DeleteFiles(ctx, locations)
	} else {
		_, err = localFS{}.DeleteFiles(ctx, locations)
	}
	if err != nil {
		return fmt.Errorf("warehouse: delete: %w", err)
	}
	return nil
}

// s3Key returns the key of a location strictly inside the S3 root, without a
// trailing slash.
func (w *Warehouse) s3Key(location string) (string, error) {
	outside := func(why string) error {
		return fmt.Errorf("warehouse: %q: %w %s: %s", location, ErrOutsideWarehouse, w.root, why)
	}
	u, err := parseObjectURI(location)
	if err != nil {
		return "", outside(err.Error())
	}
	if u.bucket != w.bucket {
		return "", outside("other bucket")
	}
	key := strings.TrimSuffix(u.key, "/")
	if key == "" || checkKey(key) != nil || strings.Contains(key, "//") {
		return "", outside("invalid path")
	}
	for _, p := range w.prefixes {
		if p == "" || strings.HasPrefix(key, p+"/") {
			return key, nil
		}
	}
	return "", outside("not under the root")
}

// localFile returns the path of a location strictly inside the local root.
// Symbolic links in the existing part of the path are resolved before the
// check, so a link cannot lead a deletion out of the root.
func (w *Warehouse) localFile(location string) (string, error) {
	outside := func(why string) error {
		return fmt.Errorf("warehouse: %q: %w %s: %s", location, ErrOutsideWarehouse, w.root, why)
	}
	p, err := localPath(location)
	if err != nil {
		return "", outside(err.Error())
	}
	if !filepath.IsAbs(p) || checkSegments(filepath.ToSlash(p)) != nil {
		return "", outside("invalid path")
	}
	p = filepath.Clean(p)
	dir := ""
	for _, d := range w.dirs {
		if within(d, p) {
			dir = d
			break
		}
	}
	if dir == "" {
		return "", outside("not under the root")
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("warehouse: root: %w", err)
	}
	// Resolve the parent: the location itself may be a link, which is
	// deleted rather than followed.
	parent, err := filepath.EvalSymlinks(filepath.Dir(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Nothing to delete below a missing directory; the lexical check
		// stands.
	case err != nil:
		return "", fmt.Errorf("warehouse: %q: %w", location, err)
	case parent != root && !within(root, parent):
		return "", outside("leaves the root through a symbolic link")
	}
	return p, nil
}

// within reports whether p is strictly below dir; both are clean absolute
// paths.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (w *Warehouse) deleteS3Prefix(ctx context.Context, prefix string) (int, error) {
	var listErr error
	objects := func(yield func(minio.ObjectInfo) bool) {
		for o := range w.s3.client.ListObjectsIter(ctx, w.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			if !yield(minio.ObjectInfo{Key: o.Key}) {
				return
			}
		}
	}
	results, err := w.s3.client.RemoveObjectsWithIter(ctx, w.bucket, iter.Seq[minio.ObjectInfo](objects), minio.RemoveObjectsOptions{})
	if err != nil {
		return 0, fmt.Errorf("warehouse: delete %s: %w", prefix, err)
	}
	n := 0
	var errs []error
	for r := range results {
		if r.Err != nil && !isNotFound(r.Err) {
			errs = append(errs, s3Error("remove", "s3://"+w.bucket+"/"+r.ObjectName, r.Err))
			continue
		}
		n++
	}
	if listErr != nil {
		errs = append(errs, s3Error("list", "s3://"+w.bucket+"/"+prefix, listErr))
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("warehouse: delete prefix: %w", err)
	}
	return n, nil
}

// deleteLocalTree removes the tree at p and returns how many non-directory
// entries it removed.
func deleteLocalTree(ctx context.Context, p string) (int, error) {
	n := 0
	err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) && n == 0 {
		if _, serr := os.Lstat(p); errors.Is(serr, fs.ErrNotExist) {
			return 0, nil
		}
	}
	if err == nil {
		err = os.RemoveAll(p)
	}
	if err != nil {
		return n, fmt.Errorf("warehouse: delete prefix: %w", err)
	}
	return n, nil
}
