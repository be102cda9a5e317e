package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables that point the S3 fixture at an already running
// S3-compatible server instead of starting one.
const (
	EnvS3Endpoint  = "ZOMBI_TEST_S3_ENDPOINT"   // e.g. http://127.0.0.1:9000
	EnvS3AccessKey = "ZOMBI_TEST_S3_ACCESS_KEY" // required with the endpoint
	EnvS3SecretKey = "ZOMBI_TEST_S3_SECRET_KEY" // required with the endpoint
	EnvS3Region    = "ZOMBI_TEST_S3_REGION"     // optional, default us-east-1
)

const (
	s3ServerBinary  = "versitygw"
	s3InstallScript = "scripts/install-s3-server.sh"
	s3Region        = "us-east-1"
	s3AccessKey     = "zombi-test"
	s3SecretKey     = "zombi-test-secret"
	s3StartTimeout  = 30 * time.Second
)

// S3Server is an S3-compatible server and a bucket that belongs to one test.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // created empty for this test, removed when it ends
}

// s3Env is the process-wide server, started by the first call to S3.
var s3Env struct {
	mu      sync.Mutex
	started bool
	err     error // why the server could not be started; reported to every test
	server  S3Server
	client  *minio.Client
	proc    *s3Process // nil when the server is external
}

var s3BucketSeq atomic.Int64

// S3 returns the test's own, empty bucket on an S3-compatible server. The
// server is started once per test binary on 127.0.0.1 (versitygw with its
// posix backend, data in a temporary directory) and stopped by StopS3; call
// StopS3 from TestMain after m.Run. If ZOMBI_TEST_S3_ENDPOINT is set, that
// server is used instead. A missing server binary fails the test with a
// message naming scripts/install-s3-server.sh.
func S3(t testing.TB) S3Server {
	t.Helper()
	client, srv, err := s3Start()
	if err != nil {
		t.Fatalf("testenv: S3 server: %v", err)
	}
	return testBucket(t, client, srv, s3LogTail)
}

// testBucket creates an empty bucket on srv for t and removes it when t
// ends.
func testBucket(t testing.TB, client *minio.Client, srv S3Server, logTail func(testing.TB)) S3Server {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	srv.Bucket = fmt.Sprintf("zombi-test-%d-%d-%s", os.Getpid(), s3BucketSeq.Add(1), hex.EncodeToString(rnd[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, srv.Bucket, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		logTail(t)
		t.Fatalf("testenv: creating bucket %s: %v", srv.Bucket, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t)
		}
		if err := removeBucket(client, srv.Bucket); err != nil {
			t.Logf("testenv: removing bucket %s: %v", srv.Bucket, err)
		}
	})
	return srv
}

// StopS3 stops the S3 server started by S3 and removes its data. It does
// nothing if no server was started (or the server is external). Call it from
// TestMain after m.Run.
func StopS3() {
	stopMinIO()
	s3Env.mu.Lock()
	defer s3Env.mu.Unlock()
	if s3Env.proc != nil {
		s3Env.proc.stop()
	}
	s3Env.started, s3Env.err, s3Env.proc, s3Env.client = false, nil, nil, nil
}

func s3Start() (*minio.Client, S3Server, error) {
	s3Env.mu.Lock()
	defer s3Env.mu.Unlock()
	if s3Env.started {
		return s3Env.client, s3Env.server, s3Env.err
	}
	s3Env.started = true
	s3Env.err = s3StartLocked()
	return s3Env.client, s3Env.server, s3Env.err
}

