package tail

import (
	"context"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
)

// Kind is the kind of a message.
type Kind int8

// Kinds of messages.
const (
	// Event: one event; ID is its offset.
	Event Kind = iota
	// Gap: the events after the previous message through ID left the hot
	// tier before they were sent (they were committed to the Iceberg
	// table); the stream goes on after ID.
	Gap
	// Dropped: the subscription's final message, with the reason; ID is
	// where a new subscription resumes.
	Dropped
)

// Message is one Server-Sent Events message of a subscription. Messages
// of a feed are shared by its subscribers: never modify one.
type Message struct {
	Kind Kind
	// ID is the message's id field: an event's offset, a gap's last
	// offset, where a dropped subscription resumes.
	ID uint64
	// Frame is the message as sent, with the blank line that ends it.
	Frame []byte
	// after is where a gap starts (after it).
	after uint64
}

// Subscription is one subscriber's view of a table. Next, Ready and Close
// are for one goroutine, the subscriber's.
type Subscription struct {
	h     *Hub
	f     ingest.Followed
	ref   string
	ready chan struct{}
	once  sync.Once

	// Owned by the subscriber's goroutine.
	// cursor: every message at or below it was handed out by Next.
	cursor uint64
	// feed is the feed the subscription joined, nil while it catches
	// up; it reads the hot tier itself through fill, and takes the
	// feed's messages after it.
	feed *feed
	fill uint64
	done bool

	mu     sync.Mutex
	queue  []*Message
	spare  []*Message // the previous queue's array, for reuse
	queued int        // bytes of Frame in queue
	// reason, once set, ends the subscription: Next hands out the final
	// message.
	reason string
}

// Table is the dotted name of the subscription's table.
func (s *Subscription) Table() string { return s.f.Name }

// Ready is signalled when Next has something new after it handed out
// nothing.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// push queues msgs of size bytes, or drops s if they do not fit. It
// reports whether s still takes messages.
func (s *Subscription) push(msgs []*Message, size int) bool {
	if len(msgs) == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason != "" {
		return false
	}
	if s.queued > 0 && s.queued+size > s.h.buf {
		s.endLocked(ReasonSlow)
		return false
	}
	s.queue = append(s.queue, msgs...)
	s.queued += size
	s.signal()
	return true
}

// end makes reason the end of s, unless it has one.
func (s *Subscription) end(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(reason)
}

func (s *Subscription) endLocked(reason string) {
	if s.reason != "" {
		return
	}
	if reason != reasonClosed {
		// Counted now: a subscriber stuck in a write takes its final
		// message only once the write ends.
		s.h.metrics.dropped.WithLabelValues(reason).Inc()
	}
	s.reason = reason
	clear(s.queue)
	s.queue, s.queued = s.queue[:0], 0
	s.signal()
}

// Next appends the subscription's next messages to dst: those the feed
// queued, or a page read from the hot tier while the subscriber catches
// up. It does not wait: with nothing new it returns dst unchanged, and
// Ready is signalled when there is. The last message is a Dropped one;
// after it Next returns io.EOF. It returns ctx's error if ctx ends while
// it reads.
func (s *Subscription) Next(ctx context.Context, dst []*Message) ([]*Message, error) {
	if s.done {
		return dst, io.EOF
	}
	s.mu.Lock()
	reason := s.reason
	var q []*Message
	if reason == "" && s.feed != nil && s.cursor >= s.fill {
		// Swap the queue for the spare array: the feed appends to the
		// one, Next reads the other.
		q = s.queue
		s.queue, s.spare, s.queued = s.spare[:0], nil, 0
	}
	s.mu.Unlock()
	switch {
	case reason != "":
		return s.final(dst, reason), nil
	case s.feed == nil || s.cursor < s.fill:
		return s.read(ctx, dst)
	}
	events := 0
	for _, m := range q {
		if m.ID <= s.cursor {
			continue // read from the hot tier before joining
		}
		if m.Kind == Gap && m.after < s.cursor {
			m = gapMessage(s.cursor, m.ID)
		}
		dst = append(dst, m)
		s.cursor = m.ID
		if m.Kind == Event {
			events++
		}
	}
	clear(q)
	if cap(q) <= maxSpare {
		s.mu.Lock()
		s.spare = q[:0]
		s.mu.Unlock()
	}
	s.h.metrics.sent.Add(float64(events))
	return dst, nil
}

