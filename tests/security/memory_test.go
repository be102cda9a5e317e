package security

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// ndjsonBulk is an NDJSON bulk body of about size bytes: records of
// payloadLen-byte string payloads, one a line.
func ndjsonBulk(size, payloadLen int) []byte {
	line := `{"payload":"` + strings.Repeat("p", payloadLen) + `"}` + "\n"
	return bytes.Repeat([]byte(line), size/len(line))
}

// TestBulkMemoryBounded is attack 7: 64 clients send bulks at once to a
// server with default flags. The in-flight budget (256 MiB) admits a few;
// the rest are refused with 429, and the server's peak RSS stays below
// 1 GiB. Bodies of large records test the bytes a write holds, bodies of
// 100,000 tiny records what it holds per record.
func TestBulkMemoryBounded(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		perClient int
	}{
		// 345-byte lines: ~94,000 records in 31 MiB, 2 GiB in all.
		{"31 MiB bulks", ndjsonBulk(31<<20, 330), 1},
		// 14-byte lines: 100,000 records in 1.4 MB.
		{"100,000-record bulks", bytes.Repeat([]byte(`{"payload":1}`+"\n"), 100_000), 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst := zombitest.Start(t)
			before := inst.PeakRSS(t)
			const clients = 64
			var mu sync.Mutex
			statuses := map[string]int{}
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for range tc.perClient {
						outcome := postBulk(t, inst.URL+"/tables/mem/bulk", tc.body)
						mu.Lock()
						statuses[outcome]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			peak := inst.PeakRSS(t)
			t.Logf("statuses %v; peak RSS %d MiB (%d MiB before), %d MiB offered", statuses, peak>>20, before>>20, clients*tc.perClient*len(tc.body)>>20)
			if statuses["202"] == 0 || statuses["202"]+statuses["429"] != clients*tc.perClient {
				t.Errorf("statuses %v: want 202s and 429s only, some 202", statuses)
			}
			if peak > 1<<30 {
				t.Errorf("peak RSS %d MiB, want at most 1024 MiB", peak>>20)
			}
			zombitest.MustCall(t, 200, "GET", inst.URL+"/health/live", "")
		})
	}
}

// postBulk sends an NDJSON bulk and returns the status, or "error" when
// the request failed. A 429 must come with Retry-After and the Iceberg
// error JSON.
func postBulk(t *testing.T, url string, body []byte) string {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return "error"
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("POST %s: %v", url, err)
		return "error"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") == "" || zombitest.DecodeError(t, b).Error.Type != "TooManyRequestsException") {
		t.Errorf("429 without Retry-After or Iceberg error: %v %s", resp.Header, b)
	}
	return fmt.Sprint(resp.StatusCode)
}
