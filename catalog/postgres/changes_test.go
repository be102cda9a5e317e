package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/catalog/postgres"
	"github.com/zombi-db/zombi/internal/testenv"
)

// follower opens a store with opts and a metrics registry, runs its
// FollowChanges until the test ends and returns what it reports, the
// first report (All) consumed.
func follower(t *testing.T, dsn string, opts ...postgres.Option) (<-chan catalog.Changes, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := open(t, dsn, append(opts, postgres.WithRegisterer(reg))...)
	ch := make(chan catalog.Changes, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.FollowChanges(ctx, func(c catalog.Changes) { ch <- c }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("FollowChanges: %v", err)
		}
	})
	awaitAll(t, ch, 10*time.Second)
	return ch, reg
}

// awaitAll fails the test unless the next report, within d, is All.
func awaitAll(t *testing.T, ch <-chan catalog.Changes, d time.Duration) {
	t.Helper()
	select {
	case c := <-ch:
		if !c.All {
			t.Fatalf("reported %+v, want All", c)
		}
	case <-time.After(d):
		t.Fatalf("nothing reported within %s, want All", d)
	}
}

// await reads reports until every identifier of want was reported and
// returns how long that took. Any other identifier, or All, fails the
// test.
func await(t *testing.T, ch <-chan catalog.Changes, within time.Duration, want ...catalog.Ident) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(within)
	missing := slices.Clone(want)
	for len(missing) > 0 {
		select {
		case c := <-ch:
			if c.All {
				t.Fatalf("reported All, want %v", missing)
			}
			for _, id := range c.Idents {
				i := slices.IndexFunc(missing, func(m catalog.Ident) bool { return m.String() == id.String() })
				if i < 0 {
					t.Fatalf("reported %v, want %v", id, missing)
				}
				missing = slices.Delete(missing, i, i+1)
			}
		case <-timeout:
			t.Fatalf("%v not reported within %s", missing, within)
		}
	}
	return time.Since(start)
}

// quiet fails the test if anything is reported within d.
func quiet(t *testing.T, ch <-chan catalog.Changes, d time.Duration) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("reported %+v, want nothing", c)
	case <-time.After(d):
	}
}

