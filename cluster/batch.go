package cluster

import (
	"context"
	"sync"
	"time"
)

// batcher sends the requests of concurrent callers to the database
// together: at most inFlight statements run at once, and while they do,
// new requests queue; the next free slot sends the whole queue as one
// statement. Under load the database then runs one statement for many
// writes instead of one each, which is most of its cost; a lone caller
// waits for nothing.
type batcher[Q, R any] struct {
	inFlight int
	// do runs one statement for qs and returns a result per request.
	do func(ctx context.Context, qs []Q) ([]R, error)

	mu      sync.Mutex
	queue   []*batchCall[Q, R]
	running int
}

type batchCall[Q, R any] struct {
	q    Q
	r    R
	err  error
	done chan struct{}
}

// statementTimeout bounds one batched statement, which serves callers
// whose own contexts it cannot follow.
const statementTimeout = 30 * time.Second

// run queues q and returns its result, or ctx's error if ctx ends first
// (the statement may still run).
func (b *batcher[Q, R]) run(ctx context.Context, q Q) (R, error) {
	c := &batchCall[Q, R]{q: q, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if b.running < b.inFlight {
		b.running++
		go b.send()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.r, c.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// send runs statements for the queue until it is empty.
func (b *batcher[Q, R]) send() {
	for {
		b.mu.Lock()
		calls := b.queue
		b.queue = nil
		if len(calls) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		qs := make([]Q, len(calls))
		for i, c := range calls {
			qs[i] = c.q
		}
		ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
		rs, err := b.do(ctx, qs)
		cancel()
		for i, c := range calls {
			if err == nil {
				c.r = rs[i]
			}
			c.err = err
			close(c.done)
		}
	}
}
