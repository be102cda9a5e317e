package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/zombi-db/zombi/hot"
)

// ErrNotCommitted: a write that waits for its commit (?ack=committed) was
// not committed in time. Its events are durable in the hot tier and will
// be committed; the error says at which offsets. HTTP 504.
var ErrNotCommitted = errors.New("not committed in time")

// waitCommitted waits until the events of res are in the Iceberg table and
// returns the snapshot that holds them.
func (s *Service) waitCommitted(ctx context.Context, t *tableState, res []hot.Result) (int64, error) {
	if s.committer == nil {
		return 0, fmt.Errorf("%w: this server does not flush to Iceberg", ErrNotCommitted)
	}
	var last uint64
	for _, r := range res {
		last = max(last, r.Seq)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.commitWait, ErrNotCommitted)
	defer cancel()
	id, err := s.committer.WaitCommitted(ctx, t.hotKey, last)
	if err != nil {
		if errors.Is(err, ErrNotCommitted) {
			return 0, fmt.Errorf("%w: the events are durable (offsets up to %d) but were not committed to %s within %s",
				ErrNotCommitted, last, t.name, s.commitWait)
		}
		return 0, err
	}
	return id, nil
}
