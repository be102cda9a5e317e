package hot

import (
	"errors"
	"runtime"
	"sync"
	"testing"

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
