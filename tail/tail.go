// Package tail is the live tail of ingest tables (GET /tables/{table}/stream):
// each subscriber of a table is sent the table's events as they are
// acknowledged, as Server-Sent Events messages, and can resume after the
// last offset it saw without gaps or duplicates while the hot tier still
// holds what followed it.
//
// One feed per followed table reads each new event once from the hot tier,
// woken by the append that makes it visible (hot.DB.Watch), renders it
// once, and queues the message with every subscriber of the table. A
// subscriber's queue is bounded (Options.BufferBytes): a subscriber that
// lets it fill is dropped with a final message, so a slow subscriber never
// holds up the feed, other subscribers or ingest. A subscriber that starts
// behind the feed (resuming, or from offset 0) first reads the hot tier
// itself, at its own pace, and joins the feed once it has caught up.
// Package server binds it to HTTP.
package tail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/ingest"
)

// Source is what the live tail reads; *ingest.Service is one.
type Source interface {
	Follow(ctx context.Context, ref string) (ingest.Followed, error)
	Watch(key string) (uint64, <-chan struct{})
	TailRead(ctx context.Context, f ingest.Followed, ref string, after uint64, maxBytes int) (ingest.TailPage, error)
}

// Defaults of Options.
const (
	// DefaultMaxSubscribers is the default of --max-stream-subscribers.
	DefaultMaxSubscribers = 1024
	// DefaultBufferBytes bounds the messages queued for one subscriber:
	// about a second of a fast table's events for a client on a slow
	// link. Subscribers of one table share their messages, so the memory
	// of many queues of one table is that of the longest one.
	DefaultBufferBytes = 1 << 20
)

// readBytes is about how many bytes of hot-tier values one read takes.
const readBytes = 256 << 10

// Options configure a Hub.
type Options struct {
	Source Source
	// MaxSubscribers bounds the subscriptions open at once; past it
	// Subscribe fails with ErrTooManySubscribers. Default
	// DefaultMaxSubscribers.
	MaxSubscribers int
	// BufferBytes bounds the messages queued for a subscriber that has
	// not taken them yet; a subscriber whose queue would pass it is
	// dropped (ReasonSlow). A queue that is empty takes a message of any
	// size. Default DefaultBufferBytes.
	BufferBytes int
	Logger      *slog.Logger
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Errors of Subscribe, beside those of Source.Follow.
var (
	// ErrTooManySubscribers: Options.MaxSubscribers subscriptions are
	// open. HTTP 503 with Retry-After.
	ErrTooManySubscribers = errors.New("too many live-tail subscribers (--max-stream-subscribers); retry after the Retry-After delay")
	// ErrClosed: the hub is closed (the server is shutting down). HTTP 503.
	ErrClosed = errors.New("the live tail is shutting down")
)

// Reasons a subscription is dropped: the reason of its final message.
const (
	// ReasonSlow: the subscriber did not take its messages as fast as
	// they came and its queue filled.
	ReasonSlow = "slow"
	// ReasonShutdown: the server is shutting down.
	ReasonShutdown = "shutdown"
	// ReasonTable: the table was dropped, or dropped and created again.
	ReasonTable = "table"
	// ReasonError: reading the hot tier failed; the server's log says why.
	ReasonError = "error"

	// reasonClosed: the subscriber closed the subscription.
	reasonClosed = "closed"
)

// Hub serves the live tail of every table. It is safe for concurrent use.
type Hub struct {
	src     Source
	max     int
	buf     int
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	closed bool
	subs   map[*Subscription]struct{}
	feeds  map[string]*feed // by hot key
}

// New returns a Hub. Close it to end every subscription.
func New(opts Options) (*Hub, error) {
	if opts.Source == nil {
		return nil, errors.New("tail: Source is required")
	}
	if opts.MaxSubscribers <= 0 {
		opts.MaxSubscribers = DefaultMaxSubscribers
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = DefaultBufferBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		src:   opts.Source,
		max:   opts.MaxSubscribers,
		buf:   opts.BufferBytes,
		log:   opts.Logger,
		subs:  map[*Subscription]struct{}{},
		feeds: map[string]*feed{},
	}
	h.metrics = newMetrics(opts.Registerer, func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return float64(len(h.subs))
	})
	return h, nil
}

// MaxSubscribers is the most subscriptions open at once.
func (h *Hub) MaxSubscribers() int { return h.max }

