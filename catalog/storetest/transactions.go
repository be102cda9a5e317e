package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
)

var txTests = []test{
	{"ReadOwnWrites", testTxReadOwnWrites},
	{"Rollback", testTxRollback},
	{"MultiTableAtomic", testTxMultiTableAtomic},
	{"ViewSeesCommitted", testTxViewSeesCommitted},
	{"ViewReadOnly", testTxViewReadOnly},
	{"Done", testTxDone},
	{"Canceled", testTxCanceled},
	{"Panic", testTxPanic},
}

var errAbort = errors.New("storetest: abort")

// txOp is one call of every Tx method, on names the fixture of the test
// using it defines.
type txOp struct {
	name  string
	write bool
	call  func(tx catalog.Tx) error
}

var txOps = []txOp{
	{"LoadNamespace", false, func(tx catalog.Tx) error { _, err := tx.LoadNamespace(ns("a")); return err }},
	{"CreateNamespace", true, func(tx catalog.Tx) error { return tx.CreateNamespace(ns("new"), nil) }},
	{"SetNamespaceProperties", true, func(tx catalog.Tx) error {
		return tx.SetNamespaceProperties(ns("a"), map[string]string{"k": "changed"})
	}},
	{"DropNamespace", true, func(tx catalog.Tx) error { return tx.DropNamespace(ns("empty")) }},
	{"ListNamespaces", false, func(tx catalog.Tx) error { _, err := tx.ListNamespaces(nil, "", 0); return err }},
	{"LoadTable", false, func(tx catalog.Tx) error { _, err := loadT(tx, ident(ns("a"), "t")); return err }},
	{"CreateTable", true, func(tx catalog.Tx) error { return createT(tx, ident(ns("a"), "new"), "loc") }},
	{"SwapTable", true, func(tx catalog.Tx) error { return swapT(tx, ident(ns("a"), "t"), "v1", "v2") }},
	{"DropTable", true, func(tx catalog.Tx) error { _, err := dropT(tx, ident(ns("a"), "t")); return err }},
	{"RenameTable", true, func(tx catalog.Tx) error {
		return renameT(tx, ident(ns("a"), "t"), ident(ns("a"), "renamed"))
	}},
	{"ListTables", false, func(tx catalog.Tx) error { _, err := listT(tx, ns("a"), "", 0); return err }},
	{"LoadReceipt", false, func(tx catalog.Tx) error { _, err := tx.LoadReceipt("r"); return err }},
	{"PutReceipt", true, func(tx catalog.Tx) error {
		return tx.PutReceipt(catalog.Receipt{Key: "r", Op: "other", Status: 500, Created: epoch})
	}},
	{"DeleteReceiptsBefore", true, func(tx catalog.Tx) error { return tx.DeleteReceiptsBefore(epoch.Add(time.Hour)) }},
}

// opsFixture creates what txOps work on: namespaces a (with table t at v1)
// and empty, and receipt r.
func opsFixture(t *testing.T, s catalog.Store) {
	t.Helper()
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(ns("a"), map[string]string{"k": "v"}); err != nil {
			return err
		}
		if err := tx.CreateNamespace(ns("empty"), nil); err != nil {
			return err
		}
		if err := createT(tx, ident(ns("a"), "t"), "v1"); err != nil {
			return err
		}
		return tx.PutReceipt(receiptR)
	})
}

var receiptR = catalog.Receipt{Key: "r", Op: "op", Status: 200, Body: []byte("body"), Created: epoch}

