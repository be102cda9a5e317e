package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/live"
	"github.com/zombi-db/zombi/planning"
)

// liveServer is planningServer with a flusher (that waits an hour) and the
// live view.
func liveServer(t *testing.T) *testServer {
	t.Helper()
	ts := planningServer(t, planning.ModeClient)
	fl, err := flusher.New(flusher.Options{Catalog: ts.cat, Hot: ts.hot, FS: ts.wh.FS, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = fl.Close(ctx)
	})
	src, err := live.New(live.Options{Tables: ts.cat, Flusher: fl, PlanLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ts.live, ts.flush = src, fl
	return ts
}

func TestLiveConfig(t *testing.T) {
	ts := liveServer(t)
	tests := []struct {
		query          string
		prefix, defMod string
	}{
		{"", "", ""},
		{"?warehouse=live", "live", "server"},
		{"?warehouse=s3://bucket/wh", "", ""},
		{"?warehouse=LIVE", "", ""},
	}
	for _, tc := range tests {
		rec, cfg := call(t, ts, "GET", "/v1/config"+tc.query, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", tc.query, rec.Code)
		}
		over, _ := cfg["overrides"].(map[string]any)
		defs, _ := cfg["defaults"].(map[string]any)
		if got, _ := over["prefix"].(string); got != tc.prefix {
			t.Errorf("config%s: prefix %q, want %q", tc.query, got, tc.prefix)
		}
		if got, _ := defs[planning.ConfigKey].(string); got != tc.defMod {
			t.Errorf("config%s: defaults %s = %q, want %q", tc.query, planning.ConfigKey, got, tc.defMod)
		}
		if over["namespace-separator"] != "%1F" {
			t.Errorf("config%s: overrides %v lost the namespace separator", tc.query, over)
		}
	}
	// A server without the live view ignores warehouse=live and serves
	// nothing under /v1/live/.
	plain := planningServer(t, planning.ModeClient)
	if _, cfg := call(t, plain, "GET", "/v1/config?warehouse=live", ""); cfg["overrides"].(map[string]any)["prefix"] != nil {
		t.Errorf("a server without the live view answered a prefix: %v", cfg)
	}
	if rec, _ := call(t, plain, "GET", "/v1/live/namespaces", ""); rec.Code != http.StatusNotFound {
		t.Errorf("/v1/live/namespaces without the live view: %d, want 404", rec.Code)
	}
}

// TestLiveRoutes: the catalog under /v1/live/ is the catalog: writes
// through one view are read through the other, with the same answers and
// the same route labels in the metrics.
func TestLiveRoutes(t *testing.T) {
	ts := liveServer(t)
	steps := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/namespaces", `{"namespace":["lv"]}`, 200},
		{"POST", "/namespaces", `{"namespace":["lv","inner"]}`, 200},
		{"GET", "/namespaces?parent=lv", "", 200},
		{"HEAD", "/namespaces/lv%1Finner", "", 204},
		{"POST", "/namespaces/lv%1Finner/properties", `{"updates":{"owner":"x"}}`, 200},
		{"POST", "/namespaces/lv%1Finner/tables", `{"name":"t","schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}}`, 200},
		{"GET", "/namespaces/lv%1Finner/tables/t", "", 200},
		{"POST", "/namespaces/lv%1Finner/tables/t", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}`, 200},
		{"POST", "/tables/rename", `{"source":{"namespace":["lv","inner"],"name":"t"},"destination":{"namespace":["lv"],"name":"t2"}}`, 204},
		{"HEAD", "/namespaces/lv/tables/t2", "", 204},
		{"POST", "/transactions/commit", `{"table-changes":[{"identifier":{"namespace":["lv"],"name":"t2"},"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"w"}}]}]}`, 204},
		{"GET", "/namespaces/lv/views", "", 200},
		{"DELETE", "/namespaces/lv/tables/t2", "", 204},
		{"GET", "/namespaces/lv/tables/t2", "", 404},
		{"DELETE", "/namespaces/lv%1Finner", "", 204},
	}
	for i, st := range steps {
		// Alternate the views: each step sees what the last one did.
		for j, prefix := range []string{"/v1/live", "/v1"} {
			if (i+j)%2 == 1 && st.method != "GET" && st.method != "HEAD" {
				continue // each write once, through either view
			}
			rec, _ := call(t, ts, st.method, prefix+st.path, st.body)
			if rec.Code != st.status {
				t.Fatalf("%s %s%s: %d %s, want %d", st.method, prefix, st.path, rec.Code, rec.Body, st.status)
			}
		}
	}
	if rec, _ := call(t, ts, "GET", "/v1/live/live/namespaces", ""); rec.Code != http.StatusNotFound {
		t.Errorf("/v1/live/live/namespaces: %d, want 404", rec.Code)
	}
	// The route label is the template, the same for both views.
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "zombi_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && strings.Contains(l.GetValue(), "live") {
					t.Errorf("route label %q", l.GetValue())
				}
			}
		}
	}
}

