package catalog

import (
	"context"
	"slices"
	"sync"
)

// commitLocks serializes the commits of one table within this process.
// The store's swap stays what decides between commits (other nodes commit
// too, and so do paths that take no lock); the lock only keeps commits of
// one table that overlap from each loading the same base and writing a
// metadata file when at most one of them can win the swap. A commit that
// waited reads the state its predecessor left: it fails its requirements
// before writing anything, or, if they still hold, builds on that state
// instead of failing.
type commitLocks struct {
	mu   sync.Mutex
	held map[string]*commitLock
}

type commitLock struct {
	sem     chan struct{} // holds one token while a commit has the table
	waiters int           // commits holding or waiting for sem
}

// lock takes the locks of keys in sorted order, so that two transactions
// over the same tables cannot wait on each other; it gives up when ctx
// ends. unlock releases them all and may be called more than once.
func (l *commitLocks) lock(ctx context.Context, keys []string) (unlock func(), err error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var taken []string
	release := func() {
		for _, k := range taken {
			l.release(k)
		}
		taken = nil
	}
	for _, k := range keys {
		cl := l.acquire(k)
		select {
		case cl.sem <- struct{}{}:
			taken = append(taken, k)
		case <-ctx.Done():
			l.drop(k)
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// acquire registers a waiter on k's lock, creating it.
func (l *commitLocks) acquire(k string) *commitLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]*commitLock{}
	}
	cl := l.held[k]
	if cl == nil {
		cl = &commitLock{sem: make(chan struct{}, 1)}
		l.held[k] = cl
	}
	cl.waiters++
	return cl
}

// release gives k's lock up.
func (l *commitLocks) release(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cl := l.held[k]
	<-cl.sem
	l.dropLocked(k, cl)
}

// drop unregisters a waiter that gave up without the lock.
func (l *commitLocks) drop(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(k, l.held[k])
}

func (l *commitLocks) dropLocked(k string, cl *commitLock) {
	if cl.waiters--; cl.waiters == 0 {
		delete(l.held, k)
	}
}
