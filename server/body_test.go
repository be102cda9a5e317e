package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startHTTP serves ts on a local port for tests that need a connection.
func startHTTP(t *testing.T, ts *testServer) string {
	t.Helper()
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	return hs.Listener.Addr().String()
}

// sendHead opens a connection and sends a request's head and the first
// bytes of its body, declaring a body of length bytes.
func sendHead(t *testing.T, addr, path string, length int, first string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: zombi\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, length, first)
	return c
}

// TestSlowBody: a body that stops arriving is answered 408 with the
// Iceberg error once its deadline passes, and its connection is closed;
// on catalog and ingest routes alike.
func TestSlowBody(t *testing.T) {
	ts := newTestServer(t, testOptions{bodyTimeout: 100 * time.Millisecond, minBodyRate: 1 << 20})
	addr := startHTTP(t, ts)
	for _, path := range []string{"/tables/slow/bulk", "/tables/slow", "/v1/namespaces"} {
		t.Run(path, func(t *testing.T) {
			c := sendHead(t, addr, path, 1000, `{"records":[`)
			// The deadline is the server's; this one only keeps a broken
			// server from hanging the test.
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			var e struct{ Error struct{ Type string } }
			if resp.StatusCode != http.StatusRequestTimeout || json.Unmarshal(b, &e) != nil || e.Error.Type != "RequestTimeoutException" {
				t.Fatalf("stalled body: %d %s", resp.StatusCode, b)
			}
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("the connection stayed open (read %d bytes)", n)
			}
		})
	}
}

// TestStalledBodiesHoldNoBudget: bodies that were declared but do not
// arrive hold (almost) nothing of the in-flight budget, so other writes
// go through while they wait.
func TestStalledBodiesHoldNoBudget(t *testing.T) {
	ts := newTestServer(t, testOptions{inflight: 1 << 20})
	addr := startHTTP(t, ts)
	for range 8 {
		sendHead(t, addr, "/tables/stall/bulk", 256<<10, "")
	}
	// Wait until the server reads all 8 bodies: each holds its first
	// buffer.
	for deadline := time.Now().Add(time.Minute); ts.inflight.Bytes() < 8*2*firstRead; {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d bytes for 8 stalled bodies after a minute", ts.inflight.Bytes())
		}
		time.Sleep(time.Millisecond)
	}
	c := dialRaw(t, addr)
	defer c.c.Close()
	status, err := c.do(rawRequest("/tables/stall", []byte(`{"payload":"x"}`)))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("a write beside 8 stalled 256 KiB bodies (budget 1 MiB): %d %v", status, err)
	}
	if b := ts.inflight.Bytes(); b != 8*2*firstRead {
		t.Fatalf("%d bytes charged for 8 stalled bodies, want %d", b, 8*2*firstRead)
	}
}

// TestCatalogBodyTooLarge: a catalog body past the limit is 413 whether
// its length is declared or it is chunked.
func TestCatalogBodyTooLarge(t *testing.T) {
	ts := newTestServer(t, testOptions{maxBody: 1 << 10})
	big := `{"namespace":["x"],"properties":{"k":"` + strings.Repeat("x", 2<<10) + `"}}`
	for _, chunked := range []bool{false, true} {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, writeReq{path: "/v1/namespaces", body: big, chunked: chunked}.build())
		var e struct{ Error struct{ Type string } }
		if w.Code != http.StatusRequestEntityTooLarge || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Type != "RequestEntityTooLargeException" {
			t.Errorf("chunked=%v: %d %s", chunked, w.Code, w.Body)
		}
	}
}

// TestOversizedWriteAlone: a write larger than the in-flight limit goes
// through when nothing else is in flight, however its charge grows.
func TestOversizedWriteAlone(t *testing.T) {
	ts := newTestServer(t, testOptions{inflight: 16 << 10})
	body := `{"records":[` + strings.Repeat(`{"payload":"`+strings.Repeat("x", 1000)+`"},`, 99) + `{"payload":"x"}]}`
	for _, chunked := range []bool{false, true} {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, writeReq{path: "/tables/big/bulk", body: body, chunked: chunked}.build())
		if w.Code != http.StatusAccepted {
			t.Errorf("chunked=%v: a 100 KB bulk alone under a 16 KiB limit: %d %s", chunked, w.Code, w.Body)
		}
	}
	if b := ts.inflight.Bytes(); b != 0 {
		t.Errorf("%d bytes charged after the writes", b)
	}
}
