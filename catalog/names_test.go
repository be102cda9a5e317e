package catalog

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateIdent(t *testing.T) {
	tests := []struct {
		id Ident
		ok bool
	}{
		{Ident{Namespace{"db"}, "events"}, true},
		{Ident{Namespace{"a", "b", "c"}, "t.with.dots and spaces"}, true},
		{Ident{Namespace{"ünïcødé"}, "表"}, true},
		{Ident{Namespace{}, "t"}, false},
		{Ident{Namespace{""}, "t"}, false},
		{Ident{Namespace{"db"}, ""}, false},
		{Ident{Namespace{"db"}, "."}, false},
		{Ident{Namespace{".."}, "t"}, false},
		{Ident{Namespace{"db"}, "a/b"}, false},
		{Ident{Namespace{`a\b`}, "t"}, false},
		{Ident{Namespace{"db"}, "tab\tname"}, false},
		{Ident{Namespace{"a\x1fb"}, "t"}, false},
		{Ident{Namespace{"db"}, "bad\xffutf8"}, false},
		{Ident{Namespace{"db"}, "replaced\ufffdutf8"}, false},
		{Ident{Namespace{"db"}, "c1\u0085control"}, false},
		{Ident{Namespace{"db"}, "del\x7f"}, false},
		{Ident{Namespace{"db"}, "evil\u202egnp.exe"}, false},
		{Ident{Namespace{"r\u2067tl"}, "t"}, false},
		{Ident{Namespace{"db"}, "mark\u200f"}, false},
		{Ident{Namespace{"db"}, "zero\u200bwidth"}, true},
		{Ident{Namespace{"db"}, "emoji😀"}, true},
		{Ident{Namespace{"db"}, strings.Repeat("x", 255)}, true},
		{Ident{Namespace{"db"}, strings.Repeat("x", 256)}, false},
	}
	for _, tc := range tests {
		err := ValidateIdent(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateIdent(%q): err %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateIdent(%q): %v is not ErrInvalid", tc.id, err)
		}
	}
}

func TestMetadataVersion(t *testing.T) {
	tests := map[string]int{
		"s3://b/t/metadata/00000-0f3e7c59-3b0b-4d1a-9f8e-1c2d3e4f5a6b.metadata.json":     0,
		"file:///t/metadata/00042-0f3e7c59-3b0b-4d1a-9f8e-1c2d3e4f5a6b.gz.metadata.json": 42,
		"/t/metadata/v7.metadata.json":      7,
		"/t/metadata/whatever.json":         -1,
		"/t/metadata/abc-def.metadata.json": -1,
	}
	for loc, want := range tests {
		if got := metadataVersion(loc); got != want {
			t.Errorf("metadataVersion(%q) = %d, want %d", loc, got, want)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	raw := []byte(`{"format-version":2}`)
	for _, loc := range []string{"x/00001-u.metadata.json", "x/00001-u.gz.metadata.json", "x/00001-u.zstd.metadata.json"} {
		body, err := compress(loc, raw)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decompress(loc, body)
		if err != nil || string(back) != string(raw) {
			t.Errorf("%s: round trip gave %q, %v", loc, back, err)
		}
	}
}

func TestPathSegment(t *testing.T) {
	tests := map[string]string{
		"events":      "events",
		"with space":  "with_space",
		"pct%1Fname":  "pct_1Fname",
		"a/b":         "a_b",
		"表":           "___",
		"..":          "__",
		"v1.2-beta_3": "v1.2-beta_3",
		"q?x#y":       "q_x_y",
	}
	for in, want := range tests {
		got := pathSegment(in)
		if got != want {
			t.Errorf("pathSegment(%q) = %q, want %q", in, got, want)
		}
		if !plainLocation("s3://b/" + got) {
			t.Errorf("pathSegment(%q) = %q is not a plain location", in, got)
		}
	}
	for _, loc := range []string{"s3://b/a b", "file:///w/a%20b", "s3://b/x?y", "s3://b/x#y", "s3://b/é"} {
		if plainLocation(loc) {
			t.Errorf("plainLocation(%q) = true", loc)
		}
	}
}
