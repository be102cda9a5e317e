package console

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestAssetsEmbedded(t *testing.T) {
	names := Names()
	slices.Sort(names)
	if want := []string{"app.css", "app.js", "favicon.svg", "index.html"}; !slices.Equal(names, want) {
		t.Fatalf("embedded files %v, want %v", names, want)
	}
	// Small, as docs/console.md says: no library, no build.
	total := 0
	for _, n := range names {
		a, _ := Lookup(n)
		total += len(a.Body)
	}
	if total > 64<<10 {
		t.Errorf("the console's files are %d bytes; docs/console.md says about 47 KB", total)
	}
	// The page loads only its own files: no CDN, works offline.
	page, _ := Lookup(Index)
	for _, bad := range []string{"http://", "https://", "//cdn", "<script>"} {
		if strings.Contains(string(page.Body), bad) {
			t.Errorf("index.html holds %q", bad)
		}
	}
}

func TestServe(t *testing.T) {
	js, _ := Lookup("app.js")
	for _, c := range []struct {
		name, file, inm string
		found           bool
		status          int
		body            bool
	}{
		{"page", Index, "", true, 200, true},
		{"script", "app.js", "", true, 200, true},
		{"revalidated", "app.js", js.ETag, true, 304, false},
		{"stale etag", "app.js", `"0000"`, true, 200, true},
		{"missing", "nope.js", "", false, 0, false},
		{"directory", "ui", "", false, 0, false},
		{"path", "ui/app.js", "", false, 0, false},
		{"parent", "../console.go", "", false, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ui/x", nil)
			if c.inm != "" {
				r.Header.Set("If-None-Match", c.inm)
			}
			w := httptest.NewRecorder()
			if got := Serve(w, r, c.file); got != c.found {
				t.Fatalf("Serve(%q) = %v, want %v", c.file, got, c.found)
			}
			if !c.found {
				return
			}
			if w.Code != c.status || (w.Body.Len() > 0) != c.body {
				t.Errorf("%d with %d bytes, want %d (body %v)", w.Code, w.Body.Len(), c.status, c.body)
			}
			for k, v := range SecurityHeaders {
				if w.Header().Get(k) != v {
					t.Errorf("%s: %q, want %q", k, w.Header().Get(k), v)
				}
			}
		})
	}
}
