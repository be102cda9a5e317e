package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
)

// Environment variables that point the MinIO fixture at an already running
// MinIO (or another S3 server with an STS that takes AssumeRole with a
// session policy) instead of starting one.
const (
	EnvMinIOEndpoint  = "ZOMBI_TEST_MINIO_ENDPOINT"
	EnvMinIOAccessKey = "ZOMBI_TEST_MINIO_ACCESS_KEY"
	EnvMinIOSecretKey = "ZOMBI_TEST_MINIO_SECRET_KEY"
)

const (
	minioBinary    = "minio"
	minioAccessKey = "zombi-root"
	minioSecretKey = "zombi-root-secret"
)

// minioEnv is the process-wide MinIO, started by the first call to MinIO.
var minioEnv struct {
	mu      sync.Mutex
	started bool
	err     error
	server  S3Server
	client  *minio.Client
	proc    *s3Process
}

// MinIO returns the test's own, empty bucket on a MinIO server, for tests
// that need what versitygw lacks: an STS (AssumeRole) and policies. The
// server is started once per test binary on 127.0.0.1 with its root user's
// keys in the returned S3Server, and stopped by StopS3. If
// ZOMBI_TEST_MINIO_ENDPOINT is set, that server is used instead. A missing
// binary fails the test with a message naming
// scripts/install-s3-server.sh.
func MinIO(t testing.TB) S3Server {
	t.Helper()
	client, srv, err := minioStart()
	if err != nil {
		t.Fatalf("testenv: MinIO: %v", err)
	}
	return testBucket(t, client, srv, minioLogTail)
}

func minioStart() (*minio.Client, S3Server, error) {
	minioEnv.mu.Lock()
	defer minioEnv.mu.Unlock()
	if minioEnv.started {
		return minioEnv.client, minioEnv.server, minioEnv.err
	}
	minioEnv.started = true
	minioEnv.err = minioStartLocked()
	return minioEnv.client, minioEnv.server, minioEnv.err
}

func minioStartLocked() error {
	if endpoint := os.Getenv(EnvMinIOEndpoint); endpoint != "" {
		srv := S3Server{
			Endpoint:  endpoint,
			AccessKey: os.Getenv(EnvMinIOAccessKey),
			SecretKey: os.Getenv(EnvMinIOSecretKey),
			Region:    s3Region,
		}
		if srv.AccessKey == "" || srv.SecretKey == "" {
			return fmt.Errorf("%s is set but %s or %s is not", EnvMinIOEndpoint, EnvMinIOAccessKey, EnvMinIOSecretKey)
		}
		client, err := s3Client(srv)
		if err != nil {
			return err
		}
		minioEnv.server, minioEnv.client = srv, client
		return nil
	}
	bin, err := findBinary(minioBinary, EnvMinIOEndpoint)
	if err != nil {
		return err
	}
	var errs []error
	for range 3 {
		proc, err := startMinIOProcess(bin)
		if err == nil {
			minioEnv.proc, minioEnv.server, minioEnv.client = proc, proc.server, proc.client
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func startMinIOProcess(bin string) (_ *s3Process, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	removeStaleS3Dirs()
	tmp, err := os.MkdirTemp("", s3DirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	p := &s3Process{
		dataDir: tmp,
		logPath: filepath.Join(tmp, "server.log"),
		health:  "/minio/health/live",
		exited:  make(chan struct{}),
		server: S3Server{
			Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
			AccessKey: minioAccessKey,
			SecretKey: minioSecretKey,
			Region:    s3Region,
		},
	}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	cmd := exec.Command(bin, "server", "--quiet",
		"--address", "127.0.0.1:"+strconv.Itoa(port),
		filepath.Join(tmp, "data"))
	cmd.Env = append(processEnv("MINIO_", "MC_"),
		"MINIO_ROOT_USER="+minioAccessKey,
		"MINIO_ROOT_PASSWORD="+minioSecretKey,
		"MINIO_REGION="+s3Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
	)
	return p, p.launch(cmd, port)
}

func stopMinIO() {
	minioEnv.mu.Lock()
	defer minioEnv.mu.Unlock()
	if minioEnv.proc != nil {
		minioEnv.proc.stop()
	}
	minioEnv.started, minioEnv.err, minioEnv.proc, minioEnv.client = false, nil, nil, nil
}

func minioLogTail(t testing.TB) {
	t.Helper()
	minioEnv.mu.Lock()
	proc := minioEnv.proc
	minioEnv.mu.Unlock()
	if proc == nil {
		return
	}
	t.Logf("testenv: MinIO log (%s), last lines:\n%s", proc.logPath, readTail(proc.logPath, 8<<10))
}
