package catalog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/embedded"
	"github.com/zombi-db/zombi/warehouse"
)

// newService is a catalog on an in-memory embedded store and a local
// warehouse in a temporary directory, with namespace "ns".
func newService(t testing.TB, opts ...func(*catalog.Options)) (*catalog.Service, string) {
	t.Helper()
	store, err := embedded.Open("db", embedded.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dir := t.TempDir()
	wh, err := warehouse.Open(t.Context(), warehouse.Config{Root: dir + "/wh"})
	if err != nil {
		t.Fatal(err)
	}
	o := catalog.Options{Store: store, Warehouse: wh}
	for _, fn := range opts {
		fn(&o)
	}
	svc, err := catalog.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateNamespace(t.Context(), catalog.Namespace{"ns"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	return svc, dir
}

// change decodes a commit body as the REST API receives it.
func change(t testing.TB, name, body string) catalog.TableChange {
	t.Helper()
	var req struct {
		Requirements table.Requirements `json:"requirements"`
		Updates      table.Updates      `json:"updates"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return catalog.TableChange{
		Ident:        catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: name},
		Requirements: req.Requirements,
		Updates:      req.Updates,
	}
}

// metadataShape is what a staged create must get exactly as the client
// assigned it.
type metadataShape struct {
	FormatVersion   int   `json:"format-version"`
	CurrentSchemaID int   `json:"current-schema-id"`
	SchemaIDs       []int `json:"-"`
	Schemas         []struct {
		ID     int `json:"schema-id"`
		Fields []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"fields"`
	} `json:"schemas"`
	LastColumnID  int `json:"last-column-id"`
	DefaultSpecID int `json:"default-spec-id"`
	Specs         []struct {
		ID     int `json:"spec-id"`
		Fields []struct {
			SourceID  int    `json:"source-id"`
			FieldID   int    `json:"field-id"`
			Transform string `json:"transform"`
		} `json:"fields"`
	} `json:"partition-specs"`
	LastPartitionID    int `json:"last-partition-id"`
	DefaultSortOrderID int `json:"default-sort-order-id"`
	SortOrders         []struct {
		ID     int `json:"order-id"`
		Fields []struct {
			SourceID int `json:"source-id"`
		} `json:"fields"`
	} `json:"sort-orders"`
	CurrentSnapshotID *int64 `json:"current-snapshot-id"`
	Location          string `json:"location"`
}

func (m metadataShape) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "format v%d, current schema %d of", m.FormatVersion, m.CurrentSchemaID)
	for _, s := range m.Schemas {
		fmt.Fprintf(&b, " %d%v", s.ID, s.Fields)
	}
	fmt.Fprintf(&b, ", last column %d; default spec %d of", m.LastColumnID, m.DefaultSpecID)
	for _, s := range m.Specs {
		fmt.Fprintf(&b, " %d%v", s.ID, s.Fields)
	}
	fmt.Fprintf(&b, ", last partition %d; default order %d of", m.LastPartitionID, m.DefaultSortOrderID)
	for _, o := range m.SortOrders {
		fmt.Fprintf(&b, " %d%v", o.ID, o.Fields)
	}
	return b.String()
}

const (
	schema0 = `{"type":"struct","schema-id":0,"fields":[
		{"id":1,"name":"id","type":"long","required":false},
		{"id":2,"name":"category","type":"string","required":false},
		{"id":3,"name":"ts","type":"timestamptz","required":false}]}`
	schema1 = `{"type":"struct","schema-id":1,"fields":[
		{"id":1,"name":"id","type":"long","required":false},
		{"id":2,"name":"category","type":"string","required":false},
		{"id":3,"name":"ts","type":"timestamptz","required":false},
		{"id":4,"name":"extra","type":"string","required":false}]}`
	unpartitioned = `{"spec-id":0,"fields":[]}`
	partitioned   = `{"spec-id":0,"fields":[
		{"source-id":1,"field-id":1000,"name":"id_bucket","transform":"bucket[4]"},
		{"source-id":2,"field-id":1001,"name":"category","transform":"identity"}]}`
	unsorted = `{"order-id":0,"fields":[]}`
	sorted   = `{"order-id":1,"fields":[{"source-id":3,"transform":"identity","direction":"asc","null-order":"nulls-first"}]}`
)

// createBody is the commit that completes a staged create, as Iceberg's
// Java client sends it for a create transaction, with extra updates.
func createBody(version int, schema, spec, order string, extra ...string) string {
	updates := []string{
		`{"action":"assign-uuid","uuid":"9c12d441-03fe-4693-9a96-a0705ddf69c1"}`,
		fmt.Sprintf(`{"action":"upgrade-format-version","format-version":%d}`, version),
		`{"action":"add-schema","schema":` + schema + `}`,
		`{"action":"set-current-schema","schema-id":-1}`,
		`{"action":"add-spec","spec":` + spec + `}`,
		`{"action":"set-default-spec","spec-id":-1}`,
		`{"action":"add-sort-order","sort-order":` + order + `}`,
		`{"action":"set-default-sort-order","sort-order-id":-1}`,
		`{"action":"set-properties","updates":{"owner":"spark"}}`,
	}
	updates = append(updates, extra...)
	return `{"requirements":[{"type":"assert-create"}],"updates":[` + strings.Join(updates, ",") + `]}`
}

// TestStagedCreate: a commit with assert-create builds the table from the
// client's updates alone; no placeholder schema, spec or order shifts the
// IDs the client used, and the client's format version stands.
func TestStagedCreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want func(t *testing.T, m metadataShape)
	}{
		{
			name: "PartitionedSpecIDs",
			body: createBody(2, schema0, partitioned, unsorted),
			want: func(t *testing.T, m metadataShape) {
				if m.DefaultSpecID != 0 || len(m.Specs) != 1 || m.Specs[0].ID != 0 || len(m.Specs[0].Fields) != 2 ||
					m.Specs[0].Fields[0].FieldID != 1000 || m.Specs[0].Fields[0].SourceID != 1 || m.Specs[0].Fields[0].Transform != "bucket[4]" ||
					m.Specs[0].Fields[1].FieldID != 1001 || m.Specs[0].Fields[1].SourceID != 2 || m.LastPartitionID != 1001 {
					t.Errorf("want the client's spec 0 (bucket[4](1) as 1000, identity(2) as 1001) alone and default: %s", m)
				}
			},
		},
		{
			name: "MultipleSchemas",
			body: createBody(2, schema0, unpartitioned, unsorted,
				`{"action":"add-schema","schema":`+schema1+`}`, `{"action":"set-current-schema","schema-id":-1}`),
			want: func(t *testing.T, m metadataShape) {
				ids := []int{}
				for _, s := range m.Schemas {
					ids = append(ids, s.ID)
				}
				if !slices.Equal(ids, []int{0, 1}) || m.CurrentSchemaID != 1 || m.LastColumnID != 4 {
					t.Errorf("want schemas [0 1], current 1, last column 4: %s", m)
				}
			},
		},
		{
			name: "FormatV1",
			body: createBody(1, schema0, partitioned, unsorted),
			want: func(t *testing.T, m metadataShape) {
				if m.FormatVersion != 1 || m.DefaultSpecID != 0 || len(m.Specs) != 1 {
					t.Errorf("want format v1 with the client's spec 0 alone: %s", m)
				}
			},
		},
		{
			name: "SortOrders",
			body: createBody(2, schema0, unpartitioned, sorted),
			want: func(t *testing.T, m metadataShape) {
				if m.DefaultSortOrderID != 1 || len(m.SortOrders) != 1 || m.SortOrders[0].ID != 1 ||
					len(m.SortOrders[0].Fields) != 1 || m.SortOrders[0].Fields[0].SourceID != 3 ||
					m.CurrentSchemaID != 0 || len(m.Schemas) != 1 {
					t.Errorf("want the client's order 1 on ts (source 3) alone, over schema 0 alone: %s", m)
				}
			},
		},
		{
			name: "FormatV3",
			body: createBody(3, schema0, partitioned, sorted),
			want: func(t *testing.T, m metadataShape) {
				if m.FormatVersion != 3 || m.DefaultSpecID != 0 || m.DefaultSortOrderID != 1 || m.CurrentSchemaID != 0 {
					t.Errorf("want format v3 with the client's IDs: %s", m)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, _ := newService(t)
			res, err := svc.CommitTable(t.Context(), change(t, "t", tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			var m metadataShape
			if err := json.Unmarshal(res.RawMetadata, &m); err != nil {
				t.Fatal(err)
			}
			tc.want(t, m)
			if res.Metadata.TableUUID().String() != "9c12d441-03fe-4693-9a96-a0705ddf69c1" || res.Metadata.Properties()["owner"] != "spark" {
				t.Errorf("uuid %s properties %v, want the client's", res.Metadata.TableUUID(), res.Metadata.Properties())
			}
			// What was committed is what loads.
			loaded, err := svc.LoadTable(t.Context(), catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t"})
			if err != nil {
				t.Fatal(err)
			}
			if string(loaded.RawMetadata) != string(res.RawMetadata) {
				t.Errorf("loaded metadata differs from the commit's answer:\n%s\n%s", loaded.RawMetadata, res.RawMetadata)
			}
		})
	}
}

// TestStagedCreateWithSnapshot: a create transaction that also appends
// (CTAS) keeps the snapshot on the client's spec and makes it current.
func TestStagedCreateWithSnapshot(t *testing.T) {
	svc, dir := newService(t)
	loc := "file://" + dir + "/wh/ns/ctas"
	snap := fmt.Sprintf(`{"action":"add-snapshot","snapshot":{"snapshot-id":42,"sequence-number":1,"timestamp-ms":1700000000000,
		"manifest-list":%q,"summary":{"operation":"append"},"schema-id":0}}`, loc+"/metadata/snap-42.avro")
	body := createBody(2, schema0, partitioned, unsorted,
		`{"action":"set-location","location":"`+loc+`"}`, snap,
		`{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":42}`)
	res, err := svc.CommitTable(t.Context(), change(t, "ctas", body), nil)
	if err != nil {
		t.Fatal(err)
	}
	var m metadataShape
	if err := json.Unmarshal(res.RawMetadata, &m); err != nil {
		t.Fatal(err)
	}
	if m.CurrentSnapshotID == nil || *m.CurrentSnapshotID != 42 || m.DefaultSpecID != 0 || len(m.Specs) != 1 || m.Location != loc {
		t.Fatalf("want snapshot 42 current on spec 0 at %s: %s (snapshot %v, location %s)", loc, m, m.CurrentSnapshotID, m.Location)
	}
	// A second create of the same name is a conflict, worded as the
	// reference catalog words it.
	_, err = svc.CommitTable(t.Context(), change(t, "ctas", createBody(2, schema0, unpartitioned, unsorted)), nil)
	if !errors.Is(err, catalog.ErrCommitFailed) || !strings.HasPrefix(err.Error(), "Requirement failed: table already exists") {
		t.Fatalf("second create: %v, want ErrCommitFailed starting \"Requirement failed: table already exists\"", err)
	}
}

// TestBackfill: an entry without a location (written before stores kept
// one) gets it from its metadata, and the overlap check then sees it.
func TestBackfill(t *testing.T) {
	var store catalog.Store
	svc, dir := newService(t, func(o *catalog.Options) { store = o.Store })
	loc := "file://" + dir + "/wh/ns/legacy"
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "legacy"}
	tbl, err := svc.CreateTable(t.Context(), catalog.CreateTableRequest{Ident: id, Schema: iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int64}), Location: loc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Make it a pre-0.2 entry: the metadata location alone.
	err = store.Update(t.Context(), func(tx catalog.Tx) error {
		return tx.Swap(id, tbl.MetadataLocation, catalog.Entry{Kind: catalog.KindTable, MetadataLocation: tbl.MetadataLocation})
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := svc.Backfill(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Backfill = %d, %v; want 1 entry", n, err)
	}
	var e catalog.Entry
	if err := store.View(t.Context(), func(tx catalog.Tx) error { e, err = tx.Load(catalog.KindTable, id); return err }); err != nil {
		t.Fatal(err)
	}
	if e.Location != loc || e.UUID != tbl.Metadata.TableUUID().String() {
		t.Fatalf("backfilled entry %+v, want location %s and the table's UUID", e, loc)
	}
	_, err = svc.CreateTable(t.Context(), catalog.CreateTableRequest{
		Ident: catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "squatter"}, Schema: iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int64}), Location: loc + "/inner",
	}, nil)
	if !errors.Is(err, catalog.ErrLocationInUse) {
		t.Fatalf("create inside the backfilled table: %v, want ErrLocationInUse", err)
	}
	if n, err := svc.Backfill(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Backfill = %d, %v; want nothing to do", n, err)
	}
}

// TestMissingMetadataFile: a table whose current metadata file was deleted
// behind the catalog's back is NotFound, from the cache or not, for a
// full load and for the cheap location check (If-None-Match) alike.
func TestMissingMetadataFile(t *testing.T) {
	svc, _ := newService(t)
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t"}
	tbl, err := svc.CreateTable(t.Context(), catalog.CreateTableRequest{Ident: id, Schema: oneColumn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.LoadTable(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(strings.TrimPrefix(tbl.MetadataLocation, "file://")); err != nil {
		t.Fatal(err)
	}
	want := "Failed to open input stream for file: " + tbl.MetadataLocation
	if _, err := svc.LoadTable(t.Context(), id); !errors.Is(err, catalog.ErrNotFound) || !strings.Contains(err.Error(), want) {
		t.Fatalf("LoadTable: %v, want ErrNotFound with %q", err, want)
	}
	if _, err := svc.TableLocation(t.Context(), id); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("TableLocation: %v, want ErrNotFound", err)
	}
	// The name still exists: the table is there, its metadata is not.
	if err := svc.TableExists(t.Context(), id); err != nil {
		t.Fatalf("TableExists: %v", err)
	}
}

// TestConcurrentCommitsOfOneTable: commits of one table that overlap in
// one process all land, each on its predecessor's state, when their
// requirements still hold there (set-properties of distinct keys).
func TestConcurrentCommitsOfOneTable(t *testing.T) {
	svc, _ := newService(t)
	id := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t"}
	if _, err := svc.CreateTable(t.Context(), catalog.CreateTableRequest{Ident: id, Schema: oneColumn}, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := svc.CommitTable(t.Context(), change(t, "t", fmt.Sprintf(`{"updates":[{"action":"set-properties","updates":{"k%d":"v"}}]}`, i)), nil)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	tbl, err := svc.LoadTable(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, ok := tbl.Metadata.Properties()[fmt.Sprintf("k%d", i)]; !ok {
			t.Errorf("property k%d lost", i)
		}
	}
}