// read reads the next page from the hot tier, up to the feed's cursor
// once s has joined it, and joins the feed when the page reaches the high
// watermark.
func (s *Subscription) read(ctx context.Context, dst []*Message) ([]*Message, error) {
	upto := uint64(math.MaxUint64)
	if s.feed != nil {
		upto = s.fill
	}
	page, err := s.h.src.TailRead(ctx, s.f, s.ref, s.cursor, readBytes)
	if err != nil {
		if ctx.Err() != nil {
			return dst, ctx.Err()
		}
		reason := reasonOf(err)
		if reason == ReasonError {
			s.h.log.Error("live tail: reading the hot tier", "table", s.f.Name, "err", err)
		}
		s.end(reason)
		return s.final(dst, reason), nil
	}
	n := len(dst)
	dst = appendPage(dst, page, s.cursor, upto)
	for _, m := range dst[n:] {
		if m.Kind == Event {
			s.h.metrics.sent.Inc()
		}
	}
	s.cursor = min(page.Through, upto)
	if s.feed == nil && page.End {
		fill, ok := s.h.join(s)
		if !ok {
			s.end(ReasonShutdown)
		}
		s.fill = fill
	}
	return dst, nil
}

// final appends the final message of a subscription that ends for reason.
func (s *Subscription) final(dst []*Message, reason string) []*Message {
	s.done = true
	b := make([]byte, 0, 256)
	b = appendID(b, s.cursor)
	b = append(b, "event: dropped\ndata: {\"reason\":\""...)
	b = append(b, reason...)
	b = append(b, `","last_event_id":`...)
	b = strconv.AppendUint(b, s.cursor, 10)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, describe(reason, s.h.buf))
	b = append(b, "}\n\n"...)
	return append(dst, &Message{Kind: Dropped, ID: s.cursor, Frame: b})
}

// Close ends the subscription and frees its place.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.end(reasonClosed)
		s.h.remove(s)
	})
}

// render makes the messages of a page read after offset after, and
// returns them with the bytes of their frames.
func render(page ingest.TailPage, after uint64) ([]*Message, int) {
	msgs := appendPage(nil, page, after, math.MaxUint64)
	size := 0
	for _, m := range msgs {
		size += len(m.Frame)
	}
	return msgs, size
}

// appendPage appends the messages of a page read after offset after, up
// to offset upto: a gap, then the events.
func appendPage(dst []*Message, page ingest.TailPage, after, upto uint64) []*Message {
	if page.Skipped > after {
		dst = append(dst, gapMessage(after, min(page.Skipped, upto)))
	}
	for i := range page.Events {
		e := &page.Events[i]
		if e.Offset > upto {
			break
		}
		dst = append(dst, &Message{Kind: Event, ID: e.Offset, Frame: appendEvent(nil, page.Table, e)})
	}
	return dst
}

func appendID(b []byte, id uint64) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	return append(b, '\n')
}

// appendEvent appends the frame of an event of table: its offset as the
// id, and one line of JSON,
//
//	{"offset":…,"stream":…,"partition":…,"ingest_time":"…","table":"…","event":{…}}
//
// where event is the object GET /tables/{table} returns for it. That JSON
// has no line breaks (package hotrow escapes them in strings), and table
// names need no escaping ([A-Za-z0-9_.-]).
func appendEvent(b []byte, table string, e *ingest.TailEvent) []byte {
	if b == nil {
		b = make([]byte, 0, 128+len(table)+len(e.JSON))
	}
	b = appendID(b, e.Offset)
	b = append(b, `data: {"offset":`...)
	b = strconv.AppendUint(b, e.Offset, 10)
	b = append(b, `,"stream":`...)
	b = strconv.AppendUint(b, uint64(hot.StreamOf(e.Offset)), 10)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(e.Partition), 10)
	b = append(b, `,"ingest_time":"`...)
	b = e.IngestTime.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, `","table":"`...)
	b = append(b, table...)
	b = append(b, `","event":`...)
	b = append(b, e.JSON...)
	return append(b, "}\n\n"...)
}

// gapMessage is the gap of the offsets after after through through.
func gapMessage(after, through uint64) *Message {
	b := make([]byte, 0, 256)
	b = appendID(b, through)
	b = append(b, `event: gap`+"\n"+`data: {"after":`...)
	b = strconv.AppendUint(b, after, 10)
	b = append(b, `,"through":`...)
	b = strconv.AppendUint(b, through, 10)
	b = append(b, `,"message":"the events after offset `...)
	b = strconv.AppendUint(b, after, 10)
	b = append(b, ` through offset `...)
	b = strconv.AppendUint(b, through, 10)
	b = append(b, ` left the hot tier before they were sent: they are committed to the Iceberg table"}`+"\n\n"...)
	return &Message{Kind: Gap, ID: through, Frame: b, after: after}
}

// maxSpare is the largest queue array a subscription keeps for reuse; a
// burst's longer one is left to the collector.
const maxSpare = 256

// Heartbeat is a comment line, which Server-Sent Events clients ignore,
// that keeps an idle stream's connection busy for proxies.
var Heartbeat = []byte(": heartbeat\n\n")

// DefaultHeartbeat is how long a stream may be idle before a Heartbeat.
const DefaultHeartbeat = 15 * time.Second
