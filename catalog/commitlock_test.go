package catalog

import (
	"context"
	"sync"
	"testing"
)

func TestCommitLocks(t *testing.T) {
	var l commitLocks
	ctx := t.Context()

	// Exclusive per key: a holder of b blocks [a b], which holds a until
	// it gets b; [a] waits behind it.
	unlockB, err := l.lock(ctx, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		unlock, err := l.lock(ctx, []string{"b", "a", "b"}) // sorted, deduplicated
		if err != nil {
			t.Error(err)
			return
		}
		got <- "ab"
		unlock()
	})
	// A canceled wait gives up and leaves no trace.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.lock(cctx, []string{"b"}); err == nil {
		t.Fatal("lock of a held key with a canceled context succeeded")
	}
	unlockB()
	unlockB() // a second call is a no-op
	wg.Wait()
	if s := <-got; s != "ab" {
		t.Fatalf("got %s", s)
	}
	// Everything released: no lock left behind.
	l.mu.Lock()
	n := len(l.held)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d locks left after every holder released", n)
	}
}

// TestCommitLocksExclusive: holders of one key never overlap.
func TestCommitLocksExclusive(t *testing.T) {
	var (
		l       commitLocks
		mu      sync.Mutex
		inside  int
		overlap bool
		wg      sync.WaitGroup
	)
	for i := range 16 {
		wg.Go(func() {
			keys := []string{"t"}
			if i%2 == 0 {
				keys = append(keys, "u")
			}
			for range 50 {
				unlock, err := l.lock(t.Context(), keys)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside++
				overlap = overlap || inside > 1
				mu.Unlock()
				mu.Lock()
				inside--
				mu.Unlock()
				unlock()
			}
		})
	}
	wg.Wait()
	if overlap {
		t.Error("two holders of one key at once")
	}
	if len(l.held) != 0 {
		t.Errorf("%d locks left", len(l.held))
	}
}
