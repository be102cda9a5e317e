package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConsoleAssets: the console's files are served at /ui/ by the binary,
// with headers that keep the page to its own script and this server, an
// ETag that revalidates, and nothing but the embedded files: a name that
// is not one of them, however it is spelled, is a 404 in the Iceberg
// error form. They take no credentials (they hold no data); the routes
// they read do.
func TestConsoleAssets(t *testing.T) {
	inst := shapes[0].start(t, "--auth-token", "r:reader")
	base := inst.URL

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status, hdr := resp.StatusCode, resp.Header
	if status != 301 || hdr.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d Location %q, want 301 to /ui/", status, hdr.Get("Location"))
	}
	status, hdr, page := call(t, "GET", base+"/ui", "") // followed to /ui/
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(page), `<script src="app.js"`) {
		t.Fatalf("GET /ui/: %d %s %.200s", status, hdr.Get("Content-Type"), page)
	}
	csp := hdr.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", hdr)
	}
	for asset, ct := range map[string]string{"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"} {
		status, hdr, body := call(t, "GET", base+"/ui/"+asset, "")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), ct) || len(body) == 0 {
			t.Errorf("GET /ui/%s: %d %q %d bytes", asset, status, hdr.Get("Content-Type"), len(body))
			continue
		}
		etag := hdr.Get("ETag")
		if status, _, body := call(t, "GET", base+"/ui/"+asset, "", "If-None-Match", etag); status != 304 || len(body) != 0 {
			t.Errorf("GET /ui/%s with its ETag %s: %d, %d bytes, want 304 and none", asset, etag, status, len(body))
		}
		if status, head, body := call(t, "HEAD", base+"/ui/"+asset, ""); status != 200 || len(body) != 0 ||
			head.Get("ETag") != etag || head.Get("Content-Type") != hdr.Get("Content-Type") {
			t.Errorf("HEAD /ui/%s: %d, %d bytes, ETag %q, %q; want 200, no body, the GET's headers", asset, status, len(body), head.Get("ETag"), head.Get("Content-Type"))
		}
	}
	for _, p := range []string{"/ui/nope.js", "/ui/..%2fconsole.go", "/ui/%2e%2e%2fconsole.go", "/ui/ui%2fapp.js", "/ui/.", "/ui/console.go"} {
		status, _, body := call(t, "GET", base+p, "")
		if status != 404 || !strings.Contains(string(body), "NotFoundException") {
			t.Errorf("GET %s: %d %s, want 404 NotFoundException", p, status, body)
		}
		if status, _, body := call(t, "HEAD", base+p, ""); status != 404 || len(body) != 0 {
			t.Errorf("HEAD %s: %d, %d bytes, want 404 and no body", p, status, len(body))
		}
	}
	// The data routes the console reads are not open.
	if status, _, _ := call(t, "GET", base+"/v1/zombi/whoami", ""); status != 401 {
		t.Errorf("whoami without a token: %d, want 401", status)
	}
}

