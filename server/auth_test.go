package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/openapi"
)

// TestAccessDeclared: every route echo serves declares what its caller
// needs, and every declaration is of a route echo serves.
func TestAccessDeclared(t *testing.T) {
	s := New(Options{Registry: prometheus.NewRegistry()})
	served := map[string]bool{}
	for _, r := range s.echo.Routes() {
		served[r.Method+" "+r.Path] = true
	}
	if len(served) < 40 {
		t.Fatalf("only %d routes: %v", len(served), slices.Sorted(maps.Keys(served)))
	}
	for _, route := range slices.Sorted(maps.Keys(served)) {
		if _, ok := access[route]; !ok {
			t.Errorf("route %s declares no role in access (server/access.go)", route)
		}
	}
	for _, route := range slices.Sorted(maps.Keys(access)) {
		if !served[route] {
			t.Errorf("access declares %s, which no route serves", route)
		}
	}
	if writeEventNeed != access["POST /tables/:table"] {
		t.Errorf("the single-write fast path needs %+v, echo's route %+v", writeEventNeed, access["POST /tables/:table"])
	}
	// A route registered without a declaration is refused, not served.
	s.echo.GET("/v1/undeclared", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	s.routes["GET /v1/undeclared"] = true
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/undeclared", nil))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("an undeclared route answered %d, want 500", w.Code)
	}
}

// TestAccessDocumented: the OpenAPI document says what each operation
// takes (x-zombi-role), as access declares it.
func TestAccessDocumented(t *testing.T) {
	doc, err := openapi.GetSwagger()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			route := method + " " + regexp.MustCompile(`\{([^}]+)\}`).ReplaceAllString(path, ":$1")
			seen++
			n, ok := access[route]
			if !ok {
				t.Errorf("%s (%s) is documented but declares no role", route, op.OperationID)
				continue
			}
			if got := op.Extensions["x-zombi-role"]; got != n.String() {
				t.Errorf("%s (%s): x-zombi-role %q, access says %q", route, op.OperationID, got, n.String())
			}
		}
	}
	if seen != len(access) {
		t.Errorf("%d operations documented, %d routes declared", seen, len(access))
	}
}

