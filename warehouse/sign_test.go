package warehouse

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/zombi-db/zombi/internal/testenv"
)

func TestCheckSignable(t *testing.T) {
	w := &Warehouse{
		params: s3Params{host: "s3.example:9000", lookup: minio.BucketLookupAuto, accessKey: "ak", secretKey: "sk"},
		s3:     &s3FS{},
		bucket: "b",
	}
	const table = "s3://b/wh/db/t"
	ok := []struct{ method, uri string }{
		{"GET", "http://s3.example:9000/b/wh/db/t/metadata/00001.metadata.json"},
		{"HEAD", "http://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"GET", "http://b.s3.example:9000/wh/db/t/data/x.parquet"},
		{"GET", "http://s3.example:9000/b/wh/db/t/data/x.parquet?partNumber=1"},
		{"PUT", "http://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"PUT", "http://s3.example:9000/b/wh/db/t/data/x.parquet?partNumber=2&uploadId=u"},
		{"POST", "http://s3.example:9000/b/wh/db/t/data/x.parquet?uploads"},
		{"POST", "http://s3.example:9000/b/wh/db/t/data/x.parquet?uploadId=u"},
		{"DELETE", "http://s3.example:9000/b/wh/db/t/data/x.parquet?uploadId=u"},
		{"DELETE", "http://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"GET", "http://s3.example:9000/b/wh/db/t/data/c%3Dgr%C3%BC%C3%9Fe/x.parquet"},
		{"GET", "http://s3.example:9000/b?list-type=2&prefix=wh%2Fdb%2Ft%2Fdata%2F&delimiter=%2F"},
		{"GET", "http://s3.example:9000/b/?list-type=2&prefix=wh/db/t/"},
	}
	for _, c := range ok {
		if _, err := w.checkSignable(table, c.method, c.uri); err != nil {
			t.Errorf("%s %s: %v", c.method, c.uri, err)
		}
	}
	refused := []struct{ why, method, uri string }{
		{"other table", "GET", "http://s3.example:9000/b/wh/db/t2/data/x.parquet"},
		{"table prefix is not a directory", "GET", "http://s3.example:9000/b/wh/db/tx"},
		{"the table's location itself", "GET", "http://s3.example:9000/b/wh/db/t"},
		{"other bucket", "GET", "http://s3.example:9000/c/wh/db/t/data/x.parquet"},
		{"other bucket, virtual host", "GET", "http://c.s3.example:9000/wh/db/t/data/x.parquet"},
		{"other host", "GET", "http://evil.example:9000/b/wh/db/t/data/x.parquet"},
		{"other port", "GET", "http://s3.example:9001/b/wh/db/t/data/x.parquet"},
		{"https to an http endpoint", "GET", "https://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"user info", "GET", "http://u:p@s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"dot dot", "GET", "http://s3.example:9000/b/wh/db/t/../t2/x.parquet"},
		{"encoded dot dot", "GET", "http://s3.example:9000/b/wh/db/t/%2e%2e/t2/x.parquet"},
		{"encoded slash and dot dot", "GET", "http://s3.example:9000/b/wh/db/t%2F..%2Ft2/x.parquet"},
		{"dot segment", "GET", "http://s3.example:9000/b/wh/db/t/./x.parquet"},
		{"double slash", "GET", "http://s3.example:9000/b/wh/db/t//x.parquet"},
		{"backslash", "GET", "http://s3.example:9000/b/wh/db/t/..%5C..%5Ct2/x"},
		{"bad escape", "GET", "http://s3.example:9000/b/wh/db/t/%zz"},
		{"listing the bucket", "GET", "http://s3.example:9000/b?list-type=2"},
		{"listing another table", "GET", "http://s3.example:9000/b?list-type=2&prefix=wh/db/t2/"},
		{"listing a prefix of the table's name", "GET", "http://s3.example:9000/b?list-type=2&prefix=wh/db/t"},
		{"listing with dot dot", "GET", "http://s3.example:9000/b?list-type=2&prefix=wh/db/t/../"},
		{"listing twice the prefix", "GET", "http://s3.example:9000/b?list-type=2&prefix=wh/db/t/&prefix=wh/"},
		{"listing uploads", "GET", "http://s3.example:9000/b?uploads&prefix=wh/db/t/"},
		{"listing versions", "GET", "http://s3.example:9000/b?versions&prefix=wh/db/t/"},
		{"bucket location", "GET", "http://s3.example:9000/b?location"},
		{"bucket policy", "PUT", "http://s3.example:9000/b?policy"},
		{"delete the bucket", "DELETE", "http://s3.example:9000/b"},
		{"object acl", "PUT", "http://s3.example:9000/b/wh/db/t/data/x.parquet?acl"},
		{"object tagging", "GET", "http://s3.example:9000/b/wh/db/t/data/x.parquet?tagging"},
		{"copy in", "PUT", "http://s3.example:9000/b/wh/db/t/data/x.parquet?x-id=CopyObject"},
		{"restore", "POST", "http://s3.example:9000/b/wh/db/t/data/x.parquet?restore"},
		{"post without operation", "POST", "http://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"repeated query parameter", "GET", "http://s3.example:9000/b/wh/db/t/x?partNumber=1&partNumber=2"},
		{"other method", "PATCH", "http://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"lower-case method", "get", "http://s3.example:9000/b/wh/db/t/data/x.parquet"},
		{"fragment", "GET", "http://s3.example:9000/b/wh/db/t/data/x.parquet#f"},
		{"not a URL", "GET", "s3.example:9000/b/wh/db/t/data/x.parquet"},
	}
	for _, c := range refused {
		if _, err := w.checkSignable(table, c.method, c.uri); !errors.Is(err, ErrNotSignable) {
			t.Errorf("%s: %s %s: %v, want ErrNotSignable", c.why, c.method, c.uri, err)
		}
	}
	if Writes("GET") || Writes("HEAD") || !Writes("PUT") || !Writes("POST") || !Writes("DELETE") || !Writes("PATCH") {
		t.Error("Writes")
	}
}

// TestSignAccepted sends requests Sign signed to a real S3 server.
func TestSignAccepted(t *testing.T) {
	srv := testenv.S3(t)
	w := openS3(t, srv, "wh", false)
	table := "s3://" + srv.Bucket + "/wh/db/t"
	if err := w.IO().(interface {
		WriteFile(string, []byte) error
	}).WriteFile(table+"/data/a b=c.txt", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	base := srv.Endpoint + "/" + srv.Bucket + "/wh/db/t/data/"
	send := func(method, uri string, body []byte) (int, string) {
		t.Helper()
		s, err := w.Sign(table, SignRequest{Method: method, URI: uri, Headers: http.Header{"Content-Type": {"text/plain"}}})
		if err != nil {
			t.Fatalf("%s %s: %v", method, uri, err)
		}
		if s.Headers.Get("Authorization") == "" || s.Headers.Get("Content-Type") != "" {
			t.Fatalf("signed headers %v: want Authorization and not the client's own", s.Headers)
		}
		req, err := http.NewRequest(method, s.URI, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		for k, vs := range s.Headers {
			req.Header[k] = vs
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := send("GET", base+"a%20b%3Dc.txt", nil); code != 200 || body != "hello" {
		t.Errorf("signed GET: %d %q", code, body)
	}
	if code, _ := send("PUT", base+"new.txt", []byte("written")); code != 200 {
		t.Errorf("signed PUT: %d", code)
	}
	if b, err := w.IO().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(table + "/data/new.txt"); err != nil || string(b) != "written" {
		t.Errorf("after the signed PUT: %q, %v", b, err)
	}
	if code, body := send("GET", srv.Endpoint+"/"+srv.Bucket+"?list-type=2&prefix=wh%2Fdb%2Ft%2Fdata%2F", nil); code != 200 || !strings.Contains(body, "new.txt") {
		t.Errorf("signed listing: %d %q", code, body)
	}
	// A signature does not carry over to another key.
	s, err := w.Sign(table, SignRequest{Method: "GET", URI: base + "new.txt"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"a%20b%3Dc.txt", nil)
	for k, vs := range s.Headers {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a signature used for another key: %d, want 403", res.StatusCode)
	}
	if _, err := w.Sign(table, SignRequest{Method: "GET", URI: srv.Endpoint + "/" + srv.Bucket + "/wh/db/u/x"}); !errors.Is(err, ErrNotSignable) {
		t.Errorf("another table's file: %v", err)
	}
	noKeys := &Warehouse{s3: w.s3, bucket: w.bucket, params: w.params}
	noKeys.params.accessKey, noKeys.params.secretKey = "", ""
	if _, err := noKeys.Sign(table, SignRequest{Method: "GET", URI: base + "new.txt"}); !errors.Is(err, ErrNoSigning) {
		t.Errorf("without keys: %v", err)
	}
	if cfg := w.SignConfig(); cfg[propAccessKey] != "" || cfg[propSecretKey] != "" || cfg[propEndpoint] == "" {
		t.Errorf("SignConfig: %v", cfg)
	}

	// DeleteObjects, signed with its body's hash: the server deletes the
	// keys named, and refuses the signature with another body.
	del := `<Delete><Object><Key>wh/db/t/data/new.txt</Key></Object><Quiet>true</Quiet></Delete>`
	other := `<Delete><Object><Key>wh/db/t/data/a b=c.txt</Key></Object><Quiet>true</Quiet></Delete>`
	deleteWith := func(signedBody, sentBody string) int {
		t.Helper()
		sum := md5.Sum([]byte(sentBody))
		md := base64.StdEncoding.EncodeToString(sum[:])
		s, err := w.Sign(table, SignRequest{Method: "POST", URI: srv.Endpoint + "/" + srv.Bucket + "?delete", Body: &signedBody,
			Headers: http.Header{"Content-MD5": {md}, "Content-Type": {"application/xml"}}})
		if err != nil {
			t.Fatalf("signing DeleteObjects: %v", err)
		}
		req, _ := http.NewRequest("POST", s.URI, strings.NewReader(sentBody))
		req.Header.Set("Content-MD5", md)
		req.Header.Set("Content-Type", "application/xml")
		for k, vs := range s.Headers {
			req.Header[k] = vs
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := deleteWith(del, other); code == 200 {
		t.Errorf("a DeleteObjects signature used with another body: %d, want it refused", code)
	}
	if code := deleteWith(del, del); code != 200 {
		t.Errorf("signed DeleteObjects: %d", code)
	}
	if _, err := w.IO().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(table + "/data/new.txt"); err == nil {
		t.Errorf("after the signed DeleteObjects the file is still there")
	}
	if b, err := w.IO().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(table + "/data/a b=c.txt"); err != nil || string(b) != "hello" {
		t.Errorf("a key the deletion did not name: %q, %v", b, err)
	}
}

// TestSignedHeaders: headers that would make the signed request another
// operation than the one checked are refused; the ones clients send to
// read and write files are signed.
func TestSignedHeaders(t *testing.T) {
	w := &Warehouse{
		params: s3Params{host: "s3.example:9000", lookup: minio.BucketLookupAuto, accessKey: "ak", secretKey: "sk"},
		s3:     &s3FS{},
		bucket: "b",
	}
	const table, uri = "s3://b/wh/db/t", "http://s3.example:9000/b/wh/db/t/data/x.parquet"
	for _, tc := range []struct {
		header, value string
		ok            bool
	}{
		{"Content-Type", "application/octet-stream", true},
		{"Range", "bytes=0-99", true},
		{"x-amz-content-sha256", "UNSIGNED-PAYLOAD", true},
		{"X-Amz-Checksum-Crc32", "AAAAAA==", true},
		{"x-amz-meta-writer", "zombi", true},
		{"x-amz-storage-class", "STANDARD", true},
		{"x-amz-te", "append-md5", true},
		{"x-amz-copy-source", "/b/wh/db/other/data/secret.parquet", false},
		{"X-Amz-Copy-Source-Range", "bytes=0-9", false},
		{"x-amz-acl", "public-read", false},
		{"x-amz-grant-read", "uri=http://acs.amazonaws.com/groups/global/AllUsers", false},
		{"x-amz-website-redirect-location", "http://evil.example/", false},
		{"x-amz-object-lock-mode", "COMPLIANCE", false},
		{"x-amz-tagging-directive", "REPLACE", false},
	} {
		_, err := w.Sign(table, SignRequest{Method: "PUT", URI: uri, Headers: http.Header{tc.header: {tc.value}}})
		if tc.ok && err != nil {
			t.Errorf("%s: %v, want it signed", tc.header, err)
		}
		if !tc.ok && !errors.Is(err, ErrNotSignable) {
			t.Errorf("%s: %v, want ErrNotSignable", tc.header, err)
		}
	}
}

// TestSignDeleteObjects: DeleteObjects is signed only when every key its
// body names lies inside the table, with the body's hash in the
// signature.
func TestSignDeleteObjects(t *testing.T) {
	w := &Warehouse{
		params: s3Params{host: "s3.example:9000", lookup: minio.BucketLookupAuto, accessKey: "ak", secretKey: "sk"},
		s3:     &s3FS{},
		bucket: "b",
	}
	const table, uri = "s3://b/wh/db/t", "http://s3.example:9000/b?delete"
	body := func(keys ...string) *string {
		var b strings.Builder
		b.WriteString(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
		for _, k := range keys {
			b.WriteString("<Object><Key>" + k + "</Key></Object>")
		}
		b.WriteString("<Quiet>true</Quiet></Delete>")
		s := b.String()
		return &s
	}
	ok := body("wh/db/t/data/a.parquet", "wh/db/t/metadata/snap-1.avro")
	signed, err := w.Sign(table, SignRequest{Method: "POST", URI: uri, Body: ok, Headers: http.Header{"Content-MD5": {"x"}}})
	if err != nil {
		t.Fatalf("DeleteObjects inside the table: %v", err)
	}
	if h := signed.Headers.Get("X-Amz-Content-Sha256"); len(h) != 64 {
		t.Errorf("signed payload hash %q, want the body's SHA-256", h)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("wh/db/t/data/%d", i)
	}
	empty := ""
	for _, tc := range []struct {
		why  string
		uri  string
		body *string
		hdr  http.Header
	}{
		{"a key of another table", uri, body("wh/db/t/data/a.parquet", "wh/db/t2/data/b.parquet"), nil},
		{"a key outside the warehouse", uri, body("secrets/key"), nil},
		{"dot dot", uri, body("wh/db/t/../t2/x"), nil},
		{"the table's location itself", uri, body("wh/db/t"), nil},
		{"no body", uri, nil, nil},
		{"empty body", uri, &empty, nil},
		{"no keys", uri, body(), nil},
		{"too many keys", uri, body(many...), nil},
		{"not XML", uri, ptr("<Delete><Object><Key>wh/db/t/x</Key>"), nil},
		{"another root element", uri, ptr("<Tagging><Object><Key>wh/db/t/x</Key></Object></Tagging>"), nil},
		{"a payload hash of another body", uri, ok, http.Header{"X-Amz-Content-Sha256": {strings.Repeat("0", 64)}}},
		{"delete with another parameter", "http://s3.example:9000/b?delete&versionId=1", ok, nil},
		{"a body on a PUT", "http://s3.example:9000/b/wh/db/t/data/x", ok, nil},
	} {
		method := "POST"
		if strings.Contains(tc.why, "PUT") {
			method = "PUT"
		}
		if _, err := w.Sign(table, SignRequest{Method: method, URI: tc.uri, Body: tc.body, Headers: tc.hdr}); !errors.Is(err, ErrNotSignable) {
			t.Errorf("%s: %v, want ErrNotSignable", tc.why, err)
		}
	}
}

func ptr(s string) *string { return &s }
