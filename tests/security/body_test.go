package security

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestStalledBodies is attack 6: 8 connections declare 32 MiB bulk
// bodies and send nothing. They hold none of the in-flight budget, so a
// write beside them succeeds; and once the body deadline passes the
// server answers them 408 and closes them.
func TestStalledBodies(t *testing.T) {
	for _, sh := range zombitest.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			inst := sh.Start(t, "--body-timeout", "2s")
			stalled := make([]net.Conn, 8)
			for i := range stalled {
				c, err := net.Dial("tcp", inst.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "POST /tables/stall/bulk HTTP/1.1\r\nHost: zombi\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n", 32<<20)
				stalled[i] = c
			}
			// Once the server reads all 8, each holds its first buffer
			// (8 KiB of budget) and no more.
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				held := metric(t, inst.URL, "zombi_ingest_inflight_bytes")
				if held > 8*8<<10 {
					t.Fatalf("8 stalled bodies hold %.0f bytes of the in-flight budget, want at most %d", held, 8*8<<10)
				}
				if held == 8*8<<10 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the server holds %.0f bytes for 8 stalled bodies after a minute", held)
				}
			}
			// A write beside them: 256 MiB of budget, 8 × 32 MiB declared.
			zombitest.MustCall(t, 202, "POST", inst.URL+"/tables/stall/bulk", `{"records":[{"payload":"beside"}]}`)

			for i, c := range stalled {
				// The server's deadline is 2s; this one only keeps a
				// server that never answers from hanging the test.
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("stalled connection %d: no answer: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if e := zombitest.DecodeError(t, b); resp.StatusCode != http.StatusRequestTimeout || e.Error.Type != "RequestTimeoutException" {
					t.Fatalf("stalled connection %d: %d %s, want 408 RequestTimeoutException", i, resp.StatusCode, b)
				}
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Fatalf("stalled connection %d stayed open after its 408", i)
				}
			}
		})
	}
}
