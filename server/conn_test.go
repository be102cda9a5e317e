package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestConnectionLimit: with the limit's connections open, /health/* is
// answered on the reserve and anything else gets 503 at once; past the
// reserve a connection gets a 503 without being read. Closing
// connections makes room again.
func TestConnectionLimit(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2, nil)
	hs := &http.Server{Handler: ts, ConnContext: ConnContext, ReadHeaderTimeout: time.Minute}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	addr := inner.Addr().String()

	// get sends one request and returns the status, the Retry-After
	// header and whether the server closed the connection after it.
	get := func(c net.Conn, path string) (int, string, bool) {
		t.Helper()
		// The test's own deadline: the server must answer at once.
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: zombi\r\n\r\n", path)
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if !resp.Close {
			return resp.StatusCode, resp.Header.Get("Retry-After"), false
		}
		// EOF, or a reset when the server closed it unread.
		_, err = r.ReadByte()
		var ne net.Error
		return resp.StatusCode, resp.Header.Get("Retry-After"), err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	held := []net.Conn{dial(), dial()}
	for _, c := range held {
		if status, _, _ := get(c, "/health/live"); status != 200 {
			t.Fatalf("within the limit: %d", status)
		}
	}
	if n := ln.Open(); n != 2 {
		t.Fatalf("%d connections open, want 2", n)
	}
	if status, _, closed := get(dial(), "/health/live"); status != 200 || !closed {
		t.Errorf("health on the reserve: %d, closed %v; want 200 and closed", status, closed)
	}
	if status, retry, closed := get(dial(), "/v1/config"); status != 503 || retry == "" || !closed {
		t.Errorf("a catalog call on the reserve: %d (Retry-After %q), closed %v; want 503 with Retry-After, closed", status, retry, closed)
	}
	reserve := make([]net.Conn, HealthReserve)
	for i := range reserve {
		reserve[i] = dial()
	}
	// Once the reserve is taken (the server counts a connection when it
	// accepts it), the next is refused unread.
	for deadline := time.Now().Add(time.Minute); ln.Open() < 2+HealthReserve; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after a minute, want %d", ln.Open(), 2+HealthReserve)
		}
	}
	// The server writes a 503 and closes the connection without reading
	// the request: the client reads the 503, or a reset when the close
	// came after its request. Either way at once, not at a timeout.
	c := dial()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(c, "GET /health/live HTTP/1.1\r\nHost: zombi\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("past the reserve: no answer within a minute")
	case err == nil && (resp.StatusCode != 503 || resp.Header.Get("Retry-After") == ""):
		t.Errorf("past the reserve: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, c := range append(held, reserve...) {
		c.Close()
	}
	for deadline := time.Now().Add(time.Minute); ln.Open() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after closing them all", ln.Open())
		}
	}
	if status, _, _ := get(dial(), "/v1/config"); status != 200 {
		t.Errorf("after the connections closed: %d, want 200", status)
	}
}
