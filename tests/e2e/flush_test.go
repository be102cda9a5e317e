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
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/internal/zombitest"
)

// scanEvents reads an event table through iceberg-go's REST client, as an
// engine would, and returns sequence → payload. A sequence in the table
// twice fails the test.
func scanEvents(t testing.TB, inst *zombitest.Instance, ns, name string, props ...string) map[int64]string {
	t.Helper()
	ctx := context.Background()
	tbl, err := restCatalog(t, inst, props...).LoadTable(ctx, table.Identifier{ns, name})
	if err != nil {
		t.Fatalf("loading %s.%s: %v", ns, name, err)
	}
	out := map[int64]string{}
	if tbl.CurrentSnapshot() == nil {
		return out
	}
	at, err := tbl.Scan(table.WithSelectedFields("sequence", "payload")).ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scanning %s.%s: %v", ns, name, err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		seqs := rec.Column(int(rec.Schema().FieldIndices("sequence")[0])).(*array.Int64)
		pays := rec.Column(int(rec.Schema().FieldIndices("payload")[0])).(*array.Binary)
		for i := 0; i < int(rec.NumRows()); i++ {
			s := seqs.Value(i)
			if _, dup := out[s]; dup {
				t.Fatalf("sequence %d is in %s.%s twice", s, ns, name)
			}
			out[s] = string(pays.Value(i))
		}
	}
	return out
}

