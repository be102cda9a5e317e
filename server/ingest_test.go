package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/ingest/ingestpb"
	"google.golang.org/protobuf/proto"
)

// writeReq describes a request; build makes a fresh one each time.
type writeReq struct {
	method, path string
	body         string
	chunked      bool // send the body without Content-Length
	header       http.Header
}

func (q writeReq) build() *http.Request {
	var rd io.Reader = strings.NewReader(q.body)
	if q.chunked {
		rd = io.MultiReader(rd) // hides the length from NewRequest
	}
	method := q.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, q.path, rd)
	if q.chunked {
		r.ContentLength = -1
	}
	if q.header.Get("Content-Type") == "" && q.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range q.header {
		r.Header[k] = vs
	}
	return r
}

var offsetRE = regexp.MustCompile(`"offset":\d+|"offsets":\[[\d,]*\]`)

// sameAnswer serves q through ServeHTTP and through echo alone and
// requires the same status, headers and body (offsets aside: each request
// writes its own event).
func sameAnswer(t *testing.T, ts *testServer, name string, q writeReq) *httptest.ResponseRecorder {
	t.Helper()
	fast := httptest.NewRecorder()
	ts.ServeHTTP(fast, q.build())
	ref := httptest.NewRecorder()
	ts.echo.ServeHTTP(ref, q.build())
	if fast.Code != ref.Code {
		t.Errorf("%s: status %d, echo answers %d (body %s)", name, fast.Code, ref.Code, ref.Body)
	}
	fh, rh := fast.Header(), ref.Header()
	for k := range rh {
		if !equalStrings(fh[k], rh[k]) {
			t.Errorf("%s: header %s = %q, echo sets %q", name, k, fh[k], rh[k])
		}
	}
	for k := range fh {
		if _, ok := rh[k]; !ok {
			t.Errorf("%s: header %s = %q, echo sets none", name, k, fh[k])
		}
	}
	fb := offsetRE.ReplaceAllString(fast.Body.String(), `offsets`)
	rb := offsetRE.ReplaceAllString(ref.Body.String(), `offsets`)
	if fb != rb {
		t.Errorf("%s: body\n%s\necho answers\n%s", name, fb, rb)
	}
	return fast
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWriteEventSameAsEcho checks that the single-write route, which
// ServeHTTP serves without echo, answers every request exactly as the echo
// route does, and counts it in the same HTTP metrics.
func TestWriteEventSameAsEcho(t *testing.T) {
	ts := newTestServer(t, testOptions{maxEvent: 1 << 10})
	pb, err := proto.Marshal(&ingestpb.Event{Payload: []byte("proto")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    writeReq
		want int
	}{
		{"event", writeReq{path: "/tables/t1", body: `{"payload":"a"}`}, 202},
		{"namespaced", writeReq{path: "/tables/ns.t1", body: `{"payload":{"x":1},"partition":3}`}, 202},
		{"chunked", writeReq{path: "/tables/t1", body: `{"payload":"a"}`, chunked: true}, 202},
		{"no content type", writeReq{path: "/tables/t1", body: `{"payload":"a"}`, header: http.Header{"Content-Type": {""}}}, 202},
		{"protobuf", writeReq{path: "/tables/t1", body: string(pb), header: http.Header{
			"Content-Type": {"application/x-protobuf"}, "X-Partition": {"7"}}}, 202},
		{"malformed", writeReq{path: "/tables/t1", body: `{"payload":`}, 400},
		{"unknown field", writeReq{path: "/tables/t1", body: `{"payload":"a","x":1}`}, 400},
		{"empty body", writeReq{path: "/tables/t1"}, 400},
		{"too large", writeReq{path: "/tables/t1", body: `{"payload":"` + strings.Repeat("a", 2000) + `"}`}, 413},
		{"too large chunked", writeReq{path: "/tables/t1", body: `{"payload":"` + strings.Repeat("a", 2000) + `"}`, chunked: true}, 413},
		{"media type", writeReq{path: "/tables/t1", body: `a`, header: http.Header{"Content-Type": {"text/plain"}}}, 415},
		{"bad table", writeReq{path: "/tables/1t", body: `{"payload":"a"}`}, 400},
		{"two keys", writeReq{path: "/tables/t1", body: `{"payload":"a"}`, header: http.Header{"Idempotency-Key": {"a", "b"}}}, 400},
		{"two partitions", writeReq{path: "/tables/t1", body: `{"payload":"a"}`, header: http.Header{"X-Partition": {"1", "2"}}}, 400},
		{"keys differ", writeReq{path: "/tables/t1", body: `{"payload":"a","idempotency_key":"x"}`, header: http.Header{"Idempotency-Key": {"y"}}}, 400},
		// Paths that are not the plain route go to echo.
		{"escaped", writeReq{path: "/tables/t%2F1", body: `{"payload":"a"}`}, 400},
		{"escaped name", writeReq{path: "/tables/t%31", body: `{"payload":"a"}`}, 202},
		{"trailing slash", writeReq{path: "/tables/t1/", body: `{"payload":"a"}`}, 404},
		{"no table", writeReq{path: "/tables/", body: `{"payload":"a"}`}, 404},
		{"bulk", writeReq{path: "/tables/t1/bulk", body: `{"records":[{"payload":"a"}]}`}, 202},
		{"get", writeReq{method: http.MethodGet, path: "/tables/t1"}, 200},
		{"put", writeReq{method: http.MethodPut, path: "/tables/t1", body: `{"payload":"a"}`}, 405},
	}
	for _, c := range cases {
		w := sameAnswer(t, ts, c.name, c.q)
		if w.Code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, w.Code, c.want, w.Body)
		}
	}

	// A retry with an idempotency key answers the first offset, whichever
	// route wrote it.
	key := http.Header{"Idempotency-Key": {"k1"}}
	first := httptest.NewRecorder()
	ts.ServeHTTP(first, writeReq{path: "/tables/t1", body: `{"payload":"a"}`, header: key}.build())
	if first.Code != 202 || strings.Contains(first.Body.String(), "duplicate") {
		t.Fatalf("first keyed write: %d %s", first.Code, first.Body)
	}
	fast := httptest.NewRecorder()
	ts.ServeHTTP(fast, writeReq{path: "/tables/t1", body: `{"payload":"a"}`, header: key}.build())
	ref := httptest.NewRecorder()
	ts.echo.ServeHTTP(ref, writeReq{path: "/tables/t1", body: `{"payload":"a"}`, header: key}.build())
	want := strings.Replace(first.Body.String(), "}\n", `,"duplicate":true}`+"\n", 1)
	if fast.Body.String() != want || ref.Body.String() != want {
		t.Errorf("retry answers %s (echo: %s), want %s", fast.Body, ref.Body, want)
	}
}

