package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// viewBody is a createView request for a view named name over one column.
func viewBody(name, sql string) string {
	return fmt.Sprintf(`{"name":%q,"schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":false}]},
		"view-version":{"version-id":1,"schema-id":0,"timestamp-ms":1700000000000,"summary":{"engine-name":"e2e"},
		"representations":[{"type":"sql","sql":%q,"dialect":"spark"}],"default-namespace":["vw"]},"properties":{"owner":"e2e"}}`, name, sql)
}

type loadedView struct {
	MetadataLocation string `json:"metadata-location"`
	Metadata         struct {
		UUID             string            `json:"view-uuid"`
		Location         string            `json:"location"`
		CurrentVersionID int64             `json:"current-version-id"`
		Properties       map[string]string `json:"properties"`
		Versions         []struct {
			ID              int64 `json:"version-id"`
			Representations []struct {
				SQL string `json:"sql"`
			} `json:"representations"`
		} `json:"versions"`
	} `json:"metadata"`
}

// TestViews: the view API on both stores — create (replayed for a retried
// Idempotency-Key), load, list, replace with assert-view-uuid, rename,
// drop — and the names tables and views share.
func TestViews(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			base := sh.start(t).URL
			mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["vw"]}`)
			mustCall(t, 200, "POST", base+"/v1/namespaces/vw/tables", fmt.Sprintf(simpleTable, "t"))

			key := []string{"Idempotency-Key", "create-v1"}
			first := mustCall(t, 200, "POST", base+"/v1/namespaces/vw/views", viewBody("v1", "select * from vw.t"), key...)
			status, hdr, again := call(t, "POST", base+"/v1/namespaces/vw/views", viewBody("v1", "select * from vw.t"), key...)
			if status != 200 || hdr.Get("Idempotency-Replayed") != "true" || strings.TrimSpace(string(again)) != strings.TrimSpace(string(first)) {
				t.Fatalf("retried create: status %d replayed %q, same body %v", status, hdr.Get("Idempotency-Replayed"), strings.TrimSpace(string(again)) == strings.TrimSpace(string(first)))
			}
			var v loadedView
			if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/vw/views/v1", ""), &v); err != nil {
				t.Fatal(err)
			}
			if v.Metadata.Properties["owner"] != "e2e" || !strings.HasPrefix(v.MetadataLocation, v.Metadata.Location+"/metadata/") {
				t.Fatalf("loaded view: %+v", v)
			}
			mustCall(t, 204, "HEAD", base+"/v1/namespaces/vw/views/v1", "")

			// One namespace of names: each kind answers 404 for the other.
			mustCall(t, 404, "GET", base+"/v1/namespaces/vw/tables/v1", "")
			mustCall(t, 404, "HEAD", base+"/v1/namespaces/vw/views/t", "")
			for _, tc := range []struct{ path, body, msg string }{
				{"/v1/namespaces/vw/views", viewBody("t", "select 1"), "Table with same name already exists: vw.t"},
				{"/v1/namespaces/vw/tables", fmt.Sprintf(simpleTable, "v1"), "View with same name already exists: vw.v1"},
				{"/v1/namespaces/vw/views", viewBody("v1", "select 1"), "View already exists: vw.v1"},
			} {
				status, _, b := call(t, "POST", base+tc.path, tc.body)
				if e := decodeError(t, b); status != 409 || e.Error.Type != "AlreadyExistsException" || !strings.HasPrefix(e.Error.Message, tc.msg) {
					t.Fatalf("POST %s: %d %+v, want 409 AlreadyExistsException %q", tc.path, status, e.Error, tc.msg)
				}
			}

			// Replace: a new version, under assert-view-uuid.
			replace := fmt.Sprintf(`{"requirements":[{"type":"assert-view-uuid","uuid":%q}],"updates":[
				{"action":"add-view-version","view-version":{"version-id":2,"schema-id":0,"timestamp-ms":1700000000001,"summary":{},
				 "representations":[{"type":"sql","sql":"select id from vw.t","dialect":"spark"}],"default-namespace":["vw"]}},
				{"action":"set-current-view-version","view-version-id":-1}]}`, v.Metadata.UUID)
			var r loadedView
			if err := json.Unmarshal(mustCall(t, 200, "POST", base+"/v1/namespaces/vw/views/v1", replace), &r); err != nil {
				t.Fatal(err)
			}
			if r.Metadata.UUID != v.Metadata.UUID || len(r.Metadata.Versions) != 2 || r.MetadataLocation == v.MetadataLocation ||
				!strings.Contains(r.MetadataLocation, "/metadata/00001-") {
				t.Fatalf("replaced view: %+v", r)
			}
			stale := strings.Replace(replace, v.Metadata.UUID, "00000000-0000-0000-0000-000000000000", 1)
			status, _, b := call(t, "POST", base+"/v1/namespaces/vw/views/v1", stale)
			if e := decodeError(t, b); status != 409 || e.Error.Type != "CommitFailedException" {
				t.Fatalf("replace with a wrong uuid: %d %+v", status, e.Error)
			}

			// Rename, list, drop; a namespace holding a view is not empty.
			mustCall(t, 204, "POST", base+"/v1/views/rename", `{"source":{"namespace":["vw"],"name":"v1"},"destination":{"namespace":["vw"],"name":"v2"}}`)
			var list struct {
				IDs []struct{ Name string } `json:"identifiers"`
			}
			if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/vw/views", ""), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.IDs) != 1 || list.IDs[0].Name != "v2" {
				t.Fatalf("listed views %+v, want [v2]", list.IDs)
			}
			mustCall(t, 204, "DELETE", base+"/v1/namespaces/vw/tables/t", "")
			mustCall(t, 409, "DELETE", base+"/v1/namespaces/vw", "")
			mustCall(t, 204, "DELETE", base+"/v1/namespaces/vw/views/v2", "")
			mustCall(t, 404, "GET", base+"/v1/namespaces/vw/views/v2", "")
			mustCall(t, 204, "DELETE", base+"/v1/namespaces/vw", "")
		})
	}
}
