package hot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zombi-db/zombi/internal/pebblefmt"
)

const (
	defaultIdempotencyWindow = 24 * time.Hour
	defaultMaxBacklogBytes   = 1 << 30
	defaultSyncInterval      = 500 * time.Microsecond

	// leaseBlock is how many sequences a lease write reserves. A table
	// writes a new lease, in the background, when fewer than half of its
	// block remain; a restart skips what was left of the block.
	leaseBlock = 1 << 16

	// maxAppendBytes bounds the records of one Append, far below Pebble's
	// batch limit of 4 GiB.
	maxAppendBytes = 1 << 31

	// memTableSize is the largest memtable (Pebble starts small and
	// doubles up to it). Events live about one flush cycle, so the
	// larger a memtable, the more of it the flusher's range deletion has
	// covered by the time Pebble flushes it, and what it covers is not
	// written to an sstable nor compacted. A 128 MiB memtable holds about
	// two seconds of bulk ingest at 400,000 events/s of 100 bytes. With
	// 32 MiB, flushing and compacting events took 37% of the server's
	// CPU under that load; 128 MiB took the server's CPU per event from
	// 5.2 to 4.1 µs and let the flusher keep up in more runs; 256 MiB did
	// no better (BENCHMARKS.md).
	memTableSize = 128 << 20
	// L0 sublevels before compacting them, and before stalling writes.
	l0CompactionThreshold = 16
	l0StopWritesThreshold = 96
	// cacheSize is the block cache. Pebble also accounts the memtables in
	// it (writes stall at two full ones); the rest, at least 64 MiB and
	// all of it while the memtables are small, holds blocks, above all the
	// filter and index blocks that idempotency lookups read. With a cache
	// no larger than the memtables, nothing would be cached.
	cacheSize = 2*memTableSize + 64<<20
)

// DB is the hot tier. It is safe for concurrent use.
type DB struct {
	pdb        *pebble.DB
	dir        string
	fs         vfs.FS // the file system dir is on
	writeOpts  *pebble.WriteOptions
	window     time.Duration
	maxBacklog int64
	now        func() time.Time
	log        *slog.Logger
	metrics    *metrics
	nodeID     string
	// stream is the node's stream; every table hands out sequences in
	// [base+1, limit].
	stream      uint32
	base, limit uint64

	// committer commits the batches of appends.
	committer committer

	// closeMu is held shared by every operation that uses pdb and
	// exclusively by Close.
	closeMu sync.RWMutex
	closed  bool

	// failed holds the first error of a write to Pebble. Pebble treats
	// failed WAL writes and syncs as fatal, and an append that fails after
	// its sequences were handed out leaves the table's accounting behind;
	// so the first such error stops all further appends.
	failed atomic.Pointer[error]

	tablesMu sync.RWMutex
	tables   map[string]*tableState

	// backlog is the bytes stored and not deleted over all tables,
	// including appends in flight (reserved before they are applied).
	backlog atomic.Int64

	stop chan struct{}
	bg   sync.WaitGroup

	hooks testHooks
}

// testHooks let tests stop appends at chosen points. All nil outside
// tests.
type testHooks struct {
	// afterClaim runs after an append claimed its idempotency keys.
	afterClaim func(table string)
	// claimWait runs before an append waits for a key another holds.
	claimWait func(table string)
	// beforeApply runs before an append's batch is applied; an error
	// stands in for a failed Apply.
	beforeApply func(table string, first, last uint64) error
}

