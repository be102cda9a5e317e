package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/internal/ingesttable"
)

// Read limits.
const (
	DefaultReadLimit = 100
	MaxReadLimit     = 10000
	// MaxReadBytes bounds the hot-tier bytes of the events one read
	// returns: the page ends before an event that would pass it (it
	// holds one event at least), whatever the limit.
	MaxReadBytes = 4 << 20
)

// ErrOverloaded: the in-flight limit leaves no room for the request.
// HTTP 429.
var ErrOverloaded = errors.New("too many bytes of requests in flight; retry after the Retry-After delay")

// ReadRequest selects hot events.
type ReadRequest struct {
	// Offset is the first sequence to return.
	Offset uint64
	Limit  int
	// Since, when not zero, skips events whose event time (event tables)
	// or append time (row tables) is before it.
	Since time.Time
	// Charge holds the read's memory against the in-flight limit (nil:
	// not charged): its events as read, then their answer as rendered.
	// When a charge does not fit the page ends early; when not even its
	// first event fits, the read fails with ErrOverloaded.
	Charge *Charge
}

// ReadResult holds events in sequence order.
type ReadResult struct {
	Table string
	// Events are JSON objects, one per event.
	Events [][]byte
	// NextOffset is where the next read continues.
	NextOffset    uint64
	HighWatermark uint64
}

// ParseSince reads a since parameter: RFC 3339 or epoch milliseconds.
func ParseSince(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: since %q is neither RFC 3339 nor epoch milliseconds", catalog.ErrInvalid, v)
	}
	return t, nil
}

// scanBudget bounds how many events one read looks at when a since filter
// skips most of them.
const scanBudget = 10 * MaxReadLimit

// events returns up to req.Limit events at or after req.Offset that pass
// the since filter, at most MaxReadBytes of them, and the offset after
// the last one examined. It reads the hot tier in batches sized by the
// events seen so far, so that it reads little more than it returns.
func (s *Service) events(ctx context.Context, t *tableState, req ReadRequest) ([]hot.Event, uint64, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	if limit > MaxReadLimit {
		return nil, 0, fmt.Errorf("%w: limit must be at most %d", catalog.ErrInvalid, MaxReadLimit)
	}
	after := uint64(0)
	if req.Offset > 0 {
		after = req.Offset - 1
	}
	var out []hot.Event
	next := req.Offset
	size, seen, seenBytes := 0, 0, 0
	for batch := 4; len(out) < limit && seen < scanBudget; {
		evs, err := s.hot.Read(ctx, t.hotKey, after, min(batch, limit-len(out)))
		if err != nil {
			return nil, 0, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			seen++
			seenBytes += len(ev.Value)
			keep := true
			if !req.Since.IsZero() {
				at := ev.Appended
				if t.events {
					if et, err := hotrow.EventTime(ev.Value); err == nil {
						at = et
					}
				}
				keep = !at.Before(req.Since)
			}
			if keep {
				if len(out) > 0 && (size+len(ev.Value) > MaxReadBytes || !req.grow(int64(len(ev.Value)))) {
					return out, next, nil // the page is full
				}
				if len(out) == 0 && !req.grow(int64(len(ev.Value))) {
					return nil, 0, ErrOverloaded
				}
				out = append(out, ev)
				size += len(ev.Value)
			}
			after, next = ev.Seq, ev.Seq+1
		}
		batch = max(1, min(MaxReadLimit, (MaxReadBytes-size)/max(1, seenBytes/seen)))
	}
	return out, next, nil
}

// grow adds n bytes to the read's charge, if it has one.
func (r *ReadRequest) grow(n int64) bool { return r.Charge == nil || r.Charge.Grow(n) }

// renderCharge is what a read is charged for each byte of its rendered
// answer: the answer, and the copy the HTTP server encodes it into.
const renderCharge = 2

// Read returns hot events of the table named by ref as JSON objects.
func (s *Service) Read(ctx context.Context, ref string, req ReadRequest) (ReadResult, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return ReadResult{}, err
	}
	evs, next, err := s.events(ctx, t, req)
	if err != nil {
		return ReadResult{}, err
	}
	res := ReadResult{Table: t.name, Events: make([][]byte, 0, len(evs)), NextOffset: next, HighWatermark: s.hot.HighWatermark(t.hotKey)}
	for i, ev := range evs {
		b, err := hotrow.ValueJSON(t.schema, t.name, ev.Seq, ev.Value)
		if err != nil {
			return ReadResult{}, fmt.Errorf("event %d of %s: %w", ev.Seq, t.name, err)
		}
		if !req.grow(renderCharge * int64(len(b))) {
			if i == 0 {
				return ReadResult{}, ErrOverloaded
			}
			res.NextOffset = ev.Seq // the page ends here
			break
		}
		res.Events = append(res.Events, b)
	}
	return res, nil
}

