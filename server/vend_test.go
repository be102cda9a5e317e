package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/zombi-db/zombi/planning"
)

// TestVendedCredentials: with X-Iceberg-Access-Delegation:
// vended-credentials and an STS, loadTable answers temporary keys that
// MinIO lets read the table's files and nothing else to a reader, and
// also write them to a writer; GET …/credentials answers the same kind.
func TestVendedCredentials(t *testing.T) {
	ts := newTestServer(t, testOptions{sts: true, tokens: []string{"r:reader", "w:writer", "a:admin", "rs:reader@db", "ws:writer@db"}})
	const schema = `"schema":{"type":"struct","fields":[{"id":1,"name":"x","type":"long","required":false}]}`
	for _, setup := range []struct{ method, path, body string }{
		{"POST", "/v1/namespaces", `{"namespace":["db"]}`},
		{"POST", "/v1/namespaces/db/tables", `{"name":"t",` + schema + `}`},
		{"POST", "/v1/namespaces/db/tables", `{"name":"u",` + schema + `}`},
	} {
		if w := ts.call(setup.method, setup.path, setup.body, "Bearer a"); w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", setup.method, setup.path, w.Code, w.Body)
		}
	}
	type credential struct {
		Prefix string            `json:"prefix"`
		Config map[string]string `json:"config"`
	}
	var loaded struct {
		MetadataLocation string            `json:"metadata-location"`
		Config           map[string]string `json:"config"`
		Credentials      []credential      `json:"storage-credentials"`
	}
	load := func(t *testing.T, table, token, delegation string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest("GET", "/v1/namespaces/db/tables/"+table, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		if delegation != "" {
			r.Header.Set("X-Iceberg-Access-Delegation", delegation)
		}
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("loadTable: %d %s", w.Code, w.Body)
		}
		return w
	}

	// Without the header, and with STS on, no keys at all.
	if w := load(t, "t", "r", ""); strings.Contains(w.Body.String(), "access-key") || strings.Contains(w.Body.String(), "storage-credentials") {
		t.Fatalf("loadTable without delegation holds keys: %s", w.Body)
	}

	var other struct {
		MetadataLocation string `json:"metadata-location"`
	}
	if err := json.Unmarshal(load(t, "u", "a", "").Body.Bytes(), &other); err != nil {
		t.Fatal(err)
	}
	_, otherKey := bucketKey(other.MetadataLocation)

	client := func(t *testing.T, cfg map[string]string) *minio.Client {
		t.Helper()
		for _, k := range []string{"s3.access-key-id", "s3.secret-access-key", "s3.session-token", "s3.session-token-expires-at-ms", "s3.endpoint"} {
			if cfg[k] == "" {
				t.Fatalf("vended config lacks %s: %v", k, cfg)
			}
		}
		if cfg["s3.access-key-id"] == minioRootKey(t, ts) {
			t.Fatal("vended the root keys")
		}
		c, err := minio.New(strings.TrimPrefix(cfg["s3.endpoint"], "http://"), &minio.Options{
			Creds:        credentials.NewStaticV4(cfg["s3.access-key-id"], cfg["s3.secret-access-key"], cfg["s3.session-token"]),
			Region:       cfg["s3.region"],
			BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	for _, c := range []struct {
		token string
		write bool
	}{{"r", false}, {"rs", false}, {"w", true}, {"ws", true}, {"a", true}} {
		t.Run(c.token, func(t *testing.T) {
			w := load(t, "t", c.token, "vended-credentials")
			loaded.Credentials = nil
			if err := json.Unmarshal(w.Body.Bytes(), &loaded); err != nil {
				t.Fatal(err)
			}
			if len(loaded.Credentials) != 1 || !strings.Contains(loaded.Credentials[0].Prefix, "/wh/db/t") {
				t.Fatalf("storage-credentials = %+v", loaded.Credentials)
			}
			cred := loaded.Credentials[0].Config
			if got := cred["client.refresh-credentials-endpoint"]; got != "v1/namespaces/db/tables/t/credentials" {
				t.Errorf("client.refresh-credentials-endpoint = %q", got)
			}
			if loaded.Config["s3.session-token"] != cred["s3.session-token"] {
				t.Errorf("config and storage-credentials differ: %v, %v", loaded.Config, cred)
			}
			s3c := client(t, cred)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			bucket, metaKey := bucketKey(loaded.MetadataLocation)
			tableKey := strings.TrimSuffix(loaded.Credentials[0].Prefix, "/")[len("s3://"+bucket+"/"):]

			obj, err := s3c.GetObject(ctx, bucket, metaKey, minio.GetObjectOptions{})
			if err == nil {
				_, err = obj.Stat()
			}
			if err != nil {
				t.Errorf("GET of the table's metadata: %v", err)
			}
			n := 0
			for o := range s3c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: tableKey + "/", Recursive: true}) {
				if o.Err != nil {
					t.Errorf("listing the table: %v", o.Err)
				}
				n++
			}
			if n == 0 {
				t.Error("listing the table found nothing")
			}
			if _, err := s3c.StatObject(ctx, bucket, otherKey, minio.StatObjectOptions{}); !accessDenied(err) {
				t.Errorf("HEAD of another table's file: %v, want AccessDenied", err)
			}
			for o := range s3c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "wh/", Recursive: true}) {
				if !accessDenied(o.Err) {
					t.Errorf("listing the warehouse: %v, want AccessDenied", o.Err)
				}
				break
			}
			put := func(key string) error { return putObject(ctx, s3c, bucket, key) }
			err = put(tableKey + "/data/new-" + c.token)
			if c.write && err != nil {
				t.Errorf("writer's PUT inside the table: %v", err)
			}
			if !c.write && !accessDenied(err) {
				t.Errorf("reader's PUT inside the table: %v, want AccessDenied", err)
			}
			if c.write {
				if err := s3c.RemoveObject(ctx, bucket, tableKey+"/data/new-"+c.token, minio.RemoveObjectOptions{}); err != nil {
					t.Errorf("writer's DELETE inside the table: %v", err)
				}
			}
			for _, key := range []string{otherKey + ".new", tableKey + "-sibling/x", "elsewhere"} {
				if err := put(key); !accessDenied(err) {
					t.Errorf("PUT %s outside the table: %v, want AccessDenied", key, err)
				}
			}

			// The credentials endpoint answers keys of the same scope.
			r := ts.call("GET", "/v1/namespaces/db/tables/t/credentials?planId=p", "", "Bearer "+c.token)
			if r.Code != http.StatusOK {
				t.Fatalf("loadCredentials: %d %s", r.Code, r.Body)
			}
			var fresh struct {
				Credentials []credential `json:"storage-credentials"`
			}
			if err := json.Unmarshal(r.Body.Bytes(), &fresh); err != nil {
				t.Fatal(err)
			}
			if len(fresh.Credentials) != 1 || fresh.Credentials[0].Prefix != loaded.Credentials[0].Prefix {
				t.Fatalf("loadCredentials = %s", r.Body)
			}
			err = putObject(ctx, client(t, fresh.Credentials[0].Config), bucket, tableKey+"/data/fresh-"+c.token)
			if c.write != (err == nil) {
				t.Errorf("PUT with refreshed credentials: %v (writer %v)", err, c.write)
			}
		})
	}

	// A create answers write credentials for the new table; its replay
	// answers none, and no keys.
	for i := range 2 {
		r := httptest.NewRequest("POST", "/v1/namespaces/db/tables", strings.NewReader(`{"name":"c",`+schema+`}`))
		r.Header.Set("Authorization", "Bearer w")
		r.Header.Set("Idempotency-Key", "create-c")
		r.Header.Set("X-Iceberg-Access-Delegation", "vended-credentials")
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		replayed := w.Header().Get("Idempotency-Replayed") == "true"
		if w.Code != http.StatusOK || replayed != (i == 1) {
			t.Fatalf("create %d: %d, replayed %v: %s", i, w.Code, replayed, w.Body)
		}
		vended := strings.Contains(w.Body.String(), `"storage-credentials":[{"config":{`) &&
			strings.Contains(w.Body.String(), `/wh/db/c-`)
		if !replayed && !vended {
			t.Errorf("create: no credentials for the new table: %s", w.Body)
		}
		if replayed && (strings.Contains(w.Body.String(), "storage-credentials") || strings.Contains(w.Body.String(), "access-key")) {
			t.Errorf("the create's replay holds keys: %s", w.Body)
		}
	}
	// A plan's answer holds read-only credentials for the table, for a
	// writer too: a scan only reads.
	p, err := planning.New(planning.Options{FS: ts.wh.FS})
	if err != nil {
		t.Fatal(err)
	}
	ts.planner = p
	for _, token := range []string{"r", "w"} {
		t.Run("plan-"+token, func(t *testing.T) {
			plan := func(method, path, body, delegation string) (map[string]any, *httptest.ResponseRecorder) {
				t.Helper()
				headers := []string{"Authorization", "Bearer " + token}
				if delegation != "" {
					headers = append(headers, "X-Iceberg-Access-Delegation", delegation)
				}
				w, out := call(t, ts, method, path, body, headers...)
				if w.Code != http.StatusOK {
					t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
				}
				return out, w
			}
			if _, w := plan("POST", "/v1/namespaces/db/tables/t/plan", `{}`, ""); strings.Contains(w.Body.String(), "storage-credentials") {
				t.Fatalf("a plan without delegation holds credentials: %s", w.Body)
			}
			planned, w := plan("POST", "/v1/namespaces/db/tables/t/plan", `{}`, "vended-credentials")
			fetched, fw := plan("GET", "/v1/namespaces/db/tables/t/plan/"+planned["plan-id"].(string), "", "vended-credentials")
			for _, r := range []*httptest.ResponseRecorder{w, fw} {
				var answer struct {
					Credentials []credential `json:"storage-credentials"`
				}
				if err := json.Unmarshal(r.Body.Bytes(), &answer); err != nil {
					t.Fatal(err)
				}
				if len(answer.Credentials) != 1 || !strings.Contains(answer.Credentials[0].Prefix, "/wh/db/t") {
					t.Fatalf("storage-credentials = %s", r.Body)
				}
				if r.Header().Get("Cache-Control") != "private, no-store" {
					t.Errorf("Cache-Control = %q", r.Header().Get("Cache-Control"))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s3c := client(t, answer.Credentials[0].Config)
				bucket, metaKey := bucketKey(loaded.MetadataLocation)
				if _, err := s3c.StatObject(ctx, bucket, metaKey, minio.StatObjectOptions{}); err != nil {
					t.Errorf("HEAD of the table's metadata with the plan's credentials: %v", err)
				}
				tableKey := strings.TrimSuffix(answer.Credentials[0].Prefix, "/")[len("s3://"+bucket+"/"):]
				if err := putObject(ctx, s3c, bucket, tableKey+"/data/plan-"+token); !accessDenied(err) {
					t.Errorf("PUT inside the table with the plan's credentials: %v, want AccessDenied", err)
				}
			}
			if fetched["status"] != "completed" {
				t.Errorf("fetchPlanningResult: %v", fetched)
			}
		})
	}

	if w := ts.call("GET", "/v1/namespaces/db/tables/nope/credentials", "", "Bearer r"); w.Code != http.StatusNotFound {
		t.Errorf("credentials of a missing table: %d %s", w.Code, w.Body)
	}
	if w := ts.call("GET", "/v1/namespaces/db/tables/t/credentials", "", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("credentials without a token: %d %s", w.Code, w.Body)
	}
	if w := ts.call("GET", "/v1/config", "", "Bearer r"); !strings.Contains(w.Body.String(), "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials") {
		t.Errorf("/v1/config does not list the credentials endpoint: %s", w.Body)
	}
}

func putObject(ctx context.Context, c *minio.Client, bucket, key string) error {
	_, err := c.PutObject(ctx, bucket, key, bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
	return err
}

func bucketKey(location string) (bucket, key string) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(location, "s3://"), "/")
	return bucket, key
}

func accessDenied(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "AccessDenied"
}

// minioRootKey is the warehouse's own access key.
func minioRootKey(t *testing.T, ts *testServer) string {
	t.Helper()
	return ts.wh.IOProps()["s3.access-key-id"]
}
