package catalog

import (
	"context"
	"time"
)

// AcquireLease makes holder the holder of the lease name for ttl, or
// extends its hold; it reports false if another holder has it. A node
// renews a lease well before ttl passes while it works, and releases it
// when done; a node that dies lets it expire.
func (s *Service) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var ok bool
	now := s.now()
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		ok, err = tx.AcquireLease(name, holder, now, now.Add(ttl))
		return err
	})
	return ok, err
}

// ReleaseLease frees the lease name if holder holds it.
func (s *Service) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.store.Update(ctx, func(tx Tx) error { return tx.ReleaseLease(name, holder) })
}
