package security

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
	"github.com/zombi-db/zombi/openapi"
)

// caller is one principal of the role matrix: a static token with a
// grant, or none.
type caller struct {
	name, token string
	// role is the caller's role inside and outside the namespace
	// "inside" (reader, writer, admin; "" for none).
	inside, outside string
}

var callers = []caller{
	{name: "anonymous"},
	{name: "reader", token: "r", inside: "reader", outside: "reader"},
	{name: "writer", token: "w", inside: "writer", outside: "writer"},
	{name: "admin", token: "a", inside: "admin", outside: "admin"},
	{name: "writer@inside", token: "sw", inside: "writer"},
	{name: "admin@inside", token: "sa", inside: "admin"},
}

var roleRank = map[string]int{"": 0, "reader": 1, "writer": 2, "admin": 3}

const schema = `{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"x","type":"long","required":false}]}`

// target is one namespace a matrix request acts in; n numbers the
// request, for the names of what it creates.
type target struct {
	ns string
	n  int
}

// call is a request of the matrix: its method, path and body, for a
// target; setup, if any, runs first as the admin (a table for a drop).
type call struct {
	method string
	path   func(t target) string
	body   func(t target) string
	// bodyOf, if set, makes the body from what setup left in m.
	bodyOf func(m *matrix, tg target) string
	setup  func(t *testing.T, m *matrix, tg target)
}

// matrix is the running server and what the requests act on.
type matrix struct {
	base string
	// metadata maps a table to a metadata file of a dropped twin, which
	// register may take.
	metadata map[string]string
}

func (m *matrix) admin(t *testing.T, want int, method, path, body string) []byte {
	t.Helper()
	return zombitest.MustCall(t, want, method, m.base+path, body, "Authorization", "Bearer a")
}

func fixed(s string) func(target) string { return func(target) string { return s } }

func nsPath(format string) func(target) string {
	return func(tg target) string { return strings.ReplaceAll(format, "{ns}", tg.ns) }
}

func numbered(format string) func(target) string {
	return func(tg target) string {
		return strings.ReplaceAll(strings.ReplaceAll(format, "{ns}", tg.ns), "{n}", fmt.Sprint(tg.n))
	}
}

func viewJSON(name string) string {
	return `{"name":"` + name + `","schema":` + schema + `,"view-version":{"version-id":1,"schema-id":0,"timestamp-ms":1700000000000,` +
		`"summary":{},"representations":[{"type":"sql","sql":"select 1","dialect":"spark"}],"default-namespace":["inside"]}}`
}

