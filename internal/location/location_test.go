package location

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"/a/b", "file:///a/b"},
		{"/a/b/", "file:///a/b"},
		{"file:/a/b", "file:///a/b"},
		{"file:///a/b", "file:///a/b"},
		{"FILE://localhost/a/b", "file:///a/b"},
		{"file:////a//b///c/", "file:///a/b/c"},
		{"/", "file:///"},
		{"file:///", "file:///"},
		{"/a/%20b/c=x%2Fy", "file:///a/%20b/c=x%2Fy"},
		{"s3://bucket/k/x", "s3://bucket/k/x"},
		{"S3A://Bucket/k/x/", "s3://bucket/k/x"},
		{"s3n://bucket", "s3://bucket"},
		{"s3://bucket/", "s3://bucket"},
		{"gs://b/k", "gs://b/k"},

		{"", ""},
		{"a/b", ""},
		{"file:a/b", ""},
		{"file://host/a", ""},
		{"file://localhost", ""},
		{"/a/../b", ""},
		{"/a/./b", ""},
		{"/a/%2e%2E/b", ""},
		{"/a/..", ""},
		{"s3://b/a/../c", ""},
		{"s3://b/a//c", ""},
		{"s3://b//a", ""},
		{"s3:///a", ""},
		{"s3:b/a", ""},
		{"/a?x=1", ""},
		{"/a#f", ""},
		{"/a\x00b", ""},
		{"/a\nb", ""},
	} {
		l, err := Parse(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("Parse(%q) = %q, want an error", tc.in, l)
		case tc.want == "" && !errors.Is(err, ErrInvalid):
			t.Errorf("Parse(%q) error %v is not ErrInvalid", tc.in, err)
		case tc.want != "" && err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
		case tc.want != "" && l.String() != tc.want:
			t.Errorf("Parse(%q) = %q, want %q", tc.in, l, tc.want)
		}
		if err == nil {
			// The canonical form reads back as itself.
			if again := MustParse(l.String()); again != l {
				t.Errorf("Parse(%q) = %q, which parses to %q", tc.in, l, again)
			}
		}
	}
}

func TestContains(t *testing.T) {
	for _, tc := range []struct {
		dir, file string
		contains  bool
	}{
		{"/w", "/w", true},
		{"/w", "/w/t/x", true},
		{"file:///w/", "/w//t", true},
		{"/w", "/wt", false},
		{"/w/t", "/w", false},
		{"/", "/anything", true},
		{"s3://b/w", "s3a://b/w/t", true},
		{"s3://b/w", "s3://c/w/t", false},
		{"s3://b", "s3://b/w", true},
		{"s3://b/w", "/w/t", false},
		{"/w", "s3://w/t", false},
	} {
		d, f := MustParse(tc.dir), MustParse(tc.file)
		if got := d.Contains(f); got != tc.contains {
			t.Errorf("%q.Contains(%q) = %v, want %v", tc.dir, tc.file, got, tc.contains)
		}
		if got := Within(tc.dir, tc.file); got != tc.contains {
			t.Errorf("Within(%q, %q) = %v, want %v", tc.dir, tc.file, got, tc.contains)
		}
		if got, want := d.Overlaps(f), tc.contains || f.Contains(d); got != want {
			t.Errorf("%q.Overlaps(%q) = %v, want %v", tc.dir, tc.file, got, want)
		}
	}
	if Within("/w", "/w/../etc") || Within("relative", "/w") {
		t.Error("Within accepted an unreadable location")
	}
	if MustParse("/w").Below(MustParse("/w")) || !MustParse("/w").Below(MustParse("/w/x")) {
		t.Error("Below is not strict containment")
	}
}

func TestChildPrefix(t *testing.T) {
	for _, tc := range []struct{ dir, below, notBelow string }{
		{"/w", "/w/x", "/wx"},
		{"/", "/x", ""},
		{"s3://b", "s3://b/x", "s3://bx/y"},
		{"s3://b/k", "s3://b/k/x", "s3://b/k-x"},
	} {
		p := MustParse(tc.dir).ChildPrefix()
		if !strings.HasPrefix(MustParse(tc.below).String(), p) {
			t.Errorf("%q below %q does not start with %q", tc.below, tc.dir, p)
		}
		if d := MustParse(tc.dir).String(); len(d) > len(p) && strings.HasPrefix(d, p) {
			t.Errorf("%q itself starts with its ChildPrefix %q", tc.dir, p)
		}
		if tc.notBelow != "" && strings.HasPrefix(MustParse(tc.notBelow).String(), p) {
			t.Errorf("%q starts with %q but is not below %q", tc.notBelow, p, tc.dir)
		}
	}
}

func TestAncestors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/a/b/c", []string{"file:///", "file:///a", "file:///a/b"}},
		{"/", nil},
		{"s3://b/k/x", []string{"s3://b", "s3://b/k"}},
	} {
		if got := MustParse(tc.in).Ancestors(); !slices.Equal(got, tc.want) {
			t.Errorf("Ancestors(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// Every ancestor contains the location and is contained by the
		// ones before it.
		l := MustParse(tc.in)
		for _, a := range l.Ancestors() {
			if !MustParse(a).Below(l) {
				t.Errorf("ancestor %q of %q does not contain it", a, tc.in)
			}
		}
	}
}
