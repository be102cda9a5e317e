package ingest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest/codec"
)

// Read limits.
const (
	DefaultReadLimit = 100
	MaxReadLimit     = 10000
)

// ReadRequest selects hot events.
type ReadRequest struct {
	// Offset is the first sequence to return.
	Offset uint64
	Limit  int
	// Since, when not zero, skips events whose event time (event tables)
	// or append time (row tables) is before it.
	Since time.Time
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
// the since filter, and the offset after the last one examined.
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
	for scanned := 0; len(out) < limit && scanned < scanBudget; {
		evs, err := s.hot.Read(ctx, t.hotKey, after, limit-len(out))
		if err != nil {
			return nil, 0, err
		}
		if len(evs) == 0 {
			break
		}
		scanned += len(evs)
		for _, ev := range evs {
			keep := true
			if !req.Since.IsZero() {
				at := ev.Appended
				if t.events {
					if et, err := codec.EventTime(ev.Value); err == nil {
						at = et
					}
				}
				keep = !at.Before(req.Since)
			}
			if keep {
				out = append(out, ev)
			}
			after, next = ev.Seq, ev.Seq+1
		}
	}
	return out, next, nil
}

// Read returns hot events of the table named by ref as JSON objects.
func (s *Service) Read(ctx context.Context, ref string, req ReadRequest) (ReadResult, error) {
	t, err := s.resolve(ctx, ref, false)
	if err != nil {
		return ReadResult{}, err
	}
	evs, next, err := s.events(ctx, t, req)
	if err != nil {
		return ReadResult{}, err
	}
	res := ReadResult{Table: t.name, Events: make([][]byte, len(evs)), NextOffset: next, HighWatermark: s.hot.HighWatermark(t.hotKey)}
	for i, ev := range evs {
		if res.Events[i], err = codec.ValueJSON(t.schema, t.name, ev.Seq, ev.Value); err != nil {
			return ReadResult{}, fmt.Errorf("event %d of %s: %w", ev.Seq, t.name, err)
		}
	}
	return res, nil
}

// ReadArrow returns hot events of the table named by ref as an Arrow IPC
// stream with the table's current schema.
func (s *Service) ReadArrow(ctx context.Context, ref string, req ReadRequest) ([]byte, uint64, error) {
	t, err := s.resolve(ctx, ref, false)
	if err != nil {
		return nil, 0, err
	}
	evs, next, err := s.events(ctx, t, req)
	if err != nil {
		return nil, 0, err
	}
	b, err := codec.NewArrowBuilder(memory.DefaultAllocator, t.schema, t.name)
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
}

// Watermark returns the table's watermarks.
func (s *Service) Watermark(ctx context.Context, ref string) (Watermarks, error) {
	t, err := s.resolve(ctx, ref, false)
	if err != nil {
		return Watermarks{}, err
	}
	w := Watermarks{Table: t.name, Committed: t.committed, High: s.hot.HighWatermark(t.hotKey)}
	return w, nil
}
