package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/hot"
)

// Claims makes idempotency keys hold across the nodes of a cluster
// (cluster.Member). Tables are keyed by their UUID, as in the hot tier.
type Claims interface {
	Claim(ctx context.Context, table string, keys []string) ([]cluster.Claim, error)
	Record(ctx context.Context, table string, keys []string, offsets []uint64) error
	Release(ctx context.Context, table string, keys []string) error
}

// ErrKeyBusy: another node is storing an event under the same idempotency
// key, or claimed it and is not alive. HTTP 503 with Retry-After.
var ErrKeyBusy = errors.New("idempotency key busy")

// claimWait bounds how long a write waits for another live node to finish
// storing an event under one of its keys.
const claimWait = 500 * time.Millisecond

// appendRecords stores recs in the hot tier. With Claims, the records'
// idempotency keys are first claimed across the cluster: a key another
// node stored is answered as a duplicate with its offset, and the offsets
// of the keys this node stores are recorded afterwards. Without Claims it
// is one hot-tier append, with no round trip.
func (s *Service) appendRecords(ctx context.Context, t *tableState, recs []hot.Record) ([]hot.Result, error) {
	if s.claims == nil {
		return s.hot.Append(ctx, t.hotKey, recs)
	}
	var keys []string
	first := make(map[string]int) // key -> index of its first record
	for i := range recs {
		if k := recs[i].Key; k != "" {
			if _, ok := first[k]; !ok {
				first[k] = i
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return s.hot.Append(ctx, t.hotKey, recs)
	}
	claims, err := s.claim(ctx, t, keys)
	if err != nil {
		return nil, err
	}
	res := make([]hot.Result, len(recs))
	var mine []string
	stored := make(map[string]uint64)
	for i, k := range keys {
		switch claims[i].State {
		case cluster.Claimed:
			mine = append(mine, k)
		case cluster.Stored:
			stored[k] = claims[i].Offset
		}
	}
	rest, idx := recs, []int(nil)
	if len(stored) > 0 {
		rest = make([]hot.Record, 0, len(recs))
		for i := range recs {
			if off, ok := stored[recs[i].Key]; ok && recs[i].Key != "" {
				res[i] = hot.Result{Seq: off, Duplicate: true}
				continue
			}
			rest = append(rest, recs[i])
			idx = append(idx, i)
		}
	}
	if len(rest) > 0 {
		got, err := s.hot.Append(ctx, t.hotKey, rest)
		if err != nil {
			// An append stores all or nothing: nothing was stored.
			if rerr := s.claims.Release(context.WithoutCancel(ctx), t.hotKey, mine); rerr != nil {
				s.log.Warn("releasing idempotency claims; the node settles them later", "table", t.name, "err", rerr)
			}
			return nil, err
		}
		if idx == nil {
			copy(res, got)
		} else {
			for j, r := range got {
				res[idx[j]] = r
			}
		}
	}
	if len(mine) > 0 {
		offsets := make([]uint64, len(mine))
		for i, k := range mine {
			offsets[i] = res[first[k]].Seq
		}
		// The events are stored and acknowledged either way; a claim left
		// pending is settled by this node from its hot tier.
		if err := s.claims.Record(context.WithoutCancel(ctx), t.hotKey, mine, offsets); err != nil {
			s.log.Warn("recording idempotency claims; the node settles them later", "table", t.name, "err", err)
		}
	}
	return res, nil
}

// claim claims keys of t across the cluster. A key another live node is
// storing is claimed again, with backoff, for up to claimWait; after that,
// or at once when its node is not alive, the write fails with ErrKeyBusy
// and the keys it did claim are released.
func (s *Service) claim(ctx context.Context, t *tableState, keys []string) ([]cluster.Claim, error) {
	claims, err := s.claims.Claim(ctx, t.hotKey, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", catalog.ErrUnavailable, err)
	}
	deadline := time.Now().Add(claimWait)
	for wait := 20 * time.Millisecond; ; wait *= 2 {
		var pending []int
		busy := -1
		for i, c := range claims {
			if c.State != cluster.Pending {
				continue
			}
			pending = append(pending, i)
			if !c.NodeAlive && busy < 0 {
				busy = i
			}
		}
		if len(pending) == 0 {
			return claims, nil
		}
		if busy < 0 && time.Now().Add(wait).After(deadline) {
			busy = pending[0]
		}
		if busy >= 0 {
			return nil, s.busy(ctx, t, keys, claims, busy)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), s.busy(ctx, t, keys, claims, pending[0]))
		}
		again := make([]string, len(pending))
		for j, i := range pending {
			again[j] = keys[i]
		}
		got, err := s.claims.Claim(ctx, t.hotKey, again)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%w: %w", catalog.ErrUnavailable, err), s.busy(ctx, t, keys, claims, -1))
		}
		for j, i := range pending {
			claims[i] = got[j]
		}
	}
}

// busy releases the keys of claims this write holds and returns the
// ErrKeyBusy for keys[i] (nil for i < 0).
func (s *Service) busy(ctx context.Context, t *tableState, keys []string, claims []cluster.Claim, i int) error {
	var held []string
	for j, c := range claims {
		if c.State == cluster.Claimed {
			held = append(held, keys[j])
		}
	}
	if len(held) > 0 {
		if err := s.claims.Release(context.WithoutCancel(ctx), t.hotKey, held); err != nil {
			s.log.Warn("releasing idempotency claims; the node settles them later", "table", t.name, "err", err)
		}
	}
	if i < 0 {
		return nil
	}
	c := claims[i]
	if !c.NodeAlive {
		return fmt.Errorf("%w: idempotency key %q of table %s was claimed by node %s, which is not alive: "+
			"the event may be in its hot tier, so it is answered once that node is back (or the key expires)",
			ErrKeyBusy, keys[i], t.name, c.Node)
	}
	node := "another node"
	if c.Node != "" {
		node = "node " + c.Node
	}
	return fmt.Errorf("%w: %s is storing an event with idempotency key %q of table %s; retry after the Retry-After delay",
		ErrKeyBusy, node, keys[i], t.name)
}
