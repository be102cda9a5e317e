package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopS3()
	os.Exit(code)
}

// TestRemoteSigning: with X-Iceberg-Access-Delegation: remote-signing a
// table's config turns signing on and holds no keys, and the sign
// endpoint signs what the caller's role allows inside the table only,
// with signatures the S3 server accepts.
func TestRemoteSigning(t *testing.T) {
	ts := newTestServer(t, testOptions{s3: true, tokens: []string{"r:reader", "w:writer", "a:admin"}})
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
	load := func(delegation string) (map[string]any, string) {
		t.Helper()
		r := httptest.NewRequest("GET", "/v1/namespaces/db/tables/t", nil)
		r.Header.Set("Authorization", "Bearer r")
		if delegation != "" {
			r.Header.Set("X-Iceberg-Access-Delegation", delegation)
		}
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("loadTable: %d %s", w.Code, w.Body)
		}
		var res map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		return res, w.Header().Get("ETag")
	}
	plain, plainTag := load("")
	if plain["config"].(map[string]any)["s3.access-key-id"] == nil {
		t.Fatalf("without delegation, --s3-vend-static-keys vends keys: %v", plain["config"])
	}
	signing, signingTag := load("vended-credentials, remote-signing")
	cfg := signing["config"].(map[string]any)
	for k := range cfg {
		if strings.Contains(k, "access-key") || strings.Contains(k, "secret") || strings.Contains(k, "session-token") {
			t.Errorf("remote-signing config holds %s", k)
		}
	}
	for k, v := range map[string]string{
		"s3.remote-signing-enabled": "true",
		"s3.signer":                 "S3V4RestSigner",
		"s3.signer.endpoint":        "v1/namespaces/db/tables/t/sign",
		"py-io-impl":                "pyiceberg.io.fsspec.FsspecFileIO",
	} {
		if cfg[k] != v {
			t.Errorf("config %s = %v, want %s", k, cfg[k], v)
		}
	}
	if plainTag == signingTag {
		t.Errorf("the ETag %s does not tell the two configs apart", plainTag)
	}
	metadata := signing["metadata-location"].(string)
	endpoint := cfg["s3.endpoint"].(string)
	objectURI := func(location string) string {
		return endpoint + "/" + strings.TrimPrefix(location, "s3://")
	}
	sign := func(token, method, uri string) *httptest.ResponseRecorder {
		body, _ := json.Marshal(map[string]any{"region": "us-east-1", "method": method, "uri": uri,
			"headers": map[string][]string{"User-Agent": {"test"}}})
		return ts.call("POST", "/v1/namespaces/db/tables/t/sign", string(body), "Bearer "+token)
	}
	w := sign("r", "GET", objectURI(metadata))
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "private" {
		t.Fatalf("reader's GET: %d %s %v", w.Code, w.Body, w.Header())
	}
	var signed struct {
		URI     string              `json:"uri"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &signed); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", signed.URI, nil)
	req.Header.Set("User-Agent", "test")
	for k, vs := range signed.Headers {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("S3 answered the signed GET with %d", res.StatusCode)
	}
	file := objectURI(strings.TrimSuffix(metadata, metadata[strings.LastIndex(metadata, "/"):]) + "/new.json")
	for _, c := range []struct {
		why, token, method, uri string
		want                    int
	}{
		{"reader writes", "r", "PUT", file, http.StatusForbidden},
		{"reader starts an upload", "r", "POST", file + "?uploads", http.StatusForbidden},
		{"reader deletes", "r", "DELETE", file, http.StatusForbidden},
		{"writer writes", "w", "PUT", file, http.StatusOK},
		{"another table's file", "a", "GET", strings.Replace(file, "/db/t", "/db/u", 1), http.StatusForbidden},
		{"dot dot", "a", "GET", strings.Replace(file, "/metadata/", "/../u/metadata/", 1), http.StatusForbidden},
		{"listing the bucket", "a", "GET", endpoint + "/" + strings.Split(strings.TrimPrefix(metadata, "s3://"), "/")[0] + "?list-type=2", http.StatusForbidden},
		{"another endpoint", "a", "GET", strings.Replace(file, endpoint, "http://example.com", 1), http.StatusForbidden},
		{"no token", "", "GET", file, http.StatusUnauthorized},
	} {
		auth := c.token
		w := sign(auth, c.method, c.uri)
		if c.token == "" {
			r := httptest.NewRequest("POST", "/v1/namespaces/db/tables/t/sign", strings.NewReader(`{}`))
			w = httptest.NewRecorder()
			ts.ServeHTTP(w, r)
		}
		if w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.why, w.Code, w.Body, c.want)
		}
	}
	// A create and its replay answer the signing config, without keys.
	for i := range 2 {
		r := httptest.NewRequest("POST", "/v1/namespaces/db/tables", strings.NewReader(`{"name":"c",`+schema+`}`))
		r.Header.Set("Authorization", "Bearer w")
		r.Header.Set("Idempotency-Key", "create-c")
		r.Header.Set("X-Iceberg-Access-Delegation", "remote-signing")
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "access-key") ||
			!strings.Contains(w.Body.String(), `"s3.signer.endpoint":"v1/namespaces/db/tables/c/sign"`) {
			t.Errorf("create %d: %d %s", i, w.Code, w.Body)
		}
		if replayed := w.Header().Get("Idempotency-Replayed") == "true"; replayed != (i == 1) {
			t.Errorf("create %d: replayed %v", i, replayed)
		}
	}
	if w := ts.call("POST", "/v1/namespaces/db/tables/t/sign", `{"method":`, "Bearer a"); w.Code != http.StatusBadRequest {
		t.Errorf("bad JSON: %d %s", w.Code, w.Body)
	}
	if w := ts.call("POST", "/v1/namespaces/db/tables/nope/sign", `{"region":"r","method":"GET","uri":"`+file+`","headers":{}}`, "Bearer a"); w.Code != http.StatusNotFound {
		t.Errorf("no such table: %d %s", w.Code, w.Body)
	}
}