func update(t *testing.T, s catalog.Store, fn func(tx catalog.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func table(loc string) catalog.Entry {
	return catalog.Entry{Kind: catalog.KindTable, MetadataLocation: loc}
}

var (
	nsA   = catalog.Namespace{"a"}
	nsAB  = catalog.Namespace{"a", "b"}
	t1    = catalog.Ident{Namespace: nsA, Name: "t1"}
	t2    = catalog.Ident{Namespace: nsAB, Name: "t2"}
	view1 = catalog.Ident{Namespace: nsA, Name: "v1"}
)

// TestFollowChanges commits through one store and follows through
// another: every kind of change is reported, by notification (the poll
// interval is a minute), once per entry, and only once committed.
func TestFollowChanges(t *testing.T) {
	dsn := testenv.Postgres(t)
	a := open(t, dsn)
	changes, reg := follower(t, dsn, postgres.WithPollInterval(time.Minute))
	update(t, a, func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(nsA, nil); err != nil {
			return err
		}
		return tx.CreateNamespace(nsAB, nil)
	})
	quiet(t, changes, 100*time.Millisecond) // namespaces are not entries

	for _, tc := range []struct {
		name string
		fn   func(tx catalog.Tx) error
		want []catalog.Ident
	}{
		{"Create", func(tx catalog.Tx) error { return tx.Create(t1, table("m1")) }, []catalog.Ident{t1}},
		{"CreateNested", func(tx catalog.Tx) error { return tx.Create(t2, table("m1")) }, []catalog.Ident{t2}},
		{"Swap", func(tx catalog.Tx) error { return tx.Swap(t1, "m1", table("m2")) }, []catalog.Ident{t1}},
		{"SwapTwice", func(tx catalog.Tx) error {
			if err := tx.Swap(t1, "m2", table("m3")); err != nil {
				return err
			}
			return tx.Swap(t1, "m3", table("m4"))
		}, []catalog.Ident{t1}},
		{"SwapTwo", func(tx catalog.Tx) error {
			if err := tx.Swap(t1, "m4", table("m5")); err != nil {
				return err
			}
			return tx.Swap(t2, "m1", table("m2"))
		}, []catalog.Ident{t1, t2}},
		{"Rename", func(tx catalog.Tx) error {
			return tx.Rename(catalog.KindTable, t2, catalog.Ident{Namespace: nsA, Name: "t3"})
		}, []catalog.Ident{t2, {Namespace: nsA, Name: "t3"}}},
		{"Drop", func(tx catalog.Tx) error {
			_, err := tx.Drop(catalog.KindTable, catalog.Ident{Namespace: nsA, Name: "t3"})
			return err
		}, []catalog.Ident{{Namespace: nsA, Name: "t3"}}},
		{"CreateView", func(tx catalog.Tx) error {
			return tx.Create(view1, catalog.Entry{Kind: catalog.KindView, MetadataLocation: "v"})
		}, []catalog.Ident{view1}},
		{"DropView", func(tx catalog.Tx) error { _, err := tx.Drop(catalog.KindView, view1); return err }, []catalog.Ident{view1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			update(t, a, tc.fn)
			d := await(t, changes, time.Second, tc.want...)
			t.Logf("reported %s after the commit", d)
			quiet(t, changes, 50*time.Millisecond)
		})
	}

	t.Run("SwapOntoItself", func(t *testing.T) {
		update(t, a, func(tx catalog.Tx) error { return tx.Swap(t1, "m5", table("m5")) })
		quiet(t, changes, 200*time.Millisecond)
	})
	t.Run("RolledBack", func(t *testing.T) {
		errNo := errors.New("no")
		err := a.Update(t.Context(), func(tx catalog.Tx) error {
			if err := tx.Swap(t1, "m5", table("m6")); err != nil {
				return err
			}
			return errNo
		})
		if !errors.Is(err, errNo) {
			t.Fatal(err)
		}
		t4 := catalog.Ident{Namespace: nsA, Name: "t4"}
		update(t, a, func(tx catalog.Tx) error { return tx.Create(t4, table("m1")) })
		await(t, changes, time.Second, t4)
		quiet(t, changes, 50*time.Millisecond)
	})
	if n := counter(t, reg, "zombi_catalog_changes_total", "notify"); n != 12 {
		t.Errorf("changes found on notification: %v, want 12", n)
	}
}

// TestFollowChangesCommitOrder commits a change that took its log row
// before another's, after the other: both are reported, whatever order
// their seqs have.
func TestFollowChangesCommitOrder(t *testing.T) {
	dsn := testenv.Postgres(t)
	a := open(t, dsn)
	update(t, a, func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(nsA, nil); err != nil {
			return err
		}
		if err := tx.Create(t1, table("m1")); err != nil {
			return err
		}
		return tx.Create(catalog.Ident{Namespace: nsA, Name: "t2"}, table("m1"))
	})
	changes, _ := follower(t, dsn, postgres.WithPollInterval(50*time.Millisecond))

	// The slow transaction's row gets the smaller seq.
	tx := begin(t, dsn, `UPDATE zombi_tables SET metadata_location = 'm2' WHERE name = 't1'`)
	fast := catalog.Ident{Namespace: nsA, Name: "t2"}
	update(t, a, func(tx catalog.Tx) error { return tx.Swap(fast, "m1", table("m2")) })
	await(t, changes, time.Second, fast)
	time.Sleep(100 * time.Millisecond) // reads pass the slow transaction's seq
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	await(t, changes, time.Second, t1)
}

// TestFollowChangesPolling follows without LISTEN, as behind a
// transaction-pooling proxy: the poll alone reports changes within its
// interval.
func TestFollowChangesPolling(t *testing.T) {
	dsn := testenv.Postgres(t)
	a := open(t, dsn)
	changes, reg := follower(t, dsn, postgres.WithListen(false))
	update(t, a, func(tx catalog.Tx) error { return tx.CreateNamespace(nsA, nil) })
	var worst time.Duration
	for i := range 5 {
		id := catalog.Ident{Namespace: nsA, Name: fmt.Sprintf("t%d", i)}
		update(t, a, func(tx catalog.Tx) error { return tx.Create(id, table("m")) })
		// The default poll interval is 500ms.
		worst = max(worst, await(t, changes, time.Second, id))
		time.Sleep(time.Duration(i) * 97 * time.Millisecond) // commit at other points of the interval
	}
	t.Logf("polling reported changes at most %s after their commit", worst)
	if n := counter(t, reg, "zombi_catalog_changes_total", "poll"); n != 5 {
		t.Errorf("changes found by polling: %v, want 5", n)
	}
}

