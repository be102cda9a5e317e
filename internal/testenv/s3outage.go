package testenv

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// OwnS3 is an S3 server that belongs to one test, which may take it down
// and bring it back (an outage) on the same endpoint with the same data.
type OwnS3 struct {
	S3Server
	bin  string
	port int
	dir  string
	proc *s3Process
}

// StartOwnS3 starts a server for t alone, with one bucket; it is removed
// when the test ends. Unlike S3 it never uses an external server.
func StartOwnS3(t testing.TB) *OwnS3 {
	t.Helper()
	bin, err := findBinary(s3ServerBinary, EnvS3Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var proc *s3Process
	for range 3 {
		if proc, err = startS3Process(bin); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(proc.server.Endpoint)
	port, _ := strconv.Atoi(u.Port())
	s := &OwnS3{S3Server: proc.server, bin: bin, port: port, dir: proc.dataDir, proc: proc}
	t.Cleanup(func() {
		if s.proc != nil {
			s.proc.stop()
		}
		_ = os.RemoveAll(s.dir)
	})
	s.Bucket = "outage"
	ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
	defer cancel()
	if err := proc.client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("creating bucket: %v", err)
	}
	return s
}

// Down kills the server; requests fail until Up.
func (s *OwnS3) Down(t testing.TB) {
	t.Helper()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("S3 server did not exit")
	}
	s.proc = nil
}

// Up starts the server again on the same port with the same data.
func (s *OwnS3) Up(t testing.TB) {
	t.Helper()
	if s.proc != nil {
		return
	}
	p, err := runS3Process(s.bin, s.port, s.dir)
	if err != nil {
		t.Fatalf("restarting the S3 server: %v", err)
	}
	p.dataDir = "" // kept for the next Up; the cleanup removes it
	s.proc = p
}