// calls has a request for every operation of the OpenAPI document, by
// method and route template.
var calls = map[string]call{
	"GET /health/live":      {method: "GET", path: fixed("/health/live")},
	"GET /health/ready":     {method: "GET", path: fixed("/health/ready")},
	"GET /metrics":          {method: "GET", path: fixed("/metrics")},
	"POST /v1/oauth/tokens": {method: "POST", path: fixed("/v1/oauth/tokens")},
	"GET /v1/config":        {method: "GET", path: fixed("/v1/config")},

	"GET /v1/namespaces":                        {method: "GET", path: nsPath("/v1/namespaces?parent={ns}")},
	"POST /v1/namespaces":                       {method: "POST", path: fixed("/v1/namespaces"), body: numbered(`{"namespace":["{ns}","new{n}"]}`)},
	"GET /v1/namespaces/:namespace":             {method: "GET", path: nsPath("/v1/namespaces/{ns}")},
	"HEAD /v1/namespaces/:namespace":            {method: "HEAD", path: nsPath("/v1/namespaces/{ns}")},
	"DELETE /v1/namespaces/:namespace":          {method: "DELETE", path: numbered("/v1/namespaces/{ns}%1Fdoomed{n}"), setup: newNamespace},
	"POST /v1/namespaces/:namespace/properties": {method: "POST", path: nsPath("/v1/namespaces/{ns}/properties"), body: fixed(`{"updates":{"k":"v"}}`)},

	"GET /v1/namespaces/:namespace/tables":    {method: "GET", path: nsPath("/v1/namespaces/{ns}/tables")},
	"POST /v1/namespaces/:namespace/tables":   {method: "POST", path: nsPath("/v1/namespaces/{ns}/tables"), body: numbered(`{"name":"c{n}","schema":` + schema + `}`)},
	"POST /v1/namespaces/:namespace/register": {method: "POST", path: nsPath("/v1/namespaces/{ns}/register"), bodyOf: registerBody, setup: droppedTable},
	"GET /v1/namespaces/:namespace/views":     {method: "GET", path: nsPath("/v1/namespaces/{ns}/views")},
	"POST /v1/namespaces/:namespace/views":    {method: "POST", path: nsPath("/v1/namespaces/{ns}/views"), body: func(tg target) string { return viewJSON(fmt.Sprintf("cv%d", tg.n)) }},
	"POST /v1/namespaces/:namespace/register-view": {method: "POST", path: nsPath("/v1/namespaces/{ns}/register-view"),
		body: numbered(`{"name":"rv{n}","metadata-location":"/nowhere/{n}.metadata.json"}`)},

	"GET /v1/namespaces/:namespace/tables/:table":    {method: "GET", path: nsPath("/v1/namespaces/{ns}/tables/t")},
	"HEAD /v1/namespaces/:namespace/tables/:table":   {method: "HEAD", path: nsPath("/v1/namespaces/{ns}/tables/t")},
	"POST /v1/namespaces/:namespace/tables/:table":   {method: "POST", path: nsPath("/v1/namespaces/{ns}/tables/t"), body: fixed(`{"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}`)},
	"DELETE /v1/namespaces/:namespace/tables/:table": {method: "DELETE", path: numbered("/v1/namespaces/{ns}/tables/d{n}"), setup: newTable},

	"POST /v1/namespaces/:namespace/tables/:table/metrics":         {method: "POST", path: nsPath("/v1/namespaces/{ns}/tables/t/metrics"), body: fixed(`{"report-type":"scan-report"}`)},
	"POST /v1/namespaces/:namespace/tables/:table/plan":            {method: "POST", path: nsPath("/v1/namespaces/{ns}/tables/t/plan"), body: fixed(`{}`)},
	"GET /v1/namespaces/:namespace/tables/:table/plan/:plan-id":    {method: "GET", path: nsPath("/v1/namespaces/{ns}/tables/t/plan/nope")},
	"DELETE /v1/namespaces/:namespace/tables/:table/plan/:plan-id": {method: "DELETE", path: nsPath("/v1/namespaces/{ns}/tables/t/plan/nope")},
	"POST /v1/namespaces/:namespace/tables/:table/tasks":           {method: "POST", path: nsPath("/v1/namespaces/{ns}/tables/t/tasks"), body: fixed(`{"plan-task":"nope.0"}`)},
	// On the local warehouse a permitted call is 400 (no vending);
	// server's TestVendedCredentials has what each role's keys may do.
	"GET /v1/namespaces/:namespace/tables/:table/credentials": {method: "GET", path: nsPath("/v1/namespaces/{ns}/tables/t/credentials")},
	// On the embedded shape's local warehouse a permitted call is 400 (no
	// signing); server's TestRemoteSigning has the roles of S3 methods.
	"POST /v1/namespaces/:namespace/tables/:table/sign": {method: "POST", path: nsPath("/v1/namespaces/{ns}/tables/t/sign"),
		body: fixed(`{"region":"us-east-1","method":"GET","uri":"http://127.0.0.1:1/b/k","headers":{}}`)},

	"GET /v1/namespaces/:namespace/views/:view":    {method: "GET", path: nsPath("/v1/namespaces/{ns}/views/v")},
	"HEAD /v1/namespaces/:namespace/views/:view":   {method: "HEAD", path: nsPath("/v1/namespaces/{ns}/views/v")},
	"POST /v1/namespaces/:namespace/views/:view":   {method: "POST", path: nsPath("/v1/namespaces/{ns}/views/v"), body: fixed(`{"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}`)},
	"DELETE /v1/namespaces/:namespace/views/:view": {method: "DELETE", path: numbered("/v1/namespaces/{ns}/views/dv{n}"), setup: newView},

	"POST /v1/tables/rename": {method: "POST", path: fixed("/v1/tables/rename"), setup: newTable,
		body: numbered(`{"source":{"namespace":["{ns}"],"name":"d{n}"},"destination":{"namespace":["{ns}"],"name":"moved{n}"}}`)},
	"POST /v1/views/rename": {method: "POST", path: fixed("/v1/views/rename"), setup: newView,
		body: numbered(`{"source":{"namespace":["{ns}"],"name":"dv{n}"},"destination":{"namespace":["{ns}"],"name":"movedv{n}"}}`)},
	"POST /v1/transactions/commit": {method: "POST", path: fixed("/v1/transactions/commit"),
		body: nsPath(`{"table-changes":[{"identifier":{"namespace":["{ns}"],"name":"t"},"requirements":[],"updates":[{"action":"set-properties","updates":{"tx":"1"}}]}]}`)},

	"POST /tables/:table":            {method: "POST", path: nsPath("/tables/{ns}.events"), body: fixed(`{"payload":1}`)},
	"GET /tables/:table":             {method: "GET", path: nsPath("/tables/{ns}.events")},
	"POST /tables/:table/bulk":       {method: "POST", path: nsPath("/tables/{ns}.events/bulk"), body: fixed(`[{"payload":2}]`)},
	"GET /tables/:table/watermark":   {method: "GET", path: nsPath("/tables/{ns}.events/watermark")},
	"POST /tables/:table/dlq/replay": {method: "POST", path: nsPath("/tables/{ns}.events/dlq/replay")},
	// The stream ends after the event the setup wrote.
	"GET /tables/:table/stream":                               {method: "GET", path: nsPath("/tables/{ns}.events/stream?from=0&limit=1")},
	"POST /tables/:table/flush":                               {method: "POST", path: nsPath("/tables/{ns}.events/flush")},
	"POST /tables/:table/compact":                             {method: "POST", path: nsPath("/tables/{ns}.events/compact")},
	"POST /tables/:table/maintenance":                         {method: "POST", path: nsPath("/tables/{ns}.events/maintenance")},
	"GET /v1/zombi/nodes":                                     {method: "GET", path: fixed("/v1/zombi/nodes")},
	"GET /tables/:table/activity":                             {method: "GET", path: nsPath("/tables/{ns}.events/activity")},
	"GET /v1/zombi/whoami":                                    {method: "GET", path: fixed("/v1/zombi/whoami")},
	"GET /v1/zombi/namespaces/:namespace/tables/:table/files": {method: "GET", path: nsPath("/v1/zombi/namespaces/{ns}/tables/t/files")},
	"GET /ui/":       {method: "GET", path: fixed("/ui/")},
	"GET /ui/:asset": {method: "GET", path: fixed("/ui/app.js")},
}

