package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAuthorize: who may call what, by the tokens configured and the
// Authorization header sent.
func TestAuthorize(t *testing.T) {
	tests := []struct {
		name                  string
		auth, admin, monitors []string
		path, header          string
		want                  int
	}{
		{"auth off", nil, nil, nil, "/v1/config", "", 200},
		{"no token", []string{"u"}, nil, nil, "/v1/config", "", 401},
		{"token", []string{"u"}, nil, nil, "/v1/config", "Bearer u", 200},
		{"scheme in lower case", []string{"u"}, nil, nil, "/v1/config", "bearer u", 200},
		{"scheme in upper case", []string{"u"}, nil, nil, "/v1/config", "BEARER u", 200},
		{"other scheme", []string{"u"}, nil, nil, "/v1/config", "Basic u", 401},
		{"token alone", []string{"u"}, nil, nil, "/v1/config", "u", 401},
		{"empty token", []string{"u"}, nil, nil, "/v1/config", "Bearer ", 401},
		{"admin token only", nil, []string{"a"}, nil, "/v1/config", "", 401},
		{"admin token anywhere", nil, []string{"a"}, nil, "/v1/config", "Bearer a", 200},
		{"metrics, auth off", nil, nil, nil, "/metrics", "", 200},
		{"metrics, auth on", []string{"u"}, nil, nil, "/metrics", "", 401},
		{"metrics with the auth token", []string{"u"}, nil, nil, "/metrics", "Bearer u", 200},
		{"metrics with an admin token", []string{"u"}, []string{"a"}, nil, "/metrics", "Bearer a", 200},
		{"metrics token alone", nil, nil, []string{"m"}, "/metrics", "", 401},
		{"metrics with a metrics token", nil, nil, []string{"m"}, "/metrics", "Bearer m", 200},
		{"metrics token elsewhere, auth off", nil, nil, []string{"m"}, "/v1/config", "", 200},
		{"metrics token elsewhere, auth on", []string{"u"}, nil, []string{"m"}, "/v1/config", "Bearer m", 401},
		{"health, auth on", []string{"u"}, nil, []string{"m"}, "/health/live", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{AuthTokens: tc.auth, AdminTokens: tc.admin, MetricsTokens: tc.monitors, Registry: prometheus.NewRegistry()})
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got := 200
			if err := s.authorize(r); err != nil {
				var ae *apiError
				if !errors.As(err, &ae) {
					t.Fatalf("authorize: %v", err)
				}
				got = ae.status
			}
			if got != tc.want {
				t.Fatalf("authorize: %d, want %d", got, tc.want)
			}
		})
	}
}

// TestReadyDetails: with tokens configured, a failing /health/ready names
// what failed only to a caller with a token.
func TestReadyDetails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tokens  []string
		header  string
		details bool
	}{
		{"auth off", nil, "", true},
		{"auth on, no token", []string{"u"}, "", false},
		{"auth on, token", []string{"u"}, "Bearer u", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{tokens: tc.tokens})
			ts.checks = map[string]func(ctx context.Context) error{
				"flush": func(context.Context) error { return errors.New("flushes keep failing: default.secret_table: …") },
			}
			r := httptest.NewRequest(http.MethodGet, "/health/ready", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, r)
			var out struct {
				Status string
				Checks map[string]string
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 503 || out.Status != "unavailable" {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if named := strings.Contains(w.Body.String(), "secret_table"); named != tc.details || (out.Checks != nil) != tc.details {
				t.Fatalf("answer %s: details %v, want %v", w.Body, named, tc.details)
			}
		})
	}
}
