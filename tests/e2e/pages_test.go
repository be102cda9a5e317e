package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestFlushLargeEventsReadable: a flush cycle of large incompressible
// events (700 KiB each, near the 1 MiB event limit, 94 of them in one
// 64 MiB cycle) is written in pages a Parquet reader takes. Before the
// flusher bounded its pages (flusher/pages.go) the cycle made one 64.3 MB
// page of payloads, which iceberg-go's reader refused ("compressed page
// size ... exceeds configured limit"), and so would the compactor. The
// table is then compacted and read again.
func TestFlushLargeEventsReadable(t *testing.T) {
	inst := shapes[0].start(t, "--flush-interval", "1h", "--admin-token", "a")
	base := inst.URL
	admin := []string{"Authorization", "Bearer a"}
	raw := make([]byte, 700<<10)
	sent := map[int64]string{}
	for b := range 4 {
		var recs []string
		var payloads []string
		for range 25 {
			rand.Read(raw)
			payloads = append(payloads, string(raw))
			recs = append(recs, fmt.Sprintf(`{"payload_base64":%q}`, base64.StdEncoding.EncodeToString(raw)))
		}
		var res struct {
			Offsets []int64 `json:"offsets"`
		}
		body := mustCall(t, 202, "POST", base+"/tables/big/bulk", `{"records":[`+strings.Join(recs, ",")+`]}`, admin...)
		if err := json.Unmarshal(body, &res); err != nil || len(res.Offsets) != len(payloads) {
			t.Fatalf("bulk %d: %s (%v)", b, body, err)
		}
		for i, off := range res.Offsets {
			sent[off] = payloads[i]
		}
	}
	check := func(when string) {
		got := scanEvents(t, inst, "default", "big", "token", "a")
		if len(got) != len(sent) {
			t.Fatalf("%s: read %d events, sent %d", when, len(got), len(sent))
		}
		for off, p := range sent {
			if got[off] != p {
				t.Fatalf("%s: event %d differs (%d bytes read, %d sent)", when, off, len(got[off]), len(p))
			}
		}
	}
	// Two flushes: the first takes a full 64 MiB cycle, the second the rest.
	mustCall(t, 200, "POST", base+"/tables/big/flush", "", admin...)
	mustCall(t, 200, "POST", base+"/tables/big/flush", "", admin...)
	check("after the flushes")
	mustCall(t, 200, "POST", base+"/tables/big/compact", "", admin...)
	check("after compaction")
}