// TestWhoAmI: the caller's name, method and grants, never a secret.
func TestWhoAmI(t *testing.T) {
	inst := shapes[0].start(t, "--auth-token", "secret-r:reader@sales", "--auth-token", "secret-a:admin", "--auth-token", "secret-plain")
	for _, c := range []struct {
		token, want string
	}{
		{"secret-r", `{"grants":[{"namespace":"sales","role":"reader"}],"maintenance":true,"method":"static","metrics":false,"name":"token 1"}`},
		{"secret-a", `{"grants":[{"role":"admin"}],"maintenance":true,"method":"static","metrics":true,"name":"token 2"}`},
		{"secret-plain", `{"grants":[{"role":"admin"}],"maintenance":false,"method":"static","metrics":true,"name":"token 3"}`},
	} {
		got := strings.TrimSpace(string(mustCall(t, 200, "GET", inst.URL+"/v1/zombi/whoami", "", "Authorization", "Bearer "+c.token)))
		if got != c.want {
			t.Errorf("whoami of %s:\n got %s\nwant %s", c.token, got, c.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("whoami answers a secret: %s", got)
		}
	}
}

type activity struct {
	Table         string   `json:"table"`
	Node          string   `json:"node"`
	Committed     int64    `json:"committed"`
	High          int64    `json:"high"`
	Backlog       int64    `json:"backlog"`
	Accepted      int64    `json:"accepted"`
	Duplicates    int64    `json:"duplicates"`
	Rejected      int64    `json:"rejected"`
	DeadLetters   int64    `json:"dead_letters"`
	FlushFailures int      `json:"flush_failures"`
	LagP50        *float64 `json:"lag_p50_seconds"`
	LagP99        *float64 `json:"lag_p99_seconds"`
	Commits       []struct {
		SnapshotID int64   `json:"snapshot_id"`
		Rows       int64   `json:"rows"`
		Files      int     `json:"files"`
		Bytes      int64   `json:"bytes"`
		Lag        float64 `json:"lag_seconds"`
	} `json:"commits"`
}

type tableFiles struct {
	SnapshotID int64 `json:"snapshot_id"`
	Fields     []struct {
		Name      string `json:"name"`
		Transform string `json:"transform"`
	} `json:"fields"`
	DataFiles  int   `json:"data_files"`
	DataBytes  int64 `json:"data_bytes"`
	Records    int64 `json:"records"`
	Partitions []struct {
		Values    []json.RawMessage `json:"values"`
		DataFiles int               `json:"data_files"`
		DataBytes int64             `json:"data_bytes"`
		Records   int64             `json:"records"`
	} `json:"partitions"`
	Truncated bool `json:"truncated"`
}

// TestConsoleActivityAndFiles: what the console's charts and file view
// read, against what was written, on both shapes: counters by outcome,
// watermarks and backlog before and after a flush, each commit with its
// rows and lag; the files of the current snapshot by hour partition,
// summing to the table's records.
func TestConsoleActivityAndFiles(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			inst := sh.start(t, "--auth-token", "w:writer", "--auth-token", "a:admin", "--flush-interval", "1h")
			base := inst.URL
			w := []string{"Authorization", "Bearer w"}
			a := []string{"Authorization", "Bearer a"}
			act := func() activity {
				var out activity
				if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/tables/clicks/activity", "", w...), &out); err != nil {
					t.Fatal(err)
				}
				return out
			}

			// Three hours of events, 4 per hour; one retried; one refused.
			hour := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			var recs []string
			for i := range 12 {
				ts := hour.Add(time.Duration(i/4) * time.Hour).Add(time.Duration(i) * time.Second)
				recs = append(recs, fmt.Sprintf(`{"payload":"e%d","timestamp_ms":%d,"idempotency_key":"k%d"}`, i, ts.UnixMilli(), i))
			}
			mustCall(t, 202, "POST", base+"/tables/clicks/bulk", `{"records":[`+strings.Join(recs, ",")+`]}`, w...)
			mustCall(t, 202, "POST", base+"/tables/clicks", recs[3], w...) // a retry
			later := hour.Add(3 * time.Hour).UnixMilli()
			if status, _, body := call(t, "POST", base+"/tables/clicks/bulk?partial=true",
				fmt.Sprintf(`{"records":[{"payload":"ok","timestamp_ms":%d},{"payload":"x","partition":-1}]}`, later), w...); status != 207 {
				t.Fatalf("partial bulk with a bad record: %d %s", status, body)
			}

			got := act()
			if got.Table != "default.clicks" || got.Node == "" || got.Accepted != 13 || got.Duplicates != 1 || got.Rejected != 1 ||
				got.DeadLetters != 1 || got.Backlog != got.High-got.Committed || got.Backlog < 13 || len(got.Commits) != 0 || got.LagP50 != nil {
				t.Fatalf("before a flush: %+v", got)
			}
			mustCall(t, 200, "POST", base+"/tables/clicks/flush", "", a...)
			got = act()
			if got.Backlog != 0 || got.Committed != got.High || len(got.Commits) != 1 || got.Commits[0].Rows != 13 ||
				got.Commits[0].Files != 4 || got.Commits[0].Bytes <= 0 || got.Commits[0].Lag <= 0 || got.LagP50 == nil ||
				*got.LagP50 != got.Commits[0].Lag || *got.LagP99 != got.Commits[0].Lag || got.FlushFailures != 0 {
				t.Fatalf("after a flush: %+v", got)
			}
			mustCall(t, 202, "POST", base+"/tables/clicks", fmt.Sprintf(`{"payload":"late","timestamp_ms":%d}`, later+1), w...)
			mustCall(t, 200, "POST", base+"/tables/clicks/flush", "", a...)
			if got = act(); len(got.Commits) != 2 || got.Commits[1].Rows != 1 || got.Commits[1].SnapshotID == got.Commits[0].SnapshotID {
				t.Fatalf("after a second flush: %+v", got)
			}

			var files tableFiles
			if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/zombi/namespaces/default/tables/clicks/files", "", w...), &files); err != nil {
				t.Fatal(err)
			}
			if files.SnapshotID != got.Commits[1].SnapshotID || len(files.Fields) != 1 || files.Fields[0].Transform != "hour" ||
				files.Records != 14 || files.DataFiles != 5 || len(files.Partitions) != 4 || files.Truncated {
				t.Fatalf("files: %+v", files)
			}
			var sumRecords, sumBytes int64
			want := hour.Unix() / 3600
			for i, p := range files.Partitions {
				// Hours 10, 11, 12 hold 4 events in a file each; hour 13
				// two, in a file of each flush.
				wantRecords, wantFiles := int64(4), 1
				if i == 3 {
					wantRecords, wantFiles = 2, 2
				}
				if string(p.Values[0]) != fmt.Sprint(want+int64(i)) || p.Records != wantRecords || p.DataFiles != wantFiles {
					t.Errorf("partition %d: %s, %d records in %d files", i, p.Values[0], p.Records, p.DataFiles)
				}
			}
			for _, p := range files.Partitions {
				sumRecords += p.Records
				sumBytes += p.DataBytes
			}
			if sumRecords != files.Records || sumBytes != files.DataBytes {
				t.Errorf("partitions sum to %d records %d bytes, totals %d %d", sumRecords, sumBytes, files.Records, files.DataBytes)
			}

			// A table without snapshots; and a missing one.
			mustCall(t, 200, "POST", base+"/v1/namespaces/default/tables", `{"name":"empty","schema":{"type":"struct","fields":[{"id":1,"name":"x","type":"long","required":false}]}}`, a...)
			var empty tableFiles
			if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/zombi/namespaces/default/tables/empty/files", "", w...), &empty); err != nil {
				t.Fatal(err)
			}
			if empty.SnapshotID != 0 || empty.DataFiles != 0 || len(empty.Partitions) != 0 {
				t.Errorf("empty table: %+v", empty)
			}
			if status, _, body := call(t, "GET", base+"/v1/zombi/namespaces/default/tables/nope/files", "", w...); status != 404 || !strings.Contains(string(body), "NoSuchTableException") {
				t.Errorf("files of a missing table: %d %s", status, body)
			}
			if status, _, body := call(t, "GET", base+"/tables/nope/activity", "", w...); status != 404 {
				t.Errorf("activity of a missing table: %d %s", status, body)
			}
		})
	}
}