// Subscribe opens a subscription to the table named by ref that starts
// after offset after; fromEnd starts it after the table's current high
// watermark instead, with the events acknowledged from now on. Close the
// subscription when done.
func (h *Hub) Subscribe(ctx context.Context, ref string, after uint64, fromEnd bool) (*Subscription, error) {
	s := &Subscription{h: h, ref: ref, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return nil, ErrClosed
	case len(h.subs) >= h.max:
		h.mu.Unlock()
		h.metrics.refused.Inc()
		return nil, ErrTooManySubscribers
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	f, err := h.src.Follow(ctx, ref)
	if err != nil {
		h.remove(s)
		return nil, err
	}
	s.f, s.cursor = f, after
	if fromEnd {
		s.cursor, _ = h.src.Watch(f.Key)
	}
	return s, nil
}

// remove forgets s, and stops its feed when s was the feed's last
// subscriber.
func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
	f := s.feed
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.subs, s)
	empty := len(f.subs) == 0
	f.mu.Unlock()
	if empty && h.feeds[f.key] == f {
		delete(h.feeds, f.key)
		close(f.stop)
	}
}

// join adds s to the feed of its table, starting one if there is none,
// and returns the feed's cursor: the feed queues s every event after it.
func (h *Hub) join(s *Subscription) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, false
	}
	f := h.feeds[s.f.Key]
	if f != nil {
		f.mu.Lock()
		if f.ended {
			// It ended on an error; a new one tries again.
			f.mu.Unlock()
			f = nil
		}
	}
	if f == nil {
		f = &feed{h: h, key: s.f.Key, followed: s.f, ref: s.ref, subs: map[*Subscription]struct{}{}, stop: make(chan struct{})}
		f.cursor, _ = h.src.Watch(f.key)
		h.feeds[f.key] = f
		f.mu.Lock()
		go f.run()
	}
	f.subs[s] = struct{}{}
	s.feed = f
	cursor := f.cursor
	f.mu.Unlock()
	return cursor, true
}

// Close ends every subscription with ReasonShutdown and refuses new ones.
// It does not wait for the subscribers to take their final message.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		s.end(ReasonShutdown)
	}
	for key, f := range h.feeds {
		delete(h.feeds, key)
		close(f.stop)
	}
}

// feed reads a table's new events and queues them with its subscribers.
type feed struct {
	h        *Hub
	key      string
	followed ingest.Followed
	ref      string
	stop     chan struct{}

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// cursor: every event at or below it has been queued (or skipped).
	cursor uint64
	ended  bool
}

func (f *feed) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.stop
		cancel()
	}()
	for {
		hwm, changed := f.h.src.Watch(f.key)
		f.mu.Lock()
		cursor := f.cursor
		f.mu.Unlock()
		if hwm <= cursor {
			select {
			case <-changed:
				continue
			case <-f.stop:
				return
			}
		}
		page, err := f.h.src.TailRead(ctx, f.followed, f.ref, cursor, readBytes)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.fail(err)
			return
		}
		msgs, size := render(page, cursor)
		f.mu.Lock()
		f.cursor = page.Through
		for s := range f.subs {
			if !s.push(msgs, size) {
				delete(f.subs, s)
			}
		}
		f.mu.Unlock()
	}
}

// fail ends every subscription of the feed after a failed read.
func (f *feed) fail(err error) {
	reason := reasonOf(err)
	if reason == ReasonError {
		f.h.log.Error("live tail: reading the hot tier", "table", f.followed.Name, "err", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	for s := range f.subs {
		s.end(reason)
		delete(f.subs, s)
	}
}

// reasonOf is the reason of a subscription that ends on err.
func reasonOf(err error) string {
	if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, ingest.ErrTableReplaced) {
		return ReasonTable
	}
	return ReasonError
}

// describe says what a reason means, for the final message.
func describe(reason string, buf int) string {
	switch reason {
	case ReasonSlow:
		return fmt.Sprintf("the client did not read the stream as fast as events came: its buffer of %d bytes filled; reconnect with Last-Event-ID to resume", buf)
	case ReasonShutdown:
		return "the server is shutting down; reconnect with Last-Event-ID to resume"
	case ReasonTable:
		return "the table was dropped"
	}
	return "the server could not read the table's events; reconnect with Last-Event-ID to resume"
}
