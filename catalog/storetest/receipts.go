package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
)

var receiptTests = []test{
	{"LoadMissing", testReceiptLoadMissing},
	{"PutLoad", testReceiptPutLoad},
	{"Replace", testReceiptReplace},
	{"DeleteBefore", testReceiptDeleteBefore},
}

// epoch is a receipt time with microsecond precision.
var epoch = time.Date(2025, 3, 4, 5, 6, 7, 891011000, time.UTC)

func loadReceipt(t *testing.T, s catalog.Store, key string) *catalog.Receipt {
	t.Helper()
	var r *catalog.Receipt
	view(t, s, func(tx catalog.Tx) error {
		var err error
		r, err = tx.LoadReceipt(key)
		return err
	})
	return r
}

func putReceipts(t *testing.T, s catalog.Store, rs ...catalog.Receipt) {
	t.Helper()
	update(t, s, func(tx catalog.Tx) error {
		for _, r := range rs {
			if err := tx.PutReceipt(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// wantReceipt fails the test unless the receipt under want.Key equals want.
func wantReceipt(t *testing.T, s catalog.Store, want catalog.Receipt) {
	t.Helper()
	got := loadReceipt(t, s, want.Key)
	if got == nil {
		t.Fatalf("LoadReceipt(%q) = nil, want %+v", want.Key, want)
	}
	if got.Key != want.Key || got.Op != want.Op || got.Status != want.Status ||
		!bytes.Equal(got.Body, want.Body) || !got.Created.Equal(want.Created) {
		t.Fatalf("LoadReceipt(%q) = %+v, want %+v", want.Key, *got, want)
	}
}

func wantNoReceipt(t *testing.T, s catalog.Store, key string) {
	t.Helper()
	if got := loadReceipt(t, s, key); got != nil {
		t.Fatalf("LoadReceipt(%q) = %+v, want nil", key, *got)
	}
}

func testReceiptLoadMissing(t *testing.T, s catalog.Store) {
	putReceipts(t, s, catalog.Receipt{Key: "k1", Op: "op", Status: 200, Created: epoch})
	for _, key := range []string{"", "k", "k10", "K1"} {
		wantNoReceipt(t, s, key)
	}
}

func testReceiptPutLoad(t *testing.T, s catalog.Store) {
	for _, r := range []catalog.Receipt{
		{Key: "plain", Op: "POST /v1/namespaces", Status: 200, Body: []byte(`{"namespace":["a"]}`), Created: epoch},
		{Key: "empty-body", Op: "DELETE /v1/namespaces/{namespace}", Status: 204, Body: []byte{}, Created: epoch.Add(time.Second)},
		{Key: "nil-body", Op: "op", Status: 204, Body: nil, Created: epoch.Add(2 * time.Second)},
		{Key: "binary", Op: "op", Status: 409, Body: []byte{0, 1, 2, 0xFF, 0, 0x1F}, Created: epoch.Add(-time.Hour)},
		{Key: "zone", Op: "op", Status: 500, Body: []byte("x"), Created: epoch.In(time.FixedZone("east", 5*3600+1800))},
		{Key: "ünï code key 🔑", Op: "op ü", Status: 201, Body: []byte("ü"), Created: epoch},
		{Key: "old", Op: "op", Status: 200, Created: time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)},
	} {
		t.Run(r.Key, func(t *testing.T) {
			putReceipts(t, s, r)
			wantReceipt(t, s, r)
		})
	}
}

func testReceiptReplace(t *testing.T, s catalog.Store) {
	first := catalog.Receipt{Key: "k", Op: "op1", Status: 200, Body: []byte("first"), Created: epoch}
	second := catalog.Receipt{Key: "k", Op: "op2", Status: 409, Body: []byte("second"), Created: epoch.Add(time.Minute)}
	putReceipts(t, s, first)
	putReceipts(t, s, second)
	wantReceipt(t, s, second)
	// Replacing within one transaction keeps the last.
	putReceipts(t, s, first, second, first)
	wantReceipt(t, s, first)
}

func testReceiptDeleteBefore(t *testing.T, s catalog.Store) {
	at := func(key string, d time.Duration) catalog.Receipt {
		return catalog.Receipt{Key: key, Op: "op", Status: 200, Body: []byte(key), Created: epoch.Add(d)}
	}
	putReceipts(t, s,
		at("old", -time.Hour), at("old2", -time.Microsecond), at("exact", 0),
		at("new", time.Hour), at("moved", -time.Hour))
	// Replacing a receipt moves it in time: "moved" is now new.
	putReceipts(t, s, at("moved", 2*time.Hour))
	update(t, s, func(tx catalog.Tx) error { return tx.DeleteReceiptsBefore(epoch) })
	for _, key := range []string{"old", "old2"} {
		wantNoReceipt(t, s, key)
	}
	// Created at exactly the cut-off is not before it.
	wantReceipt(t, s, at("exact", 0))
	wantReceipt(t, s, at("new", time.Hour))
	wantReceipt(t, s, at("moved", 2*time.Hour))

	// Nothing before: no-op.
	update(t, s, func(tx catalog.Tx) error { return tx.DeleteReceiptsBefore(epoch.Add(-24 * time.Hour)) })
	wantReceipt(t, s, at("exact", 0))

	// A cut-off in another zone is the same instant.
	update(t, s, func(tx catalog.Tx) error {
		return tx.DeleteReceiptsBefore(epoch.Add(time.Hour + time.Microsecond).In(time.FixedZone("west", -7*3600)))
	})
	for _, key := range []string{"exact", "new"} {
		wantNoReceipt(t, s, key)
	}
	wantReceipt(t, s, at("moved", 2*time.Hour))

	// A deleted key can be used again.
	putReceipts(t, s, at("old", 3*time.Hour))
	wantReceipt(t, s, at("old", 3*time.Hour))
}
