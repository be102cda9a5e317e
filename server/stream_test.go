package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseMessage is one Server-Sent Events message, or a comment.
type sseMessage struct {
	id, event, data string
	comment         bool
}

// sseStream reads the messages of a stream.
type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openStream opens GET path on hs with headers (name, value, ...) and
// fails the test unless it answers 200 with text/event-stream.
func openStream(t *testing.T, hs *httptest.Server, path string, headers ...string) *sseStream {
	t.Helper()
	resp, cancel := get(t, hs, path, headers...)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func get(t *testing.T, hs *httptest.Server, path string, headers ...string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return resp, cancel
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next message or comment; io.EOF at the stream's end.
func (s *sseStream) next() (sseMessage, error) {
	var m sseMessage
	started := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if started {
				return m, nil
			}
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			m.comment = true
		case "id":
			m.id = value
		case "event":
			m.event = value
		case "data":
			m.data = value
		}
	}
}

// nextMessage returns the next message that is not a comment.
func (s *sseStream) nextMessage(t *testing.T) sseMessage {
	t.Helper()
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if !m.comment {
			return m
		}
	}
}

// streamEvent is the data of an event message.
type streamEvent struct {
	Offset     uint64          `json:"offset"`
	Stream     uint32          `json:"stream"`
	Partition  int32           `json:"partition"`
	IngestTime time.Time       `json:"ingest_time"`
	Table      string          `json:"table"`
	Event      json.RawMessage `json:"event"`
}

// events reads n event messages and returns their offsets, failing on
// any other message, or an id that is not the data's offset.
func (s *sseStream) events(t *testing.T, n int) []uint64 {
	t.Helper()
	var offsets []uint64
	for len(offsets) < n {
		m := s.nextMessage(t)
		if m.event != "" {
			t.Fatalf("after offsets %v: %s message %s", offsets, m.event, m.data)
		}
		var e streamEvent
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			t.Fatalf("event data %s: %v", m.data, err)
		}
		if m.id != strconv.FormatUint(e.Offset, 10) {
			t.Fatalf("id %s for offset %d", m.id, e.Offset)
		}
		offsets = append(offsets, e.Offset)
	}
	return offsets
}

// writeEvents writes n events to table and returns their offsets.
func writeEvents(t *testing.T, hs *httptest.Server, table string, n int, payload string, headers ...string) []uint64 {
	t.Helper()
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, `{"payload":%q,"partition":%d}`+"\n", payload, i%3)
	}
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/tables/"+table+"/bulk", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Offsets []uint64 `json:"offsets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("bulk write: %d, %v", resp.StatusCode, err)
	}
	return res.Offsets
}

