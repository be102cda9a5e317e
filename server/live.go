package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/zombi-db/zombi/live"
)

// livePrefix is the path prefix of the live catalog view.
const livePrefix = "/v1/" + live.Prefix + "/"

type liveKey struct{}

// liveView serves a request of the live catalog view (a path under
// /v1/live/) as the same request without the prefix, marked live in its
// context: every route, handler, check and metric is the default view's,
// and only what reads the mark differs.
func (s *Server) liveView(r *http.Request) *http.Request {
	if s.live == nil {
		return r
	}
	rest, ok := strings.CutPrefix(r.URL.Path, livePrefix)
	if !ok {
		return r
	}
	r = r.WithContext(context.WithValue(r.Context(), liveKey{}, true))
	u := *r.URL
	u.Path = "/v1/" + rest
	if raw, ok := strings.CutPrefix(u.RawPath, livePrefix); ok {
		u.RawPath = "/v1/" + raw
	} else {
		u.RawPath = ""
	}
	r.URL = &u
	r.RequestURI = u.RequestURI()
	return r
}

// isLive reports whether ctx is a request's of the live view.
func isLive(ctx context.Context) bool {
	v, _ := ctx.Value(liveKey{}).(bool)
	return v
}
