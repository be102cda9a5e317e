package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIdempotencyKey: a retried mutation with the same key replays the
// first response and changes nothing; deterministic failures replay too.
func TestIdempotencyKey(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			base := sh.start(t).URL
			key := []string{"Idempotency-Key", "create-ns-1"}
			first := mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["idem"],"properties":{"a":"1"}}`, key...)
			status, hdr, again := call(t, "POST", base+"/v1/namespaces", `{"namespace":["idem"],"properties":{"a":"1"}}`, key...)
			if status != 200 || string(again) != strings.TrimSpace(string(first)) || hdr.Get("Idempotency-Replayed") != "true" {
				t.Fatalf("retry: status %d replayed=%q body %s, want 200 and the first body %s", status, hdr.Get("Idempotency-Replayed"), again, first)
			}
			// Without the key the same request is a conflict.
			mustCall(t, 409, "POST", base+"/v1/namespaces", `{"namespace":["idem"]}`)

			mustCall(t, 200, "POST", base+"/v1/namespaces/idem/tables", fmt.Sprintf(simpleTable, "t"))
			before := loadTable(t, base, "idem", "t")
			commit := `{"requirements":[{"type":"assert-table-uuid","uuid":"` + before.Metadata.UUID + `"}],"updates":[{"action":"set-properties","updates":{"n":"1"}}]}`
			ck := []string{"Idempotency-Key", "commit-1"}
			r1 := mustCall(t, 200, "POST", base+"/v1/namespaces/idem/tables/t", commit, ck...)
			r2 := mustCall(t, 200, "POST", base+"/v1/namespaces/idem/tables/t", commit, ck...)
			var c1, c2 struct {
				Loc string `json:"metadata-location"`
			}
			_ = json.Unmarshal(r1, &c1)
			_ = json.Unmarshal(r2, &c2)
			if c1.Loc == "" || c1.Loc != c2.Loc {
				t.Fatalf("replayed commit has metadata-location %q, first %q", c2.Loc, c1.Loc)
			}
			if after := loadTable(t, base, "idem", "t"); after.MetadataLocation != c1.Loc {
				t.Fatalf("a replayed commit moved the table again: %s, want %s", after.MetadataLocation, c1.Loc)
			}

			// A deterministic failure is replayed even after the cause is gone.
			fk := []string{"Idempotency-Key", "drop-missing"}
			mustCall(t, 404, "DELETE", base+"/v1/namespaces/idem/tables/later", "", fk...)
			mustCall(t, 200, "POST", base+"/v1/namespaces/idem/tables", fmt.Sprintf(simpleTable, "later"))
			mustCall(t, 404, "DELETE", base+"/v1/namespaces/idem/tables/later", "", fk...)
			mustCall(t, 204, "HEAD", base+"/v1/namespaces/idem/tables/later", "")

			// The same key on another request is refused.
			mustCall(t, 422, "DELETE", base+"/v1/namespaces/idem/tables/t", "", key...)
		})
	}
}

// TestConfigAndETag covers /v1/config and conditional loads.
func TestConfigAndETag(t *testing.T) {
	base := shapes[0].start(t).URL
	var cfg struct {
		Defaults  map[string]string `json:"defaults"`
		Overrides map[string]string `json:"overrides"`
		Endpoints []string          `json:"endpoints"`
		Lifetime  string            `json:"idempotency-key-lifetime"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/config?warehouse=x", ""), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Lifetime != "PT1800S" || len(cfg.Endpoints) < 16 || cfg.Defaults == nil || cfg.Overrides == nil {
		t.Fatalf("config %+v", cfg)
	}
	for _, ep := range []string{"POST /v1/{prefix}/transactions/commit", "POST /v1/{prefix}/namespaces/{namespace}/register", "POST /v1/{prefix}/tables/rename"} {
		found := false
		for _, e := range cfg.Endpoints {
			found = found || e == ep
		}
		if !found {
			t.Errorf("config endpoints lack %q", ep)
		}
	}

	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["etag"]}`)
	mustCall(t, 200, "POST", base+"/v1/namespaces/etag/tables", fmt.Sprintf(simpleTable, "t"))
	status, hdr, _ := call(t, "GET", base+"/v1/namespaces/etag/tables/t", "")
	tag := hdr.Get("ETag")
	if status != 200 || tag == "" {
		t.Fatalf("load: status %d etag %q", status, tag)
	}
	if status, _, body := call(t, "GET", base+"/v1/namespaces/etag/tables/t", "", "If-None-Match", tag); status != 304 || len(body) != 0 {
		t.Fatalf("If-None-Match current: status %d body %q, want 304 and no body", status, body)
	}
	status, hdr, _ = call(t, "GET", base+"/v1/namespaces/etag/tables/t?snapshots=refs", "", "If-None-Match", tag)
	if status != 200 || hdr.Get("ETag") == tag {
		t.Fatalf("a refs-only load must not match the all-snapshots ETag: status %d", status)
	}
	mustCall(t, 200, "POST", base+"/v1/namespaces/etag/tables/t", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"x":"y"}}]}`)
	status, hdr, _ = call(t, "GET", base+"/v1/namespaces/etag/tables/t", "", "If-None-Match", tag)
	if status != 200 || hdr.Get("ETag") == tag {
		t.Fatalf("after a commit: status %d etag %q, want 200 and a new ETag", status, hdr.Get("ETag"))
	}
}

