package zombitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Call sends one HTTP request and returns the status, headers and body. A
// body is sent as application/json unless headers set Content-Type;
// headers are name, value pairs.
func Call(t testing.TB, method, url, body string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// MustCall is Call that fails the test unless the status is want.
func MustCall(t testing.TB, want int, method, url, body string, headers ...string) []byte {
	t.Helper()
	status, _, b := Call(t, method, url, body, headers...)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, url, status, want, b)
	}
	return b
}

// IcebergError is the Iceberg REST error body.
type IcebergError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    int    `json:"code"`
	} `json:"error"`
}

// DecodeError checks that b is exactly the Iceberg error shape
// {"error":{"message","type","code",…}} and decodes it.
func DecodeError(t testing.TB, b []byte) IcebergError {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("error body is not a JSON object of objects: %v: %s", err, b)
	}
	if len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("error body must have exactly the key \"error\": %s", b)
	}
	for _, k := range []string{"message", "type", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Fatalf("error body lacks error.%s: %s", k, b)
		}
	}
	var e IcebergError
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}
