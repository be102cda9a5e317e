package ingest

import (
	"context"
	"sync"
	"sync/atomic"
)

// InFlight bounds the memory that write requests hold while they are
// handled. A request charges what it holds as it takes it (a Charge): its
// body as the bytes arrive, the records decoded from it once they are
// counted. A charge that would pass the limit fails and the request is
// refused (429) at once, giving back what it held, so a client that
// stalls holds only what it has sent and overload is refused instead of
// buffered.
//
// One exception keeps the writes whose bodies have arrived moving when the
// limit is reached: Charge.Need lets one request at a time (the
// overdraft) go past the limit by what its records need, and makes the
// others wait for the bytes or for the overdraft.
type InFlight struct {
	max int64
	cur atomic.Int64
	// overdraft holds a token while a Charge is past the limit.
	overdraft chan struct{}

	// waiters counts the Need calls waiting; Release wakes them by
	// closing freed.
	waiters atomic.Int32
	mu      sync.Mutex
	freed   chan struct{}
}

// NewInFlight returns a limiter of max bytes (<= 0: unlimited).
func NewInFlight(max int64) *InFlight {
	return &InFlight{max: max, overdraft: make(chan struct{}, 1), freed: make(chan struct{})}
}

// Acquire reserves n bytes, or reports false and reserves nothing. When
// nothing is reserved any n fits, so a request larger than the limit can
// still run alone.
func (l *InFlight) Acquire(n int64) bool { return l.acquire(n, 0) }

// acquire is Acquire for a holder of own bytes, who is alone when they are
// all that is reserved.
func (l *InFlight) acquire(n, own int64) bool {
	if l.max <= 0 {
		l.cur.Add(n)
		return true
	}
	for {
		cur := l.cur.Load()
		if cur+n > l.max && cur > own {
			return false
		}
		if l.cur.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// Fits reports whether n bytes would fit now, reserving nothing.
func (l *InFlight) Fits(n int64) bool {
	cur := l.cur.Load()
	return l.max <= 0 || cur == 0 || cur+n <= l.max
}

// Release returns n reserved bytes.
func (l *InFlight) Release(n int64) {
	l.cur.Add(-n)
	if l.waiters.Load() > 0 {
		l.mu.Lock()
		close(l.freed)
		l.freed = make(chan struct{})
		l.mu.Unlock()
	}
}

// Bytes is the number of bytes reserved now.
func (l *InFlight) Bytes() int64 { return l.cur.Load() }

// Charge is what one request holds against an InFlight. Its zero value
// charges nothing and always fits; Release it when the request is done.
type Charge struct {
	l    *InFlight
	n    int64
	over bool // holds the overdraft
}

// NewCharge starts a request's charge against l (nil: unlimited).
func NewCharge(l *InFlight) Charge { return Charge{l: l} }

// Grow adds n bytes to the charge, or reports false and adds nothing when
// they do not fit. A charge that is all there is always grows.
func (c *Charge) Grow(n int64) bool {
	if c.l == nil {
		return true
	}
	if !c.over && !c.l.acquire(n, c.n) {
		return false
	}
	if c.over {
		c.l.cur.Add(n)
	}
	c.n += n
	return true
}

// Need adds n bytes the request cannot go on without. When they do not fit
// it waits until they do, or until it holds the overdraft, which lets it
// pass the limit; it fails only when ctx ends.
func (c *Charge) Need(ctx context.Context, n int64) error {
	if c.Grow(n) {
		return nil
	}
	c.l.waiters.Add(1)
	defer c.l.waiters.Add(-1)
	for {
		c.l.mu.Lock()
		freed := c.l.freed
		c.l.mu.Unlock()
		if c.Grow(n) {
			return nil
		}
		select {
		case c.l.overdraft <- struct{}{}:
			c.over = true
			c.l.cur.Add(n)
			c.n += n
			return nil
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Bytes is the charge's size.
func (c *Charge) Bytes() int64 { return c.n }

// Release gives back everything the charge holds.
func (c *Charge) Release() {
	if c.l == nil {
		return
	}
	if c.n != 0 {
		c.l.Release(c.n)
		c.n = 0
	}
	if c.over {
		c.over = false
		<-c.l.overdraft
	}
}
