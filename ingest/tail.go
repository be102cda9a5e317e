package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zombi-db/zombi/hotrow"
)

// ErrTableReplaced: the table a follower follows was dropped and another
// one took its name.
var ErrTableReplaced = errors.New("the table was dropped and created again")

// Followed is a table a follower reads (Follow).
type Followed struct {
	// Name is the table's dotted name, as answers report it.
	Name string
	// Key is the table's key in the hot tier (its UUID): Watch takes it.
	Key string
}

// TailEvent is one event of a table as a follower reads it.
type TailEvent struct {
	Offset uint64
	// Partition is the event's partition, as its write's answer reported
	// it (0 in a row table).
	Partition int32
	// IngestTime is when Zombi accepted the event: the ingest_time of an
	// event table's event, the hot tier's append time of a row.
	IngestTime time.Time
	// JSON is the event as Read returns it.
	JSON []byte
}

// TailPage is what one TailRead returns.
type TailPage struct {
	// Table is the table's dotted name.
	Table string
	// Events are in offset order.
	Events []TailEvent
	// Skipped, when not zero, is the last offset of a range that starts
	// after the read's after and that left the hot tier before it was
	// read: its events were committed and deleted (or never existed). No
	// event of Events is at or below it.
	Skipped uint64
	// Through is where the next read continues: every offset at or
	// below it is in Events, in the skipped range, or belongs to no
	// event.
	Through uint64
	// End reports that the read reached the table's high watermark as
	// it was when the read started.
	End bool
}

// Follow resolves the table named by ref for a follower: an ingest table
// that exists (catalog.ErrNoSuchTable otherwise; Follow creates nothing).
func (s *Service) Follow(ctx context.Context, ref string) (Followed, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return Followed{}, err
	}
	return Followed{Name: t.name, Key: t.hotKey}, nil
}

// Watch returns the high watermark of the table with hot key key, and a
// channel that is closed when it next moves (hot.DB.Watch).
func (s *Service) Watch(key string) (uint64, <-chan struct{}) { return s.hot.Watch(key) }

// tailBatch bounds how many events one read of the hot tier returns.
const tailBatch = 1024

// TailRead returns the events of a followed table after offset after, in
// order, about maxBytes of hot-tier values of them at most (one event at
// least), with the range it skipped because the hot tier no longer had
// it. ref must still name the table f: ErrTableReplaced when it names
// another one, catalog.ErrNoSuchTable when none.
func (s *Service) TailRead(ctx context.Context, f Followed, ref string, after uint64, maxBytes int) (TailPage, error) {
	t, err := s.resolve(ctx, ref, nil)
	if err != nil {
		return TailPage{}, err
	}
	if t.hotKey != f.Key {
		return TailPage{}, fmt.Errorf("%w: %s", ErrTableReplaced, t.name)
	}
	hwm := s.hot.HighWatermark(t.hotKey)
	page := TailPage{Table: t.name, Through: after}
	cursor, size, end := after, 0, false
	for batch := 16; ; {
		evs, err := s.hot.Read(ctx, t.hotKey, cursor, batch)
		if err != nil {
			return TailPage{}, err
		}
		for _, ev := range evs {
			te := TailEvent{Offset: ev.Seq, IngestTime: ev.Appended}
			if t.events {
				v, err := hotrow.DecodeEventValue(ev.Value)
				if err != nil {
					return TailPage{}, fmt.Errorf("event %d of %s: %w", ev.Seq, t.name, err)
				}
				te.Partition, te.IngestTime = v.Partition, v.IngestTime
			}
			if te.JSON, err = hotrow.ValueJSON(t.schema, t.name, ev.Seq, ev.Value); err != nil {
				return TailPage{}, fmt.Errorf("event %d of %s: %w", ev.Seq, t.name, err)
			}
			page.Events = append(page.Events, te)
			size += len(ev.Value)
			cursor = ev.Seq
		}
		if len(evs) < batch {
			// Read went up to a high watermark at least hwm.
			end = true
			break
		}
		if size >= maxBytes {
			break
		}
		batch = max(1, min(tailBatch, (maxBytes-size)/max(1, size/len(page.Events))))
	}
	page.Through, page.End = cursor, end
	if end {
		page.Through = max(cursor, hwm)
	}
	// A delete that started before the reads ended may have taken events
	// after after; one that started later took none they returned.
	if d := s.hot.DeletedThrough(t.hotKey); d > after {
		page.Skipped = d
		n := 0
		for n < len(page.Events) && page.Events[n].Offset <= d {
			n++
		}
		page.Events = page.Events[n:]
		page.Through = max(page.Through, d)
	}
	return page, nil
}