// tableState is what a DB keeps in memory about one table.
type tableState struct {
	name     string
	prefix   []byte // 'e' str(name)
	leaseKey []byte

	// hwm is the visible high watermark: every sequence <= hwm has been
	// applied, or failed, and was never acknowledged. Written under mu.
	hwm atomic.Uint64

	// deleteMu serialises DeleteThrough.
	deleteMu sync.Mutex
	// deleting is the highest sequence a DeleteThrough has started to
	// delete through (stored before its batch is applied): events at or
	// below it may be gone from any read that starts later.
	deleting atomic.Uint64

	mu sync.Mutex
	// leaseCond is signalled when a lease write ends.
	leaseCond sync.Cond
	// next is the next sequence to hand out; sequences up to leased may be
	// handed out without writing a lease.
	next      uint64
	leased    uint64
	extending bool
	// assigned counts the records through sequence next-1, visible those
	// through hwm, base those through the last deleted event (the counter
	// of that event). The backlog of the table is visible - base.
	assigned cum
	visible  cum
	base     cum
	deleted  uint64
	// oldest is the append time of the first stored event, zero if none.
	oldest time.Time
	// pending are the appends with assigned sequences that are not yet
	// visible, in sequence order.
	pending []*pendingAppend
	// settled, when not nil, is closed by the next complete that moves
	// hwm: Settle and Watch wait on it.
	settled chan struct{}
	// claims maps the idempotency keys that an append (or the expirer) is
	// working on to its claim.
	claims map[string]*claim
}

type pendingAppend struct {
	last   uint64
	after  cum
	at     time.Time
	done   bool
	failed bool
}

func newTableState(name string) *tableState {
	t := &tableState{
		name:     name,
		prefix:   tableKey(kindEvent, name),
		leaseKey: tableKey(kindLease, name),
		next:     1,
		claims:   make(map[string]*claim),
	}
	t.leaseCond.L = &t.mu
	return t
}

// internalOptions are knobs for tests.
type internalOptions struct {
	tune  func(*pebble.Options)
	hooks testHooks
}

// Open opens the hot tier in dir, creating it if needed.
func Open(dir string, opts Options) (*DB, error) {
	return open(dir, opts, internalOptions{})
}

func open(dir string, opts Options, io internalOptions) (*DB, error) {
	if opts.IdempotencyWindow <= 0 {
		opts.IdempotencyWindow = defaultIdempotencyWindow
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = defaultSyncInterval
	}
	if opts.MaxBacklogBytes <= 0 {
		opts.MaxBacklogBytes = defaultMaxBacklogBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db := &DB{
		dir:        dir,
		fs:         opts.FS,
		window:     opts.IdempotencyWindow,
		maxBacklog: opts.MaxBacklogBytes,
		now:        opts.Now,
		log:        opts.Logger.With("component", "hot"),
		tables:     make(map[string]*tableState),
		stop:       make(chan struct{}),
		hooks:      io.hooks,
	}
	switch opts.Durability {
	case Sync:
		db.writeOpts = pebble.Sync
	case Async:
		db.writeOpts = pebble.NoSync
	default:
		return nil, fmt.Errorf("hot: unknown durability %d", opts.Durability)
	}
	if db.fs == nil {
		db.fs = vfs.Default
	}
	db.metrics = newMetrics(db)

	popts := &pebble.Options{
		FS:                 opts.FS,
		Logger:             slogLogger{db.log},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableSize,
		// Events live for about one flush interval: the flusher deletes
		// them with one range deletion per table once they are committed.
		// Compacting L0 early rewrites events that are about to be
		// deleted (at 200k events/s that was a third of the server's
		// CPU); letting L0 grow instead leaves whole files covered by a
		// deletion, which Pebble drops without rewriting them.
		L0CompactionThreshold: l0CompactionThreshold,
		L0StopWritesThreshold: l0StopWritesThreshold,
		// With Async durability, sync the WAL in the background every
		// megabyte rather than leaving it all to the OS.
		WALBytesPerSync: 1 << 20,
		// No WALMinSyncInterval: appends are grouped before they reach
		// Pebble (committer), and a group must not wait for a timer,
		// which below a millisecond fires up to a millisecond late when
		// the runtime is idle.
		EventListener: db.eventListener(),
		// Flush a memtable holding a DeleteThrough within seconds even
		// when writes are slow, so the space of deleted events is
		// reclaimed.
		FlushDelayDeleteRange: 10 * time.Second,
		CacheSize:             cacheSize,
	}
	// Bloom filters make the idempotency lookups of new keys (the common
	// case) cheap. The other levels inherit L0's policy.
	popts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	if io.tune != nil {
		io.tune(popts)
	}
	pdb, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("hot: open %s: %w", dir, err)
	}
	db.pdb = pdb
	db.committer = committer{pdb: pdb, opts: db.writeOpts}
	if opts.Durability == Sync && opts.SyncInterval > 0 {
		db.committer.interval, db.committer.step = opts.SyncInterval, opts.SyncInterval/4
	}
	if err := db.recover(); err != nil {
		return nil, errors.Join(fmt.Errorf("hot: open %s: %w", dir, err), pdb.Close())
	}
	if db.nodeID, err = db.loadNodeID(opts.NodeID); err != nil {
		return nil, errors.Join(fmt.Errorf("hot: open %s: %w", dir, err), pdb.Close())
	}
	if db.stream, err = db.loadStream(opts.Stream); err != nil {
		return nil, errors.Join(fmt.Errorf("hot: open %s: %w", dir, err), pdb.Close())
	}
	db.base = uint64(db.stream) << StreamBits
	db.limit = db.base + 1<<StreamBits - 1
	for _, t := range db.tables {
		// A directory from before streams that was given a stream other
		// than 0 continues above its base; its stored events keep their
		// sequences.
		t.next = max(t.next, db.base+1)
	}
	if err := db.metrics.register(opts.Registerer); err != nil {
		return nil, errors.Join(fmt.Errorf("hot: register metrics: %w", err), pdb.Close())
	}
	db.bg.Add(1)
	go db.expireLoop()
	return db, nil
}

