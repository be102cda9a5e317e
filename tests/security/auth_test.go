package security

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestAuthSurface: with auth on, /metrics and /health/ready tell an
// unauthenticated caller nothing about tables; a metrics token reads
// /metrics and nothing else; the Bearer scheme is case-insensitive; an
// admin token alone turns auth on, and the log says so.
func TestAuthSurface(t *testing.T) {
	inst := zombitest.Start(t, "--admin-token", "admin", "--metrics-token", "scrape")
	if !strings.Contains(inst.Log(), "auth=true") {
		t.Errorf("an admin token alone enforces auth, but the log does not say auth=true")
	}
	zombitest.MustCall(t, 202, "POST", inst.URL+"/tables/secret_table", `{"payload":"x"}`, "Authorization", "bearer admin")
	zombitest.MustCall(t, 401, "POST", inst.URL+"/tables/secret_table", `{"payload":"x"}`)

	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401},
		{"metrics token", "Bearer scrape", 200},
		{"metrics token, scheme in lower case", "bearer scrape", 200},
		{"admin token", "Bearer admin", 200},
	} {
		status, _, b := zombitest.Call(t, "GET", inst.URL+"/metrics", "", "Authorization", tc.token)
		if status != tc.status {
			t.Errorf("/metrics, %s: %d, want %d", tc.name, status, tc.status)
		}
		if status == 200 && !strings.Contains(string(b), "secret_table") {
			t.Errorf("/metrics, %s: the table's series are missing", tc.name)
		}
		if status != 200 && strings.Contains(string(b), "secret_table") {
			t.Errorf("/metrics, %s: %d names the table", tc.name, status)
		}
	}
	zombitest.MustCall(t, 403, "GET", inst.URL+"/v1/config", "", "Authorization", "Bearer scrape")
}

// TestReadyReportsStuckFlush: a table whose flushes keep failing (its
// rows do not fit a required column added after them) makes
// /health/ready 503; it names the table to a caller with a token and to
// nobody else.
func TestReadyReportsStuckFlush(t *testing.T) {
	for _, sh := range zombitest.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			// The stuck table would hold a graceful stop for the whole timeout.
			inst := sh.Start(t, "--auth-token", "user", "--flush-interval", "1h", "--shutdown-timeout", "2s")
			auth := []string{"Authorization", "Bearer user"}
			zombitest.MustCall(t, 200, "POST", inst.URL+"/v1/namespaces", `{"namespace":["shop"]}`, auth...)
			zombitest.MustCall(t, 200, "POST", inst.URL+"/v1/namespaces/shop/tables",
				`{"name":"orders","schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}}`, auth...)
			zombitest.MustCall(t, 202, "POST", inst.URL+"/tables/shop.orders", `{"id":1}`, auth...)
			zombitest.MustCall(t, 200, "POST", inst.URL+"/v1/namespaces/shop/tables/orders",
				`{"requirements":[],"updates":[{"action":"add-schema","schema":{"type":"struct","schema-id":1,"fields":[`+
					`{"id":1,"name":"id","type":"long","required":true},{"id":2,"name":"region","type":"string","required":true}]},"last-column-id":2},`+
					`{"action":"set-current-schema","schema-id":-1}]}`, auth...)

			var status int
			var body []byte
			for i := 0; ; i++ {
				if status, _, body = zombitest.Call(t, "GET", inst.URL+"/health/ready", "", auth...); status == 503 {
					break
				}
				if i == 20 {
					t.Fatalf("/health/ready %d %s after %d failed flushes", status, body, i)
				}
				if s, _, b := zombitest.Call(t, "POST", inst.URL+"/tables/shop.orders/flush", "", auth...); s != 422 {
					t.Fatalf("flushing rows without the required column: %d %s, want 422", s, b)
				}
			}
			var ready struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(body, &ready); err != nil || !strings.Contains(ready.Checks["flush"], "shop.orders") {
				t.Errorf("authenticated /health/ready: %s, want the flush check naming shop.orders", body)
			}
			status, hdr, body := zombitest.Call(t, "GET", inst.URL+"/health/ready", "")
			if status != 503 || hdr.Get("Retry-After") == "" || strings.TrimSpace(string(body)) != `{"status":"unavailable"}` {
				t.Errorf("unauthenticated /health/ready: %d %s, want 503 {\"status\":\"unavailable\"} and Retry-After", status, body)
			}
			if !strings.Contains(inst.Log(), "not ready") || !strings.Contains(inst.Log(), "shop.orders") {
				t.Errorf("the log does not say why the server is not ready")
			}
		})
	}
}
