package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestIngestIdempotency: a retried key returns the original offset with
// duplicate=true and stores nothing — sequentially, concurrently, in bulk
// and after a restart.
func TestIngestIdempotency(t *testing.T) {
	inst := startHot(t)
	base := inst.URL
	first := postEvent(t, base, "idem", `{"payload":"one","idempotency_key":"k1"}`)
	again := postEvent(t, base, "idem", `{"payload":"one","idempotency_key":"k1"}`)
	if !again.Duplicate || again.Offset != first.Offset || first.Duplicate {
		t.Fatalf("retry: %+v after %+v", again, first)
	}
	// The header works the same way.
	h := postEvent(t, base, "idem", `{"payload":"two"}`, "Idempotency-Key", "k2")
	if d := postEvent(t, base, "idem", `{"payload":"two"}`, "Idempotency-Key", "k2"); !d.Duplicate || d.Offset != h.Offset {
		t.Fatalf("header retry: %+v", d)
	}

	// 32 concurrent requests with one key store one event.
	var wg sync.WaitGroup
	offsets := make([]writeResult, 32)
	for i := range offsets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offsets[i] = postEvent(t, base, "idem", `{"payload":"race","idempotency_key":"k3"}`)
		}()
	}
	wg.Wait()
	dups := 0
	for _, o := range offsets {
		if o.Offset != offsets[0].Offset {
			t.Fatalf("concurrent retries got different offsets: %+v", offsets)
		}
		if o.Duplicate {
			dups++
		}
	}
	if dups != 31 {
		t.Fatalf("%d of 32 concurrent requests were duplicates, want 31", dups)
	}

	// Keys dedupe within a bulk request and against earlier events.
	b := mustCall(t, 202, "POST", base+"/tables/idem/bulk", `{"records":[{"payload":"x","idempotency_key":"k1"},{"payload":"y","idempotency_key":"k4"},{"payload":"y","idempotency_key":"k4"}]}`)
	var bulk struct {
		Offsets    []int64 `json:"offsets"`
		Duplicates int     `json:"duplicates"`
	}
	if err := json.Unmarshal(b, &bulk); err != nil || bulk.Duplicates != 2 || bulk.Offsets[0] != first.Offset || bulk.Offsets[1] != bulk.Offsets[2] {
		t.Fatalf("bulk with keys: %s", b)
	}
	before := len(hotEvents(t, base, "idem"))
	if before != 4 {
		t.Fatalf("hot tier holds %d events, want 4 (one per distinct key)", before)
	}

	// After a restart the keys are still known.
	inst.Stop(t)
	inst = zombitest.StartIn(t, inst.DataDir, hotOnly...)
	if d := postEvent(t, inst.URL, "idem", `{"payload":"one","idempotency_key":"k1"}`); !d.Duplicate || d.Offset != first.Offset {
		t.Fatalf("retry after restart: %+v, want duplicate of %d", d, first.Offset)
	}
	// Sequences never go back: the first new event is after every earlier
	// one (a restart may skip ahead; see docs/ingest.md).
	if n := postEvent(t, inst.URL, "idem", `{"payload":"new"}`); n.Offset <= 4 || n.Duplicate {
		t.Fatalf("first new event after restart has offset %d, want more than 4", n.Offset)
	}
}