// recover checks the layout version and loads every table's state: one
// lease key, one deleted marker and the first and last event per table.
func (db *DB) recover() error {
	if err := pebblefmt.Check(db.pdb, formatKey, []byte(layoutVersion), "hot tier"); err != nil {
		return err
	}

	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: []byte{kindLease},
		UpperBound: []byte{kindLease + 1},
	})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		name, rest, err := decodeStr(it.Key()[1:])
		if err != nil || len(rest) != 0 || len(it.Value()) != 8 {
			return errors.Join(fmt.Errorf("malformed lease %q", it.Key()), it.Close())
		}
		t := newTableState(name)
		t.leased = binary.BigEndian.Uint64(it.Value())
		t.next = t.leased + 1
		if err := db.recoverTable(t); err != nil {
			return errors.Join(fmt.Errorf("table %q: %w", name, err), it.Close())
		}
		db.tables[name] = t
		db.backlog.Add(int64(t.visible.bytes - t.base.bytes))
	}
	return errors.Join(it.Error(), it.Close())
}

func (db *DB) recoverTable(t *tableState) error {
	v, closer, err := db.pdb.Get(tableKey(kindDeleted, t.name))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return err
	default:
		if len(v) != 8 {
			return errors.Join(errors.New("malformed deleted marker"), closer.Close())
		}
		t.deleted = binary.BigEndian.Uint64(v)
		t.deleting.Store(t.deleted)
		if err := closer.Close(); err != nil {
			return err
		}
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: eventKey(t.prefix, t.deleted+1),
		UpperBound: prefixEnd(t.prefix),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	hwm := t.deleted
	if it.Last() {
		seq, e, err := decodeEvent(t.prefix, it.Key(), it.Value())
		if err != nil {
			return err
		}
		hwm = max(hwm, seq)
		t.assigned, t.visible = e.cum, e.cum
		if !it.First() {
			return errors.Join(errors.New("first event vanished"), it.Error())
		}
		_, e, err = decodeEvent(t.prefix, it.Key(), it.Value())
		if err != nil {
			return err
		}
		size := uint64(len(e.key) + len(e.value))
		if e.cum.bytes < size || e.cum.events < 1 || e.cum.bytes > t.visible.bytes ||
			e.cum.events > t.visible.events {
			return errBadEvent
		}
		t.base = cum{bytes: e.cum.bytes - size, events: e.cum.events - 1}
		t.oldest = time.Unix(0, e.at)
	}
	if err := it.Error(); err != nil {
		return err
	}
	if hwm >= t.next {
		return fmt.Errorf("event %d beyond lease %d", hwm, t.leased)
	}
	t.hwm.Store(hwm)
	return nil
}