// TestLiveTables: through the live view an ingest table plans on the
// server (whatever it or the server says), gets a first snapshot when it
// has none, and its plans list the events not yet committed; the default
// view plans the snapshot alone. Other tables keep their own mode.
func TestLiveTables(t *testing.T) {
	ts := liveServer(t)
	rec, _ := call(t, ts, "POST", "/tables/ns.ev", "{\"payload\":\"a\"}")
	if rec.Code/100 != 2 {
		t.Fatalf("write: %d %s", rec.Code, rec.Body)
	}
	body := strings.Repeat("{\"payload\":\"b\"}\n", 9)
	req := []string{"Content-Type", "application/x-ndjson"}
	if rec, _ := call(t, ts, "POST", "/tables/ns.ev/bulk", body, req...); rec.Code/100 != 2 {
		t.Fatalf("bulk: %d %s", rec.Code, rec.Body)
	}
	// The event table says client; the live view says server all the same.
	if rec, _ := call(t, ts, "POST", "/v1/namespaces/ns/tables/ev", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"zombi.read.planning":"client"}}]}`); rec.Code != 200 {
		t.Fatalf("set-properties: %d %s", rec.Code, rec.Body)
	}
	mode := func(path string) string {
		rec, lt := call(t, ts, "GET", path, "")
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		cfg, _ := lt["config"].(map[string]any)
		m, _ := cfg[planning.ConfigKey].(string)
		return m
	}
	for path, want := range map[string]string{
		"/v1/namespaces/ns/tables/ev":          "client",
		"/v1/live/namespaces/ns/tables/ev":     "server",
		"/v1/live/namespaces/ns/tables/client": "client",
		"/v1/live/namespaces/ns/tables/plain":  "",
	} {
		if got := mode(path); got != want {
			t.Errorf("GET %s: %s = %q, want %q", path, planning.ConfigKey, got, want)
		}
	}
	_, lt := call(t, ts, "GET", "/v1/live/namespaces/ns/tables/ev", "")
	meta := lt["metadata"].(map[string]any)
	if meta["current-snapshot-id"] == nil {
		t.Errorf("a live load left the ingest table without a snapshot: %v", meta["current-snapshot-id"])
	}
	a, _ := call(t, ts, "GET", "/v1/namespaces/ns/tables/ev", "")
	b, _ := call(t, ts, "GET", "/v1/live/namespaces/ns/tables/ev", "")
	if a.Header().Get("ETag") == b.Header().Get("ETag") {
		t.Errorf("both views answer ETag %s", a.Header().Get("ETag"))
	}
	if rec, _ := call(t, ts, "GET", "/v1/namespaces/ns/tables/ev", "", "If-None-Match", b.Header().Get("ETag")); rec.Code != 200 {
		t.Errorf("the live view's ETag matched the default view's answer: %d", rec.Code)
	}
	if rec, _ := call(t, ts, "GET", "/v1/live/namespaces/ns/tables/ev", "", "If-None-Match", b.Header().Get("ETag")); rec.Code != 304 {
		t.Errorf("the live view's ETag, again: %d, want 304", rec.Code)
	}

	records := func(path string) (n float64) {
		rec, plan := call(t, ts, "POST", path, `{}`)
		if rec.Code != 200 {
			t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
		tasks, _ := plan["file-scan-tasks"].([]any)
		for _, task := range tasks {
			n += task.(map[string]any)["data-file"].(map[string]any)["record-count"].(float64)
		}
		return n
	}
	if n := records("/v1/live/namespaces/ns/tables/ev/plan"); n != 10 {
		t.Errorf("a live plan lists %v records, want the 10 acknowledged", n)
	}
	if n := records("/v1/namespaces/ns/tables/ev/plan"); n != 0 {
		t.Errorf("a default plan lists %v records, want 0 (nothing committed)", n)
	}
}
