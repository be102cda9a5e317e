package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/planning"
	"github.com/zombi-db/zombi/warehouse"
)

// planningServer is a test server with a planner whose default mode is
// def, and tables ns.plain, ns.server and ns.client (the last two with
// zombi.read.planning set).
func planningServer(t *testing.T, def planning.Mode, tune ...func(*planning.Options)) *testServer {
	t.Helper()
	ts := newTestServer(t, testOptions{})
	// A local warehouse's FileIO reads any local file: the table files of
	// the test server's own warehouse too.
	wh, err := warehouse.Open(context.Background(), warehouse.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	opts := planning.Options{FS: wh.FS}
	for _, fn := range tune {
		fn(&opts)
	}
	p, err := planning.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.planner, ts.planningDefault = p, def
	ctx := context.Background()
	if _, err := ts.cat.CreateNamespace(ctx, catalog.Namespace{"ns"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	schema := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true})
	for name, mode := range map[string]string{"plain": "", "server": "server", "client": "client"} {
		props := map[string]string{}
		if mode != "" {
			props[planning.TableProperty] = mode
		}
		if _, err := ts.cat.CreateTable(ctx, catalog.CreateTableRequest{Ident: catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: name}, Schema: schema, Properties: props}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

func call(t *testing.T, h http.Handler, method, path, body string, headers ...string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, rec.Body, err)
		}
	}
	return rec, out
}

func TestPlanningConfig(t *testing.T) {
	for _, def := range []planning.Mode{planning.ModeClient, planning.ModeServer} {
		t.Run(string(def), func(t *testing.T) {
			ts := planningServer(t, def)
			_, cfg := call(t, ts, "GET", "/v1/config", "")
			var eps []string
			for _, e := range cfg["endpoints"].([]any) {
				eps = append(eps, e.(string))
			}
			for _, want := range planEndpoints {
				if !slices.Contains(eps, want) {
					t.Errorf("/v1/config does not advertise %q", want)
				}
			}
			got, _ := cfg["defaults"].(map[string]any)[planning.ConfigKey].(string)
			if want := map[planning.Mode]string{planning.ModeServer: "server"}[def]; got != want {
				t.Errorf("defaults[%s] = %q, want %q", planning.ConfigKey, got, want)
			}
			wantTable := map[string]string{"plain": map[planning.Mode]string{planning.ModeServer: "server"}[def], "server": "server", "client": "client"}
			for name, want := range wantTable {
				_, lt := call(t, ts, "GET", "/v1/namespaces/ns/tables/"+name, "")
				tc, _ := lt["config"].(map[string]any)
				if got, _ := tc[planning.ConfigKey].(string); got != want {
					t.Errorf("loadTable %s: config %s = %q, want %q", name, planning.ConfigKey, got, want)
				}
			}
		})
	}
	// Without a planner nothing is advertised and planning is 406.
	ts := newTestServer(t, testOptions{})
	_, cfg := call(t, ts, "GET", "/v1/config", "")
	for _, e := range cfg["endpoints"].([]any) {
		if strings.Contains(e.(string), "/plan") || strings.HasSuffix(e.(string), "/tasks") {
			t.Errorf("advertised %q without a planner", e)
		}
	}
	if rec, _ := call(t, ts, "POST", "/v1/namespaces/ns/tables/t/plan", `{}`); rec.Code != http.StatusNotAcceptable {
		t.Errorf("plan without a planner: %d, want 406", rec.Code)
	}
}

