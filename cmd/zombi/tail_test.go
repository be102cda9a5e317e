package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestTail: zombi tail prints each event's data on a line, sends the
// token, and resumes after the last id it saw when a stream ends, also
// after a dropped message; a 4xx other than 429 stops it.
func TestTail(t *testing.T) {
	var mu sync.Mutex
	var resumed []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tables/ns.t/stream" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":{"message":"no","type":"ForbiddenException","code":403}}`, http.StatusForbidden)
			return
		}
		mu.Lock()
		resumed = append(resumed, r.Header.Get("Last-Event-ID"))
		n := len(resumed)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1:
			fmt.Fprint(w, ": hello\n\nid: 1\ndata: {\"offset\":1}\n\nid: 2\ndata: {\"offset\":2}\n\n")
		case 2:
			fmt.Fprint(w, "id: 5\nevent: gap\ndata: {\"after\":2,\"through\":5}\n\nid: 6\ndata: {\"offset\":6}\n\n")
			fmt.Fprint(w, "id: 6\nevent: dropped\ndata: {\"reason\":\"slow\"}\n\n")
		default:
			fmt.Fprint(w, "id: 7\ndata: {\"offset\":7}\n\n")
		}
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) {
		if bytes.Contains(b, []byte(`"offset":7`)) {
			defer cancel()
		}
		return out.Write(b)
	})
	err := tailCommand(ctx, []string{"--url", srv.URL, "--token", "tok", "--from", "0", "ns.t"}, w, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"offset\":1}\n{\"offset\":2}\n{\"offset\":6}\n{\"offset\":7}\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if want := []string{"0", "2", "6"}; strings.Join(resumed, ",") != strings.Join(want, ",") {
		t.Errorf("Last-Event-ID %q, want %q", resumed, want)
	}
	if !strings.Contains(errOut.String(), "gap") || !strings.Contains(errOut.String(), "dropped") {
		t.Errorf("stderr %q, want the gap and the drop", errOut.String())
	}

	err = tailCommand(context.Background(), []string{"--url", srv.URL, "--token", "bad", "ns.t"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a refused stream: %v, want the 403", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
