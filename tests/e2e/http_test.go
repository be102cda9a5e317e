package e2e

import (
	"net/http"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// call sends one HTTP request and returns the status, headers and body.
func call(t testing.TB, method, url, body string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	return zombitest.Call(t, method, url, body, headers...)
}

// mustCall is call that fails the test unless the status is want.
func mustCall(t testing.TB, want int, method, url, body string, headers ...string) []byte {
	t.Helper()
	return zombitest.MustCall(t, want, method, url, body, headers...)
}

// decodeError checks that b is exactly the Iceberg error shape.
func decodeError(t testing.TB, b []byte) zombitest.IcebergError {
	t.Helper()
	return zombitest.DecodeError(t, b)
}