func TestPlanningEndpoints(t *testing.T) {
	ts := planningServer(t, planning.ModeClient)
	rec, plan := call(t, ts, "POST", "/v1/namespaces/ns/tables/plain/plan", `{"filter":{"type":"gt","term":"id","value":1},"select":["id","_pos"]}`)
	if rec.Code != http.StatusOK || plan["status"] != "completed" || plan["plan-id"] == "" {
		t.Fatalf("plan: %d %v", rec.Code, plan)
	}
	id := plan["plan-id"].(string)
	base := "/v1/namespaces/ns/tables/plain/plan/"
	if rec, res := call(t, ts, "GET", base+id, ""); rec.Code != http.StatusOK || res["status"] != "completed" {
		t.Errorf("fetchPlanningResult: %d %v", rec.Code, res)
	}
	if rec, _ := call(t, ts, "DELETE", base+id, "", "Idempotency-Key", "k1"); rec.Code != http.StatusNoContent {
		t.Errorf("cancel: %d", rec.Code)
	}
	if rec, res := call(t, ts, "GET", base+id, ""); rec.Code != http.StatusOK || res["status"] != "cancelled" {
		t.Errorf("fetchPlanningResult after cancel: %d %v", rec.Code, res)
	}
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		typ                      string
	}{
		{"unknown plan", "GET", base + "nope", "", nil, 404, "NoSuchPlanIdException"},
		{"cancel unknown plan", "DELETE", base + "nope", "", nil, 404, "NoSuchPlanIdException"},
		{"plan of another table", "GET", "/v1/namespaces/ns/tables/server/plan/" + id, "", nil, 404, "NoSuchPlanIdException"},
		{"unknown plan task", "POST", "/v1/namespaces/ns/tables/plain/tasks", `{"plan-task":"nope.1"}`, nil, 404, "NoSuchPlanTaskException"},
		{"no plan task", "POST", "/v1/namespaces/ns/tables/plain/tasks", `{}`, nil, 400, "BadRequestException"},
		{"missing table", "POST", "/v1/namespaces/ns/tables/missing/plan", `{}`, nil, 404, "NoSuchTableException"},
		{"bad filter", "POST", "/v1/namespaces/ns/tables/plain/plan", `{"filter":{"type":"eq","term":"nope","value":1}}`, nil, 400, "BadRequestException"},
		{"bad idempotency key", "POST", "/v1/namespaces/ns/tables/plain/plan", `{}`, []string{"Idempotency-Key", "a b"}, 400, "BadRequestException"},
		{"not JSON", "POST", "/v1/namespaces/ns/tables/plain/plan", `{`, nil, 400, "BadRequestException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, body := call(t, ts, tc.method, tc.path, tc.body, tc.headers...)
			e, _ := body["error"].(map[string]any)
			if rec.Code != tc.status || e["type"] != tc.typ {
				t.Errorf("%d %v, want %d %s", rec.Code, body, tc.status, tc.typ)
			}
		})
	}
	// The same key and request: the same plan.
	a, first := call(t, ts, "POST", "/v1/namespaces/ns/tables/plain/plan", `{}`, "Idempotency-Key", "same")
	b, again := call(t, ts, "POST", "/v1/namespaces/ns/tables/plain/plan", `{}`, "Idempotency-Key", "same")
	if a.Code != 200 || b.Code != 200 || first["plan-id"] != again["plan-id"] {
		t.Errorf("repeat with Idempotency-Key: %v then %v", first, again)
	}
	if rec, body := call(t, ts, "POST", "/v1/namespaces/ns/tables/plain/plan", `{"case-sensitive":false}`, "Idempotency-Key", "same"); rec.Code != 422 {
		t.Errorf("the key with another request: %d %v, want 422", rec.Code, body)
	}
}

// TestPlanningOverload: a plan beyond the planner's limits is 503 with
// Retry-After, in the Iceberg error format.
func TestPlanningOverload(t *testing.T) {
	ts := planningServer(t, planning.ModeClient, func(o *planning.Options) { o.MaxPlanBytes = 1 })
	rec, body := call(t, ts, "POST", "/v1/namespaces/ns/tables/plain/plan", `{}`)
	e, _ := body["error"].(map[string]any)
	if rec.Code != http.StatusServiceUnavailable || e["type"] != "ServiceUnavailableException" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("plan beyond the memory limit: %d %v (Retry-After %q), want 503 with Retry-After", rec.Code, body, rec.Header().Get("Retry-After"))
	}
}