// TestNamespacesAndTables covers nested namespaces, pagination, rename,
// register and drop with purge on the local warehouse.
func TestNamespacesAndTables(t *testing.T) {
	inst := shapes[0].start(t)
	base := inst.URL
	for _, ns := range [][]string{{"a"}, {"a", "b"}, {"a", "b", "c"}, {"ab"}, {"a", "x"}} {
		b, _ := json.Marshal(map[string]any{"namespace": ns})
		mustCall(t, 200, "POST", base+"/v1/namespaces", string(b))
	}
	mustCall(t, 404, "POST", base+"/v1/namespaces", `{"namespace":["zz","child"]}`)

	var page struct {
		Namespaces [][]string `json:"namespaces"`
		Next       string     `json:"next-page-token"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces?parent=a", ""), &page); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(page.Namespaces) != "[[a b] [a x]]" {
		t.Fatalf("children of a: %v", page.Namespaces)
	}
	// Nested namespaces by %1F in the path and in parent.
	mustCall(t, 200, "GET", base+"/v1/namespaces/a%1Fb%1Fc", "")
	mustCall(t, 200, "GET", base+"/v1/namespaces?parent=a%1Fb", "")

	// Pagination over five tables, two per page.
	for i := 0; i < 5; i++ {
		mustCall(t, 200, "POST", base+"/v1/namespaces/a%1Fb/tables", fmt.Sprintf(simpleTable, fmt.Sprintf("t%d", i)))
	}
	var names []string
	tok := ""
	for pages := 0; ; pages++ {
		var p struct {
			IDs  []struct{ Name string } `json:"identifiers"`
			Next string                  `json:"next-page-token"`
		}
		if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/a%1Fb/tables?pageSize=2&pageToken="+url.QueryEscape(tok), ""), &p); err != nil {
			t.Fatal(err)
		}
		for _, id := range p.IDs {
			names = append(names, id.Name)
		}
		if p.Next == "" || pages > 5 {
			break
		}
		tok = p.Next
	}
	if fmt.Sprint(names) != "[t0 t1 t2 t3 t4]" {
		t.Fatalf("paged tables: %v", names)
	}

	// Rename across namespaces keeps the metadata.
	before := loadTable(t, base, "a%1Fb", "t0")
	mustCall(t, 204, "POST", base+"/v1/tables/rename", `{"source":{"namespace":["a","b"],"name":"t0"},"destination":{"namespace":["ab"],"name":"moved"}}`)
	mustCall(t, 404, "GET", base+"/v1/namespaces/a%1Fb/tables/t0", "")
	if after := loadTable(t, base, "ab", "moved"); after.MetadataLocation != before.MetadataLocation {
		t.Fatalf("rename changed the metadata location")
	}
	mustCall(t, 409, "POST", base+"/v1/tables/rename", `{"source":{"namespace":["ab"],"name":"moved"},"destination":{"namespace":["a","b"],"name":"t1"}}`)

	// A second name for a live table's metadata would make two tables of
	// one location and UUID: refused. A dropped (not purged) table's
	// metadata registers, once; overwrite moves the name.
	reg := fmt.Sprintf(`{"name":"again","metadata-location":%q}`, before.MetadataLocation)
	mustCall(t, 400, "POST", base+"/v1/namespaces/ab/register", reg)
	t1 := loadTable(t, base, "a%1Fb", "t1")
	mustCall(t, 204, "DELETE", base+"/v1/namespaces/a%1Fb/tables/t1", "")
	reg = fmt.Sprintf(`{"name":"again","metadata-location":%q}`, t1.MetadataLocation)
	mustCall(t, 200, "POST", base+"/v1/namespaces/ab/register", reg)
	mustCall(t, 409, "POST", base+"/v1/namespaces/ab/register", reg)
	t4 := loadTable(t, base, "a%1Fb", "t4")
	mustCall(t, 204, "DELETE", base+"/v1/namespaces/a%1Fb/tables/t4", "")
	mustCall(t, 200, "POST", base+"/v1/namespaces/ab/register", fmt.Sprintf(`{"name":"again","metadata-location":%q,"overwrite":true}`, t4.MetadataLocation))
	if got := loadTable(t, base, "ab", "again"); got.MetadataLocation != t4.MetadataLocation {
		t.Fatalf("register overwrite: %s, want %s", got.MetadataLocation, t4.MetadataLocation)
	}
	mustCall(t, 400, "POST", base+"/v1/namespaces/ab/register", `{"name":"evil","metadata-location":"file:///etc/passwd"}`)

	// Drop with purge removes the table's directory; without purge the
	// files stay.
	t2 := loadTable(t, base, "a%1Fb", "t2")
	t3 := loadTable(t, base, "a%1Fb", "t3")
	mustCall(t, 204, "DELETE", base+"/v1/namespaces/a%1Fb/tables/t2?purgeRequested=true", "")
	mustCall(t, 204, "DELETE", base+"/v1/namespaces/a%1Fb/tables/t3", "")
	if _, err := os.Stat(localPath(t2.MetadataLocation)); !os.IsNotExist(err) {
		t.Fatalf("purged table's metadata still exists: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(localPath(t2.MetadataLocation)))); !os.IsNotExist(err) {
		t.Fatalf("purged table's directory still exists: %v", err)
	}
	if _, err := os.Stat(localPath(t3.MetadataLocation)); err != nil {
		t.Fatalf("a drop without purge deleted files: %v", err)
	}
}

func localPath(loc string) string { return strings.TrimPrefix(loc, "file://") }

// TestOps covers the health endpoints and the Prometheus metrics.
func TestOps(t *testing.T) {
	base := shapes[0].start(t).URL
	if b := mustCall(t, 200, "GET", base+"/health/live", ""); !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("live: %s", b)
	}
	if b := mustCall(t, 200, "GET", base+"/health/ready", ""); !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("ready: %s", b)
	}
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["ops"]}`)
	mustCall(t, 200, "POST", base+"/v1/namespaces/ops/tables", fmt.Sprintf(simpleTable, "t"))
	mustCall(t, 200, "POST", base+"/v1/namespaces/ops/tables/t", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"a":"b"}}]}`)
	mustCall(t, 409, "POST", base+"/v1/namespaces/ops/tables/t", `{"requirements":[{"type":"assert-current-schema-id","current-schema-id":5}],"updates":[]}`)
	m := string(mustCall(t, 200, "GET", base+"/metrics", ""))
	for _, want := range []string{
		`zombi_http_requests_total{code="409",method="POST",route="/v1/namespaces/:namespace/tables/:table"} 1`,
		`zombi_catalog_commits_total{outcome="ok"} 1`,
		`zombi_catalog_commits_total{outcome="conflict"} 1`,
		`zombi_http_request_duration_seconds_bucket{method="GET",route="/health/ready"`,
		`zombi_catalog_commit_duration_seconds_count 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestNamespaceLocation: a namespace is answered with the directory its
// tables go to, so a client that places tables itself (Trino: stage-create
// at <namespace location>/<name>-<uuid>, then commit) lands inside the
// warehouse; a location the user set is answered as set.
func TestNamespaceLocation(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			base := sh.start(t).URL
			nsLocation := func(ns string) string {
				t.Helper()
				var r struct {
					Properties map[string]string `json:"properties"`
				}
				if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/"+ns, ""), &r); err != nil {
					t.Fatal(err)
				}
				return r.Properties["location"]
			}
			mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["loc"],"properties":{"a":"1"}}`)
			mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["loc","in ner"]}`)
			mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["own"],"properties":{"location":"s3://elsewhere/own"}}`)

			loc := nsLocation("loc")
			mustCall(t, 200, "POST", base+"/v1/namespaces/loc/tables", fmt.Sprintf(simpleTable, "t"))
			if tl := loadTableLocation(t, base, "loc", "t"); loc == "" || !strings.HasPrefix(tl, loc+"/t-") {
				t.Fatalf("namespace location %q; a table the catalog placed is at %q", loc, tl)
			}
			if inner := nsLocation("loc%1Fin%20ner"); inner != loc+"/in_ner" {
				t.Fatalf("nested namespace location %q, want %q", inner, loc+"/in_ner")
			}
			if own := nsLocation("own"); own != "s3://elsewhere/own" {
				t.Fatalf("namespace with its own location answered %q", own)
			}

			// Trino's create: stage at <namespace location>/<name>-<uuid>, then commit.
			want := loc + "/staged-0123456789abcdef0123456789abcdef"
			staged := fmt.Sprintf(`{"name":"staged","location":%q,"stage-create":true,"schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}}`, want)
			var st struct {
				Metadata json.RawMessage `json:"metadata"`
			}
			if err := json.Unmarshal(mustCall(t, 200, "POST", base+"/v1/namespaces/loc/tables", staged), &st); err != nil {
				t.Fatal(err)
			}
			var meta struct {
				UUID     string `json:"table-uuid"`
				Location string `json:"location"`
			}
			if err := json.Unmarshal(st.Metadata, &meta); err != nil {
				t.Fatal(err)
			}
			commit := fmt.Sprintf(`{"requirements":[{"type":"assert-create"}],"updates":[`+
				`{"action":"assign-uuid","uuid":%q},{"action":"upgrade-format-version","format-version":2},`+
				`{"action":"add-schema","schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}},`+
				`{"action":"set-current-schema","schema-id":-1},{"action":"add-spec","spec":{"spec-id":0,"fields":[]}},`+
				`{"action":"set-default-spec","spec-id":-1},{"action":"add-sort-order","sort-order":{"order-id":0,"fields":[]}},`+
				`{"action":"set-default-sort-order","sort-order-id":-1},{"action":"set-location","location":%q}]}`, meta.UUID, meta.Location)
			mustCall(t, 200, "POST", base+"/v1/namespaces/loc/tables/staged", commit)
			if got := loadTableLocation(t, base, "loc", "staged"); got != want {
				t.Fatalf("staged table at %q, want %q", got, want)
			}
		})
	}
}

