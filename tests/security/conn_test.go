package security

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestConnectionFlood is attack 8: clients open more idle keep-alive
// connections than the server has file descriptors (1,024 here, so that
// the test stays small). The server keeps --max-connections of them
// (default 4096, lowered to half the limit), refuses the others at once,
// and a health check and a catalog call on new connections are answered
// at once: 200 and 503 with Retry-After.
func TestConnectionFlood(t *testing.T) {
	inst := zombitest.StartWithOpenFiles(t, 1024)
	const flood = 1100
	var mu sync.Mutex
	var conns []net.Conn
	hung := 0 // connections that got no answer, nor were refused, in 10s
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range flood / 16 {
				c, err := net.DialTimeout("tcp", inst.Addr, 10*time.Second)
				if err != nil {
					continue // refused: fine
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				// One request makes it an idle keep-alive connection. An
				// answer or a refusal (503, reset) is fine; silence not.
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprintf(c, "GET /health/live HTTP/1.1\r\nHost: zombi\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				var ne net.Error
				switch {
				case err == nil:
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				case errors.As(err, &ne) && ne.Timeout():
					mu.Lock()
					hung++
					mu.Unlock()
				}
				_ = c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Logf("%d connections opened, %d of them left without an answer", len(conns), hung)
	if hung > 0 {
		t.Errorf("%d new connections got no answer within 10s; want each answered or refused at once", hung)
	}

	// Each call on a new connection, with a client that gives up after
	// 10 seconds: the server must answer before, not leave it waiting.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/health/live", 200}, {"/v1/config", 503}} {
		resp, err := client.Get(inst.URL + tc.path)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("GET %s with %d connections open: no answer within 10s", tc.path, len(conns))
		}
		if err != nil {
			t.Fatalf("GET %s with %d connections open: %v", tc.path, len(conns), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s with %d connections open: %d %s, want %d", tc.path, len(conns), resp.StatusCode, b, tc.status)
		}
		if tc.status == 503 && (resp.Header.Get("Retry-After") == "" || zombitest.DecodeError(t, b).Error.Type != "ServiceUnavailableException") {
			t.Fatalf("503 without Retry-After or the Iceberg error: %v %s", resp.Header, b)
		}
	}
	if !strings.Contains(inst.Log(), "max_connections=512") {
		t.Errorf("the log does not say --max-connections was lowered to 512, half the open-file limit")
	}
}
