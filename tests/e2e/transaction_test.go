package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

type loadResult struct {
	MetadataLocation string `json:"metadata-location"`
	Metadata         struct {
		UUID       string            `json:"table-uuid"`
		Properties map[string]string `json:"properties"`
		SchemaID   int               `json:"current-schema-id"`
	} `json:"metadata"`
}

func loadTable(t *testing.T, base, ns, name string) loadResult {
	t.Helper()
	b := mustCall(t, http.StatusOK, http.MethodGet, base+"/v1/namespaces/"+ns+"/tables/"+name, "")
	var r loadResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

const simpleTable = `{"name":%q,"schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}}`

// TestMultiTableTransaction: a transaction whose one failing requirement
// fails leaves every table unchanged; the same transaction with every
// requirement true moves every table.
func TestMultiTableTransaction(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			inst := sh.start(t)
			base := inst.URL
			mustCall(t, http.StatusOK, http.MethodPost, base+"/v1/namespaces", `{"namespace":["tx"]}`)
			for _, name := range []string{"a", "b", "c"} {
				mustCall(t, http.StatusOK, http.MethodPost, base+"/v1/namespaces/tx/tables", fmt.Sprintf(simpleTable, name))
			}
			before := map[string]loadResult{}
			for _, name := range []string{"a", "b", "c"} {
				before[name] = loadTable(t, base, "tx", name)
			}
			change := func(name string, schemaID int) string {
				return fmt.Sprintf(`{"identifier":{"namespace":["tx"],"name":%q},
					"requirements":[{"type":"assert-table-uuid","uuid":%q},{"type":"assert-current-schema-id","current-schema-id":%d}],
					"updates":[{"action":"set-properties","updates":{"moved":"yes"}}]}`, name, before[name].Metadata.UUID, schemaID)
			}

			// c's requirement is false: nothing may move.
			body := `{"table-changes":[` + change("a", 0) + "," + change("b", 0) + "," + change("c", 7) + `]}`
			status, _, resp := call(t, http.MethodPost, base+"/v1/transactions/commit", body)
			if status != http.StatusConflict {
				t.Fatalf("failing transaction: status %d, want 409: %s", status, resp)
			}
			if e := decodeError(t, resp); e.Error.Type != "CommitFailedException" {
				t.Fatalf("failing transaction: type %q, want CommitFailedException", e.Error.Type)
			}
			for _, name := range []string{"a", "b", "c"} {
				after := loadTable(t, base, "tx", name)
				if after.MetadataLocation != before[name].MetadataLocation || after.Metadata.Properties["moved"] != "" {
					t.Errorf("table %s changed by a failed transaction: %s -> %s", name, before[name].MetadataLocation, after.MetadataLocation)
				}
			}

			// All requirements true: every table moves.
			body = `{"table-changes":[` + change("a", 0) + "," + change("b", 0) + "," + change("c", 0) + `]}`
			mustCall(t, http.StatusNoContent, http.MethodPost, base+"/v1/transactions/commit", body)
			for _, name := range []string{"a", "b", "c"} {
				after := loadTable(t, base, "tx", name)
				if after.MetadataLocation == before[name].MetadataLocation || after.Metadata.Properties["moved"] != "yes" {
					t.Errorf("table %s did not move with a successful transaction", name)
				}
			}

			// A table named twice in one transaction is a client error.
			body = `{"table-changes":[` + change("a", 0) + "," + change("a", 0) + `]}`
			if status, _, resp := call(t, http.MethodPost, base+"/v1/transactions/commit", body); status != http.StatusBadRequest {
				t.Fatalf("duplicate table in transaction: status %d, want 400: %s", status, resp)
			}
		})
	}
}