// TestConsoleFilesTruncated: a table with more partitions than the files
// view lists answers the newest MaxFilePartitions and says so; the
// totals still count every file.
func TestConsoleFilesTruncated(t *testing.T) {
	inst := shapes[0].start(t, "--flush-interval", "1h")
	base := inst.URL
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const hours = 503
	var recs []string
	for i := range hours {
		recs = append(recs, fmt.Sprintf(`{"payload":"e%d","timestamp_ms":%d}`, i, start.Add(time.Duration(i)*time.Hour).UnixMilli()))
	}
	mustCall(t, 202, "POST", base+"/tables/wide/bulk", `{"records":[`+strings.Join(recs, ",")+`]}`)
	mustCall(t, 200, "POST", base+"/tables/wide/flush", "")
	var files tableFiles
	if err := json.Unmarshal(mustCall(t, 200, "GET", base+"/v1/zombi/namespaces/default/tables/wide/files", ""), &files); err != nil {
		t.Fatal(err)
	}
	if !files.Truncated || len(files.Partitions) != 500 || files.DataFiles != hours || files.Records != hours {
		t.Fatalf("files: truncated %v, %d partitions, %d files, %d records", files.Truncated, len(files.Partitions), files.DataFiles, files.Records)
	}
	first, last := start.Unix()/3600+hours-500, start.Unix()/3600+hours-1
	if string(files.Partitions[0].Values[0]) != fmt.Sprint(first) || string(files.Partitions[499].Values[0]) != fmt.Sprint(last) {
		t.Errorf("partitions %s..%s, want the newest %d..%d", files.Partitions[0].Values[0], files.Partitions[499].Values[0], first, last)
	}
}