// TestIngestKill9 streams single and bulk writes while the server is killed
// without warning several times; after each restart every acknowledged
// offset must be in the hot tier exactly once with its payload.
func TestIngestKill9(t *testing.T) {
	inst := startHot(t)
	dir := inst.DataDir
	acked := map[int64]string{} // offset -> payload
	var mu sync.Mutex
	client := &http.Client{Timeout: 10 * time.Second}
	seq := 0

	for round := 0; round < 3; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					mu.Lock()
					seq++
					n := seq
					mu.Unlock()
					bulk := w%2 == 1
					var body, path string
					var payloads []string
					if bulk {
						var recs []string
						for j := 0; j < 20; j++ {
							p := fmt.Sprintf("r%d-w%d-b%d-%d", round, w, n, j)
							payloads = append(payloads, p)
							recs = append(recs, fmt.Sprintf(`{"payload":%q}`, p))
						}
						body, path = `{"records":[`+strings.Join(recs, ",")+`]}`, "/tables/crash/bulk"
					} else {
						p := fmt.Sprintf("r%d-w%d-s%d", round, w, n)
						payloads = []string{p}
						body, path = fmt.Sprintf(`{"payload":%q}`, p), "/tables/crash"
					}
					req, _ := http.NewRequestWithContext(ctx, "POST", inst.URL+path, strings.NewReader(body))
					resp, err := client.Do(req)
					if err != nil {
						return // the server is gone: this write was not acknowledged
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 202 {
						continue
					}
					mu.Lock()
					if bulk {
						var r struct{ Offsets []int64 }
						if err := json.Unmarshal(b, &r); err == nil {
							for j, o := range r.Offsets {
								acked[o] = payloads[j]
							}
						}
					} else {
						var r writeResult
						if err := json.Unmarshal(b, &r); err == nil {
							acked[r.Offset] = payloads[0]
						}
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		inst.Kill()
		cancel()
		wg.Wait()
		inst = zombitest.StartIn(t, dir, hotOnly...)
	}

	evs := hotEvents(t, inst.URL, "crash")
	seen := map[int64]int{}
	byOffset := map[int64]string{}
	for _, ev := range evs {
		o := int64(ev["sequence"].(float64))
		seen[o]++
		byOffset[o] = string(payloadOf(t, ev))
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	for o, p := range acked {
		if seen[o] != 1 {
			t.Errorf("acknowledged offset %d present %d times", o, seen[o])
		} else if byOffset[o] != p {
			t.Errorf("offset %d holds %q, acknowledged %q", o, byOffset[o], p)
		}
	}
	t.Logf("%d acknowledged events survived 3 kills; the hot tier holds %d", len(acked), len(evs))
}

// TestIngestBackpressure: past the in-flight cap writes get 429, past the
// backlog cap 503, both with Retry-After; and the server keeps serving.
func TestIngestBackpressure(t *testing.T) {
	t.Run("backlog", func(t *testing.T) {
		inst := startHot(t, "--max-backlog", "64KiB")
		big := `{"records":[` + strings.TrimSuffix(strings.Repeat(`{"payload":"`+strings.Repeat("x", 1000)+`"},`, 20), ",") + `]}`
		var status int
		var hdr http.Header
		var body []byte
		for i := 0; i < 20; i++ {
			if status, hdr, body = call(t, "POST", inst.URL+"/tables/bp/bulk", big); status != 202 {
				break
			}
		}
		if status != 503 || hdr.Get("Retry-After") == "" || decodeError(t, body).Error.Type != "ServiceUnavailableException" {
			t.Fatalf("over the backlog cap: %d %v %s", status, hdr, body)
		}
		mustCall(t, 200, "GET", inst.URL+"/health/live", "")
	})
	t.Run("inflight", func(t *testing.T) {
		inst := startHot(t, "--max-inflight-bytes", "4KiB")
		body := `{"records":[` + strings.TrimSuffix(strings.Repeat(`{"payload":"`+strings.Repeat("y", 500)+`"},`, 7), ",") + `]}`
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[int]int{}
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, hdr, b := call(t, "POST", inst.URL+"/tables/bp/bulk", body)
				if status == 429 && (hdr.Get("Retry-After") == "" || decodeError(t, b).Error.Type != "TooManyRequestsException") {
					t.Errorf("429 without Retry-After or Iceberg error: %v %s", hdr, b)
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if counts[429] == 0 || counts[202] == 0 || counts[202]+counts[429] != 64 {
			t.Fatalf("statuses %v: want some 202 and some 429, nothing else", counts)
		}
	})
}

// TestIngestMemoryBounded offers far more request bytes at once than the
// in-flight cap allows; the server refuses the excess with 429 instead of
// buffering it, so its memory stays bounded.
func TestIngestMemoryBounded(t *testing.T) {
	inst := startHot(t, "--max-inflight-bytes", "8MiB", "--max-bulk-bytes", "2MiB")
	rec := `{"payload":"` + strings.Repeat("z", 1000) + `"},`
	body := `{"records":[` + strings.TrimSuffix(strings.Repeat(rec, 1900), ",") + `]}` // ~1.9 MiB
	const clients, perClient = 48, 12                                                  // ~1 GiB offered
	before := inst.RSS(t)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				if r := inst.RSS(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				status, _, _ := call(t, "POST", inst.URL+"/tables/mem/bulk", body)
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("statuses %v; RSS %d MiB before, peak %d MiB, %d MiB offered", counts, before>>20, peak.Load()>>20, clients*perClient*len(body)>>20)
	if counts[429] == 0 || counts[202] == 0 || counts[202]+counts[429] != clients*perClient {
		t.Fatalf("statuses %v: want 202s and 429s only", counts)
	}
	// The offered bytes are ~1 GiB; what the server may hold for requests
	// is 8 MiB, a few copies of it while decoding and committing. By
	// design it also holds up to 128 MiB of Pebble cache and memtables
	// (one more memtable while it flushes), and the Go heap may grow by
	// 128 MiB between collections (cmd/zombi's tuneGC). Measured peaks
	// here are 310-380 MiB, so the bound is half the offered load: far
	// below what buffering it would take, with room for the allocator.
	if peak.Load() > 512<<20 {
		t.Fatalf("peak RSS %d MiB under overload, want at most 512 MiB", peak.Load()>>20)
	}
}
