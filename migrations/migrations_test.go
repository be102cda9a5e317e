package migrations

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zombi-db/zombi/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

func TestLoad(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Name != "0001_init.sql" {
		t.Fatalf("All() = %d migrations, first %+v", len(ms), ms[0])
	}
	for _, tc := range []struct {
		name  string
		files []string
		err   string // "" for success
	}{
		{"Ordered", []string{"0002_b.sql", "0001_a.sql", "0003_c.sql"}, ""},
		{"Gap", []string{"0001_a.sql", "0003_c.sql"}, "want version 0002"},
		{"Duplicate", []string{"0001_a.sql", "0001_b.sql"}, "want version 0002"},
		{"Zero", []string{"0000_a.sql"}, "want version 0001"},
		{"BadName", []string{"0001_a.sql", "2_b.sql"}, "not named"},
		{"UpperCase", []string{"0001_Init.sql"}, "not named"},
		{"NotSQL", []string{"0001_a.txt"}, "not named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys[f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			ms, err := load(fsys)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("load(%q) = %v, want an error containing %q", tc.files, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range ms {
				if m.Version != i+1 {
					t.Fatalf("migration %d has version %d", i, m.Version)
				}
			}
		})
	}
}

func connect(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// record is a row of zombi_schema_migrations.
type record struct {
	Version   int
	Name      string
	Checksum  string
	AppliedAt time.Time
}

func records(t *testing.T, pool *pgxpool.Pool) []record {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version, name, checksum, applied_at FROM zombi_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[record])
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// wantApplied fails the test unless exactly ms are recorded, and the
// catalog tables exist.
func wantApplied(t *testing.T, pool *pgxpool.Pool, ms []Migration) []record {
	t.Helper()
	rs := records(t, pool)
	if len(rs) != len(ms) {
		t.Fatalf("%d migrations recorded, want %d: %+v", len(rs), len(ms), rs)
	}
	for i, r := range rs {
		if r.Version != ms[i].Version || r.Name != ms[i].Name || r.Checksum != ms[i].Checksum {
			t.Fatalf("recorded %+v, want %s", r, ms[i].Name)
		}
	}
	return rs
}

func TestApply(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	pool := connect(t, testenv.Postgres(t))
	if err := Apply(t.Context(), pool); err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	first := wantApplied(t, pool, ms)
	for _, table := range []string{"zombi_namespaces", "zombi_tables", "zombi_receipts"} {
		if _, err := pool.Exec(t.Context(), "SELECT count(*) FROM "+table); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}

	// A second Apply, through a single connection this time, changes nothing.
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = Apply(t.Context(), conn.Conn())
	conn.Release()
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	second := wantApplied(t, pool, ms)
	for i := range first {
		if !first[i].AppliedAt.Equal(second[i].AppliedAt) {
			t.Fatalf("%s re-applied: at %v, then %v", first[i].Name, first[i].AppliedAt, second[i].AppliedAt)
		}
	}
}

func TestApplyConcurrent(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.Postgres(t)
	const n = 4
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		// Separate pools: separate sessions, as separate processes have.
		pool := connect(t, url)
		wg.Go(func() {
			<-start
			errs[i] = Apply(t.Context(), pool)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply %d: %v", i, err)
		}
	}
	wantApplied(t, connect(t, url), ms)
}

func TestApplyIncremental(t *testing.T) {
	v1 := []Migration{migration(1, "CREATE TABLE a (x int);")}
	v2 := append(v1, migration(2, "ALTER TABLE a ADD COLUMN y int; CREATE TABLE b (z int);"))
	pool := connect(t, testenv.Postgres(t))
	if err := apply(t.Context(), pool, v1); err != nil {
		t.Fatal(err)
	}
	wantApplied(t, pool, v1)
	if err := apply(t.Context(), pool, v2); err != nil {
		t.Fatal(err)
	}
	wantApplied(t, pool, v2)
	if _, err := pool.Exec(t.Context(), "INSERT INTO a (x, y) VALUES (1, 2); INSERT INTO b VALUES (3)"); err != nil {
		t.Fatalf("schema after two migrations: %v", err)
	}

	// A failing migration leaves nothing behind and is retried next time.
	bad := append(v2[:2:2], migration(3, "CREATE TABLE c (x int); SELECT * FROM missing;"))
	if err := apply(t.Context(), pool, bad); err == nil {
		t.Fatal("apply of a failing migration succeeded")
	}
	wantApplied(t, pool, v2)
	if _, err := pool.Exec(t.Context(), "SELECT * FROM c"); err == nil {
		t.Fatal("the failed migration's table exists")
	}

	for _, tc := range []struct {
		name string
		ms   []Migration
		err  string
	}{
		{"Changed", []Migration{v2[0], migration(2, "ALTER TABLE a ADD COLUMN y bigint;")}, "must not change"},
		{"Older", v1, "newer than this binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(t.Context(), pool, tc.ms)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("apply = %v, want an error containing %q", err, tc.err)
			}
			wantApplied(t, pool, v2)
		})
	}
}

func migration(version int, sql string) Migration {
	ms, err := load(fstest.MapFS{"0001_m.sql": {Data: []byte(sql)}})
	if err != nil {
		panic(err)
	}
	m := ms[0]
	m.Version = version
	m.Name = strings.Replace(m.Name, "0001", "000"+string(rune('0'+version)), 1)
	return m
}

func TestApplyCanceled(t *testing.T) {
	pool := connect(t, testenv.Postgres(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Apply(ctx, pool); err == nil {
		t.Fatal("Apply with a canceled context succeeded")
	}
	if err := Apply(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
}
