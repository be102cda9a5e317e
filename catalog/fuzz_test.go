package catalog_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/location"
)

// FuzzCommitConfinement sends commits whose paths are hostile — absolute,
// relative, dot segments, other schemes, other tables, percent escapes —
// in every place table metadata names a file, and checks the confinement
// invariant on whatever the catalog accepted: each such file lies inside
// the table's location, the location lies strictly inside the warehouse
// and overlaps no other table, and nothing outside the table changed on
// disk.
func FuzzCommitConfinement(f *testing.F) {
	for i, p := range []string{
		"/etc/passwd", "file:///etc/passwd", "../victim/x", "metadata/../../x", "%2e%2e/x", "s3://b/x",
		"", ".", "a//b", "file:/x", "data/f.parquet", "/", "file://host/x", "x?y", "ok/stats.puffin",
	} {
		f.Add(uint8(i), p, i%2 == 0)
	}
	svc, dir := newService(f)
	ctx := f.Context()
	wh := "file://" + dir + "/wh"
	victim, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "victim"}, Schema: oneColumn}, nil)
	if err != nil {
		f.Fatal(err)
	}
	outside := filepath.Join(dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o644); err != nil {
		f.Fatal(err)
	}
	victimDir := strings.TrimPrefix(victim.Metadata.Location(), "file://")
	protected := func(t *testing.T) [32]byte {
		t.Helper()
		h := sha256.New()
		for _, d := range []string{outside, victimDir} {
			err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				b, err := os.ReadFile(p)
				if e.IsDir() {
					b, err = nil, nil
				}
				fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return [32]byte(h.Sum(nil))
	}
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t"}
	tbl, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: id, Schema: oneColumn}, nil)
	if err != nil {
		f.Fatal(err)
	}
	snapshotID := int64(1)
	held := []string{tbl.Metadata.Location()} // every location the table has had

	f.Fuzz(func(t *testing.T, action uint8, path string, relative bool) {
		if relative {
			path = tbl.Metadata.Location() + "/" + path
		}
		qb, _ := json.Marshal(path)
		q := string(qb)
		snapshotID++
		updates := []string{
			fmt.Sprintf(`{"action":"add-snapshot","snapshot":{"snapshot-id":%d,"timestamp-ms":%d,"manifest-list":%s,"summary":{"operation":"append"},"schema-id":0}}`,
				snapshotID, tbl.Metadata.LastUpdatedMillis()+1, q),
			fmt.Sprintf(`{"action":"set-statistics","snapshot-id":1,"statistics":{"snapshot-id":1,"statistics-path":%s,"file-size-in-bytes":1,"file-footer-size-in-bytes":1,"blob-metadata":[]}}`, q),
			fmt.Sprintf(`{"action":"set-partition-statistics","partition-statistics":{"snapshot-id":1,"statistics-path":%s,"file-size-in-bytes":1}}`, q),
			fmt.Sprintf(`{"action":"set-location","location":%s}`, q),
			fmt.Sprintf(`{"action":"set-properties","updates":{"write.data.path":%s}}`, q),
			fmt.Sprintf(`{"action":"set-properties","updates":{"write.metadata.path":%s}}`, q),
			fmt.Sprintf(`{"action":"set-properties","updates":{"write.object-storage.path":%s}}`, q),
		}
		before := protected(t)
		if int(action)%(len(updates)+1) == len(updates) {
			_, err := svc.RegisterTable(ctx, catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "reg"}, path, false, nil)
			if err == nil {
				t.Fatalf("registered %q: a table's metadata file was registered twice, or a made-up file was", path)
			}
		} else {
			body := `{"requirements":[],"updates":[` + updates[int(action)%(len(updates)+1)] + `]}`
			res, err := svc.CommitTable(ctx, change(t, "t", body), nil)
			switch {
			case err == nil:
				tbl = res
			case errors.Is(err, catalog.ErrInvalid), errors.Is(err, catalog.ErrLocationInUse):
			default:
				t.Fatalf("commit with %q: %v (want success or a client error)", path, err)
			}
		}
		if after := protected(t); after != before {
			t.Fatalf("a commit with %q changed files outside the table", path)
		}
		if l := tbl.Metadata.Location(); l != held[len(held)-1] {
			held = append(held, l)
		}
		checkConfined(t, tbl.Metadata, tbl.MetadataLocation, wh, victim.Metadata.Location(), held)
	})
}

// checkConfined is the invariant, stated on its own terms: the location
// lies strictly inside the warehouse and outside the other table; the
// metadata file and write paths lie inside the location; every other file
// the metadata names lies inside a location the table has held (files
// named before a set-location stay where they were).
func checkConfined(t *testing.T, meta table.Metadata, metaLoc, warehouse, other string, held []string) {
	t.Helper()
	loc := meta.Location()
	if !location.MustParse(warehouse).Below(location.MustParse(loc)) {
		t.Fatalf("location %s is not strictly inside the warehouse", loc)
	}
	if location.MustParse(loc).Overlaps(location.MustParse(other)) {
		t.Fatalf("location %s overlaps another table's %s", loc, other)
	}
	inside := func(what, p string) {
		if !location.Within(loc, p) {
			t.Fatalf("%s %q is not inside the location %s", what, p, loc)
		}
	}
	inside("metadata file", metaLoc)
	for _, key := range []string{table.WriteDataPathKey, table.WriteMetadataPathKey, "write.object-storage.path", "write.folder-storage.path"} {
		if p, ok := meta.Properties()[key]; ok {
			inside(key, p)
		}
	}
	owned := func(what, p string) {
		for _, h := range held {
			if location.Within(h, p) {
				return
			}
		}
		t.Fatalf("%s %q lies in no location the table has held (%q)", what, p, held)
	}
	for _, sn := range meta.Snapshots() {
		if sn.ManifestList == "" && len(sn.ManifestLocations) == 0 {
			t.Fatalf("snapshot %d names no manifest list", sn.SnapshotID)
		}
		if sn.ManifestList != "" {
			owned("manifest list", sn.ManifestList)
		}
		for _, m := range sn.ManifestLocations {
			owned("manifest", m)
		}
	}
	for st := range meta.Statistics() {
		owned("statistics file", st.StatisticsPath)
	}
	for st := range meta.PartitionStatistics() {
		owned("partition statistics file", st.StatisticsPath)
	}
	for e := range meta.PreviousFiles() {
		owned("metadata log entry", e.MetadataFile)
	}
}