func newNamespace(t *testing.T, m *matrix, tg target) {
	m.admin(t, 200, "POST", "/v1/namespaces", fmt.Sprintf(`{"namespace":[%q,"doomed%d"]}`, tg.ns, tg.n))
}

func newTable(t *testing.T, m *matrix, tg target) {
	m.admin(t, 200, "POST", "/v1/namespaces/"+tg.ns+"/tables", fmt.Sprintf(`{"name":"d%d","schema":%s}`, tg.n, schema))
}

func newView(t *testing.T, m *matrix, tg target) {
	m.admin(t, 200, "POST", "/v1/namespaces/"+tg.ns+"/views", viewJSON(fmt.Sprintf("dv%d", tg.n)))
}

var metadataLocation = regexp.MustCompile(`"metadata-location":"([^"]+)"`)

// droppedTable makes a table and drops it without purging: its metadata
// file is one register may take.
func droppedTable(t *testing.T, m *matrix, tg target) {
	b := m.admin(t, 200, "POST", "/v1/namespaces/"+tg.ns+"/tables", fmt.Sprintf(`{"name":"r%d","schema":%s}`, tg.n, schema))
	loc := metadataLocation.FindSubmatch(b)
	if loc == nil {
		t.Fatalf("no metadata location in %s", b)
	}
	m.admin(t, 204, "DELETE", fmt.Sprintf("/v1/namespaces/%s/tables/r%d", tg.ns, tg.n), "")
	m.metadata[fmt.Sprintf("%s.r%d", tg.ns, tg.n)] = string(loc[1])
}

func registerBody(m *matrix, tg target) string {
	return fmt.Sprintf(`{"name":"reg%d","metadata-location":%q}`, tg.n, m.metadata[fmt.Sprintf("%s.r%d", tg.ns, tg.n)])
}

// livePath is a catalog path in the live catalog view, which serves
// every path under /v1/ also under /v1/live/ (docs/live.md).
func livePath(path string) string { return "/v1/live/" + strings.TrimPrefix(path, "/v1/") }

// routeOf is echo's template of an OpenAPI path.
func routeOf(method, path string) string {
	return method + " " + regexp.MustCompile(`\{([^}]+)\}`).ReplaceAllString(path, ":$1")
}

