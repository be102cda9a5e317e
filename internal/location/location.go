// Package location gives table, view and file locations one spelling, so
// that "is this file inside that table" and "do these two tables overlap"
// are string comparisons that cannot be fooled by how a client spelled a
// path.
//
// A location is a local path or file: URI (file:/a, file:///a,
// file://localhost/a and /a are the same file), or an object-store URI
// (s3://bucket/key; s3a and s3n are read as s3). Paths are read verbatim,
// as the warehouse and every engine read them: a percent escape is part of
// the name, not decoded. Spellings that different readers could take for
// different files are refused rather than guessed at: "." and ".."
// segments (also percent-encoded ones), query strings and fragments,
// control characters, and, in object keys, empty segments ("a//b" is a
// different key than "a/b" on S3, but the same directory on disk, where
// duplicate slashes are collapsed instead).
package location

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is returned by Parse for a location it cannot read safely.
var ErrInvalid = errors.New("invalid location")

// Location is a parsed location. The zero value is no location.
type Location struct {
	// scheme is "file" or a lower-case object store scheme ("s3", "gs", ...).
	scheme string
	// bucket is the authority of an object-store URI; empty for file.
	bucket string
	// path starts with "/" and has no trailing slash unless it is "/".
	path string
}

// Parse reads loc into its canonical form.
func Parse(loc string) (Location, error) {
	bad := func(why string) (Location, error) {
		return Location{}, fmt.Errorf("%w %q: %s", ErrInvalid, loc, why)
	}
	if loc == "" {
		return bad("empty")
	}
	for i := 0; i < len(loc); i++ {
		if c := loc[i]; c < 0x20 || c == 0x7f {
			return bad("control character")
		}
	}
	if strings.ContainsAny(loc, "?#") {
		return bad("query or fragment")
	}
	scheme, rest, hasScheme := cutScheme(loc)
	var l Location
	switch {
	case !hasScheme:
		if !strings.HasPrefix(loc, "/") {
			return bad("not an absolute path or URI")
		}
		l = Location{scheme: "file", path: loc}
	case scheme == "file":
		p := rest
		if r, ok := strings.CutPrefix(p, "//"); ok {
			host, path, found := strings.Cut(r, "/")
			if host != "" && !strings.EqualFold(host, "localhost") {
				return bad("file URI with a host")
			}
			if !found {
				return bad("file URI without a path")
			}
			p = "/" + path
		}
		if !strings.HasPrefix(p, "/") {
			return bad("file URI without an absolute path")
		}
		l = Location{scheme: "file", path: p}
	default:
		r, ok := strings.CutPrefix(rest, "//")
		if !ok {
			return bad("URI without an authority")
		}
		bucket, key, _ := strings.Cut(r, "/")
		if bucket == "" {
			return bad("URI without a bucket")
		}
		if strings.Contains(key, "//") || strings.HasPrefix(key, "/") {
			return bad("empty path segment")
		}
		switch scheme {
		case "s3a", "s3n":
			scheme = "s3"
		}
		l = Location{scheme: scheme, bucket: strings.ToLower(bucket), path: "/" + key}
	}
	if l.scheme == "file" {
		for strings.Contains(l.path, "//") {
			l.path = strings.ReplaceAll(l.path, "//", "/")
		}
	}
	if len(l.path) > 1 {
		l.path = strings.TrimSuffix(l.path, "/")
	}
	for seg := range strings.SplitSeq(l.path, "/") {
		if dotSegment(seg) {
			return bad(`"." or ".." segment`)
		}
	}
	return l, nil
}

// MustParse is Parse for locations known to be valid; it panics otherwise.
func MustParse(loc string) Location {
	l, err := Parse(loc)
	if err != nil {
		panic(err)
	}
	return l
}

// cutScheme splits a URI's scheme (lower-cased) from the rest.
func cutScheme(s string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return strings.ToLower(s[:i]), s[i+1:], true
}

// dotSegment reports whether seg is "." or "..", spelled plainly or with
// percent escapes ("%2e", "%2E").
func dotSegment(seg string) bool {
	s := strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
	return s == "." || s == ".."
}

// IsZero reports whether l is the zero Location.
func (l Location) IsZero() bool { return l.scheme == "" }

// String is the canonical spelling: file:///a/b or s3://bucket/key, without
// a trailing slash.
func (l Location) String() string {
	switch {
	case l.IsZero():
		return ""
	case l.scheme == "file":
		return "file://" + l.path
	case l.path == "/":
		return l.scheme + "://" + l.bucket
	}
	return l.scheme + "://" + l.bucket + l.path
}

// Scheme is "file" or the object store's scheme ("s3", ...).
func (l Location) Scheme() string { return l.scheme }

// Path is the path of a file location, or the key of an object location
// with a leading slash.
func (l Location) Path() string { return l.path }

// Contains reports whether o is l or lies below it.
func (l Location) Contains(o Location) bool {
	if l.IsZero() || o.IsZero() || l.scheme != o.scheme || l.bucket != o.bucket {
		return false
	}
	if l.path == "/" || l.path == o.path {
		return true
	}
	return strings.HasPrefix(o.path, l.path+"/")
}

// Below reports whether o lies strictly below l.
func (l Location) Below(o Location) bool { return l.Contains(o) && l.path != o.path }

// Overlaps reports whether one of l and o contains the other.
func (l Location) Overlaps(o Location) bool { return l.Contains(o) || o.Contains(l) }

// Ancestors returns the canonical spellings of the locations that contain
// l, outermost first, l excluded.
func (l Location) Ancestors() []string {
	if l.IsZero() || l.path == "/" {
		return nil
	}
	var out []string
	p := l.path
	for {
		i := strings.LastIndexByte(p, '/')
		p = p[:i]
		if p == "" {
			out = append(out, Location{scheme: l.scheme, bucket: l.bucket, path: "/"}.String())
			break
		}
		out = append(out, Location{scheme: l.scheme, bucket: l.bucket, path: p}.String())
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// ChildPrefix is the string that the canonical spelling of every location
// strictly below l starts with (and is longer than), and no other: l's
// spelling followed by a slash, which the root spelling "file:///" already
// ends with.
func (l Location) ChildPrefix() string {
	if l.scheme == "file" && l.path == "/" {
		return l.String()
	}
	return l.String() + "/"
}

// Within reports whether file is dir or lies below it. Either failing to
// parse is false: an unreadable location is inside nothing.
func Within(dir, file string) bool {
	d, err := Parse(dir)
	if err != nil {
		return false
	}
	f, err := Parse(file)
	if err != nil {
		return false
	}
	return d.Contains(f)
}

// Canonical returns the canonical spelling of loc, or "" if it cannot be
// parsed.
func Canonical(loc string) string {
	l, err := Parse(loc)
	if err != nil {
		return ""
	}
	return l.String()
}
