package security

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// The attacks of the security issue that aim at files: a client with an
// ordinary token (or anyone, auth being off by default) must not make
// Zombi read, delete or claim a file outside the table it works on.

const oneColumn = `{"type":"struct","fields":[{"id":1,"name":"x","type":"long","required":false}]}`

// loadedTable is the part of loadTable's answer the tests look at.
type loadedTable struct {
	MetadataLocation string `json:"metadata-location"`
	Metadata         struct {
		Location  string            `json:"location"`
		Props     map[string]string `json:"properties"`
		Snapshots []json.RawMessage `json:"snapshots"`
	} `json:"metadata"`
}

func load(t *testing.T, base, ns, name string) loadedTable {
	t.Helper()
	var lt loadedTable
	if err := json.Unmarshal(zombitest.MustCall(t, 200, "GET", base+"/v1/namespaces/"+ns+"/tables/"+name, ""), &lt); err != nil {
		t.Fatal(err)
	}
	return lt
}

func createTable(t *testing.T, base, ns, name, location string) loadedTable {
	t.Helper()
	zombitest.Call(t, "POST", base+"/v1/namespaces", fmt.Sprintf(`{"namespace":[%q]}`, ns))
	body := fmt.Sprintf(`{"name":%q,"schema":%s}`, name, oneColumn)
	if location != "" {
		body = fmt.Sprintf(`{"name":%q,"location":%q,"schema":%s}`, name, location, oneColumn)
	}
	zombitest.MustCall(t, 200, "POST", base+"/v1/namespaces/"+ns+"/tables", body)
	return load(t, base, ns, name)
}

// refused sends a request that must be a 400 Iceberg error without file
// contents in it.
func refused(t *testing.T, what, method, url, body string) {
	t.Helper()
	status, _, b := zombitest.Call(t, method, url, body)
	if status != 400 {
		t.Fatalf("%s: status %d, want 400; body %s", what, status, b)
	}
	e := zombitest.DecodeError(t, b)
	for _, leak := range []string{"root:", "726f6f74", "precious contents"} {
		if strings.Contains(e.Error.Message, leak) {
			t.Fatalf("%s: the error leaks file contents (%q): %s", what, leak, e.Error.Message)
		}
	}
}

// checksums hashes every file under each directory: what a test compares
// before and after an attack.
func checksums(t *testing.T, dirs ...string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameFiles(t *testing.T, what string, before, after map[string][32]byte) {
	t.Helper()
	for p, h := range before {
		if h2, ok := after[p]; !ok {
			t.Errorf("%s: %s was deleted", what, p)
		} else if h2 != h {
			t.Errorf("%s: %s was changed", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

// victimOutside is a directory outside the warehouse holding a file a
// commit will name.
func victimOutside(t *testing.T) (dir, file string) {
	dir = t.TempDir()
	file = filepath.Join(dir, "precious")
	if err := os.WriteFile(file, []byte("precious contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// TestCommitNamesOutsideFile is attack 1: commits naming a statistics file
// or a manifest list outside the table are refused before anything is
// written, and maintenance with aggressive expiry settings leaves the
// named files alone.
func TestCommitNamesOutsideFile(t *testing.T) {
	for _, sh := range zombitest.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			inst := sh.Start(t)
			base := inst.URL
			outside, victim := victimOutside(t)
			other := createTable(t, base, "other", "victim", "")
			tbl := createTable(t, base, "atk", "t", "")
			before := checksums(t, outside, inst.DataDir)
			commit := base + "/v1/namespaces/atk/tables/t"
			for _, target := range []string{"file://" + victim, victim, other.Metadata.Location + "/metadata/x.puffin", tbl.Metadata.Location + "/../other/x"} {
				refused(t, "set-statistics "+target, "POST", commit, fmt.Sprintf(`{"requirements":[],"updates":[
					{"action":"set-statistics","snapshot-id":1,"statistics":{"snapshot-id":1,"statistics-path":%q,"file-size-in-bytes":17,"file-footer-size-in-bytes":1,"blob-metadata":[]}},
					{"action":"set-properties","updates":{"history.expire.max-snapshot-age-ms":"1","zombi.maintenance.enabled":"true"}}]}`, target))
			}
			for _, target := range []string{"/etc/passwd", "file:///etc/passwd", "file://" + victim} {
				refused(t, "add-snapshot with manifest list "+target, "POST", commit, fmt.Sprintf(`{"requirements":[],"updates":[
					{"action":"add-snapshot","snapshot":{"snapshot-id":5,"timestamp-ms":%d,"manifest-list":%q,"summary":{"operation":"append"},"schema-id":0}},
					{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":5}]}`, time.Now().UnixMilli(), target))
			}
			if got := load(t, base, "atk", "t"); got.MetadataLocation != tbl.MetadataLocation {
				t.Fatalf("a refused commit moved the table to %s", got.MetadataLocation)
			}
			// Maintenance of the table (expiry, orphan cleanup) touches
			// nothing of the other table's or outside.
			zombitest.MustCall(t, 200, "POST", base+"/tables/atk.t/maintenance", "")
			after := checksums(t, outside, inst.DataDir)
			sameFiles(t, "attack 1", filterOut(before, "/catalog/", "/hot/"), filterOut(after, "/catalog/", "/hot/"))
		})
	}
}

// filterOut drops the paths containing any of parts: the stores' own files
// change with every request.
func filterOut(m map[string][32]byte, parts ...string) map[string][32]byte {
	out := map[string][32]byte{}
	for p, h := range m {
		keep := true
		for _, part := range parts {
			if strings.Contains(p, part) {
				keep = false
			}
		}
		if keep {
			out[p] = h
		}
	}
	return out
}

// TestLocationOverOtherTables is attack 2: a table whose location is a
// namespace directory, the warehouse root (spelled any way), or another
// table's location or a directory inside it, is refused; so is a move
// there by set-location.
func TestLocationOverOtherTables(t *testing.T) {
	for _, sh := range zombitest.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			inst := sh.Start(t)
			base := inst.URL
			victim := createTable(t, base, "ns2", "victim", "")
			nsDir := strings.TrimSuffix(victim.Metadata.Location, "/"+filepath.Base(victim.Metadata.Location))
			root := strings.TrimSuffix(nsDir, "/ns2")
			spellings := []string{nsDir, nsDir + "/", root, root + "/", victim.Metadata.Location, victim.Metadata.Location + "/data"}
			if plain, ok := strings.CutPrefix(root, "file://"); ok {
				spellings = append(spellings, plain, "file:"+plain, plain+"//", "file://"+plain+"/ns2/../ns2")
			}
			zombitest.MustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["atk"]}`)
			mine := createTable(t, base, "atk", "mine", "")
			for i, loc := range spellings {
				refused(t, "create at "+loc, "POST", base+"/v1/namespaces/atk/tables",
					fmt.Sprintf(`{"name":"evil%d","location":%q,"schema":%s}`, i, loc, oneColumn))
				refused(t, "set-location "+loc, "POST", base+"/v1/namespaces/atk/tables/mine",
					fmt.Sprintf(`{"requirements":[],"updates":[{"action":"set-location","location":%q}]}`, loc))
			}
			if got := load(t, base, "atk", "mine"); got.Metadata.Location != mine.Metadata.Location {
				t.Fatalf("a refused set-location moved the table to %s", got.Metadata.Location)
			}
			// The victim is whole and its commits still work.
			zombitest.MustCall(t, 200, "POST", base+"/v1/namespaces/ns2/tables/victim", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"still":"mine"}}]}`)
		})
	}
}

