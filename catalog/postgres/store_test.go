package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/postgres"
	"github.com/zombi-db/zombi/catalog/storetest"
	"github.com/zombi-db/zombi/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

func open(t *testing.T, url string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := postgres.Open(t.Context(), url, append([]postgres.Option{postgres.WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) catalog.Store { return open(t, testenv.Postgres(t)) })
}

func TestOpenConcurrent(t *testing.T) {
	url := testenv.Postgres(t)
	const n = 4
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	// Every store sees the others' writes.
	ns := catalog.Namespace{"a"}
	if err := stores[0].Update(t.Context(), func(tx catalog.Tx) error { return tx.CreateNamespace(ns, nil) }); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if err := s.View(t.Context(), func(tx catalog.Tx) error { _, err := tx.LoadNamespace(ns); return err }); err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Nothing listens on port 1.
	_, err := postgres.Open(ctx, "postgres://zombi@127.0.0.1:1/zombi?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, catalog.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ErrUnavailable", err)
	}

	s := open(t, testenv.Postgres(t))
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Ping":   func() error { return s.Ping(ctx) },
		"View":   func() error { return s.View(ctx, func(catalog.Tx) error { return nil }) },
		"Update": func() error { return s.Update(ctx, func(catalog.Tx) error { return nil }) },
	} {
		if err := call(); !errors.Is(err, catalog.ErrUnavailable) {
			t.Errorf("%s after Close: %v, want ErrUnavailable", name, err)
		}
	}
}

func TestUnstorableNames(t *testing.T) {
	s := open(t, testenv.Postgres(t))
	for name, fn := range map[string]func(catalog.Tx) error{
		"NulNamespace": func(tx catalog.Tx) error { return tx.CreateNamespace(catalog.Namespace{"a\x00b"}, nil) },
		"InvalidUTF8":  func(tx catalog.Tx) error { return tx.CreateNamespace(catalog.Namespace{"a\xffb"}, nil) },
		"NulProperty": func(tx catalog.Tx) error {
			return tx.CreateNamespace(catalog.Namespace{"p"}, map[string]string{"k": "a\x00"})
		},
		"NulTableName": func(tx catalog.Tx) error {
			return tx.Create(catalog.Ident{Namespace: catalog.Namespace{"x"}, Name: "a\x00"}, catalog.Entry{Kind: catalog.KindTable, MetadataLocation: "loc"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				if err := tx.CreateNamespace(catalog.Namespace{"x"}, nil); err != nil {
					return err
				}
				return fn(tx)
			})
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("Update: %v, want ErrInvalid", err)
			}
		})
	}
}

// TestConnectionLost ends the store's session from outside, as a database
// restart or failover does, in the middle of a transaction.
func TestConnectionLost(t *testing.T) {
	url := testenv.Postgres(t)
	s := open(t, url)
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// terminate ends the sessions of the store's open transactions. The
	// pool may hold another session idle in a transaction for a moment
	// (a read-only view being rolled back), so at least one, not exactly
	// one, is ended; the store's own is always among them.
	terminate := func() error {
		var n int
		err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`).Scan(&n)
		if err == nil && n < 1 {
			err = fmt.Errorf("terminated %d sessions, want at least 1", n)
		}
		return err
	}
	a := catalog.Namespace{"a"}
	for _, tc := range []struct {
		name string
		fn   func(tx catalog.Tx) error
		want []error // any of
	}{
		{"BeforeStatement", func(tx catalog.Tx) error {
			if _, err := tx.ListNamespaces(nil, "", 0); err != nil {
				return err
			}
			if err := terminate(); err != nil {
				return err
			}
			return tx.CreateNamespace(a, nil)
		}, []error{catalog.ErrUnavailable}},
		{"BeforeCommit", func(tx catalog.Tx) error {
			if err := tx.CreateNamespace(a, nil); err != nil {
				return err
			}
			return terminate()
		}, []error{catalog.ErrUnavailable, catalog.ErrCommitStateUnknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), tc.fn)
			if !slices.ContainsFunc(tc.want, func(target error) bool { return errors.Is(err, target) }) {
				t.Fatalf("Update: %v, want one of %v", err, tc.want)
			}
			t.Logf("Update: %v", err)
			// The pool replaces the connection; nothing was committed.
			err = s.View(t.Context(), func(tx catalog.Tx) error { _, err := tx.LoadNamespace(a); return err })
			if !errors.Is(err, catalog.ErrNoSuchNamespace) {
				t.Fatalf("LoadNamespace after the failed Update: %v, want ErrNoSuchNamespace", err)
			}
		})
	}
}
