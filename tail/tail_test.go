package tail

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/ingest"
)

// fakeSource is a table in memory: events with offsets 1..n, the first
// deleted of them gone.
type fakeSource struct {
	mu      sync.Mutex
	n       uint64
	deleted uint64
	changed chan struct{}
	gone    bool
}

func newFakeSource() *fakeSource { return &fakeSource{changed: make(chan struct{})} }

func (f *fakeSource) append(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n += uint64(n)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeSource) Follow(_ context.Context, ref string) (ingest.Followed, error) {
	if ref != "t" {
		return ingest.Followed{}, catalog.ErrNoSuchTable
	}
	return ingest.Followed{Name: "default.t", Key: "k"}, nil
}

func (f *fakeSource) Watch(string) (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.changed
}

func (f *fakeSource) TailRead(_ context.Context, _ ingest.Followed, _ string, after uint64, maxBytes int) (ingest.TailPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return ingest.TailPage{}, catalog.ErrNoSuchTable
	}
	page := ingest.TailPage{Table: "default.t", Through: after}
	if f.deleted > after {
		page.Skipped, page.Through = f.deleted, f.deleted
		after = f.deleted
	}
	// Three events a page, so that pages are many.
	for o := after + 1; o <= f.n && len(page.Events) < 3; o++ {
		page.Events = append(page.Events, ingest.TailEvent{Offset: o, IngestTime: time.Unix(0, 0), JSON: []byte(`{}`)})
		page.Through = o
	}
	page.End = page.Through >= f.n
	return page, nil
}

// take reads messages until it has n events or the subscription ends.
func take(t *testing.T, s *Subscription, n int) []*Message {
	t.Helper()
	var all []*Message
	events := 0
	for events < n {
		msgs, err := s.Next(context.Background(), nil)
		if err == io.EOF {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			select {
			case <-s.Ready():
			case <-time.After(10 * time.Second):
				t.Fatalf("no message after %d events", events)
			}
		}
		for _, m := range msgs {
			all = append(all, m)
			if m.Kind == Event {
				events++
			}
		}
	}
	return all
}

// TestCatchUpAndJoin: subscribers that start behind the feed while
// events keep coming get every event once, in order, and the one that
// resumes after deleted events gets one gap first.
func TestCatchUpAndJoin(t *testing.T) {
	src := newFakeSource()
	h, err := New(Options{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	src.append(10)
	live, err := h.Subscribe(context.Background(), "t", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 100 {
			src.append(2)
			time.Sleep(100 * time.Microsecond)
		}
	})
	tests := []struct {
		name  string
		after uint64
	}{{"from 0", 0}, {"from 7", 7}, {"from 30", 30}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := h.Subscribe(context.Background(), "t", tc.after, false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want := tc.after + 1
			for _, m := range take(t, s, 150) {
				if m.Kind != Event || m.ID != want {
					t.Fatalf("message %d %q, want event %d", m.Kind, m.Frame, want)
				}
				want++
			}
		})
	}
	wg.Wait()
	want := uint64(11)
	for _, m := range take(t, live, 200) {
		if m.ID != want {
			t.Fatalf("from the end: %q, want %d", m.Frame, want)
		}
		want++
	}

	src.mu.Lock()
	src.deleted = 5
	src.mu.Unlock()
	s, err := h.Subscribe(context.Background(), "t", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := take(t, s, 1)
	if msgs[0].Kind != Gap || msgs[0].ID != 5 || !strings.Contains(string(msgs[0].Frame), `"after":2,"through":5`) ||
		msgs[1].Kind != Event || msgs[1].ID != 6 {
		t.Fatalf("after deleted events: %q", msgs)
	}
}

// TestDropped: a subscriber that does not take its messages is dropped
// when its queue fills, and one whose table is dropped ends too; each
// gets a final message naming the reason and where to resume, then EOF.
func TestDropped(t *testing.T) {
	src := newFakeSource()
	h, err := New(Options{Source: src, BufferBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	slow, err := h.Subscribe(context.Background(), "t", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := h.Subscribe(context.Background(), "t", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	for _, s := range []*Subscription{slow, fast} {
		// The first Next finds nothing to catch up on and joins the feed.
		if msgs, err := s.Next(context.Background(), nil); len(msgs) != 0 || err != nil {
			t.Fatalf("%q, %v before any event", msgs, err)
		}
	}
	for i := range 50 {
		src.append(1)
		got := take(t, fast, 1)
		if got[0].ID != uint64(i+1) {
			t.Fatalf("fast subscriber: %q, want event %d", got[0].Frame, i+1)
		}
	}
	msgs := take(t, slow, 1)
	last := msgs[len(msgs)-1]
	if last.Kind != Dropped || !strings.Contains(string(last.Frame), `"reason":"slow","last_event_id":0`) {
		t.Fatalf("slow subscriber's last message %q, want dropped for slow", last.Frame)
	}
	if _, err := slow.Next(context.Background(), nil); err != io.EOF {
		t.Fatalf("after the final message: %v", err)
	}

	src.mu.Lock()
	src.gone = true
	src.mu.Unlock()
	src.append(1)
	msgs = take(t, fast, 1)
	if len(msgs) != 1 || msgs[0].Kind != Dropped || !strings.Contains(string(msgs[0].Frame), `"reason":"table","last_event_id":50`) {
		t.Fatalf("after the table was dropped: %q", msgs)
	}
	if _, err := h.Subscribe(context.Background(), "nope", 0, true); err != catalog.ErrNoSuchTable {
		t.Errorf("subscribing to an unknown table: %v", err)
	}
}

// TestLimit: past MaxSubscribers Subscribe fails until one closes.
func TestLimit(t *testing.T) {
	h, err := New(Options{Source: newFakeSource(), MaxSubscribers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var subs []*Subscription
	for i := range 3 {
		s, err := h.Subscribe(context.Background(), "t", 0, true)
		if i < 2 && err != nil || i == 2 && err != ErrTooManySubscribers {
			t.Fatalf("subscription %d: %v", i, err)
		}
		subs = append(subs, s)
	}
	subs[0].Close()
	subs[0].Close() // twice is once
	s, err := h.Subscribe(context.Background(), "t", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	subs[1].Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) != 0 || len(h.feeds) != 0 {
		t.Errorf("%d subscriptions and %d feeds left", len(h.subs), len(h.feeds))
	}
}

func (m *Message) String() string { return fmt.Sprintf("%d:%d", m.Kind, m.ID) }
