package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgresURL, when set, points the Postgres fixture at a running server
// instead of starting one, e.g.
// postgres://postgres:secret@127.0.0.1:5432/postgres?sslmode=disable. The
// role must be allowed to create databases; each test gets a new one.
const EnvPostgresURL = "ZOMBI_TEST_POSTGRES_URL"

const (
	pgStartTimeout = 60 * time.Second
	pgStopTimeout  = 10 * time.Second
	pgOSUser       = "postgres" // runs the server when the tests run as root
	pgSuperuser    = "postgres"
	pgDirPattern   = "zombi-pg-*"
	pgOwnerFile    = "owner.pid" // pid of the test binary owning a cluster directory
)

// pgEnv is the process-wide server, started by the first call to Postgres.
var pgEnv struct {
	mu      sync.Mutex
	started bool
	err     error  // why the server could not be started; reported to every test
	admin   string // connection string of the maintenance database
	proc    *pgProcess
}

var pgDBSeq atomic.Int64

// RunMain runs the tests and then stops every service this package started,
// returning m.Run's exit code:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }
//
// Without it the services still die with the test binary on Linux (they are
// started with a parent-death signal), but their data directories stay in
// the temporary directory until a later run removes them.
func RunMain(m *testing.M) int {
	code := m.Run()
	StopPostgres()
	StopS3()
	return code
}

// Postgres returns the connection URL of a new, empty database that belongs
// to the test and is dropped when it ends. The databases live in a
// throwaway PostgreSQL cluster started once per test binary, in a temporary
// directory, listening on 127.0.0.1 on a free port, with durability turned
// off for speed; StopPostgres (or RunMain) stops it. When the tests run as
// root, the cluster runs as the postgres OS user.
//
// If ZOMBI_TEST_POSTGRES_URL is set, the databases are created on that
// server instead. If neither is possible — in particular when the
// PostgreSQL server binaries are not installed — the test fails.
func Postgres(t testing.TB) string {
	t.Helper()
	admin, err := pgStart()
	if err != nil {
		t.Fatalf("testenv: PostgreSQL: %v", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("zombi_test_%d_%d_%s", os.Getpid(), pgDBSeq.Add(1), hex.EncodeToString(rnd[:]))
	dbURL, err := pgWithDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL: %v", err)
	}
	if err := pgExec(admin, "CREATE DATABASE "+name); err != nil {
		pgLogTail(t)
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			pgLogTail(t)
		}
		// FORCE ends the sessions a test left open.
		if err := pgExec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: dropping database %s: %v", name, err)
		}
	})
	return dbURL
}

// StopPostgres stops the cluster started by Postgres and removes its
// directory. It does nothing if no cluster was started or the server is
// external. Call it from TestMain after m.Run, or use RunMain.
func StopPostgres() {
	pgEnv.mu.Lock()
	defer pgEnv.mu.Unlock()
	if pgEnv.proc != nil {
		pgEnv.proc.stop()
	}
	pgEnv.started, pgEnv.err, pgEnv.admin, pgEnv.proc = false, nil, "", nil
}

func pgStart() (string, error) {
	pgEnv.mu.Lock()
	defer pgEnv.mu.Unlock()
	if !pgEnv.started {
		pgEnv.started = true
		pgEnv.err = pgStartLocked()
	}
	return pgEnv.admin, pgEnv.err
}

func pgStartLocked() error {
	if admin := os.Getenv(EnvPostgresURL); admin != "" {
		if err := pgExec(admin, "SELECT 1"); err != nil {
			return fmt.Errorf("%s: %w", EnvPostgresURL, err)
		}
		pgEnv.admin = admin
		return nil
	}
	bin, err := pgFindBinaries()
	if err != nil {
		return err
	}
	pgSweepStale()
	proc, err := pgInit(bin)
	if err != nil {
		return err
	}
	// The port is picked by listening on :0 and closing; another process can
	// take it before the server binds, so retry a few times.
	var errs []error
	for range 3 {
		if err = proc.start(); err == nil {
			pgEnv.proc = proc
			pgEnv.admin = proc.admin
			return nil
		}
		errs = append(errs, err)
	}
	proc.stop()
	return errors.Join(errs...)
}

// pgFindBinaries returns the directory holding initdb and postgres: the one
// on PATH, else the newest under /usr/lib/postgresql/*/bin (Debian, Ubuntu)
// or /usr/pgsql-*/bin (RHEL).
func pgFindBinaries() (string, error) {
	return pgFindBinariesIn(pgBinaryDirs)
}

// pgBinaryDirs are where distributions install the server binaries.
var pgBinaryDirs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

