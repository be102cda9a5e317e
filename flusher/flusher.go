// Package flusher moves acknowledged events from the hot tier into their
// Iceberg tables. A flush cycle reads a table's events after its committed
// watermark, builds Arrow rows in the table's current schema, writes
// Parquet files split by the table's current partition spec and sorted by
// its sort order, and commits one append snapshot through the catalog's
// commit path. The commit also sets the table's watermark for this node
// (a table property and a snapshot summary entry), so whether an event is
// in the table is decided by the table alone: a crash anywhere neither
// loses nor duplicates rows. Committed events are then deleted from the
// hot tier.
//
// Cycles run per table when its oldest unflushed event is one flush
// interval old, when its backlog reaches the cycle size, on request
// (Flush), when a writer waits for its events to be committed
// (WaitCommitted), and at Close.
//
// Tail writes the events no snapshot holds yet as data files for a live
// plan, excluding the table's cycles while it reads the table and the
// hot tier, and keeps them for later plans; the next cycle commits those
// very files with the watermark inside the commit, as it commits its own.
package flusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/hot"
)

// Catalog is what the flusher needs from the catalog.
type Catalog interface {
	LoadTable(ctx context.Context, id catalog.Ident) (*catalog.Table, error)
	CommitTable(ctx context.Context, ch catalog.TableChange, idem *catalog.Idempotency) (*catalog.Table, error)
	ListNamespaces(ctx context.Context, parent catalog.Namespace, pageToken string, pageSize int) (catalog.Page[catalog.Namespace], error)
	ListTables(ctx context.Context, ns catalog.Namespace, pageToken string, pageSize int) (catalog.Page[catalog.Ident], error)
}

// Hot is what the flusher needs from the hot tier. Tables are keyed by
// the Iceberg table's UUID.
type Hot interface {
	NodeID() string
	Tables() []string
	Read(ctx context.Context, table string, after uint64, limit int) ([]hot.Event, error)
	HighWatermark(table string) uint64
	Settle(ctx context.Context, table string) (uint64, error)
	TableBacklog(table string) (bytes int64, events int64, oldest time.Time)
	OldestAfter(table string, seq uint64) (time.Time, error)
	DeleteThrough(ctx context.Context, table string, seq uint64) error
	Label(table string) (string, error)
	SetLabel(table, label string) error
}

