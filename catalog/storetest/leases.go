package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
)

var leaseTests = []test{
	{"AcquireRelease", testLeaseAcquireRelease},
	{"Concurrent", testLeaseConcurrent},
}

func acquire(t *testing.T, s catalog.Store, name, holder string, now, until time.Time) bool {
	t.Helper()
	var ok bool
	update(t, s, func(tx catalog.Tx) error {
		var err error
		ok, err = tx.AcquireLease(name, holder, now, until)
		return err
	})
	return ok
}

func testLeaseAcquireRelease(t *testing.T, s catalog.Store) {
	t0 := epoch
	steps := []struct {
		what        string
		holder      string
		now, until  time.Duration // from t0
		release     bool
		wantAcquire bool
	}{
		{what: "free", holder: "a", now: 0, until: 10 * time.Second, wantAcquire: true},
		{what: "held by another", holder: "b", now: time.Second, until: 20 * time.Second, wantAcquire: false},
		{what: "renewed by its holder", holder: "a", now: 2 * time.Second, until: 30 * time.Second, wantAcquire: true},
		{what: "still held after the first expiry", holder: "b", now: 15 * time.Second, until: 40 * time.Second, wantAcquire: false},
		{what: "expired", holder: "b", now: 30 * time.Second, until: 50 * time.Second, wantAcquire: true},
		{what: "release by a non-holder does nothing", holder: "a", release: true},
		{what: "so a still cannot take it", holder: "a", now: 31 * time.Second, until: 60 * time.Second, wantAcquire: false},
		{what: "released by its holder", holder: "b", release: true},
		{what: "free again", holder: "a", now: 32 * time.Second, until: 60 * time.Second, wantAcquire: true},
		{what: "other leases are independent", holder: "b", now: 32 * time.Second, until: 60 * time.Second, wantAcquire: true},
	}
	for i, st := range steps {
		name := "compact/t1"
		if i == len(steps)-1 {
			name = "compact/t2"
		}
		if st.release {
			update(t, s, func(tx catalog.Tx) error { return tx.ReleaseLease(name, st.holder) })
			continue
		}
		if got := acquire(t, s, name, st.holder, t0.Add(st.now), t0.Add(st.until)); got != st.wantAcquire {
			t.Fatalf("step %d (%s): acquire by %s = %v, want %v", i, st.what, st.holder, got, st.wantAcquire)
		}
	}
}

// testLeaseConcurrent: of many holders racing for a free lease, exactly one
// gets it.
func testLeaseConcurrent(t *testing.T, s catalog.Store) {
	const n = 16
	var wg sync.WaitGroup
	won := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				ok, err := tx.AcquireLease("race", string(rune('a'+i)), epoch, epoch.Add(time.Minute))
				won[i] = ok
				return err
			})
			if err != nil {
				t.Errorf("holder %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	winners := 0
	for _, w := range won {
		if w {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d holders acquired one lease, want 1", winners)
	}
}
