package hot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A claim marks idempotency keys of a table as being worked on by one
// append (or by the expirer). Whoever wants a claimed key waits for done
// and looks again: by then the holder's writes are applied, so a lookup in
// Pebble sees them. A holder claims all its keys at once or none, and
// waits holding none, so two appends never wait for each other.
type claim struct {
	done chan struct{}
}

// dedup is the idempotency state of one append.
type dedup struct {
	claim *claim
	keys  []string
	// later are the records whose key occurs earlier in the same append,
	// at a record that is not a duplicate: they get its sequence.
	later []dupRef
}

type dupRef struct{ i, first int }

// claimKeys claims keys of t, waiting while any of them is claimed.
// hook, if not nil, runs before each wait.
func (t *tableState) claimKeys(ctx context.Context, keys []string, hook func(string)) (*claim, error) {
	c := &claim{done: make(chan struct{})}
	for {
		t.mu.Lock()
		var busy *claim
		for _, k := range keys {
			if o := t.claims[k]; o != nil {
				busy = o
				break
			}
		}
		if busy == nil {
			for _, k := range keys {
				t.claims[k] = c
			}
			t.mu.Unlock()
			return c, nil
		}
		t.mu.Unlock()
		if hook != nil {
			hook(t.name)
		}
		select {
		case <-busy.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// unclaim releases keys claimed by c and wakes whoever waits for them.
func (t *tableState) unclaim(c *claim, keys []string) {
	t.mu.Lock()
	for _, k := range keys {
		if t.claims[k] == c {
			delete(t.claims, k)
		}
	}
	t.mu.Unlock()
	close(c.done)
}

func (t *tableState) release(d *dedup) {
	t.unclaim(d.claim, d.keys)
}

// dedupe claims the idempotency keys of recs and marks in res the records
// that are duplicates: of an event appended within the window, with its
// sequence, or of an earlier record of recs (listed in later, to get their
// sequence once it is assigned). The caller must release the result.
func (db *DB) dedupe(ctx context.Context, t *tableState, recs []Record, res []Result, now time.Time) (*dedup, error) {
	d := &dedup{}
	firsts := make([]int, 0, len(recs))
	if len(recs) == 1 {
		d.keys = []string{recs[0].Key}
		firsts = append(firsts, 0)
	} else {
		seen := make(map[string]int, len(recs))
		for i := range recs {
			k := recs[i].Key
			if k == "" {
				continue
			}
			if f, ok := seen[k]; ok {
				res[i].Duplicate = true
				d.later = append(d.later, dupRef{i: i, first: f})
				continue
			}
			seen[k] = i
			d.keys = append(d.keys, k)
			firsts = append(firsts, i)
		}
	}
	c, err := t.claimKeys(ctx, d.keys, db.hooks.claimWait)
	if err != nil {
		return nil, err
	}
	d.claim = c
	if db.hooks.afterClaim != nil {
		db.hooks.afterClaim(t.name)
	}
	// From here on the caller releases d, also on errors.
	if err := db.err(); err != nil {
		t.release(d)
		return nil, err
	}
	var kbuf []byte
	for j, k := range d.keys {
		kbuf = appendIdemKey(kbuf[:0], t.name, k)
		seq, ok, err := db.lookupKey(kbuf, now)
		if err != nil {
			t.release(d)
			return nil, fmt.Errorf("hot: idempotency key of %s: %w", t.name, err)
		}
		if ok {
			res[firsts[j]] = Result{Seq: seq, Duplicate: true}
		}
	}
	// Records that repeat a key that turned out to be a stored duplicate
	// get the stored sequence now; the others wait for assignment.
	later := d.later[:0]
	for _, l := range d.later {
		if res[l.first].Duplicate {
			res[l.i].Seq = res[l.first].Seq
		} else {
			later = append(later, l)
		}
	}
	d.later = later
	return d, nil
}

// lookupKey returns the sequence of the idempotency key k if it was
// appended within the window before now.
func (db *DB) lookupKey(k []byte, now time.Time) (uint64, bool, error) {
	v, closer, err := db.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	seq, at, err := decodeIdemValue(v)
	if cerr := closer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, err
	}
	return seq, now.Sub(at) < db.window, nil
}

// expireBatch is how many expired keys one expiry batch removes.
const expireBatch = 1024

// expireLoop removes expired idempotency keys until Close.
func (db *DB) expireLoop() {
	defer db.bg.Done()
	interval := min(max(db.window/4, time.Second), time.Minute)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-db.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-db.stop:
			return
		case <-tick.C:
		}
		if _, err := db.expire(ctx, db.now()); err != nil && ctx.Err() == nil {
			db.log.Error("expire idempotency keys", "err", err)
		}
	}
}