func testTxReadOwnWrites(t *testing.T, s catalog.Store) {
	a, ab := ns("a"), ns("a", "b")
	id := ident(a, "t")
	r := catalog.Receipt{Key: "k", Op: "op", Status: 201, Body: []byte("b"), Created: epoch}
	// check fails the transaction unless cond holds.
	check := func(what string, cond bool, err error) error {
		if err != nil {
			return errors.Join(errors.New(what), err)
		}
		if !cond {
			return errors.New(what + ": unexpected result")
		}
		return nil
	}
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(a, map[string]string{"k": "v"}); err != nil {
			return err
		}
		props, err := tx.LoadNamespace(a)
		if err := check("LoadNamespace after create", props["k"] == "v", err); err != nil {
			return err
		}
		// The parent created in this transaction counts.
		if err := tx.CreateNamespace(ab, nil); err != nil {
			return err
		}
		children, err := tx.ListNamespaces(a, "", 0)
		if err := check("ListNamespaces after create", len(children) == 1 && slices.Equal(children[0], ab), err); err != nil {
			return err
		}
		if err := tx.SetNamespaceProperties(a, map[string]string{"k2": "v2"}); err != nil {
			return err
		}
		props, err = tx.LoadNamespace(a)
		if err := check("LoadNamespace after set", len(props) == 1 && props["k2"] == "v2", err); err != nil {
			return err
		}
		if err := tx.DropNamespace(ab); err != nil {
			return err
		}
		_, err = tx.LoadNamespace(ab)
		if err := check("LoadNamespace after drop", errors.Is(err, catalog.ErrNoSuchNamespace), nil); err != nil {
			return err
		}
		if err := createT(tx, id, "v1"); err != nil {
			return err
		}
		if err := swapT(tx, id, "v1", "v2"); err != nil {
			return err
		}
		loc, err := loadT(tx, id)
		if err := check("LoadTable after swap", loc == "v2", err); err != nil {
			return err
		}
		if err := swapT(tx, id, "v1", "v3"); !errors.Is(err, catalog.ErrCommitFailed) {
			return errors.Join(errors.New("SwapTable from a stale location in the same transaction"), err)
		}
		ids, err := listT(tx, a, "", 0)
		if err := check("ListTables after create", len(ids) == 1 && ids[0].Name == "t", err); err != nil {
			return err
		}
		if err := renameT(tx, id, ident(a, "u")); err != nil {
			return err
		}
		if _, err := loadT(tx, id); !errors.Is(err, catalog.ErrNoSuchTable) {
			return errors.Join(errors.New("LoadTable after rename"), err)
		}
		loc, err = dropT(tx, ident(a, "u"))
		if err := check("DropTable after rename", loc == "v2", err); err != nil {
			return err
		}
		if err := createT(tx, id, "v4"); err != nil {
			return err
		}
		if err := tx.PutReceipt(r); err != nil {
			return err
		}
		got, err := tx.LoadReceipt("k")
		if err := check("LoadReceipt after put", got != nil && got.Status == 201, err); err != nil {
			return err
		}
		if err := tx.DeleteReceiptsBefore(epoch.Add(time.Second)); err != nil {
			return err
		}
		got, err = tx.LoadReceipt("k")
		return check("LoadReceipt after delete", got == nil, err)
	})
	wantState(t, s, state{
		namespaces: map[string]map[string]string{"a": {"k2": "v2"}},
		tables:     map[string]string{"a\x00t": "v4"},
	})
	wantNoReceipt(t, s, "k")
}

func testTxRollback(t *testing.T, s catalog.Store) {
	opsFixture(t, s)
	before := dump(t, s)
	// Every write, alone and all together, vanishes when fn fails after it.
	for _, op := range txOps {
		if !op.write {
			continue
		}
		t.Run(op.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				if err := op.call(tx); err != nil {
					return err
				}
				return errAbort
			})
			wantErr(t, "Update", err, errAbort)
			wantState(t, s, before)
			wantReceipt(t, s, receiptR)
		})
	}
	t.Run("All", func(t *testing.T) {
		err := s.Update(t.Context(), func(tx catalog.Tx) error {
			for _, op := range txOps {
				if op.name == "RenameTable" || op.name == "DropTable" {
					continue // SwapTable and they touch the same table
				}
				if err := op.call(tx); err != nil {
					return errors.Join(errors.New(op.name), err)
				}
			}
			if err := tx.CreateNamespace(ns("new", "child"), nil); err != nil {
				return err
			}
			return errAbort
		})
		wantErr(t, "Update", err, errAbort)
		wantState(t, s, before)
		wantReceipt(t, s, receiptR)
	})
}

func testTxMultiTableAtomic(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"), ns("b"))
	ids := []catalog.Ident{ident(ns("a"), "t1"), ident(ns("a"), "t2"), ident(ns("b"), "t3")}
	for _, id := range ids {
		createTable(t, s, id, "v1")
	}
	before := dump(t, s)
	for _, tc := range []struct {
		name string
		fn   func(tx catalog.Tx) error
		err  error
	}{
		{"AbortAfterAll", func(tx catalog.Tx) error {
			for _, id := range ids {
				if err := swapT(tx, id, "v1", "v2"); err != nil {
					return err
				}
			}
			return errAbort
		}, errAbort},
		{"LastSwapLoses", func(tx catalog.Tx) error {
			for i, id := range ids {
				expected := "v1"
				if i == len(ids)-1 {
					expected = "stale"
				}
				if err := swapT(tx, id, expected, "v2"); err != nil {
					return err
				}
			}
			return nil
		}, catalog.ErrCommitFailed},
		{"LastTableMissing", func(tx catalog.Tx) error {
			for _, id := range append(slices.Clip(ids), ident(ns("b"), "missing")) {
				if err := swapT(tx, id, "v1", "v2"); err != nil {
					return err
				}
			}
			return nil
		}, catalog.ErrNoSuchTable},
		{"CreateThenSwapLoses", func(tx catalog.Tx) error {
			if err := createT(tx, ident(ns("b"), "t4"), "v1"); err != nil {
				return err
			}
			if err := swapT(tx, ids[0], "v1", "v2"); err != nil {
				return err
			}
			return swapT(tx, ids[1], "v0", "v2")
		}, catalog.ErrCommitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), tc.fn)
			wantErr(t, "Update", err, tc.err)
			wantState(t, s, before)
		})
	}
	t.Run("Commit", func(t *testing.T) {
		update(t, s, func(tx catalog.Tx) error {
			for _, id := range ids {
				if err := swapT(tx, id, "v1", "v2"); err != nil {
					return err
				}
			}
			return nil
		})
		for _, id := range ids {
			wantTable(t, s, id, "v2")
		}
	})
}