// TestFollowChangesListenerLost commits while the listening connection
// is lost: the listener reconnects and reads what it missed without
// waiting for the poll.
func TestFollowChangesListenerLost(t *testing.T) {
	dsn := testenv.Postgres(t)
	a := open(t, dsn)
	changes, reg := follower(t, dsn, postgres.WithPollInterval(time.Minute))
	update(t, a, func(tx catalog.Tx) error { return tx.CreateNamespace(nsA, nil) })

	// The commit waits in a transaction until the listener is gone.
	tx := begin(t, dsn, `INSERT INTO zombi_tables (namespace, name, metadata_location) VALUES ('a', 't1', 'm')`)
	var pid int
	listener := `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN zombi_changes'`
	if err := pgxQueryRow(t, dsn, listener, &pid); err != nil {
		t.Fatalf("finding the listener: %v", err)
	}
	if err := pgxQueryRow(t, dsn, fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid), new(bool)); err != nil {
		t.Fatal(err)
	}
	for {
		var n int
		if err := pgxQueryRow(t, dsn, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid), &n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	d := await(t, changes, 2*time.Second, t1)
	t.Logf("reported %s after the commit, across a reconnection", d)
	if n := counter(t, reg, "zombi_catalog_changes_total", "listen"); n != 1 {
		t.Errorf("changes found on reconnecting: %v, want 1", n)
	}
	if n := counter(t, reg, "zombi_catalog_change_listen_reconnects_total", ""); n != 1 {
		t.Errorf("reconnects: %v, want 1", n)
	}
}

// counter returns the value of the counter name with the cause label
// cause ("": no labels), 0 if it has none.
func counter(t *testing.T, reg *prometheus.Registry, name, cause string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if cause == "" || slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetValue() == cause }) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestFollowChangesPruned takes a follower's database access away while
// another store commits and prunes the change log: when it is back, it
// reports All, since it cannot know what it missed.
func TestFollowChangesPruned(t *testing.T) {
	dsn := testenv.Postgres(t)
	a := open(t, dsn)
	update(t, a, func(tx catalog.Tx) error { return tx.CreateNamespace(nsA, nil) })

	// b logs in as its own role, which the test can lock out.
	role := fmt.Sprintf("zombi_b_%d", time.Now().UnixNano())
	admin := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	admin("CREATE ROLE " + role + " LOGIN SUPERUSER PASSWORD 'b'")
	t.Cleanup(func() { admin("DROP ROLE IF EXISTS " + role) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "b")
	changes, _ := follower(t, u.String(), postgres.WithPollInterval(50*time.Millisecond))

	update(t, a, func(tx catalog.Tx) error { return tx.Create(t1, table("m1")) })
	await(t, changes, time.Second, t1)

	admin("ALTER ROLE " + role + " NOLOGIN")
	admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'")
	update(t, a, func(tx catalog.Tx) error { return tx.Swap(t1, "m1", table("m2")) })
	n, err := a.PruneChanges(t.Context(), 0)
	if err != nil || n < 2 {
		t.Fatalf("PruneChanges: %d, %v; want at least 2 rows", n, err)
	}
	time.Sleep(300 * time.Millisecond) // b's polls fail
	admin("ALTER ROLE " + role + " LOGIN")
	awaitAll(t, changes, 10*time.Second)
	// And it follows on.
	t2 := catalog.Ident{Namespace: nsA, Name: "t2"}
	update(t, a, func(tx catalog.Tx) error { return tx.Create(t2, table("m1")) })
	await(t, changes, time.Second, t2)
}

// TestPruneChanges keeps the rows younger than the age.
func TestPruneChanges(t *testing.T) {
	dsn := testenv.Postgres(t)
	a := open(t, dsn)
	update(t, a, func(tx catalog.Tx) error {
		if err := tx.CreateNamespace(nsA, nil); err != nil {
			return err
		}
		return tx.Create(t1, table("m1"))
	})
	for _, tc := range []struct {
		age  time.Duration
		want int64
	}{{time.Hour, 0}, {0, 1}, {0, 0}} {
		n, err := a.PruneChanges(t.Context(), tc.age)
		if err != nil || n != tc.want {
			t.Fatalf("PruneChanges(%s) = %d, %v; want %d", tc.age, n, err, tc.want)
		}
	}
}

// begin runs sql in a transaction on a connection of its own and returns
// the transaction, which the test commits or which is rolled back when it
// ends.
func begin(t *testing.T, dsn, sql string) pgx.Tx {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	if _, err := tx.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
	return tx
}

func pgxQueryRow(t *testing.T, dsn, sql string, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(t.Context(), sql).Scan(dest...)
}
