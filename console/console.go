// Package console is Zombi's web console: a page, a script and a style
// sheet embedded in the binary and served at /ui/. The console holds no
// data and no secret of its own; in the browser it asks for a token and
// reads the catalog and ingest routes with it, as any client would, so
// the server's roles decide what it may show and do.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sync"
)

//go:embed ui
var files embed.FS

// Index is the console's page.
const Index = "index.html"

// Asset is one embedded file with what its answer needs.
type Asset struct {
	Body        []byte
	ContentType string
	ETag        string
}

var (
	loadOnce sync.Once
	assets   map[string]Asset
)

func load() {
	assets = map[string]Asset{}
	sub, err := fs.Sub(files, "ui")
	if err != nil {
		panic(err)
	}
	entries, err := fs.ReadDir(sub, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(sub, e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[e.Name()] = Asset{Body: b, ContentType: ct, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
}

// Lookup returns the embedded file name; ok is false when there is none.
// Names are flat: a name with a slash is never found.
func Lookup(name string) (a Asset, ok bool) {
	loadOnce.Do(load)
	a, ok = assets[name]
	return a, ok
}

// Names lists the embedded files.
func Names() []string {
	loadOnce.Do(load)
	out := make([]string, 0, len(assets))
	for n := range assets {
		out = append(out, n)
	}
	return out
}

// SecurityHeaders are set on every console answer: the page runs only
// its own script and style, talks only to this server, and may not be
// framed by another site.
var SecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
}

// Serve writes the file name to w: 304 when the request's If-None-Match
// has its ETag, 404 when there is no such file.
func Serve(w http.ResponseWriter, r *http.Request, name string) bool {
	a, ok := Lookup(name)
	if !ok {
		return false
	}
	h := w.Header()
	for k, v := range SecurityHeaders {
		h.Set(k, v)
	}
	h.Set("ETag", a.ETag)
	// Revalidate every time: a new binary serves new files under the same
	// names.
	h.Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == a.ETag {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	h.Set("Content-Type", a.ContentType)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.Body)
	}
	return true
}
