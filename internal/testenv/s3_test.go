package testenv

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestS3(t *testing.T) {
	t.Cleanup(StopS3)
	a := S3(t)
	b := S3(t)
	if a.Bucket == b.Bucket {
		t.Fatalf("two calls returned the same bucket %q", a.Bucket)
	}
	if a.Endpoint != b.Endpoint || a.Endpoint == "" || a.AccessKey == "" || a.SecretKey == "" || a.Region == "" {
		t.Fatalf("incomplete or inconsistent servers: %+v, %+v", a, b)
	}
	if !strings.HasPrefix(a.Endpoint, "http://127.0.0.1:") && os.Getenv(EnvS3Endpoint) == "" {
		t.Errorf("endpoint %q is not on 127.0.0.1", a.Endpoint)
	}

	client, err := s3Client(a)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for obj := range client.ListObjectsIter(ctx, a.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("new bucket is not empty: %v %v", obj.Key, obj.Err)
	}
	want := []byte("hello")
	if _, err := client.PutObject(ctx, a.Bucket, "dir/obj", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(ctx, a.Bucket, "dir/obj", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %q, %v", got, err)
	}
	// The other bucket is unaffected.
	if _, err := client.StatObject(ctx, b.Bucket, "dir/obj", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("object visible in the other bucket: %v", err)
	}
}

func TestS3BinaryMissing(t *testing.T) {
	t.Setenv("ZOMBI_CACHE", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	_, err := findBinary(s3ServerBinary, EnvS3Endpoint)
	if err == nil {
		t.Fatal("found a server binary in empty directories")
	}
	if !strings.Contains(err.Error(), s3InstallScript) || !strings.Contains(err.Error(), EnvS3Endpoint) {
		t.Errorf("error %q does not name %s and %s", err, s3InstallScript, EnvS3Endpoint)
	}

	// The install script's cache directory is searched.
	dir, err := s3CacheBinDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(os.Getenv("ZOMBI_CACHE"), "bin"); dir != want {
		t.Errorf("cache dir %q, want %q", dir, want)
	}
}