// checkAcked fails unless every acknowledged event is in got with its
// payload. got may hold more: events the server stored whose answer the
// client never received.
func checkAcked(t testing.TB, got map[int64]string, acked map[int64]string) {
	t.Helper()
	bad := 0
	for o, p := range acked {
		if g, ok := got[o]; !ok || g != p {
			if bad < 10 {
				t.Errorf("acknowledged offset %d: table holds %q (present %v), want %q", o, g, ok, p)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d acknowledged events are missing or wrong", bad, len(acked))
	}
}

// flushTable runs POST /tables/{ref}/flush until it succeeds (a flusher
// backing off after an outage answers an error first).
func flushTable(t testing.TB, base, ref string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, _, body := call(t, "POST", base+"/tables/"+ref+"/flush", "")
		if status == 200 {
			var r map[string]any
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("flush %s: %d %s", ref, status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writer streams single and bulk writes to a table and records what was
// acknowledged.
type writer struct {
	base   string
	table  string
	mu     sync.Mutex
	acked  map[int64]string
	failed int
	n      int
}

func newWriter(base, table string) *writer {
	return &writer{base: base, table: table, acked: map[int64]string{}}
}

// run writes with workers goroutines until ctx ends.
func (w *writer) run(ctx context.Context, workers int, tag string) {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				w.mu.Lock()
				w.n++
				n := w.n
				base := w.base
				w.mu.Unlock()
				var body, path string
				var payloads []string
				if g%2 == 1 {
					var recs []string
					for j := range 50 {
						p := fmt.Sprintf("%s-g%d-b%d-%d", tag, g, n, j)
						payloads = append(payloads, p)
						recs = append(recs, fmt.Sprintf(`{"payload":%q}`, p))
					}
					body, path = `{"records":[`+strings.Join(recs, ",")+`]}`, "/tables/"+w.table+"/bulk"
				} else {
					p := fmt.Sprintf("%s-g%d-s%d", tag, g, n)
					payloads = []string{p}
					body, path = fmt.Sprintf(`{"payload":%q}`, p), "/tables/"+w.table
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", base+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					w.mu.Lock()
					w.failed++
					w.mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 202 {
					w.mu.Lock()
					w.failed++
					w.mu.Unlock()
					continue
				}
				var r struct {
					Offset  int64   `json:"offset"`
					Offsets []int64 `json:"offsets"`
				}
				if err := json.Unmarshal(b, &r); err != nil {
					continue
				}
				if r.Offsets == nil {
					r.Offsets = []int64{r.Offset}
				}
				w.mu.Lock()
				for j, o := range r.Offsets {
					w.acked[o] = payloads[j]
				}
				w.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// TestFlushKill9: sustained single and bulk writes with frequent flushes;
// the server is killed without warning several times (mid-write,
// mid-commit: wherever it is). After the restarts and a last flush the
// Iceberg table holds every acknowledged event exactly once.
func TestFlushKill9(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			args := []string{"--flush-interval", "100ms"}
			inst := sh.start(t, args...)
			w := newWriter(inst.URL, "crash")
			for round := range 4 {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { w.run(ctx, 6, fmt.Sprintf("r%d", round)); close(done) }()
				time.Sleep(time.Duration(400+rand.IntN(800)) * time.Millisecond)
				inst.Kill()
				cancel()
				<-done
				inst = zombitest.StartIn(t, inst.DataDir, inst.Args...)
				w.base = inst.URL
			}
			if w.count() == 0 {
				t.Fatal("no write was acknowledged")
			}
			flushTable(t, inst.URL, "crash")
			got := scanEvents(t, inst, "default", "crash")
			checkAcked(t, got, w.acked)
			t.Logf("%s: %d acknowledged events survived 4 kills; the table holds %d rows", sh.name, w.count(), len(got))
		})
	}
}

// TestFlushS3Outage: the object store goes away under sustained ingest.
// Ingest keeps acknowledging (the hot tier holds the events), flushes fail
// and back off, and once the store is back every acknowledged event is in
// the table once.
func TestFlushS3Outage(t *testing.T) {
	pg := testenv.Postgres(t)
	s3 := testenv.StartOwnS3(t)
	inst := zombitest.Start(t,
		"--postgres-url", pg,
		"--warehouse", "s3://"+s3.Bucket+"/warehouse",
		"--s3-endpoint", s3.Endpoint, "--s3-region", s3.Region,
		"--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey, "--s3-vend-static-keys",
		"--flush-interval", "100ms")
	w := newWriter(inst.URL, "outage")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx, 4, "o"); close(done) }()

	time.Sleep(time.Second)
	s3.Down(t)
	before := w.count()
	time.Sleep(500 * time.Millisecond) // a commit under way when S3 went may still land
	rowsBefore := metric(t, inst.URL, "zombi_flush_rows_total")
	time.Sleep(3 * time.Second)
	rowsDuring := metric(t, inst.URL, "zombi_flush_rows_total") - rowsBefore
	during := w.count() - before
	s3.Up(t)
	time.Sleep(time.Second)
	cancel()
	<-done

	if during == 0 {
		t.Errorf("no write was acknowledged while S3 was down")
	}
	if rowsDuring != 0 {
		t.Errorf("%v rows were committed while S3 was down: was it down?", rowsDuring)
	}
	flushTable(t, inst.URL, "outage")
	got := scanEvents(t, inst, "default", "outage")
	checkAcked(t, got, w.acked)
	t.Logf("%d events acknowledged (%d while S3 was down); the table holds %d rows", w.count(), during, len(got))
}

// TestFlushAPI: POST /tables/{t}/flush, ?ack=committed, shutdown flushes,
// and their errors.
func TestFlushAPI(t *testing.T) {
	inst := zombitest.Start(t, "--flush-interval", "1h")
	base := inst.URL

	var c struct {
		Offset     int64 `json:"offset"`
		SnapshotID int64 `json:"snapshot_id"`
	}
	b := mustCall(t, 202, "POST", base+"/tables/api?ack=committed", `{"payload":"committed"}`)
	if err := json.Unmarshal(b, &c); err != nil || c.SnapshotID == 0 {
		t.Fatalf("ack=committed answered %s", b)
	}
	if got := scanEvents(t, inst, "default", "api"); got[c.Offset] != "committed" {
		t.Fatalf("after ack=committed the table holds %v", got)
	}
	b = mustCall(t, 202, "POST", base+"/tables/api/bulk?ack=committed", `{"records":[{"payload":"b1"},{"payload":"b2"}]}`)
	var bulk struct {
		Offsets    []int64 `json:"offsets"`
		SnapshotID int64   `json:"snapshot_id"`
	}
	if err := json.Unmarshal(b, &bulk); err != nil || bulk.SnapshotID == 0 || bulk.SnapshotID == c.SnapshotID {
		t.Fatalf("bulk ack=committed answered %s", b)
	}

	postEvent(t, base, "api", `{"payload":"p3"}`)
	r := flushTable(t, base, "api")
	if r["rows"] != float64(1) || r["files"] != float64(1) || r["snapshot_id"] == float64(0) || r["table"] != "default.api" {
		t.Fatalf("flush answered %v", r)
	}
	if r := flushTable(t, base, "api"); r["rows"] != float64(0) {
		t.Fatalf("second flush answered %v", r)
	}
	wm := mustCall(t, 200, "GET", base+"/tables/api/watermark", "")
	if !strings.Contains(string(wm), fmt.Sprintf(`"committed":%v`, r["watermark"])) {
		t.Fatalf("watermark %s after flush %v", wm, r)
	}

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/tables/api?ack=eventually", 400},
		{"POST", "/tables/api/bulk?ack=COMMITTED", 400},
		{"POST", "/tables/nosuch/flush", 404},
		{"POST", "/tables/bad..name/flush", 400},
		{"GET", "/tables/api/flush", 405},
	} {
		status, _, body := call(t, tc.method, base+tc.path, `{"records":[{"payload":"x"}]}`)
		if status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
		}
	}

	// A graceful stop commits what is left.
	last := postEvent(t, base, "api", `{"payload":"at shutdown"}`)
	inst.Stop(t)
	inst = zombitest.StartIn(t, inst.DataDir, "--flush-interval", "1h")
	if got := scanEvents(t, inst, "default", "api"); got[last.Offset] != "at shutdown" || len(got) != 5 {
		t.Fatalf("after a graceful stop the table holds %v", got)
	}
}

// metric sums the samples of a metric in inst's /metrics.
func metric(t testing.TB, base, name string) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(string(mustCall(t, 200, "GET", base+"/metrics", "")), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}