// TestRoleMatrix: every operation of the OpenAPI document, called by an
// anonymous caller, a reader, a writer and an admin on every namespace,
// and a writer and an admin of namespace "inside" inside and outside it,
// against a real server; catalog operations also through the live view. Each is refused (401 without credentials, 403
// with) exactly when the operation's declared role (x-zombi-role, which
// the server's unit tests hold to its access table) is above the
// caller's role in the namespace the call acts in.
func TestRoleMatrix(t *testing.T) {
	inst := zombitest.Start(t, "--auth-token", "r:reader", "--auth-token", "w:writer", "--auth-token", "a:admin",
		"--auth-token", "sw:writer@inside", "--auth-token", "sa:admin@inside", "--flush-interval", "1h")
	m := &matrix{base: inst.URL, metadata: map[string]string{}}
	for _, ns := range []string{"inside", "outside"} {
		m.admin(t, 200, "POST", "/v1/namespaces", `{"namespace":["`+ns+`"]}`)
		m.admin(t, 200, "POST", "/v1/namespaces/"+ns+"/tables", `{"name":"t","schema":`+schema+`}`)
		m.admin(t, 200, "POST", "/v1/namespaces/"+ns+"/views", viewJSON("v"))
		m.admin(t, 202, "POST", "/tables/"+ns+".events", `{"payload":0}`)
	}

	doc, err := openapi.GetSwagger()
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			role, _ := op.Extensions["x-zombi-role"].(string)
			declared[routeOf(method, path)] = role
		}
	}
	n := 0
	for _, route := range slices.Sorted(maps.Keys(declared)) {
		c, ok := calls[route]
		if !ok {
			t.Errorf("%s: the role matrix has no request for it", route)
			continue
		}
		decl := declared[route]
		need := strings.Fields(decl)[0] // reader, writer, admin; none; a (--metrics-token...)
		everyNamespace := strings.HasPrefix(strings.TrimPrefix(decl, need+" "), "on every namespace")
		inNamespace := strings.Contains(decl, "namespace") && !strings.Contains(decl, "any namespace") && !everyNamespace
		namespaces := []string{"inside", "outside"}
		for _, who := range callers {
			for _, ns := range namespaces {
				for _, live := range []bool{false, true} {
					if live && !strings.HasPrefix(c.path(target{}), "/v1/") {
						continue // the live view has catalog paths only
					}
					n++
					tg := target{ns: ns, n: n}
					if c.setup != nil {
						c.setup(t, m, tg)
					}
					role := who.outside
					if ns == "inside" && inNamespace {
						role = who.inside
					}
					var allowed bool
					switch {
					case need == "none":
						allowed = true
					case need == "a": // /metrics: a role on every namespace
						allowed = who.outside != ""
					case everyNamespace: // the node list: the role on every namespace
						allowed = roleRank[who.outside] >= roleRank[need]
					case !inNamespace: // config: a role anywhere
						allowed = roleRank[who.inside] >= roleRank[need]
					default:
						allowed = roleRank[role] >= roleRank[need]
					}
					body := ""
					if c.body != nil {
						body = c.body(tg)
					}
					if c.bodyOf != nil {
						body = c.bodyOf(m, tg)
					}
					var headers []string
					if who.token != "" {
						headers = []string{"Authorization", "Bearer " + who.token}
					}
					path := c.path(tg)
					if live {
						path = livePath(path)
					}
					status, hdr, b := zombitest.Call(t, c.method, m.base+path, body, headers...)
					desc := fmt.Sprintf("%s %s (%s) by %s", c.method, path, decl, who.name)
					switch {
					case allowed && (status == 401 || status == 403 || status >= 500):
						t.Errorf("%s: %d %s, want it allowed", desc, status, b)
					case !allowed && who.token == "" && (status != 401 || hdr.Get("WWW-Authenticate") == ""):
						t.Errorf("%s: %d %s, want 401 with WWW-Authenticate", desc, status, b)
					case !allowed && who.token != "" && status != 403:
						t.Errorf("%s: %d %s, want 403", desc, status, b)
					case !allowed && c.method != "HEAD" && !strings.Contains(string(b), "Exception"):
						t.Errorf("%s: %d %s, want the Iceberg error JSON", desc, status, b)
					}
				}
			}
		}
	}
	for route := range calls {
		if _, ok := declared[route]; !ok {
			t.Errorf("the role matrix calls %s, which the OpenAPI document does not have", route)
		}
	}
	t.Logf("%d calls", n)
}