// metricValue sums the values of the metric family name whose labels
// include labels (name, value, ...).
func metricValue(t *testing.T, ts *testServer, name string, labels ...string) float64 {
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
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// waitMetric waits until the metric is want.
func waitMetric(t *testing.T, ts *testServer, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, ts, name, labels...) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s%v is %v, want %v", name, labels, metricValue(t, ts, name, labels...), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStreamResume: a subscriber that disconnects and resumes after the
// last offset it saw gets every later event once, in order, whichever
// way it names that offset; one without an offset starts at the end.
func TestStreamResume(t *testing.T) {
	tests := []struct {
		name string
		// resume is the path and headers of the resumed stream, after
		// offset last.
		resume func(last uint64) (string, []string)
	}{
		{"Last-Event-ID", func(last uint64) (string, []string) {
			return "/tables/t/stream", []string{"Last-Event-ID", strconv.FormatUint(last, 10)}
		}},
		{"from", func(last uint64) (string, []string) {
			return "/tables/t/stream?from=" + strconv.FormatUint(last, 10), nil
		}},
		{"Last-Event-ID wins over from", func(last uint64) (string, []string) {
			return "/tables/t/stream?from=1", []string{"Last-Event-ID", strconv.FormatUint(last, 10)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{})
			hs := httptest.NewServer(ts)
			t.Cleanup(hs.Close)
			first := writeEvents(t, hs, "t", 5, "before")
			// From the end: only what comes next.
			end := openStream(t, hs, "/tables/t/stream")
			s := openStream(t, hs, "/tables/t/stream?from=0")
			if got := s.events(t, 5); !slices.Equal(got, first) {
				t.Fatalf("from 0: offsets %v, want %v", got, first)
			}
			live := writeEvents(t, hs, "t", 3, "live")
			if got := s.events(t, 3); !slices.Equal(got, live) {
				t.Fatalf("live: offsets %v, want %v", got, live)
			}
			if got := end.events(t, 3); !slices.Equal(got, live) {
				t.Fatalf("from the end: offsets %v, want %v", got, live)
			}
			s.close()
			waitMetric(t, ts, 1, "zombi_tail_subscribers")

			missed := writeEvents(t, hs, "t", 4, "missed")
			path, headers := tc.resume(live[len(live)-1])
			// limit ends the stream after the events it expects: a
			// duplicate or a gap shows as a wrong offset, and nothing
			// may follow them.
			r := openStream(t, hs, path+sep(path)+"limit=6", headers...)
			if got := r.events(t, 4); !slices.Equal(got, missed) {
				t.Fatalf("resumed: offsets %v, want %v", got, missed)
			}
			later := writeEvents(t, hs, "t", 2, "later")
			if got := r.events(t, 2); !slices.Equal(got, later) {
				t.Fatalf("resumed, live: offsets %v, want %v", got, later)
			}
			if m, err := r.next(); err != io.EOF {
				t.Fatalf("after the limit: %+v, %v; want the end", m, err)
			}
			if sent := metricValue(t, ts, "zombi_tail_events_sent_total"); sent < 5+3+3+6 {
				t.Errorf("events sent %v, want at least %d", sent, 5+3+3+6)
			}
		})
	}
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// TestStreamEventShape: the data of an event message, for an event table.
func TestStreamEventShape(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	offsets := writeEvents(t, hs, "shape", 2, "hello")
	s := openStream(t, hs, "/tables/shape/stream?from=0&limit=1")
	m := s.nextMessage(t)
	var e streamEvent
	if err := json.Unmarshal([]byte(m.data), &e); err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(e.Event, &ev); err != nil {
		t.Fatal(err)
	}
	if e.Offset != offsets[0] || e.Stream != 0 || e.Partition != 0 || e.Table != "default.shape" ||
		e.IngestTime.IsZero() || ev["payload"] != "hello" || ev["sequence"] != float64(offsets[0]) {
		t.Errorf("event %s", m.data)
	}
}

// TestStreamGap: a subscriber that resumes after events left the hot tier
// is told which offsets it missed, by one gap message whose id is the last
// of them, then gets the rest.
func TestStreamGap(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	offsets := writeEvents(t, hs, "g", 10, "x")
	f, err := ts.ingest.Follow(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	// A flush committed and deleted the first 6.
	if err := ts.hot.DeleteThrough(context.Background(), f.Key, offsets[5]); err != nil {
		t.Fatal(err)
	}
	s := openStream(t, hs, "/tables/g/stream", "Last-Event-ID", strconv.FormatUint(offsets[1], 10))
	m := s.nextMessage(t)
	var gap struct{ After, Through uint64 }
	if err := json.Unmarshal([]byte(m.data), &gap); err != nil {
		t.Fatal(err)
	}
	if m.event != "gap" || m.id != strconv.FormatUint(offsets[5], 10) || gap.After != offsets[1] || gap.Through != offsets[5] {
		t.Fatalf("first message %+v, want a gap after %d through %d", m, offsets[1], offsets[5])
	}
	if got := s.events(t, 4); !slices.Equal(got, offsets[6:]) {
		t.Fatalf("after the gap: offsets %v, want %v", got, offsets[6:])
	}
}

// TestStreamSlowSubscriber: a subscriber that never reads is dropped once
// its buffer fills, with a final dropped message, while every write is
// acknowledged and a subscriber that reads gets every event once, in
// order (resuming, as clients do, if it is dropped too).
func TestStreamSlowSubscriber(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	writeEvents(t, hs, "slow", 1, "first")

	// The slow subscriber: a connection that sends its request and
	// reads nothing.
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /tables/slow/stream HTTP/1.1\r\nHost: zombi\r\n\r\n")

	// The reader, which resumes when it is dropped too.
	var mu sync.Mutex
	var seen []uint64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		var headers []string
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/tables/slow/stream", nil)
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := hs.Client().Do(req)
			if err != nil {
				continue
			}
			r := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: func() {}}
			for {
				m, err := r.next()
				if err != nil || m.event != "" {
					break
				}
				var e streamEvent
				if m.comment || json.Unmarshal([]byte(m.data), &e) != nil {
					continue
				}
				mu.Lock()
				seen = append(seen, e.Offset)
				mu.Unlock()
				headers = []string{"Last-Event-ID", m.id}
			}
			resp.Body.Close()
		}
	}()
	waitMetric(t, ts, 2, "zombi_tail_subscribers")

	// Each write waits until the reader has its events, so that the
	// reader never holds more than one write's messages and is not
	// dropped itself.
	caughtUp := func(last uint64) {
		deadline := time.Now().Add(time.Minute)
		for {
			mu.Lock()
			n := len(seen)
			done := n > 0 && seen[n-1] >= last
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the reader got %d events, the last not %d", n, last)
			}
			time.Sleep(time.Millisecond)
		}
	}
	payload := strings.Repeat("p", 1000)
	var written []uint64
	for i := 0; metricValue(t, ts, "zombi_tail_dropped_total", "reason", "slow") == 0; i++ {
		if i == 2000 {
			t.Fatalf("the slow subscriber was not dropped after %d events", len(written))
		}
		// writeEvents fails the test unless every event is acknowledged.
		written = append(written, writeEvents(t, hs, "slow", 100, payload)...)
		caughtUp(written[len(written)-1])
	}
	written = append(written, writeEvents(t, hs, "slow", 100, payload)...)
	caughtUp(written[len(written)-1])
	stop()
	mu.Lock()
	if !slices.Equal(seen, written) {
		t.Errorf("the reader got %d events, want the %d written, once each, in order", len(seen), len(written))
	}
	mu.Unlock()
	t.Logf("the slow subscriber was dropped after %d events", len(written))

	// The slow subscriber's stream ends with the dropped message.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: func() {}}
	var last sseMessage
	for {
		m, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if last.event != "dropped" || !strings.Contains(last.data, `"reason":"slow"`) {
		t.Fatalf("the slow subscriber's last message %+v, want dropped for slow", last)
	}
}