// TestAuthorize: who may call what, by the tokens configured and the
// Authorization header sent. Allowed calls may still fail (404 for a
// missing table): what counts is that they are not 401 or 403.
func TestAuthorize(t *testing.T) {
	ts := newTestServer(t, testOptions{
		tokens: []string{"r:reader", "w:writer", "a:admin", "plain", "sr:reader@sales", "sw:writer@sales",
			"sa:admin@sales", "deep:writer@x.y", "deeper:writer@a.b", "two:reader@sales", "two:writer@ops"},
		metricsTokens: []string{"m"},
	})
	do := ts.call
	for _, setup := range []struct{ method, path, body string }{
		{"POST", "/v1/namespaces", `{"namespace":["sales"]}`},
		{"POST", "/v1/namespaces", `{"namespace":["other"]}`},
		{"POST", "/v1/namespaces", `{"namespace":["a"]}`},
		{"POST", "/v1/namespaces/sales/tables", `{"name":"t","schema":{"type":"struct","fields":[{"id":1,"name":"x","type":"long","required":false}]}}`},
		{"POST", "/v1/namespaces/other/tables", `{"name":"t","schema":{"type":"struct","fields":[{"id":1,"name":"x","type":"long","required":false}]}}`},
	} {
		if w := do(setup.method, setup.path, setup.body, "Bearer a"); w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", setup.method, setup.path, w.Code, w.Body)
		}
	}
	const (
		ok    = 0 // neither 401 nor 403
		noID  = http.StatusUnauthorized
		noWay = http.StatusForbidden
	)
	commit := func(tables ...string) string {
		var parts []string
		for _, t := range tables {
			ns, name, _ := strings.Cut(t, ".")
			parts = append(parts, `{"identifier":{"namespace":["`+ns+`"],"name":"`+name+`"},"requirements":[],"updates":[]}`)
		}
		return `{"table-changes":[` + strings.Join(parts, ",") + `]}`
	}
	rename := func(from, to string) string {
		return `{"source":{"namespace":["` + strings.Split(from, ".")[0] + `"],"name":"` + strings.Split(from, ".")[1] + `"},` +
			`"destination":{"namespace":["` + strings.Split(to, ".")[0] + `"],"name":"` + strings.Split(to, ".")[1] + `"}}`
	}
	tests := []struct {
		name, method, path, body, header string
		want                             int
	}{
		{"no token", "GET", "/v1/config", "", "", noID},
		{"unknown token", "GET", "/v1/config", "", "Bearer nope", noID},
		{"token", "GET", "/v1/config", "", "Bearer r", ok},
		{"scheme in lower case", "GET", "/v1/config", "", "bearer r", ok},
		{"scheme in upper case", "GET", "/v1/config", "", "BEARER r", ok},
		{"other scheme", "GET", "/v1/config", "", "Basic r", noID},
		{"token alone", "GET", "/v1/config", "", "r", noID},
		{"empty token", "GET", "/v1/config", "", "Bearer ", noID},
		{"a token's role is not a token", "GET", "/v1/config", "", "Bearer r:reader", noID},
		{"unknown route, no token", "GET", "/v1/nothing", "", "", noID},
		{"unknown route, token", "GET", "/v1/nothing", "", "Bearer r", http.StatusNotFound},
		{"health", "GET", "/health/live", "", "", ok},
		{"token endpoint", "POST", "/v1/oauth/tokens", "", "", http.StatusBadRequest},

		{"metrics, no token", "GET", "/metrics", "", "", noID},
		{"metrics, metrics token", "GET", "/metrics", "", "Bearer m", ok},
		{"metrics, reader", "GET", "/metrics", "", "Bearer r", ok},
		{"metrics, plain token", "GET", "/metrics", "", "Bearer plain", ok},
		{"metrics, scoped admin", "GET", "/metrics", "", "Bearer sa", noWay},
		{"metrics token elsewhere", "GET", "/v1/config", "", "Bearer m", noWay},

		{"reader lists namespaces", "GET", "/v1/namespaces", "", "Bearer r", ok},
		{"scoped reader, top level", "GET", "/v1/namespaces", "", "Bearer sr", noWay},
		{"scoped reader, its parent", "GET", "/v1/namespaces?parent=sales", "", "Bearer sr", ok},
		{"scoped reader, other parent", "GET", "/v1/namespaces?parent=other", "", "Bearer sr", noWay},
		{"scoped reader, its namespace", "GET", "/v1/namespaces/sales", "", "Bearer sr", ok},
		{"scoped reader, a child", "GET", "/v1/namespaces/sales%1Feu", "", "Bearer sr", ok},
		{"scoped reader, another", "GET", "/v1/namespaces/other", "", "Bearer sr", noWay},
		{"scoped reader, a prefix of the name", "GET", "/v1/namespaces/salesx", "", "Bearer sr", noWay},
		{"scoped reader, a level with a dot", "GET", "/v1/namespaces/sales.eu", "", "Bearer sr", noWay},
		{"scoped reader, other case", "GET", "/v1/namespaces/%53ales", "", "Bearer sr", noWay},
		{"scoped reader, escaped separator", "GET", "/v1/namespaces/other%1Fsales", "", "Bearer sr", noWay},
		{"scoped reader, dot-dot level", "GET", "/v1/namespaces/sales%1F..%1Fother/tables/t", "", "Bearer sr", http.StatusBadRequest},
		{"scoped reader, encoded slash", "GET", "/v1/namespaces/sales%2F..%2Fother/tables/t", "", "Bearer sr", http.StatusBadRequest},
		{"scoped reader loads", "GET", "/v1/namespaces/sales/tables/t", "", "Bearer sr", ok},
		{"scoped reader loads elsewhere", "GET", "/v1/namespaces/other/tables/t", "", "Bearer sr", noWay},
		{"scoped reader plans", "POST", "/v1/namespaces/sales/tables/t/plan", "{}", "Bearer sr", ok},
		{"scoped reader plans elsewhere", "POST", "/v1/namespaces/other/tables/t/plan", "{}", "Bearer sr", noWay},
		{"scoped reader fetches tasks elsewhere", "POST", "/v1/namespaces/other/tables/t/tasks", "{}", "Bearer sr", noWay},
		{"scoped reader commits", "POST", "/v1/namespaces/sales/tables/t", `{"requirements":[],"updates":[]}`, "Bearer sr", noWay},
		{"two grants: reader here", "POST", "/v1/namespaces/sales/tables/t", `{"requirements":[],"updates":[]}`, "Bearer two", noWay},
		{"two grants: writer there", "POST", "/v1/namespaces/ops/tables/t", `{"requirements":[],"updates":[]}`, "Bearer two", ok},

		{"writer commits", "POST", "/v1/namespaces/sales/tables/t", `{"requirements":[],"updates":[]}`, "Bearer w", ok},
		{"scoped writer commits", "POST", "/v1/namespaces/sales/tables/t", `{"requirements":[],"updates":[]}`, "Bearer sw", ok},
		{"scoped writer commits elsewhere", "POST", "/v1/namespaces/other/tables/t", `{"requirements":[],"updates":[]}`, "Bearer sw", noWay},
		{"scoped writer drops", "DELETE", "/v1/namespaces/sales/tables/t", "", "Bearer sw", noWay},
		{"writer creates a namespace", "POST", "/v1/namespaces", `{"namespace":["new"]}`, "Bearer w", noWay},
		{"scoped admin creates one elsewhere", "POST", "/v1/namespaces", `{"namespace":["new"]}`, "Bearer sa", noWay},
		{"scoped admin creates a child", "POST", "/v1/namespaces", `{"namespace":["sales","eu"]}`, "Bearer sa", ok},
		{"scoped admin registers elsewhere", "POST", "/v1/namespaces/other/register", `{"name":"x","metadata-location":"/x"}`, "Bearer sa", noWay},
		{"writer registers", "POST", "/v1/namespaces/sales/register", `{"name":"x","metadata-location":"/x"}`, "Bearer w", noWay},

		{"transaction in scope", "POST", "/v1/transactions/commit", commit("sales.t"), "Bearer sw", ok},
		{"transaction with a table elsewhere", "POST", "/v1/transactions/commit", commit("sales.t", "other.t"), "Bearer sw", noWay},
		{"transaction by a reader", "POST", "/v1/transactions/commit", commit("sales.t"), "Bearer r", noWay},
		{"rename in scope", "POST", "/v1/tables/rename", rename("sales.t", "sales.u"), "Bearer sa", ok},
		{"rename out of scope", "POST", "/v1/tables/rename", rename("sales.t", "other.u"), "Bearer sa", noWay},
		{"rename into scope", "POST", "/v1/tables/rename", rename("other.t", "sales.u"), "Bearer sa", noWay},
		{"rename by a writer", "POST", "/v1/tables/rename", rename("sales.t", "sales.u"), "Bearer sw", noWay},
		{"view rename out of scope", "POST", "/v1/views/rename", rename("sales.v", "other.v"), "Bearer sa", noWay},
		{"view in scope", "GET", "/v1/namespaces/sales/views/v", "", "Bearer sr", ok},
		{"view elsewhere", "GET", "/v1/namespaces/other/views/v", "", "Bearer sr", noWay},

		{"ingest in scope", "POST", "/tables/sales.t", `{"x":1}`, "Bearer sw", ok},
		{"ingest, escaped dot", "POST", "/tables/sales%2Et", `{"x":1}`, "Bearer sw", ok},
		{"ingest elsewhere", "POST", "/tables/other.t", `{"x":1}`, "Bearer sw", noWay},
		{"ingest elsewhere, escaped dot", "POST", "/tables/other%2Et", `{"x":1}`, "Bearer sw", noWay},
		{"ingest into the default namespace", "POST", "/tables/t", `{"payload":1}`, "Bearer sw", noWay},
		{"bulk elsewhere", "POST", "/tables/other.t/bulk", `[]`, "Bearer sw", noWay},
		{"ingest by a reader", "POST", "/tables/sales.t", `{"x":1}`, "Bearer sr", noWay},
		{"hot read in scope", "GET", "/tables/sales.t", "", "Bearer sr", ok},
		{"hot read elsewhere", "GET", "/tables/other.t", "", "Bearer sr", noWay},
		{"watermark elsewhere", "GET", "/tables/other.t/watermark", "", "Bearer sr", noWay},
		{"auto-create under a missing ancestor", "POST", "/tables/x.y.t", `{"payload":1}`, "Bearer deep", noWay},
		{"auto-create under an existing ancestor", "POST", "/tables/a.b.c.t", `{"payload":1}`, "Bearer deeper", ok},
		{"flush by a writer", "POST", "/tables/sales.t/flush", "", "Bearer w", noWay},
		{"compact by a plain token", "POST", "/tables/sales.t/compact", "", "Bearer plain", noWay},
		{"maintain by a plain token", "POST", "/tables/sales.t/maintenance", "", "Bearer plain", noWay},
		{"compact by an admin", "POST", "/tables/sales.t/compact", "", "Bearer a", ok},
		{"compact by a scoped admin", "POST", "/tables/sales.t/compact", "", "Bearer sa", ok},
		{"compact elsewhere by a scoped admin", "POST", "/tables/other.t/compact", "", "Bearer sa", noWay},
		{"plain token drops", "DELETE", "/v1/namespaces/other/tables/t", "", "Bearer plain", ok},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(tc.method, tc.path, tc.body, tc.header)
			switch {
			case tc.want == ok && (w.Code == noID || w.Code == noWay):
				t.Errorf("%s %s: %d %s, want neither 401 nor 403", tc.method, tc.path, w.Code, w.Body)
			case tc.want != ok && w.Code != tc.want:
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, w.Code, w.Body, tc.want)
			}
			if w.Code == noID && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if w.Code == noWay && !strings.Contains(w.Body.String(), `"type":"ForbiddenException"`) {
				t.Errorf("403 body %s", w.Body)
			}
		})
	}
}

