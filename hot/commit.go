package hot

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// maxGroupedBatch is the largest batch that is committed in a group;
// larger ones (bulk appends) are committed on their own, so that grouping
// never copies them.
const maxGroupedBatch = 64 << 10

// committer commits the batches of concurrent appends in groups: the
// batches that arrive while a group is being committed wait, and the first
// of them then commits them all as one Pebble batch. Pebble shares a WAL
// sync between concurrent commits too, but each commit makes its own pass
// through the commit pipeline and wakes the WAL writer, which writes it to
// the log file on its own; for single-event appends that cost more CPU
// than the append itself. A group is one pass, one log write and one sync.
//
// Appends that arrive while a group's sync runs form the next group, so
// the group size follows the load. With an interval, a group also waits
// until interval after the previous group started (see pace).
type committer struct {
	pdb  *pebble.DB
	opts *pebble.WriteOptions
	// applyHook, if not nil, replaces pdb.Apply (tests).
	applyHook func(*pebble.Batch, *pebble.WriteOptions) error

	mu sync.Mutex
	// queue are the commits waiting for the next group, in arrival order.
	queue []*groupCommit
	spare []*groupCommit
	// busy is set while a group is being committed.
	busy bool

	// interval is the least time between the starts of two groups; 0
	// starts a group as soon as the previous one is committed. A waiting
	// group starts early after a step without arrivals.
	interval, step time.Duration
	// lastStart is when the last group started, and lastSize how many
	// batches it had.
	lastStart time.Time
	lastSize  int
}

// groupCommit is one batch waiting to be committed in a group.
type groupCommit struct {
	b   *pebble.Batch
	err error
	// done receives when the batch is committed (err is set) or when this
	// commit is to lead the next group (lead is set).
	done chan struct{}
	lead bool
}

var groupCommitPool = sync.Pool{New: func() any { return &groupCommit{done: make(chan struct{}, 1)} }}

// commit commits b with the committer's write options and returns when it
// is committed (with Sync durability: in the synced WAL). It does not
// modify or close b.
func (c *committer) commit(b *pebble.Batch) error {
	if b.Len() > maxGroupedBatch {
		return c.pebbleApply(b)
	}
	gc := groupCommitPool.Get().(*groupCommit)
	gc.b = b
	defer func() {
		*gc = groupCommit{done: gc.done}
		groupCommitPool.Put(gc)
	}()

	c.mu.Lock()
	c.queue = append(c.queue, gc)
	if c.busy {
		c.mu.Unlock()
		<-gc.done
		if !gc.lead {
			return gc.err
		}
		c.mu.Lock()
	}
	// gc leads: it commits everything queued, itself included.
	c.busy = true
	if c.interval > 0 {
		c.pace()
	}
	group := c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.mu.Unlock()

	err := c.apply(group)

	c.mu.Lock()
	var next *groupCommit
	if len(c.queue) > 0 {
		next = c.queue[0]
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	for _, m := range group {
		if m != gc {
			m.err = err
			m.done <- struct{}{} // m belongs to its caller again
		}
	}
	clear(group)
	c.mu.Lock()
	if c.spare == nil {
		c.spare = group[:0]
	}
	c.mu.Unlock()
	if next != nil {
		next.lead = true
		next.done <- struct{}{}
	}
	return err
}

// apply commits the batches of group as one.
func (c *committer) apply(group []*groupCommit) error {
	if len(group) == 1 {
		return c.pebbleApply(group[0].b)
	}
	size := 0
	for _, m := range group {
		size += m.b.Len()
	}
	merged := c.pdb.NewBatchWithSize(size)
	// Close only returns the batch to its pool.
	defer func() { _ = merged.Close() }()
	for _, m := range group {
		if err := merged.Apply(m.b, nil); err != nil {
			return err
		}
	}
	return c.pebbleApply(merged)
}

func (c *committer) pebbleApply(b *pebble.Batch) error {
	if c.applyHook != nil {
		return c.applyHook(b, c.opts)
	}
	return c.pdb.Apply(b, c.opts)
}

// pace waits, with c.mu held, until interval after the last group
// started, letting more appends join the queue, and marks the next group's
// start. It waits in steps (a quarter interval) and stops early after a
// step in which no append arrived: then the writers are all queued (a few
// synchronous writers, say) and waiting longer would only slow them down.
// At a steady 15,000 appends/s and the default interval, about one step
// in fifteen (125µs plus the kernel's timer slack) has none and ends a
// wait early, which costs some syncs but never an append's latency. For
// the same reason it does not wait at all when the last group had a
// single batch (one synchronous writer).
//
// It sleeps in the kernel (see sleep): the steps are below a millisecond,
// and a Go timer that short fires about a millisecond late when the
// runtime has nothing else to do, which is the case whenever every writer
// is already queued.
func (c *committer) pace() {
	at := c.lastStart.Add(c.interval)
	for queued := len(c.queue); c.lastSize > 1; {
		wait := time.Until(at)
		if wait <= 0 {
			break
		}
		c.mu.Unlock()
		sleep(min(wait, c.step))
		c.mu.Lock()
		if len(c.queue) == queued {
			break
		}
		queued = len(c.queue)
	}
	c.lastStart, c.lastSize = time.Now(), len(c.queue)
}
