package catalog

import "sync"

// watchers are the functions told about every table change this Service
// makes (create, commit, register, rename, drop), so in-process caches of
// table metadata never serve a stale schema.
type watchers struct {
	mu   sync.RWMutex
	next int
	fns  map[int]func(Ident)
}

// Watch calls fn with the identifier of every table this Service changes,
// after the change is committed. fn runs on the committing goroutine and
// must be fast. The returned function stops the calls.
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
