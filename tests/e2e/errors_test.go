package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestErrorModel sends requests that must fail and checks each status,
// Iceberg error type and the JSON shape of the body.
func TestErrorModel(t *testing.T) {
	inst := shapes[0].start(t)
	base := inst.URL
	mustCall(t, http.StatusOK, http.MethodPost, base+"/v1/namespaces", `{"namespace":["err"]}`)
	mustCall(t, http.StatusOK, http.MethodPost, base+"/v1/namespaces", `{"namespace":["err","child"]}`)
	mustCall(t, http.StatusOK, http.MethodPost, base+"/v1/namespaces/err/tables", fmt.Sprintf(simpleTable, "t"))
	tbl := loadTable(t, base, "err", "t")

	big := `{"namespace":["x"],"properties":{"k":"` + strings.Repeat("x", 17<<20) + `"}}`
	tests := []struct {
		name, method, path, body string
		status                   int
		typ                      string
		headers                  []string
	}{
		{"malformed JSON", "POST", "/v1/namespaces", `{"namespace":`, 400, "BadRequestException", nil},
		{"namespace level with slash", "POST", "/v1/namespaces", `{"namespace":["a/b"]}`, 400, "BadRequestException", nil},
		{"namespace level dot-dot", "POST", "/v1/namespaces", `{"namespace":[".."]}`, 400, "BadRequestException", nil},
		{"empty namespace", "POST", "/v1/namespaces", `{"namespace":[]}`, 400, "BadRequestException", nil},
		{"table name with control char", "POST", "/v1/namespaces/err/tables", fmt.Sprintf(simpleTable, "a\x01b"), 400, "BadRequestException", nil},
		{"table without schema", "POST", "/v1/namespaces/err/tables", `{"name":"noschema"}`, 400, "BadRequestException", nil},
		{"location outside warehouse", "POST", "/v1/namespaces/err/tables", `{"name":"esc","location":"file:///etc","schema":{"type":"struct","fields":[{"id":1,"name":"id","type":"long","required":true}]}}`, 400, "BadRequestException", nil},
		{"location with escapes", "POST", "/v1/namespaces/err/tables", `{"name":"esc","location":"file:///w/a%20b","schema":{"type":"struct","fields":[{"id":1,"name":"id","type":"long","required":true}]}}`, 400, "BadRequestException", nil},
		{"unknown update action", "POST", "/v1/namespaces/err/tables/t", `{"requirements":[],"updates":[{"action":"make-coffee"}]}`, 400, "BadRequestException", nil},
		{"unknown requirement type", "POST", "/v1/namespaces/err/tables/t", `{"requirements":[{"type":"assert-weather"}],"updates":[]}`, 400, "BadRequestException", nil},
		// The Java client raises IllegalArgumentException for this type.
		{"update that cannot apply", "POST", "/v1/namespaces/err/tables/t", `{"requirements":[],"updates":[{"action":"set-current-schema","schema-id":42}]}`, 400, "IllegalArgumentException", nil},
		{"missing view", "GET", "/v1/namespaces/err/views/nope", "", 404, "NoSuchViewException", nil},
		{"table loaded as a view", "GET", "/v1/namespaces/err/views/t", "", 404, "NoSuchViewException", nil},
		{"bad snapshots mode", "GET", "/v1/namespaces/err/tables/t?snapshots=some", "", 400, "BadRequestException", nil},
		{"bad page size", "GET", "/v1/namespaces?pageSize=zero", "", 400, "BadRequestException", nil},
		{"bad page token", "GET", "/v1/namespaces?pageToken=!!", "", 400, "BadRequestException", nil},
		{"missing namespace", "GET", "/v1/namespaces/nope", "", 404, "NoSuchNamespaceException", nil},
		{"missing parent", "GET", "/v1/namespaces?parent=nope", "", 404, "NoSuchNamespaceException", nil},
		{"create in missing namespace", "POST", "/v1/namespaces/nope/tables", fmt.Sprintf(simpleTable, "t"), 404, "NoSuchNamespaceException", nil},
		{"missing table", "GET", "/v1/namespaces/err/tables/nope", "", 404, "NoSuchTableException", nil},
		{"commit to missing table", "POST", "/v1/namespaces/err/tables/nope", `{"requirements":[],"updates":[]}`, 404, "NoSuchTableException", nil},
		// A table whose namespace is missing is a missing table (REST spec;
		// Spark finds metadata tables such as err.t.snapshots this way).
		{"load table in missing namespace", "GET", "/v1/namespaces/nope/tables/t", "", 404, "NoSuchTableException", nil},
		{"metadata table name", "GET", "/v1/namespaces/err%1Ft/tables/snapshots", "", 404, "NoSuchTableException", nil},
		{"drop table in missing namespace", "DELETE", "/v1/namespaces/nope/tables/t", "", 404, "NoSuchTableException", nil},
		{"purge table in missing namespace", "DELETE", "/v1/namespaces/nope/tables/t?purgeRequested=true", "", 404, "NoSuchTableException", nil},
		{"namespace exists", "POST", "/v1/namespaces", `{"namespace":["err"]}`, 409, "AlreadyExistsException", nil},
		{"table exists", "POST", "/v1/namespaces/err/tables", fmt.Sprintf(simpleTable, "t"), 409, "AlreadyExistsException", nil},
		{"namespace not empty", "DELETE", "/v1/namespaces/err", "", 409, "NamespaceNotEmptyException", nil},
		{"failed requirement", "POST", "/v1/namespaces/err/tables/t", `{"requirements":[{"type":"assert-current-schema-id","current-schema-id":9}],"updates":[]}`, 409, "CommitFailedException", nil},
		{"wrong table uuid", "POST", "/v1/namespaces/err/tables/t", `{"requirements":[{"type":"assert-table-uuid","uuid":"00000000-0000-0000-0000-000000000000"}],"updates":[]}`, 409, "CommitFailedException", nil},
		{"property both set and removed", "POST", "/v1/namespaces/err/properties", `{"removals":["a"],"updates":{"a":"1"}}`, 422, "UnprocessableEntityException", nil},
		{"body too large", "POST", "/v1/namespaces", big, 413, "RequestEntityTooLargeException", nil},
		{"unknown route", "GET", "/v1/nothing-here", "", 404, "NoSuchEndpointException", nil},
		{"wrong method", "PUT", "/v1/namespaces", "", 405, "MethodNotAllowedException", nil},
		{"empty idempotency key", "POST", "/v1/namespaces", `{"namespace":["k"]}`, 400, "BadRequestException", []string{"Idempotency-Key", " "}},
		{"idempotency key too long", "POST", "/v1/namespaces", `{"namespace":["k"]}`, 400, "BadRequestException", []string{"Idempotency-Key", strings.Repeat("k", 129)}},
		{"wrong content type", "POST", "/v1/namespaces", `<namespace/>`, 415, "UnsupportedMediaTypeException", []string{"Content-Type", "application/xml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := call(t, tc.method, base+tc.path, tc.body, tc.headers...)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body: %.300s", status, tc.status, body)
			}
			e := decodeError(t, body)
			if e.Error.Type != tc.typ || e.Error.Code != tc.status || e.Error.Message == "" {
				t.Fatalf("error %+v, want type %s code %d and a message", e.Error, tc.typ, tc.status)
			}
		})
	}

	// The table the failing requests aimed at did not move.
	if after := loadTable(t, base, "err", "t"); after.MetadataLocation != tbl.MetadataLocation {
		t.Fatalf("failed requests changed the table: %s -> %s", tbl.MetadataLocation, after.MetadataLocation)
	}

	t.Run("oauth tokens unsupported", func(t *testing.T) {
		status, _, body := call(t, "POST", base+"/v1/oauth/tokens", "grant_type=client_credentials", "Content-Type", "application/x-www-form-urlencoded")
		if status != 400 || !strings.Contains(string(body), "unsupported_grant_type") {
			t.Fatalf("status %d body %s, want 400 unsupported_grant_type", status, body)
		}
	})
}