// Options configure a Flusher. Zero values take the documented defaults.
type Options struct {
	Catalog Catalog
	Hot     Hot
	// FS returns the FileIO that data files are written with: the
	// warehouse's.
	FS table.FSysF
	// Interval is how old a table's oldest unflushed event may get before
	// a cycle starts; the table property zombi.flush.interval-ms
	// overrides it per table. Default 1s.
	Interval time.Duration
	// Retention keeps committed events in the hot tier this long after
	// their commit, for hot readers. Default 0: deleted at once.
	Retention time.Duration
	// MaxCycleBytes caps the hot-tier bytes one cycle reads, and so its
	// memory; a table whose backlog reaches it is flushed without waiting
	// for the interval. Default 64 MiB.
	MaxCycleBytes int64
	// Concurrency is how many tables flush at once. Default 2.
	Concurrency int
	// Tick is how often the scheduler looks at the tables. Default 20ms.
	Tick time.Duration
	// TailReuse is how long the data files of a hot tail (Tail) are handed
	// to later calls, and may be committed by a cycle, after they were
	// written; older ones are written afresh. Default 20 minutes. Files
	// no commit took are orphans, which orphan cleanup deletes once older
	// than its floor: TailReuse plus the lifetime of the plans listing
	// them must stay below it.
	TailReuse time.Duration
	// TailWriters bounds the tails being written at once, over all tables
	// (one table's calls take turns anyway). Default 2.
	TailWriters int
	// TailWait bounds how long a Tail call waits for a running cycle of
	// its table and for a writer; ErrBusy beyond. Default 10s.
	TailWait time.Duration
	// Staging, for a cluster of nodes on one Postgres, makes cycles stage
	// their files and the holder of a table's commit lease commit every
	// node's batches, once per flush interval (shared.go). Leases is then
	// required. Nil: each cycle commits its own files.
	Staging    Staging
	Leases     Leases
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Result is what a flush cycle did.
type Result struct {
	Table string
	// SnapshotID is the snapshot the cycle committed; with nothing to
	// commit, the table's current snapshot (0 if it has none).
	SnapshotID int64
	Rows       int64
	Files      int
	Bytes      int64
	// Watermark is the highest sequence of this node in the table.
	Watermark uint64
}

// Errors.
var (
	// ErrClosed: the flusher is closing or closed.
	ErrClosed = errors.New("flusher: closed")
	// errTableGone: no catalog table has the events' table UUID.
	errTableGone = errors.New("table was dropped")
	// ErrSchema: an event cannot be written under the table's current
	// schema (for example a required column was added). The event stays
	// in the hot tier and the table's flushes fail until that changes.
	ErrSchema = errors.New("event does not fit the table's schema")
	// ErrStorage: data files could not be written.
	ErrStorage = errors.New("object storage")
	// ErrBusy: a Tail waited Options.TailWait for its table's cycle or a
	// writer; retry later.
	ErrBusy = errors.New("flusher: busy writing hot tails; retry later")
)

// Flusher runs flush cycles. It is safe for concurrent use.
type Flusher struct {
	cat     Catalog
	hot     Hot
	fs      table.FSysF
	node    string
	opts    Options
	log     *slog.Logger
	metrics *metrics

	ctx    context.Context // cancelled by Close when the drain ends
	cancel context.CancelFunc

	mu      sync.Mutex
	tables  map[string]*tableState
	running int
	closing bool
	drained chan struct{} // closed by the scheduler once closing and idle
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	// committerDone is closed when the shared-commit loop ends (closed
	// at once without staging).
	committerDone chan struct{}
	workers       sync.WaitGroup
	tailSlots     chan struct{} // TailWriters
	closeOnce     sync.Once
	closeErr      error
	// lastCommit is when a cycle last committed, zero before the first.
	lastCommit time.Time
}

// tableState is what the flusher knows about one table. Guarded by
// Flusher.mu. Whoever set running owns the table's flush work and its
// hot tail: a cycle, or a Tail call (tailing); they exclude each other.
type tableState struct {
	key      string
	ident    catalog.Ident
	resolved bool // ident was checked against the catalog
	// committed is the highest sequence known to be in the table or to
	// hold no event.
	committed uint64
	// deleted is the highest sequence deleted from the hot tier.
	deleted  uint64
	snapshot int64 // the table's snapshot that holds committed
	interval time.Duration
	// oldest is the append time of the first event after committed, zero
	// when unknown or none.
	oldest  time.Time
	running bool
	tailing bool // running is a Tail call's
	// cycleWanted: a cycle is due while a Tail holds the table; further
	// Tail calls wait for it, so that plans cannot starve the flusher.
	cycleWanted bool
	// idle, when not nil, is closed when running ends or cycleWanted is
	// cleared without a cycle: Tail calls wait on it.
	idle     chan struct{}
	tail     *tail // the hot tail written for plans, if any
	learning bool  // learn runs
	failures int
	retryAt  time.Time
	lastErr  error
	requests []*request
	waiters  []*waiter
	// deletes are commits whose events wait for the retention window.
	deletes []pendingDelete
	// With staging (shared.go): staged is the highest sequence staged or
	// known to hold no event, stagedThrough the end of this node's staged
	// batches, and checkAt when a cycle next looks whether a shared commit
	// took them, so that their events leave the hot tier.
	staged, stagedThrough uint64
	checkAt               time.Time
	// recent are the table's last commits on this node (Activity).
	recent *commitRing
}

type request struct {
	done chan outcome // buffered
}

type outcome struct {
	res Result
	err error
}

type waiter struct {
	seq  uint64
	done chan int64 // buffered; the snapshot ID
}

type pendingDelete struct {
	seq uint64
	at  time.Time
}

// DefaultTailReuse is Options.TailReuse's default.
const DefaultTailReuse = 20 * time.Minute

// New returns a running Flusher. Close it to flush what is left and stop.
func New(opts Options) (*Flusher, error) {
	if opts.Catalog == nil || opts.Hot == nil || opts.FS == nil {
		return nil, errors.New("flusher: Catalog, Hot and FS are required")
	}
	if opts.Staging != nil && opts.Leases == nil {
		return nil, errors.New("flusher: Staging needs Leases")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxCycleBytes <= 0 {
		opts.MaxCycleBytes = 64 << 20
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.Tick <= 0 {
		opts.Tick = 20 * time.Millisecond
	}
	if opts.TailReuse <= 0 {
		opts.TailReuse = DefaultTailReuse
	}
	if opts.TailWriters <= 0 {
		opts.TailWriters = 2
	}
	if opts.TailWait <= 0 {
		opts.TailWait = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Flusher{
		cat:     opts.Catalog,
		hot:     opts.Hot,
		fs:      opts.FS,
		node:    opts.Hot.NodeID(),
		opts:    opts,
		log:     opts.Logger,
		tables:  make(map[string]*tableState),
		drained: make(chan struct{}),
		wake:    make(chan struct{}, 1),

		tailSlots: make(chan struct{}, opts.TailWriters),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),

		committerDone: make(chan struct{}),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.metrics = newMetrics(f)
	if err := f.metrics.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("flusher: register metrics: %w", err)
	}
	go f.loop()
	if opts.Staging != nil {
		go f.committer()
	} else {
		close(f.committerDone)
	}
	return f, nil
}

// NodeID is the node whose watermark this flusher keeps.
func (f *Flusher) NodeID() string { return f.node }

// Close flushes every table's remaining events, waiting at most until ctx
// ends, then stops. Events it could not flush stay in the hot tier for the
// next start. Later calls return the first call's result.
func (f *Flusher) Close(ctx context.Context) error {
	f.closeOnce.Do(func() { f.closeErr = f.close(ctx) })
	return f.closeErr
}

func (f *Flusher) close(ctx context.Context) error {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	f.poke()
	var err error
	select {
	case <-f.drained:
	case <-ctx.Done():
		err = fmt.Errorf("flusher: closed before every table was flushed: %w", context.Cause(ctx))
	}
	close(f.stop)
	f.cancel()
	<-f.done
	<-f.committerDone
	f.workers.Wait()
	f.mu.Lock()
	for _, st := range f.tables {
		for _, r := range st.requests {
			r.done <- outcome{err: ErrClosed}
		}
		st.requests = nil
		for _, w := range st.waiters {
			close(w.done)
		}
		st.waiters = nil
	}
	f.mu.Unlock()
	return err
}

// StuckFailures is how many cycles of a table must fail in a row for
// Stuck to report it: with the backoff between them, about two seconds of
// failures.
const StuckFailures = 5

// Stuck returns an error naming the tables whose last StuckFailures
// cycles failed, each with its last error, or nil when there are none.
// Their events wait in the hot tier: a schema the events do not fit, or
// storage or a catalog that keeps failing, needs an operator.
func (f *Flusher) Stuck() error {
	f.mu.Lock()
	var msgs []string
	for _, st := range f.tables {
		if st.failures >= StuckFailures && st.lastErr != nil {
			name := st.key
			if st.resolved {
				name = st.ident.String()
			}
			msgs = append(msgs, name+": "+st.lastErr.Error())
		}
	}
	f.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	slices.Sort(msgs)
	const most = 3
	if len(msgs) > most {
		msgs = append(msgs[:most], fmt.Sprintf("and %d more tables", len(msgs)-most))
	}
	return fmt.Errorf("flushes keep failing: %s", strings.Join(msgs, "; "))
}

// Flush runs a cycle for the table and returns what it committed. Events
// acknowledged before the call are in the table when it returns without
// error.
func (f *Flusher) Flush(ctx context.Context, id catalog.Ident) (Result, error) {
	t, err := f.cat.LoadTable(ctx, id)
	if err != nil {
		return Result{}, err
	}
	key := t.Metadata.TableUUID().String()
	r := &request{done: make(chan outcome, 1)}
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return Result{}, ErrClosed
	}
	st := f.state(key)
	if !st.resolved {
		st.ident = id
	}
	st.requests = append(st.requests, r)
	f.mu.Unlock()
	f.poke()
	select {
	case o := <-r.done:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, context.Cause(ctx)
	}
}

// WaitCommitted waits until the event with sequence seq of the hot-tier
// table key is committed and returns the ID of a snapshot that holds it.
// A table with waiters is flushed without waiting for its interval.
func (f *Flusher) WaitCommitted(ctx context.Context, key string, seq uint64) (int64, error) {
	f.mu.Lock()
	st := f.state(key)
	if st.committed >= seq && st.snapshot != 0 {
		id := st.snapshot
		f.mu.Unlock()
		return id, nil
	}
	if f.closing {
		f.mu.Unlock()
		return 0, ErrClosed
	}
	w := &waiter{seq: seq, done: make(chan int64, 1)}
	st.waiters = append(st.waiters, w)
	f.mu.Unlock()
	f.poke()
	select {
	case id, ok := <-w.done:
		if !ok {
			return 0, ErrClosed
		}
		return id, nil
	case <-ctx.Done():
		f.mu.Lock()
		st.waiters = slices.DeleteFunc(st.waiters, func(x *waiter) bool { return x == w })
		f.mu.Unlock()
		return 0, context.Cause(ctx)
	}
}

// state returns the table's state, creating it. f.mu must be held.
func (f *Flusher) state(key string) *tableState {
	st := f.tables[key]
	if st == nil {
		st = &tableState{key: key, interval: f.opts.Interval}
		f.tables[key] = st
	}
	return st
}

func (f *Flusher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// loop is the scheduler: every tick, or when poked, it starts a cycle for
// each table that is due, up to Concurrency at once.
func (f *Flusher) loop() {
	defer close(f.done)
	tick := time.NewTicker(f.opts.Tick)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		case <-f.wake:
		}
		f.schedule()
	}
}

func (f *Flusher) schedule() {
	keys := f.hot.Tables()
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.state(k)
	}
	idle := f.running == 0
	for _, st := range f.tables {
		if st.running {
			if st.tailing {
				idle = false
				if due, _ := f.due(st, now); due {
					st.cycleWanted = true
				}
			}
			continue
		}
		due, pending := f.due(st, now)
		if pending {
			idle = false
		}
		if !due && st.cycleWanted {
			st.cycleWanted = false
			st.wakeWaiters()
		}
		if !due || f.running >= f.opts.Concurrency {
			continue
		}
		idle = false
		st.cycleWanted = false
		st.running = true
		f.running++
		f.workers.Add(1)
		go f.work(st)
	}
	if f.closing && idle {
		select {
		case <-f.drained:
		default:
			close(f.drained)
		}
	}
}

