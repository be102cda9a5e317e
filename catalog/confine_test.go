package catalog_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/catalog"
)

var oneColumn = iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int64})

// files lists every file under dir, for before-and-after comparisons.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestConfinedCommits: a commit that would make the table's metadata name
// a file outside its location, or move the table onto another's files, is
// refused before anything is written.
func TestConfinedCommits(t *testing.T) {
	svc, dir := newService(t)
	ctx := t.Context()
	wh := "file://" + dir + "/wh"
	victim, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "victim"}, Schema: oneColumn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateNamespace(ctx, catalog.Namespace{"other"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t"}
	tbl, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: id, Schema: oneColumn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	loc := tbl.Metadata.Location()
	snapshot := func(manifestList string) string {
		return fmt.Sprintf(`{"requirements":[],"updates":[{"action":"add-snapshot","snapshot":{"snapshot-id":7,"sequence-number":1,
			"timestamp-ms":%d,"manifest-list":%q,"summary":{"operation":"append"},"schema-id":0}}]}`, tbl.Metadata.LastUpdatedMillis()+1, manifestList)
	}
	statistics := func(action, path string) string {
		return fmt.Sprintf(`{"requirements":[],"updates":[{"action":%q,"snapshot-id":1,"statistics":{"snapshot-id":1,
			"statistics-path":%q,"file-size-in-bytes":1,"file-footer-size-in-bytes":1,"blob-metadata":[]},
			"partition-statistics":{"snapshot-id":1,"statistics-path":%q,"file-size-in-bytes":1}}]}`, action, path, path)
	}
	props := func(k, v string) string {
		return fmt.Sprintf(`{"requirements":[],"updates":[{"action":"set-properties","updates":{%q:%q}}]}`, k, v)
	}
	setLocation := func(l string) string {
		return fmt.Sprintf(`{"requirements":[],"updates":[{"action":"set-location","location":%q}]}`, l)
	}
	for _, tc := range []struct {
		name, body string
		err        error
	}{
		{"ManifestListEtcPasswd", snapshot("/etc/passwd"), catalog.ErrInvalid},
		{"ManifestListFileURI", snapshot("file:///etc/passwd"), catalog.ErrInvalid},
		{"ManifestListDotDot", snapshot(loc + "/metadata/../../victim/snap.avro"), catalog.ErrInvalid},
		{"ManifestListEncodedDotDot", snapshot(loc + "/%2e%2e/x.avro"), catalog.ErrInvalid},
		{"ManifestListOtherTable", snapshot(victim.Metadata.Location() + "/metadata/snap.avro"), catalog.ErrInvalid},
		{"ManifestListPrefixSibling", snapshot(loc + "x/snap.avro"), catalog.ErrInvalid},
		{"ManifestListOtherScheme", snapshot("s3://bucket/" + strings.TrimPrefix(loc, "file:///") + "/snap.avro"), catalog.ErrInvalid},
		{"StatisticsOutside", statistics("set-statistics", "/etc/passwd"), catalog.ErrInvalid},
		{"StatisticsWarehouse", statistics("set-statistics", wh+"/stats.puffin"), catalog.ErrInvalid},
		{"PartitionStatisticsOutside", statistics("set-partition-statistics", "/etc/hosts"), catalog.ErrInvalid},
		{"DataPathOutside", props("write.data.path", "/tmp/elsewhere"), catalog.ErrInvalid},
		{"MetadataPathOtherTable", props("write.metadata.path", victim.Metadata.Location()+"/metadata"), catalog.ErrInvalid},
		{"ObjectStoragePath", props("write.object-storage.path", wh), catalog.ErrInvalid},
		{"LocationWarehouseRoot", setLocation(wh), catalog.ErrInvalid},
		{"LocationWarehouseRootPlainPath", setLocation(dir + "/wh"), catalog.ErrInvalid},
		{"LocationWarehouseRootSlashes", setLocation("file://" + dir + "//wh/"), catalog.ErrInvalid},
		{"LocationNamespaceDir", setLocation(wh + "/other"), catalog.ErrLocationInUse},
		{"LocationOwnNamespaceDir", setLocation(wh + "/ns"), catalog.ErrLocationInUse},
		{"LocationOtherTable", setLocation(victim.Metadata.Location()), catalog.ErrLocationInUse},
		{"LocationInsideOtherTable", setLocation(victim.Metadata.Location() + "/data"), catalog.ErrLocationInUse},
		{"LocationOutsideRoots", setLocation("/etc"), catalog.ErrInvalid},
		{"LocationDotDot", setLocation(wh + "/ns/../../escape"), catalog.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := files(t, dir)
			_, err := svc.CommitTable(ctx, change(t, "t", tc.body), nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("commit: %v, want %v", err, tc.err)
			}
			if after := files(t, dir); !slices.Equal(before, after) {
				t.Fatalf("a refused commit changed the warehouse:\nbefore %q\nafter  %q", before, after)
			}
			cur, err := svc.LoadTable(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if cur.MetadataLocation != tbl.MetadataLocation {
				t.Fatalf("a refused commit moved the table to %s", cur.MetadataLocation)
			}
		})
	}
	// What lies inside stays allowed.
	for _, body := range []string{
		snapshot(loc + "/metadata/snap-7.avro"),
		setLocation(loc + "/moved"),
		props("write.data.path", loc+"/moved/data"),
	} {
		if _, err := svc.CommitTable(ctx, change(t, "t", body), nil); err != nil {
			t.Fatalf("commit inside the table: %v", err)
		}
	}
	// A file named like a snapshot the table has (7, added above) is
	// checked like any other (FuzzCommitConfinement found it was not).
	for _, action := range []string{"set-statistics", "set-partition-statistics"} {
		if _, err := svc.CommitTable(ctx, change(t, "t", statistics(action, "7")), nil); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("%s with the path \"7\", a snapshot ID of the table: %v, want ErrInvalid", action, err)
		}
	}
}