// expire removes the idempotency keys appended at or before now minus the
// window, and their index entries, and returns how many it removed.
func (db *DB) expire(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-db.window)
	upper := appendTime([]byte{kindExpiry}, cutoff.Add(time.Nanosecond))
	total := 0
	for {
		n, more, err := db.expireSome(ctx, cutoff, upper)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

type expiryEntry struct {
	table, key string
	at         time.Time
	raw        []byte
}

// expireSome handles up to expireBatch index entries below upper and
// reports whether there may be more.
func (db *DB) expireSome(ctx context.Context, cutoff time.Time, upper []byte) (int, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	// The DB stays open while the expirer runs: Close waits for it.
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{kindExpiry},
		UpperBound: upper,
	})
	if err != nil {
		return 0, false, err
	}
	var entries []expiryEntry
	byTable := make(map[string][]int)
	for it.First(); it.Valid() && len(entries) < expireBatch; it.Next() {
		at, table, key, err := decodeExpiryKey(it.Key())
		if err != nil {
			return 0, false, errors.Join(fmt.Errorf("expiry key %q: %w", it.Key(), err), it.Close())
		}
		byTable[table] = append(byTable[table], len(entries))
		entries = append(entries, expiryEntry{table: table, key: key, at: at, raw: append([]byte(nil), it.Key()...)})
	}
	more := it.Valid()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, false, err
	}
	if len(entries) == 0 {
		return 0, false, nil
	}

	b := db.pdb.NewBatch()
	defer b.Close()
	var held []func()
	defer func() {
		for _, release := range held {
			release()
		}
	}()
	var kbuf []byte
	removed := 0
	for table, idx := range byTable {
		t := db.lookup(table)
		keys := make([]string, 0, len(idx))
		seen := make(map[string]bool, len(idx))
		for _, i := range idx {
			if k := entries[i].key; !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if t != nil {
			// Claim the keys so that no append rewrites one between the
			// lookup below and the delete.
			c, err := t.claimKeys(ctx, keys, nil)
			if err != nil {
				return 0, false, err
			}
			held = append(held, func() { t.unclaim(c, keys) })
		}
		for _, k := range keys {
			kbuf = appendIdemKey(kbuf[:0], table, k)
			v, closer, err := db.pdb.Get(kbuf)
			if errors.Is(err, pebble.ErrNotFound) {
				continue
			}
			if err != nil {
				return 0, false, err
			}
			_, at, err := decodeIdemValue(v)
			if cerr := closer.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return 0, false, err
			}
			// A key appended again since has a newer time; keep it.
			if !at.After(cutoff) {
				_ = b.Delete(kbuf, nil)
				removed++
			}
		}
	}
	for i := range entries {
		_ = b.Delete(entries[i].raw, nil)
	}
	// Losing this write in a crash only means doing it again.
	if err := db.pdb.Apply(b, pebble.NoSync); err != nil {
		return 0, false, err
	}
	db.metrics.expiredKeys.Add(float64(removed))
	return removed, more, nil
}

// LookupKey returns the sequence of the event stored under the
// idempotency key of table within the window, if there is one.
func (db *DB) LookupKey(table, key string) (uint64, bool, error) {
	if !db.enter() {
		return 0, false, ErrClosed
	}
	defer db.closeMu.RUnlock()
	seq, ok, err := db.lookupKey(appendIdemKey(nil, table, key), db.now())
	if err != nil {
		return 0, false, fmt.Errorf("hot: idempotency key of %s: %w", table, err)
	}
	return seq, ok, nil
}