// due reports whether st needs a cycle now, and whether it has work left
// at all (for the drain at Close). f.mu is held.
func (f *Flusher) due(st *tableState, now time.Time) (due, pending bool) {
	if len(st.requests) > 0 {
		return true, true
	}
	hwm := f.hot.HighWatermark(st.key)
	// With staging, events up to staged wait for a shared commit, not
	// for a cycle; a cycle an interval after the last one looks whether
	// the commit came, so that they leave the hot tier.
	base := max(st.committed, st.staged)
	waiting := hwm > base
	unconfirmed := st.stagedThrough > st.committed
	deleteDue := len(st.deletes) > 0 && !now.Before(st.deletes[0].at) && !f.closing
	// A shared commit of this node (noteShared) leaves the deletion of
	// its events to a cycle.
	undeleted := f.opts.Staging != nil && f.opts.Retention == 0 && st.committed > st.deleted
	if (unconfirmed || undeleted) && !now.Before(st.checkAt) && !now.Before(st.retryAt) {
		return true, true
	}
	if !waiting && !deleteDue && len(st.waiters) == 0 {
		return false, unconfirmed
	}
	if now.Before(st.retryAt) {
		return false, waiting
	}
	if f.closing || len(st.waiters) > 0 || deleteDue {
		return true, true
	}
	if waiting && !st.resolved {
		// Its interval is a table property: learn it before timing the
		// table's first cycle.
		if !st.learning {
			st.learning = true
			f.workers.Add(1)
			go f.learn(st)
		}
		return false, true
	}
	if st.oldest.IsZero() {
		at, err := f.hot.OldestAfter(st.key, base)
		if err != nil {
			f.log.Error("reading the hot tier", "table", st.key, "err", err)
			return false, true
		}
		if at.IsZero() {
			// Only sequences that hold no event (failed appends): a
			// cycle finds nothing and moves committed past them.
			return true, true
		}
		st.oldest = at
	}
	if !now.Before(st.oldest.Add(st.interval)) {
		return true, true
	}
	// The backlog counts committed events kept for --hot-retention too;
	// estimate the bytes after committed from the sequences.
	bytes, events, _ := f.hot.TableBacklog(st.key)
	if events > 0 && uint64(events) > hwm-base {
		bytes = int64(float64(bytes) / float64(events) * float64(hwm-base))
	}
	return bytes >= f.opts.MaxCycleBytes, true
}

