package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStagedCreate: stage-create builds metadata without creating the
// table; a commit with assert-create then creates it, once.
func TestStagedCreate(t *testing.T) {
	base := shapes[0].start(t).URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["stage"]}`)
	var staged struct {
		Loc      *string `json:"metadata-location"`
		Metadata struct {
			UUID     string `json:"table-uuid"`
			Location string `json:"location"`
		} `json:"metadata"`
	}
	b := mustCall(t, 200, "POST", base+"/v1/namespaces/stage/tables",
		`{"name":"t","stage-create":true,"schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}}`)
	if err := json.Unmarshal(b, &staged); err != nil {
		t.Fatal(err)
	}
	if staged.Loc != nil || staged.Metadata.Location == "" {
		t.Fatalf("staged create: metadata-location %v location %q, want none and a location", staged.Loc, staged.Metadata.Location)
	}
	mustCall(t, 404, "HEAD", base+"/v1/namespaces/stage/tables/t", "")

	create := fmt.Sprintf(`{"requirements":[{"type":"assert-create"}],"updates":[
		{"action":"assign-uuid","uuid":%q},
		{"action":"upgrade-format-version","format-version":2},
		{"action":"add-schema","schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]},"last-column-id":1},
		{"action":"set-current-schema","schema-id":-1},
		{"action":"add-spec","spec":{"spec-id":0,"fields":[]}},
		{"action":"set-default-spec","spec-id":-1},
		{"action":"add-sort-order","sort-order":{"order-id":0,"fields":[]}},
		{"action":"set-default-sort-order","sort-order-id":-1},
		{"action":"set-location","location":%q},
		{"action":"set-properties","updates":{"created-by":"staged"}}]}`, staged.Metadata.UUID, staged.Metadata.Location)
	mustCall(t, 200, "POST", base+"/v1/namespaces/stage/tables/t", create)
	got := loadTable(t, base, "stage", "t")
	if got.Metadata.UUID != staged.Metadata.UUID || got.Metadata.Properties["created-by"] != "staged" {
		t.Fatalf("created table: uuid %s props %v", got.Metadata.UUID, got.Metadata.Properties)
	}
	if !strings.Contains(got.MetadataLocation, "/metadata/00000-") {
		t.Fatalf("first metadata file %s, want version 00000", got.MetadataLocation)
	}
	status, _, body := call(t, "POST", base+"/v1/namespaces/stage/tables/t", create)
	if status != 409 || decodeError(t, body).Error.Type != "CommitFailedException" {
		t.Fatalf("second create: status %d body %s, want 409 CommitFailedException", status, body)
	}
}

// TestMetadataRetention: previous-versions-max bounds the metadata log and,
// with delete-after-commit, the files on disk.
func TestMetadataRetention(t *testing.T) {
	base := shapes[0].start(t).URL
	mustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["ret"]}`)
	for _, tc := range []struct {
		name   string
		delete bool
	}{{"keep", false}, {"clean", true}} {
		mustCall(t, 200, "POST", base+"/v1/namespaces/ret/tables", fmt.Sprintf(
			`{"name":%q,"schema":{"type":"struct","fields":[{"id":1,"name":"id","type":"long","required":true}]},
			  "properties":{"write.metadata.previous-versions-max":"2","write.metadata.delete-after-commit.enabled":"%v"}}`, tc.name, tc.delete))
		for i := 0; i < 5; i++ {
			mustCall(t, 200, "POST", base+"/v1/namespaces/ret/tables/"+tc.name,
				fmt.Sprintf(`{"requirements":[],"updates":[{"action":"set-properties","updates":{"i":"%d"}}]}`, i))
		}
		cur := loadTable(t, base, "ret", tc.name)
		if !strings.Contains(cur.MetadataLocation, "/00005-") {
			t.Fatalf("%s: current metadata %s, want version 5", tc.name, cur.MetadataLocation)
		}
		var doc struct {
			Metadata struct {
				Log []struct {
					File string `json:"metadata-file"`
				} `json:"metadata-log"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/namespaces/ret/tables/"+tc.name, ""), &doc); err != nil {
			t.Fatal(err)
		}
		meta := doc.Metadata
		if len(meta.Log) != 2 {
			t.Fatalf("%s: metadata-log has %d entries, want 2", tc.name, len(meta.Log))
		}
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(localPath(cur.MetadataLocation)), "*.metadata.json"))
		want := 6
		if tc.delete {
			want = 3
		}
		if len(files) != want {
			t.Fatalf("%s: %d metadata files on disk, want %d", tc.name, len(files), want)
		}
		for _, e := range meta.Log {
			if _, err := os.Stat(localPath(e.File)); err != nil {
				t.Fatalf("%s: metadata-log file %s missing: %v", tc.name, e.File, err)
			}
		}
	}
}
