package e2e

import (
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestTableChangesAcrossNodes runs two nodes on one Postgres and one S3
// bucket and changes a table through node A with iceberg-go: node B's
// ingest follows each change within a second, without a restart — told
// by notification, and with notifications off (--postgres-listen=false)
// by polling alone.
func TestTableChangesAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []string // node B's extra flags
	}{
		{"Notify", nil},
		{"Poll", []string{"--postgres-listen=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two nodes on one database run with --cluster: a node
			// without it refuses a live neighbour.
			args := append(zombitest.PostgresS3Args(t), "--cluster", "--auto-create=false", "--flush-interval", "1h")
			a := zombitest.Start(t, args...)
			b := zombitest.Start(t, append(args, tc.b...)...)
			testTableChangesAcrossNodes(t, a, b)
			notified := metric(t, b.URL, "zombi_catalog_change_notifications_total")
			polled := metric(t, b.URL, `zombi_catalog_changes_total{cause="poll"}`)
			if listen := tc.b == nil; listen != (notified > 0) || !listen && polled == 0 {
				t.Errorf("B got %v notifications and polled %v changes", notified, polled)
			}
		})
	}
}

func testTableChangesAcrossNodes(t *testing.T, a, b *zombitest.Instance) {
	ctx := t.Context()
	cat := restCatalog(t, a)
	if err := cat.CreateNamespace(ctx, table.Identifier{"shop"}, nil); err != nil {
		t.Fatal(err)
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String})
	tbl, err := cat.CreateTable(ctx, table.Identifier{"shop", "orders"}, schema)
	if err != nil {
		t.Fatal(err)
	}
	// B knows the table, and caches it.
	postEvent(t, b.URL, "shop.orders", `{"id":1,"name":"first"}`)
	withNote := `{"id":2,"name":"with note","note":"hello"}`
	if status, _, body := call(t, "POST", b.URL+"/tables/shop.orders", withNote); status != 400 {
		t.Fatalf("a row with an unknown column: %d %s, want 400", status, body)
	}

	// A column added through A: B takes rows with it.
	txn := tbl.NewTransaction()
	if err := txn.UpdateSchema(true, false).AddColumn([]string{"note"}, iceberg.PrimitiveTypes.String, "", false, nil).Commit(); err != nil {
		t.Fatal(err)
	}
	if tbl, err = txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	d := within(t, time.Second, "B to take the new column", func() bool {
		status, _, _ := call(t, "POST", b.URL+"/tables/shop.orders", withNote)
		return status == 202
	})
	t.Logf("B took rows with the new column %s after A's commit", d)

	// A property set through A: B drops unknown fields.
	txn = tbl.NewTransaction()
	if err := txn.SetProperties(iceberg.Properties{"zombi.ingest.unknown-fields": "drop"}); err != nil {
		t.Fatal(err)
	}
	if _, err = txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	d = within(t, time.Second, "B to drop unknown fields", func() bool {
		status, _, _ := call(t, "POST", b.URL+"/tables/shop.orders", `{"id":3,"name":"extra","colour":"red"}`)
		return status == 202
	})
	t.Logf("B followed the property %s after A's commit", d)

	// Renamed through A: B writes under the new name only.
	renamed := table.Identifier{"shop", "orders_v2"}
	if _, err := cat.RenameTable(ctx, table.Identifier{"shop", "orders"}, renamed); err != nil {
		t.Fatal(err)
	}
	d = within(t, time.Second, "B to lose the old name", func() bool {
		status, _, _ := call(t, "POST", b.URL+"/tables/shop.orders", withNote)
		return status == 404
	})
	t.Logf("B followed the rename %s after A's commit", d)
	postEvent(t, b.URL, "shop.orders_v2", withNote)

	// Dropped through A: B refuses writes.
	if err := cat.DropTable(ctx, renamed); err != nil {
		t.Fatal(err)
	}
	d = within(t, time.Second, "B to refuse writes to the dropped table", func() bool {
		status, _, _ := call(t, "POST", b.URL+"/tables/shop.orders_v2", withNote)
		return status == 404
	})
	t.Logf("B followed the drop %s after A's commit", d)
}

// within calls ok every 10ms until it returns true and returns how long
// that took; it fails the test if it takes longer than d.
func within(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("waited %s for %s", time.Since(start), what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
