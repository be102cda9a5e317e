package warehouse

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// s3Schemes are the URI schemes served by the S3 backend. The first one is
// canonical: warehouse roots are always reported with it.
var s3Schemes = []string{"s3", "s3a"}

func isS3Scheme(scheme string) bool {
	for _, s := range s3Schemes {
		if strings.EqualFold(scheme, s) {
			return true
		}
	}
	return false
}

// objectURI is a parsed s3://bucket/key location. Keys are used verbatim:
// object locations are not percent-decoded, matching how Iceberg builds them
// by string concatenation.
type objectURI struct {
	scheme string
	bucket string
	key    string
}

// parseObjectURI splits an s3:// or s3a:// URI into bucket and key. The key
// may be empty.
func parseObjectURI(uri string) (objectURI, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || !isS3Scheme(scheme) {
		return objectURI{}, fmt.Errorf("not an s3 location: %q", uri)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return objectURI{}, fmt.Errorf("no bucket in s3 location %q", uri)
	}
	return objectURI{scheme: strings.ToLower(scheme), bucket: bucket, key: key}, nil
}

// errDotSegment reports a path with "." or ".." segments. Such keys are legal
// S3 keys but alias other paths on file-backed servers and on local disk, so
// they are never accepted.
var errDotSegment = errors.New(`path has a "." or ".." segment`)

// checkKey reports whether key can name an object: not empty, no leading
// or trailing slash, no "." or ".." segments.
func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty object key")
	case strings.HasPrefix(key, "/"):
		return errors.New("object key starts with a slash")
	case strings.HasSuffix(key, "/"):
		return errors.New("object key ends with a slash")
	}
	return checkSegments(key)
}

func checkSegments(p string) error {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return errDotSegment
		}
	}
	return nil
}

// localPath returns the file system path named by name, which is either a
// path or a file: URI (file:///abs, file:/abs, file://localhost/abs). The
// path of a file: URI is used verbatim, never percent-decoded: Iceberg
// builds locations by string concatenation, and Spark, PyIceberg, DuckDB
// and Trino all read file:/x/c=gr%C3%BC%C3%9Fe/f as a directory named
// c=gr%C3%BC%C3%9Fe, just as S3 keys are used verbatim. A decoding reader
// would write the files of URL-encoded partition directories (every
// non-ASCII, space or slash in a partition value) where no engine finds
// them.
func localPath(name string) (string, error) {
	if len(name) >= 5 && strings.EqualFold(name[:5], "file:") {
		p := name[len("file:"):]
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			host, path, found := strings.Cut(rest, "/")
			if host != "" && !strings.EqualFold(host, "localhost") {
				return "", fmt.Errorf("file URI %q has a host", name)
			}
			if !found {
				return "", fmt.Errorf("file URI %q has no path", name)
			}
			p = "/" + path
		}
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("file URI %q has no absolute path", name)
		}
		return filepath.FromSlash(p), nil
	}
	if scheme, _, ok := strings.Cut(name, "://"); ok && isSchemeName(scheme) {
		return "", fmt.Errorf("not a local path: %q", name)
	}
	if name == "" {
		return "", errors.New("empty path")
	}
	return name, nil
}

// isSchemeName reports whether s is a syntactically valid URI scheme.
func isSchemeName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// fileURI returns the file:// URI of an absolute local path: the path
// verbatim, as localPath reads it.
func fileURI(abs string) string {
	return "file://" + filepath.ToSlash(abs)
}
