// Package zombitest builds the zombi binary once per test binary and runs
// it as a real process, the way a user would, for end-to-end tests.
package zombitest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repoRoot finds the module root from this file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// EnvBinary names a zombi binary to test instead of building one from
// this tree: for running the tests against another version, such as a
// release or the code before a fix.
const EnvBinary = "ZOMBI_TEST_BINARY"

// Binary returns the path of a freshly built zombi binary, or of the
// binary EnvBinary names.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv(EnvBinary); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "zombi-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "zombi")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/zombi")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/zombi: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Instance is a running zombi process.
type Instance struct {
	URL     string
	Addr    string
	DataDir string
	// Args are the serve flags it was started with, beyond the listen
	// address, data dir and log level.
	Args    []string
	cmd     *exec.Cmd
	log     *testenv.LogBuffer
	done    chan struct{}
	exitErr error // set when done is closed
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs `zombi serve` with a fresh data dir, a free port and args,
// waits until /health/ready answers 200 and stops the process when the test
// ends. The server log is printed if the test failed.
func Start(t testing.TB, args ...string) *Instance {
	t.Helper()
	return StartIn(t, t.TempDir(), args...)
}

// StartIn is Start on an existing data dir: a restart of an earlier
// instance.
func StartIn(t testing.TB, dataDir string, args ...string) *Instance {
	t.Helper()
	return start(t, "", dataDir, 0, args)
}

// StartAt is StartIn on a given address: a restart of an earlier instance
// where a load balancer expects it.
func StartAt(t testing.TB, addr, dataDir string, args ...string) *Instance {
	t.Helper()
	return start(t, addr, dataDir, 0, args)
}

// StartWithOpenFiles is Start with the server's open-file limit
// (RLIMIT_NOFILE, soft and hard) set to n, for tests of what happens when
// clients take the server's file descriptors.
func StartWithOpenFiles(t testing.TB, n int, args ...string) *Instance {
	t.Helper()
	return start(t, "", t.TempDir(), n, args)
}

func start(t testing.TB, addr, dataDir string, openFiles int, args []string) *Instance {
	t.Helper()
	if addr == "" {
		addr = FreeAddr(t)
	}
	inst := &Instance{Addr: addr, DataDir: dataDir, Args: args, log: &testenv.LogBuffer{}, done: make(chan struct{})}
	inst.URL = "http://" + inst.Addr
	full := append([]string{Binary(t), "serve", "--listen", inst.Addr, "--data-dir", inst.DataDir, "--log-level", "debug"}, args...)
	if openFiles > 0 {
		// The shell sets the limit and becomes the server (same pid).
		full = append([]string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, openFiles)}, full...)
	}
	inst.cmd = exec.Command(full[0], full[1:]...)
	inst.cmd.Stdout, inst.cmd.Stderr = inst.log, inst.log
	inst.cmd.Env = os.Environ()
	if err := inst.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { inst.exitErr = inst.cmd.Wait(); close(inst.done) }()
	t.Cleanup(func() {
		inst.Stop(t)
		if t.Failed() {
			t.Logf("zombi log:\n%s", inst.log.String())
		}
	})
	inst.waitReady(t)
	return inst
}

// Shape is one way to run Zombi.
type Shape struct {
	Name  string
	Start func(t testing.TB, args ...string) *Instance
}

// Shapes are the deployments end-to-end tests run against: the
// zero-dependency default, and the production shape with Postgres and an
// S3-compatible server.
var Shapes = []Shape{
	{Name: "embedded", Start: Start},
	{Name: "postgres-s3", Start: StartPostgresS3},
}

// StartPostgresS3 is Start in the production shape: table pointers in a
// new Postgres database and table files in a new S3 bucket (internal/
// testenv), whose settings and static keys clients get from the catalog.
func StartPostgresS3(t testing.TB, args ...string) *Instance {
	t.Helper()
	return Start(t, append(PostgresS3Args(t), args...)...)
}

// StartCluster starts n nodes with --cluster in the production shape,
// all on one new Postgres database and one new S3 bucket, one after the
// other.
func StartCluster(t testing.TB, n int, args ...string) []*Instance {
	t.Helper()
	full := append(PostgresS3Args(t), "--cluster")
	nodes := make([]*Instance, n)
	for i := range nodes {
		nodes[i] = Start(t, append(full, args...)...)
	}
	return nodes
}

// PostgresS3Args returns the serve flags of the production shape on a new
// Postgres database and a new S3 bucket: every instance started with them
// is a node of one cluster (and must run with --cluster beside another).
func PostgresS3Args(t testing.TB) []string {
	t.Helper()
	pg := testenv.Postgres(t)
	s3 := testenv.S3(t)
	return []string{
		"--postgres-url", pg,
		"--warehouse", "s3://" + s3.Bucket + "/warehouse",
		"--s3-endpoint", s3.Endpoint,
		"--s3-region", s3.Region,
		"--s3-access-key", s3.AccessKey,
		"--s3-secret-key", s3.SecretKey,
		"--s3-vend-static-keys",
	}
}

func (i *Instance) waitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, i.URL+"/health/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-i.done:
			t.Fatalf("zombi exited before it was ready:\n%s", i.log.String())
		case <-ctx.Done():
			t.Fatalf("zombi not ready after 60s:\n%s", i.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for a graceful exit, which must be exit
// status 0 (SIGKILL and a test error after 30s).
func (i *Instance) Stop(t testing.TB) {
	select {
	case <-i.done:
		return
	default:
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.done:
		if i.exitErr != nil {
			t.Errorf("zombi exited with %v after SIGTERM, want a clean exit", i.exitErr)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("zombi did not stop within 30s of SIGTERM")
		_ = i.cmd.Process.Kill()
		<-i.done
	}
}

// Kill stops the process with SIGKILL, without warning, and waits for it.
func (i *Instance) Kill() {
	select {
	case <-i.done:
		return
	default:
	}
	_ = i.cmd.Process.Kill()
	<-i.done
}

// Pid is the server's process id.
func (i *Instance) Pid() int { return i.cmd.Process.Pid }

// Log returns what the server logged so far.
func (i *Instance) Log() string { return i.log.String() }