func pgFindBinariesIn(patterns []string) (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, pattern := range patterns {
		matches, _ := filepath.Glob(pattern)
		// Newest version first: compare the numeric part of the path.
		slices.SortFunc(matches, func(a, b string) int {
			return cmp.Compare(pgVersionOf(b), pgVersionOf(a))
		})
		dirs = append(dirs, matches...)
	}
	for _, dir := range dirs {
		if pgIsExecutable(filepath.Join(dir, "initdb")) && pgIsExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("the PostgreSQL server binaries (initdb, postgres) are not on PATH nor in " +
		"/usr/lib/postgresql/*/bin: install them with `apt-get install postgresql` " +
		"(or set " + EnvPostgresURL + " to use a running server)")
}

// pgVersionOf extracts the major version from a path such as
// /usr/lib/postgresql/15/bin; 0 if there is none.
func pgVersionOf(dir string) float64 {
	base := filepath.Base(filepath.Dir(dir))
	base = strings.TrimPrefix(base, "pgsql-")
	v, _ := strconv.ParseFloat(base, 64)
	return v
}

func pgIsExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// pgProcess is a throwaway cluster and, once started, its postmaster.
type pgProcess struct {
	bin     string
	dir     string // owns everything: data/, server.log, owner.pid
	logPath string
	cred    *syscall.Credential // nil: run as the current user
	admin   string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the postmaster has exited
}

// pgInit creates a cluster in a new temporary directory.
func pgInit(bin string) (_ *pgProcess, err error) {
	dir, err := os.MkdirTemp("", pgDirPattern)
	if err != nil {
		return nil, err
	}
	p := &pgProcess{bin: bin, dir: dir, logPath: filepath.Join(dir, "server.log")}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, pgOwnerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		if p.cred, err = pgLookupUser(pgOSUser); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"--pgdata", filepath.Join(dir, "data"),
		"--username", pgSuperuser,
		"--auth", "trust",
		"--encoding", "UTF8",
		"--no-locale",
		"--no-sync")
	out, err := p.run(initdb)
	if err != nil {
		return nil, fmt.Errorf("initdb in %s: %w\n%s", dir, err, out)
	}
	return p, nil
}

// pgLookupUser returns the credentials of the OS user name.
func pgLookupUser(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, the cluster must run as the %s OS user: %w "+
			"(`apt-get install postgresql` creates it)", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepare sets up cmd to run in the cluster directory, as the cluster's
// user, with an environment free of libpq and locale settings.
func (p *pgProcess) prepare(cmd *exec.Cmd) {
	cmd.Dir = p.dir
	cmd.SysProcAttr = pgProcAttr(p.cred)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
}

// run runs a short-lived cluster command and returns its combined output.
func (p *pgProcess) run(cmd *exec.Cmd) ([]byte, error) {
	p.prepare(cmd)
	return cmd.CombinedOutput()
}

// start starts the postmaster on a free port and waits until it accepts
// connections.
func (p *pgProcess) start() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "--- zombi testenv: starting on port %d ---\n", port)

	cmd := exec.Command(filepath.Join(p.bin, "postgres"),
		"-D", filepath.Join(p.dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "wal_level=minimal",
		"-c", "max_wal_senders=0",
		"-c", "max_connections=300",
		"-c", "deadlock_timeout=50ms",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
		"-c", "log_line_prefix=%m [%p] %d ")
	p.prepare(cmd)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, so start it from a thread that lives exactly as long
		// as the child: this goroutine keeps it locked until Wait returns.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	p.cmd, p.exited = cmd, exited
	p.admin = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", pgSuperuser, port)
	if err := p.waitReady(); err != nil {
		p.kill()
		return fmt.Errorf("postgres on port %d: %w\n--- server log (%s) ---\n%s", port, err, p.logPath, readTail(p.logPath, 16<<10))
	}
	return nil
}

// waitReady polls until the server accepts a query or exits.
func (p *pgProcess) waitReady() error {
	deadline := time.Now().Add(pgStartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := pgExec(p.admin, "SELECT 1")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", pgStartTimeout, err)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited during start-up: %v", p.cmd.ProcessState)
		case <-tick.C:
		}
	}
}

// kill stops the postmaster: a fast shutdown, then an immediate one, then
// SIGKILL.
func (p *pgProcess) kill() {
	if p.cmd == nil {
		return
	}
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.exited:
			p.cmd = nil
			return
		case <-time.After(pgStopTimeout):
		}
	}
}

// stop stops the postmaster and removes the cluster directory.
func (p *pgProcess) stop() {
	p.kill()
	if p.cmd == nil {
		_ = os.RemoveAll(p.dir)
	}
}

// pgSweepStale removes the cluster directories of earlier test binaries that
// died without stopping their cluster, once both the binary and its
// postmaster are gone.
func pgSweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pgDirPattern))
	for _, dir := range dirs {
		owner, err := pgReadPid(filepath.Join(dir, pgOwnerFile))
		if err != nil {
			// No owner yet: being created, unless it is old.
			if fi, err := os.Stat(dir); err != nil || time.Since(fi.ModTime()) < time.Hour {
				continue
			}
		} else if pgAlive(owner) {
			continue
		}
		if pm, err := pgReadPid(filepath.Join(dir, "data", "postmaster.pid")); err == nil && pgAlive(pm) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// pgReadPid reads the pid on the first line of path.
func pgReadPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// pgAlive reports whether a process with this pid exists.
func pgAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// pgExec runs one statement on a new connection.
func pgExec(connString, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgWithDatabase returns connString (a URL or keyword/value string) with its
// database replaced by db.
func pgWithDatabase(connString, db string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("parsing %s: %w", EnvPostgresURL, err)
		}
		u.Path = "/" + db
		u.RawPath = ""
		return u.String(), nil
	}
	// A later keyword wins.
	return connString + " dbname=" + db, nil
}

// pgLogTail logs the end of the server log, if this process started the
// server.
func pgLogTail(t testing.TB) {
	pgEnv.mu.Lock()
	proc := pgEnv.proc
	pgEnv.mu.Unlock()
	if proc == nil {
		return
	}
	t.Logf("testenv: PostgreSQL server log (%s), last lines:\n%s", proc.logPath, readTail(proc.logPath, 16<<10))
}