// TestConfinedCreates: creates and registers that would share another
// table's files, own a namespace directory or the warehouse, or lie
// outside the allowed locations, are refused.
func TestConfinedCreates(t *testing.T) {
	allowed := t.TempDir()
	svc, dir := newService(t, func(o *catalog.Options) { o.AllowedLocations = []string{allowed} })
	ctx := t.Context()
	wh := "file://" + dir + "/wh"
	victim, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "victim"}, Schema: oneColumn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, loc string) error {
		_, err := svc.CreateTable(ctx, catalog.CreateTableRequest{Ident: catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: name}, Schema: oneColumn, Location: loc}, nil)
		return err
	}
	for _, tc := range []struct {
		name, loc string
		err       error
	}{
		{"WarehouseRoot", wh, catalog.ErrInvalid},
		{"WarehouseRootPlain", dir + "/wh", catalog.ErrInvalid},
		{"NamespaceDir", wh + "/ns", catalog.ErrLocationInUse},
		{"SameAsVictim", victim.Metadata.Location(), catalog.ErrLocationInUse},
		{"InsideVictim", victim.Metadata.Location() + "/x", catalog.ErrLocationInUse},
		{"AllowedRoot", allowed, catalog.ErrInvalid},
		{"OutsideRoots", "/var/tmp/zombi-test-table", catalog.ErrInvalid},
		{"Percent", wh + "/ns/a%2Fb", catalog.ErrInvalid},
		{"InAllowed", "file:" + allowed + "/ns/t", nil},
		{"InWarehouse", wh + "/ns/own-dir", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := create(tc.name, tc.loc); !errors.Is(err, tc.err) {
				t.Fatalf("create at %s: %v, want %v", tc.loc, err, tc.err)
			}
		})
	}
	// A namespace created later does not capture an existing table, and a
	// table may not take its directory.
	if _, err := svc.CreateNamespace(ctx, catalog.Namespace{"ns", "child"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := create("child", wh+"/ns/child"); !errors.Is(err, catalog.ErrLocationInUse) {
		t.Fatalf("create at a child namespace's directory: %v, want ErrLocationInUse", err)
	}

	// Register: another live table's metadata is refused; so is a file
	// outside the roots.
	_, err = svc.RegisterTable(ctx, catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "copy"}, victim.MetadataLocation, false, nil)
	if !errors.Is(err, catalog.ErrLocationInUse) {
		t.Fatalf("register another table's metadata: %v, want ErrLocationInUse", err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "x.metadata.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = svc.RegisterTable(ctx, catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "etc"}, "file:///etc/passwd", false, nil)
	if !errors.Is(err, catalog.ErrInvalid) || strings.Contains(err.Error(), "root:") {
		t.Fatalf("register /etc/passwd: %v, want ErrInvalid without its contents", err)
	}
}