func testTxViewSeesCommitted(t *testing.T, s catalog.Store) {
	id := ident(ns("a"), "t")
	for i, loc := range []string{"v1", "v2", "v3"} {
		update(t, s, func(tx catalog.Tx) error {
			if i == 0 {
				if err := tx.CreateNamespace(ns("a"), nil); err != nil {
					return err
				}
				return createT(tx, id, loc)
			}
			prev, err := loadT(tx, id)
			if err != nil {
				return err
			}
			return swapT(tx, id, prev, loc)
		})
		wantTable(t, s, id, loc)
	}
	update(t, s, func(tx catalog.Tx) error { _, err := dropT(tx, id); return err })
	wantNoTable(t, s, id)
}

func testTxViewReadOnly(t *testing.T, s catalog.Store) {
	opsFixture(t, s)
	before := dump(t, s)
	for _, op := range txOps {
		if !op.write {
			continue
		}
		t.Run(op.name, func(t *testing.T) {
			var opErr error
			err := s.View(t.Context(), func(tx catalog.Tx) error {
				opErr = op.call(tx)
				return nil
			})
			if opErr == nil && err == nil {
				t.Fatalf("%s in View succeeded", op.name)
			}
			wantState(t, s, before)
			wantReceipt(t, s, receiptR)
		})
	}
}

func testTxDone(t *testing.T, s catalog.Store) {
	opsFixture(t, s)
	before := dump(t, s)
	for _, kind := range []struct {
		name string
		run  func(ctx context.Context, fn func(catalog.Tx) error) error
	}{
		{"Update", s.Update},
		{"View", s.View},
		{"FailedUpdate", func(ctx context.Context, fn func(catalog.Tx) error) error {
			err := s.Update(ctx, func(tx catalog.Tx) error {
				if err := fn(tx); err != nil {
					return err
				}
				return errAbort
			})
			if errors.Is(err, errAbort) {
				return nil
			}
			return err
		}},
	} {
		for _, op := range txOps {
			t.Run(kind.name+"/"+op.name, func(t *testing.T) {
				var leaked catalog.Tx
				if err := kind.run(t.Context(), func(tx catalog.Tx) error { leaked = tx; return nil }); err != nil {
					t.Fatalf("%s: %v", kind.name, err)
				}
				err := op.call(leaked)
				wantErr(t, op.name+" after the transaction ended", err, catalog.ErrTxDone)
				wantState(t, s, before)
			})
		}
	}
}

func testTxCanceled(t *testing.T, s catalog.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Update(ctx, func(tx catalog.Tx) error { return tx.CreateNamespace(ns("a"), nil) })
	wantErr(t, "Update with a canceled context", err, context.Canceled)
	wantNoNamespace(t, s, ns("a"))
	err = s.View(ctx, func(tx catalog.Tx) error { _, err := tx.LoadNamespace(ns("a")); return err })
	if err == nil {
		t.Fatal("View with a canceled context succeeded")
	}
}

func testTxPanic(t *testing.T, s catalog.Store) {
	func() {
		defer func() {
			if r := recover(); r != errAbort {
				t.Fatalf("recovered %v, want the panic from fn", r)
			}
		}()
		s.Update(t.Context(), func(tx catalog.Tx) error {
			if err := tx.CreateNamespace(ns("a"), nil); err != nil {
				return err
			}
			panic(errAbort)
		})
	}()
	// The panic rolled back and released the store: the next Update runs.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Update(ctx, func(tx catalog.Tx) error { return tx.CreateNamespace(ns("b"), nil) }); err != nil {
		t.Fatalf("Update after a panic: %v", err)
	}
	wantNoNamespace(t, s, ns("a"))
	wantNamespace(t, s, ns("b"), map[string]string{})
}