// ReadArrow returns hot events of the table named by ref as an Arrow IPC
// stream with the table's current schema.
func (s *Service) ReadArrow(ctx context.Context, ref string, req ReadRequest) ([]byte, uint64, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return nil, 0, err
	}
	evs, next, err := s.events(ctx, t, req)
	if err != nil {
		return nil, 0, err
	}
	// The builder's columns, the record and its IPC stream: each about
	// as large as the values.
	size := 0
	for _, ev := range evs {
		size += len(ev.Value)
	}
	if !req.grow(3 * int64(size)) {
		return nil, 0, ErrOverloaded
	}
	b, err := hotrow.NewArrowBuilder(memory.DefaultAllocator, t.schema, t.name,
		hotrow.WithOffsetColumn(ingesttable.OffsetColumnID(t.props, t.schema)))
	if err != nil {
		return nil, 0, err
	}
	defer b.Release()
	for _, ev := range evs {
		if err := b.Append(ev.Seq, ev.Value); err != nil {
			return nil, 0, fmt.Errorf("event %d of %s: %w", ev.Seq, t.name, err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return nil, 0, err
	}
	if err := w.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), next, nil
}

// Watermarks are a table's committed and high sequence numbers.
type Watermarks struct {
	Table     string
	Committed uint64
	High      uint64
	// DeadLetters counts the records kept in DeadLetterTable: those its
	// current snapshot holds and those still in this node's hot tier
	// (counted up to maxPendingCount). Both are empty when the table has
	// none.
	DeadLetters     int64
	DeadLetterTable string
}

// maxPendingCount bounds how many uncommitted dead letters a status
// counts.
const maxPendingCount = 100_000

// Watermark returns the table's watermarks.
func (s *Service) Watermark(ctx context.Context, ref string) (Watermarks, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return Watermarks{}, err
	}
	w := Watermarks{Table: t.name, Committed: t.committed, High: s.hot.HighWatermark(t.hotKey)}
	if t.props[PropDeadLettersOf] != "" {
		return w, nil
	}
	dlq := catalog.Ident{Namespace: t.ident.Namespace, Name: DeadLetterTable(t.ident.Name)}
	tbl, err := s.catalog.LoadTable(ctx, dlq)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return w, nil
	}
	if err != nil {
		return w, err
	}
	if tbl.Metadata.Properties()[PropDeadLettersOf] != t.name {
		return w, nil
	}
	w.DeadLetterTable = dlq.String()
	if snap := tbl.Metadata.CurrentSnapshot(); snap != nil && snap.Summary != nil {
		n, _ := strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64)
		w.DeadLetters = n
	}
	committed, err := flusher.Watermark(tbl.Metadata.Properties(), s.node)
	if err != nil {
		return w, err
	}
	evs, err := s.hot.Read(ctx, tbl.Metadata.TableUUID().String(), committed, maxPendingCount)
	if err != nil {
		return w, err
	}
	w.DeadLetters += int64(len(evs))
	return w, nil
}

// TableActivity is what ingest knows of one table on this node, for the
// console: the watermarks and the counters since the node started.
type TableActivity struct {
	Table string
	// HotKey is the table's key in the hot tier (its UUID).
	HotKey string
	// High is the highest sequence durable in the hot tier; Committed the
	// highest ingest last knew committed (the flusher knows it sooner).
	High, Committed uint64
	Counts          TableCounts
}

// Activity reads the watermarks and counters of the table ref. Unlike
// Watermark it reads nothing but memory and the hot tier's sequence, so
// that a console may ask every second.
func (s *Service) Activity(ctx context.Context, ref string) (TableActivity, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return TableActivity{}, err
	}
	a := TableActivity{Table: t.name, HotKey: t.hotKey, Committed: t.committed, High: s.hot.HighWatermark(t.hotKey)}
	if s.metrics != nil {
		a.Counts, _ = s.metrics.Counts(t.name)
	}
	return a, nil
}