func decodeEvent(prefix, k, v []byte) (uint64, decodedEvent, error) {
	if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
		return 0, decodedEvent{}, errBadKey
	}
	e, err := decodeEventValue(v)
	return binary.BigEndian.Uint64(k[len(prefix):]), e, err
}

// Close waits for the operations in progress, stops the background work
// and closes the database.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed {
		db.closeMu.Unlock()
		return ErrClosed
	}
	db.closed = true
	db.closeMu.Unlock()
	close(db.stop)
	db.bg.Wait()
	db.metrics.unregister()
	return db.pdb.Close()
}

// enter makes sure the DB stays open until the caller calls
// closeMu.RUnlock; it reports false (and holds nothing) if it is closed.
func (db *DB) enter() bool {
	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return false
	}
	return true
}

// Err returns the write failure that stopped appends, nil if there was
// none. After a failed write (an I/O error from Pebble) every Append fails
// until the process restarts; readiness checks should report it.
func (db *DB) Err() error {
	return db.err()
}

func (db *DB) err() error {
	if p := db.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records err as the DB's failure.
func (db *DB) fail(err error) {
	err = fmt.Errorf("hot: write failed, appends disabled until restart: %w", err)
	if db.failed.CompareAndSwap(nil, &err) {
		db.log.Error("hot tier write failed; refusing appends", "err", err)
	}
}

// lookup returns the state of table, nil if it has none.
func (db *DB) lookup(table string) *tableState {
	db.tablesMu.RLock()
	t := db.tables[table]
	db.tablesMu.RUnlock()
	return t
}

// tableFor returns the state of table, creating it if needed.
func (db *DB) tableFor(table string) *tableState {
	if t := db.lookup(table); t != nil {
		return t
	}
	db.tablesMu.Lock()
	defer db.tablesMu.Unlock()
	t := db.tables[table]
	if t == nil {
		t = newTableState(table)
		t.next = db.base + 1
		db.tables[table] = t
	}
	return t
}

// Append stores recs for table atomically (all or none) and returns one
// Result per record, in order.
//
// Sequences are assigned per table in call order, strictly increasing and
// never reused, also across restarts and after DeleteThrough. With Sync
// durability Append returns after the batch is in the synced WAL;
// concurrent Appends share WAL syncs.
//
// A record with a non-empty Key that was appended to the same table within
// the idempotency window (earlier, before a restart, or earlier in the same
// batch) is not stored: its Result is the original sequence with Duplicate
// set. While another Append with the same key is in flight, Append waits
// for its outcome. If every record is a duplicate, nothing is written.
//
// Append fails with ErrBacklogFull, storing nothing, if the records that
// are not duplicates would take the backlog over Options.MaxBacklogBytes.
// The context is honoured until sequences are assigned; after that the
// append runs to its end.
func (db *DB) Append(ctx context.Context, table string, recs []Record) ([]Result, error) {
	start := time.Now()
	res, err := db.append(ctx, table, recs)
	db.metrics.observeAppend(start, err)
	return res, err
}

func (db *DB) append(ctx context.Context, table string, recs []Record) ([]Result, error) {
	if len(recs) == 0 {
		return []Result{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !db.enter() {
		return nil, ErrClosed
	}
	defer db.closeMu.RUnlock()
	if err := db.err(); err != nil {
		return nil, err
	}
	t := db.tableFor(table)
	now := db.now()
	res := make([]Result, len(recs))

	var d *dedup
	for i := range recs {
		if recs[i].Key != "" {
			var err error
			if d, err = db.dedupe(ctx, t, recs, res, now); err != nil {
				return nil, err
			}
			defer t.release(d)
			break
		}
	}

	n, size := 0, uint64(0)
	for i := range recs {
		if !res[i].Duplicate {
			n++
			size += recordSize(&recs[i])
		}
	}
	if dups := len(recs) - n; dups > 0 {
		db.metrics.duplicates.Add(float64(dups))
	}
	if n == 0 {
		return res, nil
	}
	if size > maxAppendBytes {
		return nil, fmt.Errorf("hot: append of %d bytes exceeds the limit of %d", size, maxAppendBytes)
	}
	if !db.reserve(int64(size)) {
		return nil, ErrBacklogFull
	}
	if err := ctx.Err(); err != nil {
		db.backlog.Add(-int64(size))
		return nil, err
	}
	p, first, c, err := db.assign(t, n, size, now)
	if err != nil {
		db.backlog.Add(-int64(size))
		return nil, err
	}

	b := db.pdb.NewBatchWithSize(db.batchSize(t, recs, res, n))
	at := now.UnixNano()
	seq := first
	var kbuf []byte
	var vbuf [idemValueLen]byte
	for i := range recs {
		if res[i].Duplicate {
			continue
		}
		r := &recs[i]
		c.bytes += recordSize(r)
		c.events++
		op := b.SetDeferred(len(t.prefix)+8, eventHeaderLen(c, len(r.Key))+len(r.Key)+len(r.Value))
		copy(op.Key, t.prefix)
		binary.BigEndian.PutUint64(op.Key[len(t.prefix):], seq)
		putEventValue(op.Value, at, c, r.Key, r.Value)
		// Finish only adds to the index of indexed batches; b is not one.
		_ = op.Finish()
		if r.Key != "" {
			kbuf = appendIdemKey(kbuf[:0], table, r.Key)
			_ = b.Set(kbuf, appendIdemValue(vbuf[:0], seq, now), nil)
			kbuf = appendExpiryKey(kbuf[:0], now, table, r.Key)
			_ = b.Set(kbuf, nil, nil)
		}
		res[i].Seq = seq
		seq++
	}
	if d != nil {
		for _, l := range d.later {
			res[l.i].Seq = res[l.first].Seq
		}
	}
	if db.hooks.beforeApply != nil {
		err = db.hooks.beforeApply(table, first, p.last)
	}
	if err == nil {
		err = db.committer.commit(b)
	}
	// Close only returns the batch to its pool; it cannot fail after Apply.
	_ = b.Close()
	if err != nil {
		db.fail(err)
	}
	t.complete(p, err != nil)
	if err != nil {
		return nil, db.err()
	}
	db.metrics.appendedEvents.Add(float64(n))
	db.metrics.appendedBytes.Add(float64(size))
	return res, nil
}

// batchSize is the size of the batch representation of an append.
func (db *DB) batchSize(t *tableState, recs []Record, res []Result, n int) int {
	// Per record: kind, two uvarint lengths, key, and the value header
	// with uvarints of at most 10 bytes.
	size := 12 + n*(1+2*5+len(t.prefix)+8+8+3*10)
	// Per key: the idempotency entry and its index entry.
	keyed := 2*(1+2*5+1) + idemValueLen + 8
	for i := range recs {
		if res[i].Duplicate {
			continue
		}
		r := &recs[i]
		size += len(r.Key) + len(r.Value)
		if r.Key != "" {
			size += keyed + 2*(strLen(t.name)+strLen(r.Key))
		}
	}
	return size
}

// reserve adds n bytes to the backlog unless that takes it over the cap.
func (db *DB) reserve(n int64) bool {
	for {
		cur := db.backlog.Load()
		if cur+n > db.maxBacklog {
			db.metrics.backlogFull.Inc()
			return false
		}
		if db.backlog.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// assign hands out n sequences of t for records of size bytes and
// registers the append as pending. It returns the record counter before
// the first of them.
func (db *DB) assign(t *tableState, n int, size uint64, at time.Time) (*pendingAppend, uint64, cum, error) {
	t.mu.Lock()
	if t.next+uint64(n)-1 > db.limit {
		t.mu.Unlock()
		return nil, 0, cum{}, fmt.Errorf("%w: table %s, stream %d", ErrStreamFull, t.name, db.stream)
	}
	for t.next+uint64(n)-1 > t.leased {
		if err := db.err(); err != nil {
			t.mu.Unlock()
			return nil, 0, cum{}, err
		}
		if t.extending {
			t.leaseCond.Wait()
			continue
		}
		if err := db.leaseTo(t, t.next+uint64(n)-1+leaseBlock); err != nil {
			t.mu.Unlock()
			return nil, 0, cum{}, err
		}
	}
	first := t.next
	t.next += uint64(n)
	before := t.assigned
	t.assigned.bytes += size
	t.assigned.events += uint64(n)
	p := &pendingAppend{last: t.next - 1, after: t.assigned, at: at}
	t.pending = append(t.pending, p)
	var ahead uint64
	if !t.extending && t.leased-p.last < leaseBlock/2 {
		t.extending = true
		ahead = p.last + leaseBlock
	}
	t.mu.Unlock()
	if ahead != 0 {
		db.bg.Add(1)
		go db.extendLease(t, ahead)
	}
	return p, first, before, nil
}

// leaseTo writes a lease up to target while appends wait for it. t.mu is
// held, and released during the write; no lease write may be in flight.
// On failure it returns the DB's error.
func (db *DB) leaseTo(t *tableState, target uint64) error {
	t.extending = true
	t.mu.Unlock()
	err := db.writeLease(t, target)
	t.mu.Lock()
	t.extending = false
	t.leaseCond.Broadcast()
	if err != nil {
		return db.err()
	}
	t.leased = target
	return nil
}

// extendLease writes a lease before the current one runs out.
func (db *DB) extendLease(t *tableState, target uint64) {
	defer db.bg.Done()
	err := db.writeLease(t, target)
	t.mu.Lock()
	t.extending = false
	if err == nil {
		t.leased = target
	}
	t.leaseCond.Broadcast()
	t.mu.Unlock()
}

// writeLease durably records that t may hand out sequences up to target.
// Only one lease write per table is in flight (t.extending), so leases are
// written in increasing order. The write is synced whatever the
// durability: a lease that a crash takes back could let a sequence be
// handed out twice.
func (db *DB) writeLease(t *tableState, target uint64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], target)
	b := db.pdb.NewBatch()
	_ = b.Set(t.leaseKey, v[:], nil)
	err := db.pdb.Apply(b, pebble.Sync)
	_ = b.Close()
	if err != nil {
		db.fail(err)
	}
	return err
}

// complete marks p applied (or failed) and makes the appends that no
// longer wait for a lower sequence visible.
func (t *tableState) complete(p *pendingAppend, failed bool) {
	t.mu.Lock()
	p.done, p.failed = true, failed
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		q := t.pending[n]
		if t.visible == t.base && !q.failed {
			t.oldest = q.at
		}
		t.visible = q.after
		n++
	}
	if n > 0 {
		t.hwm.Store(t.pending[n-1].last)
		if t.settled != nil {
			close(t.settled)
			t.settled = nil
		}
		// Shift the rest down rather than reslicing, so that the array
		// is reused instead of reallocated by every append.
		m := copy(t.pending, t.pending[n:])
		clear(t.pending[m:])
		t.pending = t.pending[:m]
	}
	t.mu.Unlock()
}

// Read returns up to limit events of table with Seq > after, in ascending
// order. It reads only up to the table's high watermark, so it never
// returns an event while a lower sequence is in flight; a reader that
// passes the last Seq it saw as after never skips an event. Sequences can
// have gaps (appends that failed or were cut off by a crash, restarts).
// Read returns nothing if limit < 1.
func (db *DB) Read(ctx context.Context, table string, after uint64, limit int) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !db.enter() {
		return nil, ErrClosed
	}
	defer db.closeMu.RUnlock()
	t := db.lookup(table)
	if t == nil || limit < 1 {
		return nil, nil
	}
	hwm := t.hwm.Load()
	if after >= hwm {
		return nil, nil
	}
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: eventKey(t.prefix, after+1),
		UpperBound: eventKey(t.prefix, hwm+1),
	})
	if err != nil {
		return nil, fmt.Errorf("hot: read %s: %w", table, err)
	}
	events := make([]Event, 0, min(uint64(limit), hwm-after, 1024))
	var arena []byte
	for it.First(); it.Valid() && len(events) < limit; it.Next() {
		seq, e, err := decodeEvent(t.prefix, it.Key(), it.Value())
		if err != nil {
			return nil, errors.Join(fmt.Errorf("hot: read %s: %w", table, err), it.Close())
		}
		if len(e.value) > cap(arena)-len(arena) {
			arena = make([]byte, 0, max(len(e.value), 64<<10))
		}
		n := len(arena)
		arena = append(arena, e.value...)
		events = append(events, Event{
			Seq:      seq,
			Key:      string(e.key),
			Value:    arena[n:len(arena):len(arena)],
			Appended: time.Unix(0, e.at),
		})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("hot: read %s: %w", table, err)
	}
	db.metrics.readEvents.Add(float64(len(events)))
	return events, nil
}