// work runs one cycle for st and records its outcome.
func (f *Flusher) work(st *tableState) {
	defer f.workers.Done()
	f.mu.Lock()
	reqs := st.requests
	st.requests = nil
	f.mu.Unlock()

	f.mu.Lock()
	force := len(reqs) > 0 || len(st.waiters) > 0 || f.closing
	f.mu.Unlock()
	res, err := f.cycle(f.ctx, st, force)

	f.mu.Lock()
	st.running = false
	st.wakeWaiters()
	f.running--
	if err != nil {
		st.failures++
		st.retryAt = f.opts.Now().Add(backoff(st.failures))
		st.lastErr = err
	} else {
		st.failures, st.retryAt, st.lastErr = 0, time.Time{}, nil
	}
	for _, r := range reqs {
		r.done <- outcome{res: res, err: err}
	}
	if st.snapshot != 0 {
		st.waiters = slices.DeleteFunc(st.waiters, func(w *waiter) bool {
			if w.seq > st.committed {
				return false
			}
			w.done <- st.snapshot
			return true
		})
	}
	f.mu.Unlock()
	f.poke()
}

// learn finds st's table and records what the scheduler needs of it,
// without flushing.
func (f *Flusher) learn(st *tableState) {
	defer f.workers.Done()
	f.mu.Lock()
	hint, resolved := st.ident, st.resolved
	f.mu.Unlock()
	t, err := f.resolve(f.ctx, st.key, hint, resolved)
	f.mu.Lock()
	defer f.mu.Unlock()
	st.learning = false
	switch {
	case err == nil:
		st.ident, st.resolved = t.Ident, true
		st.interval = interval(t.Metadata.Properties(), f.opts.Interval)
	case errors.Is(err, errTableGone):
		// A cycle discards the events, after the default interval.
		st.resolved = true
	default:
		st.failures++
		st.retryAt = f.opts.Now().Add(backoff(st.failures))
	}
}