func s3StartLocked() error {
	if endpoint := os.Getenv(EnvS3Endpoint); endpoint != "" {
		srv := S3Server{
			Endpoint:  endpoint,
			AccessKey: os.Getenv(EnvS3AccessKey),
			SecretKey: os.Getenv(EnvS3SecretKey),
			Region:    os.Getenv(EnvS3Region),
		}
		if srv.AccessKey == "" || srv.SecretKey == "" {
			return fmt.Errorf("%s is set but %s or %s is not", EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey)
		}
		if srv.Region == "" {
			srv.Region = s3Region
		}
		client, err := s3Client(srv)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
		defer cancel()
		if _, err := client.ListBuckets(ctx); err != nil {
			return fmt.Errorf("external server %s: ListBuckets: %w", endpoint, err)
		}
		s3Env.server, s3Env.client = srv, client
		return nil
	}

	bin, err := findBinary(s3ServerBinary, EnvS3Endpoint)
	if err != nil {
		return err
	}
	// The port is picked by listening on :0 and closing; another process can
	// take it before the server binds, so retry a few times.
	var errs []error
	for range 3 {
		proc, err := startS3Process(bin)
		if err == nil {
			s3Env.proc = proc
			s3Env.server = proc.server
			s3Env.client = proc.client
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// findBinary looks for a server the install script installs in its cache
// directory, then on PATH. envEndpoint is the variable that names a
// running server instead.
func findBinary(name, envEndpoint string) (string, error) {
	dir, err := s3CacheBinDir()
	if err == nil {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or on PATH: run %s (or set %s to use a running server)",
		name, dir, s3InstallScript, envEndpoint)
}

// s3CacheBinDir is ${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin, as in the install
// script.
func s3CacheBinDir() (string, error) {
	if c := os.Getenv("ZOMBI_CACHE"); c != "" {
		return filepath.Join(c, "bin"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "zombi", "bin"), nil
}

func s3Client(srv S3Server) (*minio.Client, error) {
	host, secure, err := splitEndpoint(srv.Endpoint)
	if err != nil {
		return nil, err
	}
	return minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Secure:       secure,
		Region:       srv.Region,
		BucketLookup: minio.BucketLookupPath,
	})
}

func splitEndpoint(endpoint string) (host string, secure bool, err error) {
	if host, ok := strings.CutPrefix(endpoint, "http://"); ok && host != "" {
		return strings.TrimSuffix(host, "/"), false, nil
	}
	if host, ok := strings.CutPrefix(endpoint, "https://"); ok && host != "" {
		return strings.TrimSuffix(host, "/"), true, nil
	}
	return "", false, fmt.Errorf("S3 endpoint %q: want http://host:port or https://host:port", endpoint)
}

// removeBucket deletes every object in bucket and the bucket.
func removeBucket(client *minio.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	objects := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for e := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("%s: %w", e.ObjectName, e.Err))
	}
	// Abandoned multipart uploads keep a bucket from being removed on some
	// servers.
	for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			break
		}
		_ = client.RemoveIncompleteUpload(ctx, bucket, u.Key)
	}
	if len(errs) == 0 {
		if err := client.RemoveBucket(ctx, bucket); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// s3Process is a running versitygw.
type s3Process struct {
	server  S3Server
	client  *minio.Client
	cmd     *exec.Cmd
	health  string // path of the health endpoint
	dataDir string
	logPath string
	exited  chan struct{} // closed when the process has exited
}

func startS3Process(bin string) (_ *s3Process, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	removeStaleS3Dirs()
	tmp, err := os.MkdirTemp("", s3DirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(tmp, "data"), 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	return runS3Process(bin, port, tmp)
}

// runS3Process runs the server on port with its data under dir/data,
// which must exist.
func runS3Process(bin string, port int, tmp string) (_ *s3Process, err error) {
	p := &s3Process{
		dataDir: tmp,
		logPath: filepath.Join(tmp, "server.log"),
		health:  "/health",
		exited:  make(chan struct{}),
		server: S3Server{
			Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
			AccessKey: s3AccessKey,
			SecretKey: s3SecretKey,
			Region:    s3Region,
		},
	}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	data := filepath.Join(tmp, "data")
	cmd := exec.Command(bin,
		"--port", "127.0.0.1:"+strconv.Itoa(port),
		"--access", s3AccessKey,
		"--secret", s3SecretKey,
		"--region", s3Region,
		"--health", "/health",
		"posix", data)
	cmd.Env = processEnv("VGW_", "ROOT_")
	return p, p.launch(cmd, port)
}

// launch starts cmd (the server, listening on port) with its output in
// p's log, and waits until it answers.
func (p *s3Process) launch(cmd *exec.Cmd, port int) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	p.cmd = cmd
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	setS3ProcAttr(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	if p.client, err = s3Client(p.server); err != nil {
		return err
	}
	if err := p.waitReady(); err != nil {
		return fmt.Errorf("%s on port %d: %w\n--- server log ---\n%s", cmd.Path, port, err, readTail(p.logPath, 16<<10))
	}
	return nil
}

// processEnv is the test's environment without the variables whose names
// begin with one of prefixes: those the server reads as configuration.
func processEnv(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls the health endpoint, then checks that a signed ListBuckets
// succeeds.
func (p *s3Process) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Get(p.server.Endpoint + p.health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("server exited during start-up: %v", p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("server not healthy after %v (last error: %v)", s3StartTimeout, err)
		case <-tick.C:
		}
	}
	if _, err := p.client.ListBuckets(ctx); err != nil {
		return fmt.Errorf("ListBuckets: %w", err)
	}
	return nil
}

// stop terminates the server and removes its data.
func (p *s3Process) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if p.dataDir != "" {
		_ = os.RemoveAll(p.dataDir)
	}
}

// s3DirPrefix starts the name of a server's temporary directory, followed by
// the pid of the test binary that owns it.
const s3DirPrefix = "zombi-s3-"

// removeStaleS3Dirs removes the temporary directories of servers whose test
// binary died without calling StopS3 (a panic, a -timeout, a missing
// TestMain).
func removeStaleS3Dirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), s3DirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), s3DirPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// s3LogTail logs the end of the server log, if this process started the
// server.
func s3LogTail(t testing.TB) {
	t.Helper()
	s3Env.mu.Lock()
	proc := s3Env.proc
	s3Env.mu.Unlock()
	if proc == nil {
		return
	}
	t.Logf("testenv: S3 server log (%s), last lines:\n%s", proc.logPath, readTail(proc.logPath, 8<<10))
}

// readTail returns at most the last n bytes of the file at path, starting at
// a line boundary.
func readTail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