// TestStreamAuth: with auth on, a stream takes the reader role in the
// table's namespace.
func TestStreamAuth(t *testing.T) {
	ts := newTestServer(t, testOptions{tokens: []string{"r:reader", "w:writer", "o:reader@other"}})
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	writeEvents(t, hs, "a", 1, "x", "Authorization", "Bearer w")
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"bad token", "nope", http.StatusUnauthorized},
		{"reader of another namespace", "o", http.StatusForbidden},
		{"reader", "r", http.StatusOK},
		{"writer", "w", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.token != "" {
				headers = []string{"Authorization", "Bearer " + tc.token}
			}
			resp, cancel := get(t, hs, "/tables/a/stream?from=0&limit=1", headers...)
			defer cancel()
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(string(b), "\ndata: {\"offset\":") {
				t.Errorf("stream %q, want an event", b)
			}
			if tc.want != http.StatusOK && !strings.Contains(string(b), `"code":`+strconv.Itoa(tc.want)) {
				t.Errorf("answer %s, want the Iceberg error JSON", b)
			}
		})
	}
}

// TestStreamRefused: past the subscriber limit a stream gets 503 with
// Retry-After (the limit is checked first); bad requests get 400,
// unknown tables 404.
func TestStreamRefused(t *testing.T) {
	ts := newTestServer(t, testOptions{maxStreams: 2})
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	writeEvents(t, hs, "r", 1, "x")
	a := openStream(t, hs, "/tables/r/stream")
	openStream(t, hs, "/tables/r/stream")
	tests := []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		{"over the limit", "/tables/r/stream", nil, http.StatusServiceUnavailable},
		{"bad Last-Event-ID", "/tables/r/stream", []string{"Last-Event-ID", "x"}, http.StatusBadRequest},
		{"negative from", "/tables/r/stream?from=-1", nil, http.StatusBadRequest},
		{"zero limit", "/tables/r/stream?limit=0", nil, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, cancel := get(t, hs, tc.path, tc.headers...)
			defer cancel()
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), `"code":`+strconv.Itoa(tc.want)) {
				t.Fatalf("%d %s, want %d with the Iceberg error JSON", resp.StatusCode, b, tc.want)
			}
			if tc.want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	if n := metricValue(t, ts, "zombi_tail_refused_total"); n != 1 {
		t.Errorf("refused %v, want 1", n)
	}
	a.close()
	waitMetric(t, ts, 1, "zombi_tail_subscribers")
	resp, cancel := get(t, hs, "/tables/nope/stream")
	defer cancel()
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown table: %d, want 404", resp.StatusCode)
	}
	openStream(t, hs, "/tables/r/stream")
}

// TestStreamHeartbeatAndShutdown: an idle stream gets comment lines, and
// ends with a dropped message when the server shuts down.
func TestStreamHeartbeatAndShutdown(t *testing.T) {
	ts := newTestServer(t, testOptions{heartbeat: 10 * time.Millisecond})
	hs := httptest.NewServer(ts)
	t.Cleanup(hs.Close)
	writeEvents(t, hs, "h", 1, "x")
	s := openStream(t, hs, "/tables/h/stream")
	for range 3 {
		m, err := s.next()
		if err != nil || !m.comment {
			t.Fatalf("%+v, %v; want a comment", m, err)
		}
	}
	ts.hub.Close()
	m := s.nextMessage(t)
	if m.event != "dropped" || !strings.Contains(m.data, `"reason":"shutdown"`) {
		t.Fatalf("%+v, want dropped for shutdown", m)
	}
	if m, err := s.next(); err != io.EOF {
		t.Fatalf("after the final message: %+v, %v", m, err)
	}
	resp, cancel := get(t, hs, "/tables/h/stream")
	defer cancel()
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream after shutdown: %d, want 503", resp.StatusCode)
	}
}