// HighWatermark is the highest visible sequence of table, 0 if none: every
// sequence up to it is stored (or was deleted) or belonged to an append
// that was never acknowledged.
func (db *DB) HighWatermark(table string) uint64 {
	if t := db.lookup(table); t != nil {
		return t.hwm.Load()
	}
	return 0
}

// Settle returns the table's high watermark once every append that had
// its sequences before the call is visible (applied, or failed and never
// acknowledged). An append is acknowledged as soon as it is applied, but
// it becomes visible only when every lower sequence has too: right after
// an acknowledgement HighWatermark can still be below the acknowledged
// sequence, for as long as a concurrent append of a lower sequence takes
// to finish. A reader that must see every event acknowledged before it
// started reads up to what Settle returns. The wait is that of the appends
// in flight, a WAL write and sync; Settle returns ctx's error if ctx ends
// first.
func (db *DB) Settle(ctx context.Context, table string) (uint64, error) {
	t := db.lookup(table)
	if t == nil {
		return 0, ctx.Err()
	}
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.mu.Unlock()
		return t.hwm.Load(), ctx.Err()
	}
	target := t.pending[len(t.pending)-1].last
	for {
		if hwm := t.hwm.Load(); hwm >= target {
			t.mu.Unlock()
			return hwm, nil
		}
		if t.settled == nil {
			t.settled = make(chan struct{})
		}
		ch := t.settled
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		t.mu.Lock()
	}
}

