package catalog

import (
	"context"
	"sync"
)

// watchers are the functions told about every table or view change: the
// ones this Service makes (create, commit, register, rename, drop) and,
// with a shared store, the ones other processes make (Follow), so that
// in-process caches of table metadata never serve a stale schema for long.
type watchers struct {
	mu   sync.RWMutex
	next int
	fns  map[int]func(Ident)
}

// Watch calls fn with the identifier of every table or view that changes,
// after the change is committed: at once for the changes this Service
// makes, and for those other processes make to a shared store once Follow
// learns of them. The zero Ident means that any table or view may have
// changed. fn may be called more than once for one change (this Service's
// own changes come back through Follow), runs on the committing or the
// following goroutine and must be fast. The returned function stops the
// calls.
func (s *Service) Watch(fn func(Ident)) (stop func()) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.fns == nil {
		s.watch.fns = map[int]func(Ident){}
	}
	id := s.watch.next
	s.watch.next++
	s.watch.fns[id] = fn
	return func() {
		s.watch.mu.Lock()
		defer s.watch.mu.Unlock()
		delete(s.watch.fns, id)
	}
}

func (s *Service) changed(ids ...Ident) {
	s.watch.mu.RLock()
	defer s.watch.mu.RUnlock()
	for _, fn := range s.watch.fns {
		for _, id := range ids {
			fn(id)
		}
	}
}

// Changes is what a ChangeFeed reports: the tables and views that
// changed, or All.
type Changes struct {
	Idents []Ident
	// All means any table or view may have changed: the feed cannot tell
	// which, because it has just begun or lost track.
	All bool
}

// ChangeFeed is implemented by stores that several processes share, so
// that each process learns of the changes the others commit (the Postgres
// store). Embedded stores serve one process and need none.
type ChangeFeed interface {
	// FollowChanges calls fn with the tables and views changed by
	// commits of any process, including the caller's, within a bound the
	// store documents, until ctx ends. Its first call reports All, since
	// what the caller cached before the feed began may be stale. fn is
	// called from one goroutine at a time. A store that cannot be reached
	// is retried, not returned.
	FollowChanges(ctx context.Context, fn func(Changes)) error
}

// Follow calls the watchers (Watch) for the changes that any process
// sharing the Service's store commits, until ctx ends, when the store
// tells of them (ChangeFeed); otherwise it returns nil at once.
func (s *Service) Follow(ctx context.Context) error {
	feed, ok := s.store.(ChangeFeed)
	if !ok {
		return nil
	}
	return feed.FollowChanges(ctx, func(c Changes) {
		if c.All {
			s.changed(Ident{})
			return
		}
		s.changed(c.Idents...)
	})
}
