package hot

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCommitterGroups holds a group's commit in Pebble while more batches
// arrive, and checks that they are then committed together, once, and that
// the group's error reaches every one of them.
func TestCommitterGroups(t *testing.T) {
	pdb, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: slogLogger{discardLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()

	release := make(chan struct{})
	errInjected := errors.New("injected")
	var mu sync.Mutex
	var applied []uint32 // records per Pebble commit
	calls := 0
	c := &committer{pdb: pdb, opts: pebble.Sync}
	c.applyHook = func(b *pebble.Batch, _ *pebble.WriteOptions) error {
		mu.Lock()
		calls++
		n := calls
		applied = append(applied, b.Count())
		mu.Unlock()
		switch n {
		case 1:
			<-release // hold the first group
		case 2:
			return errInjected
		}
		return pdb.Apply(b, pebble.Sync)
	}
	batch := func(key string) *pebble.Batch {
		b := pdb.NewBatch()
		if err := b.Set([]byte(key), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		return b
	}

	first := make(chan error, 1)
	go func() { first <- c.commit(batch("a")) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return calls == 1 })

	const waiting = 5
	errs := make(chan error, waiting)
	for i := range waiting {
		go func() { errs <- c.commit(batch(string(rune('b' + i)))) }()
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.queue) == waiting })
	close(release)

	if err := <-first; err != nil {
		t.Fatalf("first group: %v", err)
	}
	for range waiting {
		if err := <-errs; !errors.Is(err, errInjected) {
			t.Errorf("member of the failed group: %v, want the injected error", err)
		}
	}
	// A batch too large to group is committed alone; then the committer
	// is idle and the next batch leads its own group.
	big := pdb.NewBatch()
	if err := big.Set([]byte("big"), make([]byte, maxGroupedBatch), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.commit(big); err != nil {
		t.Fatal(err)
	}
	if err := c.commit(batch("z")); err != nil {
		t.Fatal(err)
	}
	want := []uint32{1, waiting, 1, 1}
	if len(applied) != len(want) {
		t.Fatalf("Pebble commits of %v records, want %v", applied, want)
	}
	for i := range want {
		if applied[i] != want[i] {
			t.Fatalf("Pebble commits of %v records, want %v", applied, want)
		}
	}
	for _, k := range []string{"a", "big", "z"} {
		if _, closer, err := pdb.Get([]byte(k)); err != nil {
			t.Errorf("%s not committed: %v", k, err)
		} else {
			closer.Close()
		}
	}
	if _, _, err := pdb.Get([]byte("b")); !errors.Is(err, pebble.ErrNotFound) {
		t.Errorf("a batch of the failed group was committed: %v", err)
	}
}

// waitFor yields until cond holds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		runtime.Gosched()
	}
}

// TestCommitterPaces checks the pacing of groups: a group after a
// single-batch group does not wait; while appends keep arriving a group
// starts interval after the previous one, with all of them; once they
// stop arriving it starts after a step; and concurrent committers under
// pacing all finish.
func TestCommitterPaces(t *testing.T) {
	pdb, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: slogLogger{discardLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()

	type group struct {
		at    time.Time
		count uint32
	}
	var mu sync.Mutex
	var groups []group
	var hold chan struct{} // if not nil, the next group waits for it
	c := &committer{pdb: pdb, opts: pebble.NoSync, interval: time.Second, step: 250 * time.Millisecond}
	c.applyHook = func(b *pebble.Batch, o *pebble.WriteOptions) error {
		mu.Lock()
		groups = append(groups, group{time.Now(), b.Count()})
		h := hold
		hold = nil
		mu.Unlock()
		if h != nil {
			<-h
		}
		return pdb.Apply(b, o)
	}
	// commit commits n batches, spaced by every, and waits for them.
	commit := func(prefix string, n int, every time.Duration) error {
		errs := make(chan error, n)
		for i := range n {
			b := pdb.NewBatch()
			if err := b.Set(fmt.Appendf(nil, "%s%03d", prefix, i), []byte("v"), nil); err != nil {
				return err
			}
			go func() { errs <- c.commit(b) }()
			time.Sleep(every)
		}
		for range n {
			select {
			case err := <-errs:
				if err != nil {
					return err
				}
			case <-time.After(time.Minute):
				return errors.New("a paced commit did not finish")
			}
		}
		return nil
	}
	groupsNow := func() []group {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(groups)
	}

	// The first group starts at once (no group started before it) and is
	// held while two more batches queue; they follow at once, as a group
	// after a single batch does not wait.
	release := make(chan struct{})
	hold = release
	first := make(chan error, 1)
	go func() { first <- commit("first", 1, 0) }()
	waitFor(t, func() bool { return len(groupsNow()) == 1 })
	second := make(chan error, 1)
	go func() { second <- commit("second", 2, 0) }()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.queue) == 2 })
	close(release)
	if err := errors.Join(<-first, <-second); err != nil {
		t.Fatal(err)
	}

	// Appends arriving every 20ms for 1.5s: the next group starts a second
	// after the group of two and holds all that arrived by then.
	if err := commit("stream", 75, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	g := groupsNow()
	if len(g) < 4 || g[1].count != 2 {
		t.Fatalf("groups %v, want groups of 1, 2 and then the stream's", g)
	}
	if gap := g[2].at.Sub(g[1].at); gap < c.interval {
		t.Errorf("the stream's first group started %v after the group of 2, want at least %v", gap, c.interval)
	}
	if g[2].count < 2 {
		t.Errorf("the stream's first group has %d batches, want all that arrived in a second", g[2].count)
	}

	// Appends that arrive at once, with an interval of an hour: the group
	// starts after a step without arrivals.
	c.mu.Lock()
	c.interval, c.step = time.Hour, 10*time.Millisecond
	c.mu.Unlock()
	before := len(groupsNow())
	if err := commit("burst", 5, 0); err != nil {
		t.Fatal(err)
	}
	var n uint32
	for _, g := range groupsNow()[before:] {
		n += g.count
	}
	if n != 5 {
		t.Errorf("%d batches of the burst committed, want 5", n)
	}

	// One writer at a time, after a pause longer than the interval: its
	// first group does not wait, nor do the next ones, each of one batch,
	// although the interval (and a step) of an hour has not passed.
	c.mu.Lock()
	c.lastStart, c.step = time.Time{}, time.Hour
	c.mu.Unlock()
	for i := range 3 {
		if err := commit(fmt.Sprintf("alone%d", i), 1, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Many concurrent committers with a short interval.
	c.mu.Lock()
	c.interval, c.step = 200*time.Microsecond, 50*time.Microsecond
	c.mu.Unlock()
	before = len(groupsNow())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				if err := commit(fmt.Sprintf("w%d-%d-", w, i), 5, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n = 0
	for _, g := range groupsNow()[before:] {
		n += g.count
	}
	if n != 8*50 {
		t.Errorf("%d batches committed, want %d", n, 8*50)
	}
}
