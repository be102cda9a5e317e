package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/cluster"
)

type fakeNodes struct {
	nodes []cluster.Node
	err   error
}

func (f fakeNodes) Nodes(context.Context) ([]cluster.Node, error) { return f.nodes, f.err }

func TestListNodes(t *testing.T) {
	started := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	two := []cluster.Node{
		{ID: "a", Stream: 0, Cluster: true, URL: "http://a:8181", State: cluster.Alive, Started: started,
			HeartbeatAge: 1500 * time.Millisecond, BacklogBytes: 42, OldestUnflushed: started.Add(time.Second), LastCommit: started.Add(2 * time.Second)},
		{ID: "b", Stream: 1, Cluster: true, State: cluster.Left, Started: started, HeartbeatAge: time.Minute},
	}
	tests := []struct {
		name   string
		nodes  Nodes
		tokens []string
		token  string
		status int
		body   string
	}{
		{"two nodes", fakeNodes{nodes: two}, nil, "", 200,
			`{"nodes":[{"backlog_bytes":42,"cluster":true,"heartbeat_age_seconds":1.5,"last_commit":"2025-01-02T03:04:07Z","node_id":"a","oldest_unflushed":"2025-01-02T03:04:06Z","started_at":"2025-01-02T03:04:05Z","state":"alive","stream":0,"url":"http://a:8181"},` +
				`{"backlog_bytes":0,"cluster":true,"heartbeat_age_seconds":60,"node_id":"b","started_at":"2025-01-02T03:04:05Z","state":"left","stream":1}]}`},
		{"embedded store", nil, nil, "", 404, "embedded store"},
		{"database down", fakeNodes{err: errors.New("connection refused")}, nil, "", 503, "connection refused"},
		{"auth token is not enough", fakeNodes{nodes: two}, []string{"user"}, "user", 403, "admin token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{nodes: tc.nodes, tokens: tc.tokens})
			r := httptest.NewRequest(http.MethodGet, "/v1/zombi/nodes", nil)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tc.status, tc.body)
			}
		})
	}
}