func TestWriteEventMetrics(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	count := func(code string) float64 {
		return gathered(t, ts, "zombi_http_requests_total", "code", code)
	}
	for range 3 {
		ts.ServeHTTP(httptest.NewRecorder(), writeReq{path: "/tables/t1", body: `{"payload":"a"}`}.build())
	}
	ts.ServeHTTP(httptest.NewRecorder(), writeReq{path: "/tables/t1", body: `{`}.build())
	if got := count("202"); got != 3 {
		t.Errorf("202s counted: %v, want 3", got)
	}
	if got := count("400"); got != 1 {
		t.Errorf("400s counted: %v, want 1", got)
	}
	if got := gathered(t, ts, "zombi_http_request_duration_seconds", "route", writeEventRoute); got != 4 {
		t.Errorf("latencies observed: %v, want 4", got)
	}
}

func TestWriteEventAuth(t *testing.T) {
	ts := newTestServer(t, testOptions{tokens: []string{"s3cret"}})
	w := sameAnswer(t, ts, "no token", writeReq{path: "/tables/t1", body: `{"payload":"a"}`})
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("without a token: %d %v", w.Code, w.Header())
	}
	sameAnswer(t, ts, "wrong token", writeReq{path: "/tables/t1", body: `{"payload":"a"}`,
		header: http.Header{"Authorization": {"Bearer nope"}}})
	w = sameAnswer(t, ts, "token", writeReq{path: "/tables/t1", body: `{"payload":"a"}`,
		header: http.Header{"Authorization": {"Bearer  s3cret "}}})
	if w.Code != http.StatusAccepted {
		t.Errorf("with the token: %d %s", w.Code, w.Body)
	}
}

func TestWriteEventOverload(t *testing.T) {
	ts := newTestServer(t, testOptions{inflight: 100})
	// Something else holds the in-flight budget.
	if !ts.inflight.Acquire(90) {
		t.Fatal("could not reserve")
	}
	w := sameAnswer(t, ts, "in flight", writeReq{path: "/tables/t1", body: `{"payload":"` + strings.Repeat("a", 50) + `"}`})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("over the in-flight limit: %d %v", w.Code, w.Header())
	}
	ts.inflight.Release(90)
	if got := ts.inflight.Bytes(); got != 0 {
		t.Errorf("in-flight bytes after the requests: %d", got)
	}

	full := newTestServer(t, testOptions{maxBacklog: 1})
	w = sameAnswer(t, full, "backlog", writeReq{path: "/tables/t1", body: `{"payload":"a"}`})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("backlog full: %d %v", w.Code, w.Header())
	}
}

