package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgres(t *testing.T) {
	t.Cleanup(func() {
		dir := ""
		pgEnv.mu.Lock()
		if pgEnv.proc != nil {
			dir = pgEnv.proc.dir
		}
		pgEnv.mu.Unlock()
		StopPostgres()
		if dir != "" {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("cluster directory %s left behind: %v", dir, err)
			}
		}
	})
	var urls []string
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			url := Postgres(t)
			urls = append(urls, url)
			conn, err := pgx.Connect(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			// Empty: no tables of a previous test.
			var n int
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("new database has %d tables", n)
			}
			if _, err := conn.Exec(t.Context(), "CREATE TABLE t (x text); INSERT INTO t VALUES ('ü')"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(urls) != 2 || urls[0] == urls[1] {
		t.Fatalf("databases %q, want two different ones", urls)
	}
	// The databases are dropped when their tests end.
	admin, err := pgStart()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, url := range urls {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		var exists bool
		if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after its test", cfg.Database)
		}
	}
}

func TestPgWithDatabase(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "postgres://u:p@127.0.0.1:5432/db1?sslmode=disable"},
		{"postgresql://u@h/", "postgresql://u@h/db1"},
		{"postgres://h:1", "postgres://h:1/db1"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=db1"},
	} {
		got, err := pgWithDatabase(tc.in, "db1")
		if err != nil || got != tc.want {
			t.Errorf("pgWithDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "db1" {
			t.Errorf("%q parses to database %q, %v", got, cfg.Database, err)
		}
	}
}

func TestPgFindBinaries(t *testing.T) {
	dir, err := pgFindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"initdb", "postgres"} {
		if !pgIsExecutable(dir + "/" + bin) {
			t.Errorf("%s/%s is not executable", dir, bin)
		}
	}
	t.Setenv("PATH", t.TempDir())
	_, err = pgFindBinariesIn(nil)
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("without binaries: %v, want an error saying apt-get install postgresql", err)
	}
}

func TestPostgresExternal(t *testing.T) {
	// Start the throwaway cluster, then point the fixture at it as an
	// external server.
	t.Cleanup(StopPostgres)
	Postgres(t)
	pgEnv.mu.Lock()
	admin, proc := pgEnv.admin, pgEnv.proc
	pgEnv.started, pgEnv.admin, pgEnv.proc = false, "", nil
	pgEnv.mu.Unlock()
	t.Cleanup(func() {
		pgEnv.mu.Lock()
		pgEnv.started, pgEnv.err, pgEnv.admin, pgEnv.proc = true, nil, admin, proc
		pgEnv.mu.Unlock()
	})
	t.Setenv(EnvPostgresURL, admin)
	t.Run("Database", func(t *testing.T) {
		url := Postgres(t)
		pgEnv.mu.Lock()
		proc := pgEnv.proc
		pgEnv.mu.Unlock()
		if proc != nil {
			t.Fatal("started a cluster although the URL is set")
		}
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Database == "postgres" || !strings.HasPrefix(cfg.Database, "zombi_test_") {
			t.Fatalf("database %q, want a new one", cfg.Database)
		}
		if err := pgExec(url, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPgSweepStale(t *testing.T) {
	// A process that has exited leaves a pid nobody uses (for a while).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		owner int
		keep  bool
	}{
		{"DeadOwner", cmd.Process.Pid, false},
		{"LiveOwner", os.Getpid(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", pgDirPattern)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			if err := os.WriteFile(filepath.Join(dir, pgOwnerFile), []byte(strconv.Itoa(tc.owner)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "data", "base"), 0o700); err != nil {
				t.Fatal(err)
			}
			pgSweepStale()
			_, err = os.Stat(dir)
			if kept := err == nil; kept != tc.keep {
				t.Fatalf("directory of owner %d kept: %v, want %v", tc.owner, kept, tc.keep)
			}
		})
	}
}
