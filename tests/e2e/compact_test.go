package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestCompactAPI: POST /tables/{t}/compact and /maintenance against the
// binary: admin token when auth is on, what they answer, and a table that
// reads the same afterwards. Both shapes.
func TestCompactAPI(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			inst := sh.start(t, "--auth-token", "user", "--admin-token", "admin", "--flush-interval", "1h")
			base := inst.URL
			user := []string{"Authorization", "Bearer user"}
			admin := []string{"Authorization", "Bearer admin"}
			for i := range 6 {
				body := fmt.Sprintf(`{"records":[{"payload":"a%d"},{"payload":"b%d"}]}`, i, i)
				mustCall(t, 202, "POST", base+"/tables/small/bulk", body, user...)
				mustCall(t, 200, "POST", base+"/tables/small/flush", "", user...)
			}
			before := scanEvents(t, inst, "default", "small", "token", "user")

			if status, _, body := call(t, "POST", base+"/tables/small/compact", "", user...); status != 403 {
				t.Fatalf("compact with a user token: %d %s, want 403", status, body)
			}
			var r struct {
				FilesBefore    int   `json:"files_before"`
				FilesAfter     int   `json:"files_after"`
				RewrittenFiles int   `json:"rewritten_files"`
				Rows           int64 `json:"rows"`
				SnapshotID     int64 `json:"snapshot_id"`
			}
			if err := json.Unmarshal(mustCall(t, 200, "POST", base+"/tables/small/compact", "", admin...), &r); err != nil {
				t.Fatal(err)
			}
			if r.FilesBefore != 6 || r.FilesAfter != 1 || r.RewrittenFiles != 6 || r.Rows != 12 || r.SnapshotID == 0 {
				t.Fatalf("compact answered %v", r)
			}
			after := scanEvents(t, inst, "default", "small", "token", "user")
			if len(after) != 12 || fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("rows before compaction %v, after %v", before, after)
			}
			var m map[string]any
			if err := json.Unmarshal(mustCall(t, 200, "POST", base+"/tables/small/maintenance", "", admin...), &m); err != nil {
				t.Fatal(err)
			}
			if m["table"] != "default.small" {
				t.Fatalf("maintenance answered %v", m)
			}
			mustCall(t, 404, "POST", base+"/tables/nosuch/compact", "", admin...)
			mustCall(t, 400, "POST", base+"/tables/bad..name/maintenance", "", admin...)
			mustCall(t, 401, "POST", base+"/tables/small/maintenance", "")
		})
	}
}