func TestWriteEventTable(t *testing.T) {
	for _, c := range []struct {
		method, target string
		table          string
		ok             bool
	}{
		{"POST", "/tables/t", "t", true},
		{"POST", "/tables/a.b.t?ack=committed", "", false}, // echo binds the query
		{"POST", "/tables/t/bulk", "", false},
		{"POST", "/tables/", "", false},
		{"POST", "/tables/t/", "", false},
		{"POST", "/tables/a%2Fb", "", false},
		{"POST", "/tablesx/t", "", false},
		{"GET", "/tables/t", "", false},
		{"POST", "/v1/namespaces/n/tables/t", "", false},
	} {
		r := httptest.NewRequest(c.method, c.target, bytes.NewReader(nil))
		table, ok := writeEventTable(r)
		if table != c.table || ok != c.ok {
			t.Errorf("%s %s: %q %v, want %q %v", c.method, c.target, table, ok, c.table, c.ok)
		}
	}
}

// gathered sums the series of the metric family name (counters: values,
// histograms: sample counts) whose label has value.
func gathered(t *testing.T, ts *testServer, name, label, value string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.Counter != nil {
						sum += m.GetCounter().GetValue()
					}
					if m.Histogram != nil {
						sum += float64(m.GetHistogram().GetSampleCount())
					}
				}
			}
		}
	}
	return sum
}

func TestWriteEventPanic(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	ts.ingest = nil // every write panics
	ts.echo.Logger.SetOutput(io.Discard)
	w := sameAnswer(t, ts, "panic", writeReq{path: "/tables/t1", body: `{"payload":"a"}`})
	if w.Code != http.StatusInternalServerError {
		t.Errorf("a panicking handler answers %d, want 500", w.Code)
	}
	if got := ts.inflight.Bytes(); got != 0 {
		t.Errorf("in-flight bytes after the panics: %d", got)
	}
}

// TestEmptyBulk: a bulk write without records answers the same whether
// its table exists or not, in the shape of its kind of write, and
// creates nothing.
func TestEmptyBulk(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, writeReq{path: "/tables/exists", body: `{"payload":"a"}`}.build())
	if w.Code != http.StatusAccepted {
		t.Fatalf("creating the table: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct{ query, body, want string }{
		{"", `{"records":[]}`, `{"count":0,"offsets":[]}`},
		{"", `[]`, `{"count":0,"offsets":[]}`},
		{"?partial=true", `{"records":[]}`, `{"accepted":0,"rejected":0,"results":[]}`},
	} {
		for _, table := range []string{"exists", "missing"} {
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, writeReq{path: "/tables/" + table + "/bulk" + tc.query, body: tc.body}.build())
			if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusAccepted || got != tc.want {
				t.Errorf("%s to %s table: %d %s, want 202 %s", tc.body+tc.query, table, w.Code, got, tc.want)
			}
		}
	}
	w = httptest.NewRecorder()
	ts.ServeHTTP(w, writeReq{method: http.MethodGet, path: "/tables/missing"}.build())
	if w.Code != http.StatusNotFound {
		t.Errorf("an empty bulk write created its table: GET answers %d", w.Code)
	}
}

// TestMethodLabel: the method label takes the methods HTTP defines and
// "other", whatever a client sends.
func TestMethodLabel(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	for _, m := range []string{"GET", "FOO", "get", strings.Repeat("X", 10000), "PATCH"} {
		ts.ServeHTTP(httptest.NewRecorder(), writeReq{method: m, path: "/v1/namespaces"}.build())
	}
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "zombi_http_") {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "method" {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	if len(seen) != 3 || !seen["GET"] || !seen["PATCH"] || !seen["other"] {
		t.Fatalf("method labels %v, want GET, PATCH and other", seen)
	}
}

// TestReadPageBytes: a hot read returns at most ingest.MaxReadBytes of
// events whatever its limit, and the next page goes on from there.
func TestReadPageBytes(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	const n, size = 10, 900 << 10
	body := `{"payload":"` + strings.Repeat("p", size) + `"}`
	for range n {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, writeReq{path: "/tables/big", body: body}.build())
		if w.Code != http.StatusAccepted {
			t.Fatalf("write: %d %s", w.Code, w.Body)
		}
	}
	var all int
	for offset, pages := 0, 0; all < n; pages++ {
		if pages == n {
			t.Fatalf("%d events in %d pages, want %d", all, pages, n)
		}
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, writeReq{method: http.MethodGet, path: fmt.Sprintf("/tables/big?offset=%d&limit=100", offset)}.build())
		var page struct {
			Events     []json.RawMessage `json:"events"`
			NextOffset int               `json:"next_offset"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
			t.Fatalf("read at %d: %d %.200s", offset, w.Code, w.Body)
		}
		if want := min(n-all, ingest.MaxReadBytes/size); len(page.Events) != want {
			t.Fatalf("read at %d: %d events of %d KiB, want %d", offset, len(page.Events), size>>10, want)
		}
		all += len(page.Events)
		offset = page.NextOffset
	}
}
