package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/tail"
)

// streamWriteTimeout bounds how long one write to a stream may take: a
// client that stopped reading, with the TCP buffers full, holds its
// handler no longer than this once it was dropped.
const streamWriteTimeout = 30 * time.Second

// StreamEvents serves the live tail of an ingest table as Server-Sent
// Events (package tail).
func (s *Server) StreamEvents(c echo.Context, table string, p openapi.StreamEventsParams) error {
	if s.tail == nil {
		return fmt.Errorf("%w: this server does not stream", catalog.ErrUnavailable)
	}
	after, fromEnd, err := streamStart(p)
	if err != nil {
		return err
	}
	limit := 0
	if p.Limit != nil {
		if *p.Limit < 1 {
			return fmt.Errorf("%w: limit must be positive", catalog.ErrInvalid)
		}
		limit = *p.Limit
	}
	ctx := c.Request().Context()
	sub, err := s.tail.Subscribe(ctx, table, after, fromEnd)
	if err != nil {
		return err
	}
	defer sub.Close()

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	// Proxies that buffer answers (nginx) pass this one on as it comes.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// write writes frames and flushes them, each batch under its own
	// deadline. An error ends the stream: the client is gone or stuck.
	write := func(frames ...[]byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	if err := write([]byte(": live tail of " + sub.Table() + "\n\n")); err != nil {
		return nil
	}
	heartbeat := time.NewTimer(s.heartbeat)
	defer heartbeat.Stop()
	var msgs []*tail.Message
	frames := make([][]byte, 0, 64)
	sent := 0
	for {
		msgs, err = sub.Next(ctx, msgs[:0])
		if err != nil {
			return nil // the final message is sent, or the client left
		}
		if len(msgs) == 0 {
			select {
			case <-sub.Ready():
			case <-heartbeat.C:
				if write(tail.Heartbeat) != nil {
					return nil
				}
				heartbeat.Reset(s.heartbeat)
			case <-ctx.Done():
				return nil
			}
			continue
		}
		frames = frames[:0]
		done := false
		for _, m := range msgs {
			frames = append(frames, m.Frame)
			if m.Kind == tail.Event {
				sent++
				if done = sent == limit; done {
					break
				}
			}
		}
		clear(msgs)
		if write(frames...) != nil || done {
			return nil
		}
		heartbeat.Reset(s.heartbeat)
	}
}

// streamStart is where a stream starts: after the offset of the
// Last-Event-ID header, else of ?from=, else at the end (fromEnd).
func streamStart(p openapi.StreamEventsParams) (after uint64, fromEnd bool, err error) {
	if p.LastEventID != nil && strings.TrimSpace(*p.LastEventID) != "" {
		after, err := strconv.ParseUint(strings.TrimSpace(*p.LastEventID), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%w: Last-Event-ID %q is not an offset", catalog.ErrInvalid, *p.LastEventID)
		}
		return after, false, nil
	}
	if p.From != nil {
		if *p.From < 0 {
			return 0, false, fmt.Errorf("%w: from must not be negative", catalog.ErrInvalid)
		}
		return uint64(*p.From), false, nil
	}
	return 0, true, nil
}