// backoff is the wait before the next cycle of a table that failed n times
// in a row: 100ms doubling to 30s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// atRiskBytes estimates the hot-tier bytes of the events that only this
// node's disk holds: after each table's committed (and, in a cluster,
// staged) sequence.
func (f *Flusher) atRiskBytes() float64 {
	bytes, _ := f.atRisk()
	return bytes
}

// atRiskEvents estimates the number of those events.
func (f *Flusher) atRiskEvents() float64 {
	_, events := f.atRisk()
	return events
}

// atRisk returns the hot-tier bytes and the number of the events after
// each table's committed (and, in a cluster, staged) sequence. The
// backlog may hold committed events (retention, or deletion not yet
// done), and sequences may skip (a restart past staged ones): the share
// after the base is counted, at most the events the table holds.
func (f *Flusher) atRisk() (bytes, events float64) {
	keys := f.hot.Tables()
	bases := make(map[string]uint64, len(keys))
	f.mu.Lock()
	for _, key := range keys {
		if st := f.tables[key]; st != nil {
			bases[key] = max(st.committed, st.stagedThrough)
		} else {
			bases[key] = 0
		}
	}
	f.mu.Unlock()
	for key, base := range bases {
		hwm := f.hot.HighWatermark(key)
		if hwm <= base {
			continue
		}
		b, n, _ := f.hot.TableBacklog(key)
		if n == 0 {
			continue
		}
		share := min(1, float64(hwm-base)/float64(n))
		bytes += float64(b) * share
		events += float64(n) * share
	}
	return bytes, events
}

// backlogOverdue returns, over all tables, how far at now the oldest event
// not yet committed (in a cluster: not yet staged) is past its table's
// flush interval: zero while every table is within its interval.
func (f *Flusher) backlogOverdue(now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var worst time.Duration
	for _, st := range f.tables {
		if st.oldest.IsZero() {
			continue
		}
		worst = max(worst, now.Sub(st.oldest)-st.interval)
	}
	return worst
}

// OldestPending returns the append time of the oldest event not yet
// committed (in a cluster: not yet staged) over all tables, zero if none
// is known.
func (f *Flusher) OldestPending() time.Time {
	return f.oldestPending()
}

// LastCommit returns when this node last committed events, zero if it
// has not yet.
func (f *Flusher) LastCommit() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastCommit
}

func (f *Flusher) oldestPending() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var oldest time.Time
	for _, st := range f.tables {
		if !st.oldest.IsZero() && (oldest.IsZero() || st.oldest.Before(oldest)) {
			oldest = st.oldest
		}
	}
	return oldest
}