func loadTableLocation(t *testing.T, base, ns, name string) string {
	t.Helper()
	var r struct {
		Metadata struct {
			Location string `json:"location"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/"+ns+"/tables/"+name, ""), &r); err != nil {
		t.Fatal(err)
	}
	return r.Metadata.Location
}

// TestMetricsReportLog: a client's metrics report is logged with its
// snapshot id exactly as sent (a float64 would print 4.33e+18).
func TestMetricsReportLog(t *testing.T) {
	inst := shapes[0].start(t)
	base := inst.URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["m"]}`)
	mustCall(t, 200, "POST", base+"/v1/namespaces/m/tables", fmt.Sprintf(simpleTable, "t"))
	report := `{"report-type":"scan-report","table-name":"m.t","snapshot-id":4334893296715093365,"filter":true,"schema-id":0,"projected-field-ids":[1],"projected-field-names":["id"],"metrics":{}}`
	mustCall(t, 204, "POST", base+"/v1/namespaces/m/tables/t/metrics", report)
	// The log reaches inst through a pipe: give it a moment.
	want := "report_type=scan-report snapshot_id=4334893296715093365"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(inst.Log(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("the server log does not show the report's snapshot id exactly (%s):\n%s", want, inst.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCreateTableClientFieldIDs: a create-table request's partition spec
// and write order refer to the schema sent with it, numbered as the client
// chose. Spark numbers a new table's columns from 0, so partitioning or
// sorting by the first column arrives as source-id 0; the table gets
// fresh IDs and its spec and order name the same columns.
func TestCreateTableClientFieldIDs(t *testing.T) {
	base := shapes[0].start(t).URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["s"]}`)
	// As Spark 4.1 with Iceberg 1.12 sends CREATE TABLE ... PARTITIONED BY
	// (days(ts), bucket(4, id)), plus a write order on id.
	req := `{"name":"t","location":null,"schema":{"type":"struct","schema-id":0,"fields":[` +
		`{"id":0,"name":"id","required":true,"type":"long"},` +
		`{"id":1,"name":"ts","required":false,"type":"timestamptz"},` +
		`{"id":2,"name":"tags","required":false,"type":{"type":"list","element-id":4,"element":"string","element-required":false}},` +
		`{"id":3,"name":"a","required":false,"type":{"type":"struct","fields":[{"id":5,"name":"c","required":false,"type":"string"}]}}]},` +
		`"partition-spec":{"spec-id":0,"fields":[{"name":"ts_day","transform":"day","source-id":1,"field-id":1000},` +
		`{"name":"id_bucket","transform":"bucket[4]","source-id":0,"field-id":1001}]},` +
		`"write-order":{"order-id":1,"fields":[{"transform":"identity","source-id":0,"direction":"asc","null-order":"nulls-first"}]},` +
		`"properties":{"owner":"root"},"stage-create":false}`
	mustCall(t, 200, "POST", base+"/v1/namespaces/s/tables", req)

	var r struct {
		Metadata struct {
			Schemas []struct {
				Fields []struct {
					ID   int    `json:"id"`
					Name string `json:"name"`
				} `json:"fields"`
			} `json:"schemas"`
			Specs []struct {
				Fields []struct {
					SourceID  int    `json:"source-id"`
					Transform string `json:"transform"`
				} `json:"fields"`
			} `json:"partition-specs"`
			Orders []struct {
				Fields []struct {
					SourceID int `json:"source-id"`
				} `json:"fields"`
			} `json:"sort-orders"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/s/tables/t", ""), &r); err != nil {
		t.Fatal(err)
	}
	md := r.Metadata
	name := map[int]string{}
	for _, f := range md.Schemas[0].Fields {
		name[f.ID] = f.Name
	}
	if name[1] != "id" || name[2] != "ts" {
		t.Fatalf("schema fields %v: want fresh IDs from 1", name)
	}
	var spec []string
	for _, f := range md.Specs[0].Fields {
		spec = append(spec, f.Transform+"("+name[f.SourceID]+")")
	}
	if fmt.Sprint(spec) != "[day(ts) bucket[4](id)]" {
		t.Fatalf("partition spec %v, want [day(ts) bucket[4](id)]", spec)
	}
	var order []string
	for _, o := range md.Orders {
		for _, f := range o.Fields {
			order = append(order, name[f.SourceID])
		}
	}
	if fmt.Sprint(order) != "[id]" {
		t.Fatalf("sort order on %v, want [id]", order)
	}
}