// TestRegisterOtherTable is attack 3: registering another table's current
// metadata file (two names for one location and UUID) is refused, and
// dropping with purge what was registered cannot reach the original.
func TestRegisterOtherTable(t *testing.T) {
	for _, sh := range zombitest.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			inst := sh.Start(t)
			base := inst.URL
			victim := createTable(t, base, "ns3", "victim", "")
			zombitest.MustCall(t, 200, "POST", base+"/v1/namespaces", `{"namespace":["atk"]}`)
			refused(t, "register the victim's metadata", "POST", base+"/v1/namespaces/atk/register",
				fmt.Sprintf(`{"name":"copy","metadata-location":%q}`, victim.MetadataLocation))
			refused(t, "register over an existing name with the victim's metadata", "POST", base+"/v1/namespaces/atk/register",
				fmt.Sprintf(`{"name":"copy","metadata-location":%q,"overwrite":true}`, victim.MetadataLocation))
			zombitest.MustCall(t, 404, "DELETE", base+"/v1/namespaces/atk/tables/copy?purgeRequested=true", "")
			if got := load(t, base, "ns3", "victim"); got.MetadataLocation != victim.MetadataLocation {
				t.Fatalf("victim moved to %s", got.MetadataLocation)
			}
		})
	}
}

// TestMaintenanceFloors is attack 4: table properties asking for a 1 ms
// orphan age and snapshot age, with maintenance enabled and scheduled
// every millisecond, do not make the scheduler delete a young orphan or
// expire snapshots that were current minutes ago: the server's floors
// (--min-orphan-age, --min-snapshot-age) hold.
func TestMaintenanceFloors(t *testing.T) {
	inst := zombitest.Start(t, "--maintenance-interval", "100ms")
	base := inst.URL
	for i := range 2 {
		zombitest.MustCall(t, 202, "POST", base+"/tables/atk.events", fmt.Sprintf(`{"payload":{"n":%d}}`, i))
		zombitest.MustCall(t, 200, "POST", base+"/tables/atk.events/flush", "")
	}
	tbl := load(t, base, "atk", "events")
	if len(tbl.Metadata.Snapshots) < 2 {
		t.Fatalf("%d snapshots after two flushes, want 2", len(tbl.Metadata.Snapshots))
	}
	orphan := filepath.Join(strings.TrimPrefix(tbl.Metadata.Location, "file://"), "data", "orphan.parquet")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("young"), 0o644); err != nil {
		t.Fatal(err)
	}
	zombitest.MustCall(t, 200, "POST", base+"/v1/namespaces/atk/tables/events", `{"requirements":[],"updates":[{"action":"set-properties","updates":{
		"zombi.maintenance.enabled":"true","zombi.maintenance.interval-ms":"1","zombi.maintenance.orphan-age-ms":"1",
		"history.expire.max-snapshot-age-ms":"1","history.expire.min-snapshots-to-keep":"1"}}]}`)
	// Wait for the scheduler to have maintained the table twice since.
	runs := func() float64 {
		b := zombitest.MustCall(t, 200, "GET", base+"/metrics", "")
		var n float64
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, `zombi_maintenance_runs_total{kind="maintain"`) {
				var v float64
				fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
				n += v
			}
		}
		return n
	}
	start := runs()
	deadline := time.Now().Add(60 * time.Second)
	for runs() < start+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler did not maintain the table (runs %v)", runs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Errorf("a young orphan was deleted: %v", err)
	}
	if got := load(t, base, "atk", "events"); len(got.Metadata.Snapshots) < len(tbl.Metadata.Snapshots) {
		t.Errorf("snapshots expired under the floor: %d, had %d", len(got.Metadata.Snapshots), len(tbl.Metadata.Snapshots))
	}
}