// TestAuth: with tokens configured, catalog calls need one of them;
// health stays open.
func TestAuth(t *testing.T) {
	inst := shapes[0].start(t, "--auth-token", "s3cret", "--auth-token", "other")
	base := inst.URL
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}} {
		status, hdr, body := call(t, "GET", base+"/v1/config", "", h...)
		if status != 401 {
			t.Fatalf("headers %v: status %d, want 401", h, status)
		}
		if e := decodeError(t, body); e.Error.Type != "NotAuthorizedException" || e.Error.Code != 401 {
			t.Fatalf("headers %v: error %+v", h, e.Error)
		}
		if hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("401 without WWW-Authenticate")
		}
	}
	mustCall(t, 200, "GET", base+"/v1/config", "", "Authorization", "Bearer s3cret")
	// Ingest needs the token too, and nothing is written without it.
	mustCall(t, 401, "POST", base+"/tables/authed", `{"payload":"x"}`)
	mustCall(t, 202, "POST", base+"/tables/authed", `{"payload":"x"}`, "Authorization", "Bearer other")
	mustCall(t, 401, "GET", base+"/tables/authed", "")
	mustCall(t, 200, "GET", base+"/v1/namespaces", "", "Authorization", "Bearer other")
	mustCall(t, 200, "GET", base+"/health/live", "")
	mustCall(t, 200, "GET", base+"/health/ready", "")
	cat := restCatalog(t, inst, "token", "s3cret")
	if _, err := cat.ListNamespaces(t.Context(), nil); err != nil {
		t.Fatalf("iceberg-go with a token: %v", err)
	}
}