// Watch returns the table's high watermark and a channel that is closed
// when it next moves: a reader that has read up to the watermark waits on
// the channel for more, and is woken by the append that makes them
// visible, at the cost to that append of closing one channel however many
// readers wait. The channel of a table that has no events yet is closed
// by its first append; Close does not close it.
func (db *DB) Watch(table string) (uint64, <-chan struct{}) {
	t := db.tableFor(table)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.settled == nil {
		t.settled = make(chan struct{})
	}
	return t.hwm.Load(), t.settled
}

// DeletedThrough is the highest sequence a DeleteThrough of the table has
// started to delete through, 0 if none: events at or below it may be gone.
// A Read that returned before DeletedThrough was called missed no event
// above what DeletedThrough returns.
func (db *DB) DeletedThrough(table string) uint64 {
	if t := db.lookup(table); t != nil {
		return t.deleting.Load()
	}
	return 0
}

// DeleteThrough deletes the table's events with Seq <= seq and releases
// their backlog; a flusher calls it for the events it committed. A seq
// beyond the high watermark is taken as the high watermark: events that are
// not yet visible were not read, so they are never deleted. Deleting
// through a sequence at or below an earlier DeleteThrough does nothing.
// Sequences are never reused.
func (db *DB) DeleteThrough(ctx context.Context, table string, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !db.enter() {
		return ErrClosed
	}
	defer db.closeMu.RUnlock()
	t := db.lookup(table)
	if t == nil {
		return nil
	}
	t.deleteMu.Lock()
	defer t.deleteMu.Unlock()
	seq = min(seq, t.hwm.Load())
	t.mu.Lock()
	deleted := t.deleted
	t.mu.Unlock()
	if seq <= deleted {
		return nil
	}

	// The counter of the last stored event <= seq is the new base.
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: eventKey(t.prefix, deleted+1),
		UpperBound: eventKey(t.prefix, seq+1),
	})
	if err != nil {
		return fmt.Errorf("hot: delete %s: %w", table, err)
	}
	var base cum
	found := it.Last()
	if found {
		var e decodedEvent
		_, e, err = decodeEvent(t.prefix, it.Key(), it.Value())
		base = e.cum
	}
	if err := errors.Join(err, it.Error(), it.Close()); err != nil {
		return fmt.Errorf("hot: delete %s: %w", table, err)
	}

	t.deleting.Store(seq)
	b := db.pdb.NewBatch()
	_ = b.DeleteRange(eventKey(t.prefix, 0), eventKey(t.prefix, seq+1), nil)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], seq)
	_ = b.Set(tableKey(kindDeleted, table), v[:], nil)
	err = db.pdb.Apply(b, db.writeOpts)
	_ = b.Close()
	if err != nil {
		return fmt.Errorf("hot: delete %s: %w", table, err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.deleted = seq
	var freed cum
	if found && base.events > t.base.events {
		freed = cum{bytes: base.bytes - t.base.bytes, events: base.events - t.base.events}
		t.base = base
	}
	db.backlog.Add(-int64(freed.bytes))
	db.metrics.deletedEvents.Add(float64(freed.events))
	db.metrics.deletedBytes.Add(float64(freed.bytes))
	// Under t.mu no append becomes visible, so the first event up to hwm
	// is the oldest one.
	t.oldest = time.Time{}
	if t.visible != t.base {
		at, err := db.firstEventTime(t, seq+1, t.hwm.Load())
		if err != nil {
			return fmt.Errorf("hot: delete %s: %w", table, err)
		}
		t.oldest = at
	}
	return nil
}

// firstEventTime returns the append time of t's first event in [from, to],
// zero if there is none.
func (db *DB) firstEventTime(t *tableState, from, to uint64) (time.Time, error) {
	if from > to {
		return time.Time{}, nil
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: eventKey(t.prefix, from),
		UpperBound: eventKey(t.prefix, to+1),
	})
	if err != nil {
		return time.Time{}, err
	}
	var at time.Time
	if it.First() {
		var e decodedEvent
		_, e, err = decodeEvent(t.prefix, it.Key(), it.Value())
		at = time.Unix(0, e.at)
	}
	return at, errors.Join(err, it.Error(), it.Close())
}

// Tables lists the tables that have or had events, sorted.
func (db *DB) Tables() []string {
	db.tablesMu.RLock()
	ts := make([]*tableState, 0, len(db.tables))
	for _, t := range db.tables {
		ts = append(ts, t)
	}
	db.tablesMu.RUnlock()
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		t.mu.Lock()
		had := t.leased > 0
		t.mu.Unlock()
		if had {
			names = append(names, t.name)
		}
	}
	slices.Sort(names)
	return names
}

// BacklogBytes is the bytes (keys and values of the records) stored and
// not yet deleted over all tables, including appends in flight.
func (db *DB) BacklogBytes() int64 {
	return db.backlog.Load()
}

// TableBacklog returns the bytes and number of the table's visible events
// that are not yet deleted, and the append time of the oldest of them
// (zero if none). After a crash, appends that were cut off between stored
// events still count until DeleteThrough passes them.
func (db *DB) TableBacklog(table string) (bytes int64, events int64, oldest time.Time) {
	t := db.lookup(table)
	if t == nil {
		return 0, 0, time.Time{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(t.visible.bytes - t.base.bytes), int64(t.visible.events - t.base.events), t.oldest
}