// TestAuthOff: with no credentials configured everyone may do everything,
// and the request's caller is auth.Everyone.
func TestAuthOff(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	for _, path := range []string{"/v1/config", "/metrics"} {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	if r := auth.TableRole(context.Background(), tableIdent("sales", "t")); r != auth.RoleNone {
		t.Errorf("TableRole without a caller: %v", r)
	}
	ctx := auth.NewContext(context.Background(), auth.Everyone)
	if r := auth.TableRole(ctx, tableIdent("sales", "t")); r != auth.RoleAdmin {
		t.Errorf("TableRole with auth off: %v", r)
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
		{"auth on, scoped token", []string{"u:admin@ns"}, "Bearer u", false},
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

// TestTokenRequestLog: the debug log of a token request shows how the
// client asks for its token, and nothing of its secrets.
func TestTokenRequestLog(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	const secret = "s3cret-value"
	for _, tc := range []struct {
		body, authorization, want string
	}{
		{"grant_type=client_credentials&client_id=spark&client_secret=" + secret + "&scope=catalog", "",
			`grant_type=client_credentials scope=catalog subject_token_type="" fields="[client_id client_secret grant_type scope]" authorization=none`},
		{"grant_type=" + url.QueryEscape(auth.GrantTokenExchange) + "&subject_token=" + secret + "&subject_token_type=" + url.QueryEscape(auth.TokenTypeAccess),
			"Basic " + base64.StdEncoding.EncodeToString([]byte("spark:"+secret)),
			`subject_token_type=` + auth.TokenTypeAccess + ` fields="[grant_type subject_token subject_token_type]" authorization=Basic`},
		{secret + "&grant_type=client_credentials", "Bearer " + secret, `fields="[grant_type other(1)]" authorization=Bearer`},
		{"", secret, `fields=[] authorization=malformed`},
	} {
		buf.Reset()
		r := httptest.NewRequest("POST", "/v1/oauth/tokens", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.authorization != "" {
			r.Header.Set("Authorization", tc.authorization)
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		s.logTokenRequest(r)
		got := buf.String()
		if !strings.Contains(got, tc.want) || strings.Contains(got, "s3cret") || strings.Contains(got, base64.StdEncoding.EncodeToString([]byte("spark:"+secret))) {
			t.Errorf("body %q, Authorization %q: logged\n%s\nwant it to hold %s and no secret", tc.body, tc.authorization, got, tc.want)
		}
	}
}

// call serves a request with an Authorization header, none if authorization
// is empty.
func (ts *testServer) call(method, path, body, authorization string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w
}

// TestForbiddenMessages: a 403 says who the caller is and what the call
// takes.
func TestForbiddenMessages(t *testing.T) {
	ts := newTestServer(t, testOptions{tokens: []string{"a:admin", "sr:reader@sales", "sa:admin@sales", "w:writer"}, metricsTokens: []string{"m"}})
	if w := ts.call("POST", "/v1/namespaces", `{"namespace":["sales"]}`, "Bearer a"); w.Code != http.StatusOK {
		t.Fatalf("create sales: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct{ method, path, body, token, want string }{
		{"GET", "/metrics", "", "sr", "token 2 may not do this: it takes a metrics token or a role on every namespace"},
		{"GET", "/v1/config", "", "m", "token 5 may not do this: it takes the reader role in some namespace"},
		{"GET", "/v1/namespaces", "", "sr", "token 2 may not do this: it takes the reader role on every namespace"},
		{"DELETE", "/v1/namespaces/sales", "", "w", "token 4 may not do this: it takes the admin role in namespace sales"},
		{"POST", "/v1/namespaces", `{"namespace":["sales","eu"]}`, "sr", "token 2 may not do this: it takes the admin role in each namespace the request names"},
		{"POST", "/v1/namespaces", `{"namespace":["other"]}`, "sa", "token 3 may not do this: it takes the admin role in namespace other"},
	} {
		w := ts.call(tc.method, tc.path, tc.body, "Bearer "+tc.token)
		var e struct {
			Error struct {
				Message, Type string
				Code          int
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusForbidden ||
			e.Error.Code != http.StatusForbidden || e.Error.Type != "ForbiddenException" || e.Error.Message != tc.want {
			t.Errorf("%s %s by %s: %d %s, want 403 %q", tc.method, tc.path, tc.token, w.Code, w.Body, tc.want)
		}
	}
}
