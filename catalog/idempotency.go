package catalog

import (
	"context"
	"errors"
	"fmt"
)

// Idempotency asks a mutating operation to store its response under Key in
// the same store transaction as the change itself, so a retry after a lost
// response replays it instead of applying the change twice.
type Idempotency struct {
	Key string
	// Op identifies the request (method and path); a key first used for one
	// request and then sent with another is refused.
	Op string
	// Render turns the operation's result into the response to replay.
	Render func(result any) (status int, body []byte, err error)
}

// ReplayError is returned by a mutating operation whose idempotency key
// already has a receipt: the operation did not run again, and Receipt is
// the response to send.
type ReplayError struct{ Receipt *Receipt }

func (e *ReplayError) Error() string { return "idempotency key " + e.Receipt.Key + " replayed" }

// checkReceipt returns a *ReplayError when idem's key has a live receipt.
func (s *Service) checkReceipt(tx Tx, idem *Idempotency) error {
	if idem == nil {
		return nil
	}
	r, err := tx.LoadReceipt(idem.Key)
	if err != nil || r == nil || s.now().Sub(r.Created) > s.receiptLifetime {
		return err
	}
	if r.Op != idem.Op {
		return fmt.Errorf("%w: Idempotency-Key %q was used for a different request", ErrUnprocessable, idem.Key)
	}
	return &ReplayError{Receipt: r}
}

// replay looks idem's key up before any work is done.
func (s *Service) replay(ctx context.Context, idem *Idempotency) error {
	if idem == nil {
		return nil
	}
	return s.store.View(ctx, func(tx Tx) error { return s.checkReceipt(tx, idem) })
}

// putReceipt renders result and stores it as idem's receipt inside tx.
func (s *Service) putReceipt(tx Tx, idem *Idempotency, result any) error {
	if idem == nil {
		return nil
	}
	status, body, err := idem.Render(result)
	if err != nil {
		return err
	}
	return tx.PutReceipt(Receipt{Key: idem.Key, Op: idem.Op, Status: status, Body: body, Created: s.now()})
}

// update runs fn in a store transaction and, when it succeeds, stores the
// idempotency receipt for its result in the same transaction.
func (s *Service) update(ctx context.Context, idem *Idempotency, fn func(Tx) (any, error)) error {
	if err := s.replay(ctx, idem); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx Tx) error {
		if err := s.checkReceipt(tx, idem); err != nil {
			return err
		}
		res, err := fn(tx)
		if err != nil {
			return err
		}
		return s.putReceipt(tx, idem, res)
	})
}

// RecordFailure stores a deterministic client error (4xx) as the receipt of
// key, unless a receipt is already there. Server errors are never stored:
// a retry must run the request again.
func (s *Service) RecordFailure(ctx context.Context, key, op string, status int, body []byte) error {
	if status < 400 || status >= 500 {
		return errors.New("catalog: only 4xx responses are recorded")
	}
	return s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.LoadReceipt(key)
		if err != nil {
			return err
		}
		if r != nil && s.now().Sub(r.Created) <= s.receiptLifetime {
			return nil
		}
		return tx.PutReceipt(Receipt{Key: key, Op: op, Status: status, Body: body, Created: s.now()})
	})
}

// ExpireReceipts deletes receipts older than the receipt lifetime.
func (s *Service) ExpireReceipts(ctx context.Context) error {
	cutoff := s.now().Add(-s.receiptLifetime)
	return s.store.Update(ctx, func(tx Tx) error { return tx.DeleteReceiptsBefore(cutoff) })
}
