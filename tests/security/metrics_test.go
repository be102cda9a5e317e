package security

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// metric returns the value of an unlabelled series on base's /metrics.
func metric(t *testing.T, base, name string, headers ...string) float64 {
	t.Helper()
	b := zombitest.MustCall(t, 200, "GET", base+"/metrics", "", headers...)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestMetricsBounded is attack 5: 5,000 requests with invented methods,
// and 20 with 500 KB method names, unauthenticated against a server with
// auth on. /metrics grows by less than 16 KiB and names none of them; the
// long ones are refused with 431 (or their connection closed) before
// they are read whole.
func TestMetricsBounded(t *testing.T) {
	inst := zombitest.Start(t, "--auth-token", "user")
	auth := []string{"Authorization", "Bearer user"}
	before := len(zombitest.MustCall(t, 200, "GET", inst.URL+"/metrics", "", auth...))

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			c, err := net.Dial("tcp", inst.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for i := w; i < 5000; i += 8 {
				if _, err := fmt.Fprintf(c, "INVENTED%d /v1/namespaces HTTP/1.1\r\nHost: zombi\r\n\r\n", i); err != nil {
					t.Error(err)
					return
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	long := strings.Repeat("M", 500<<10)
	for i := range 20 {
		wg.Go(func() {
			c, err := net.Dial("tcp", inst.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			// The server stops reading past its header limit: write from
			// another goroutine, which the close ends.
			go fmt.Fprintf(c, "%s%d /v1/namespaces HTTP/1.1\r\nHost: zombi\r\n\r\n", long, i)
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return // closed, or reset before the answer was read
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("a 500 KB method: %d, want 431", resp.StatusCode)
			}
		})
	}
	wg.Wait()

	b := zombitest.MustCall(t, 200, "GET", inst.URL+"/metrics", "", auth...)
	t.Logf("/metrics: %d bytes before, %d after", before, len(b))
	if grown := len(b) - before; grown > 16<<10 {
		t.Errorf("/metrics grew by %d bytes after 5,020 requests with invented methods, want at most 16 KiB", grown)
	}
	if bytes.Contains(b, []byte("INVENTED")) || bytes.Contains(b, []byte("MMMM")) {
		t.Errorf("/metrics names an invented method")
	}
}
