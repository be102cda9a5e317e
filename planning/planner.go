package planning

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
)

// Options configure a Planner.
type Options struct {
	// FS opens the warehouse's FileIO (warehouse.Warehouse.FS). Required.
	// Every file a plan opens goes through warehouse.Confine for its
	// table's location.
	FS func(context.Context) (icebergio.IO, error)
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the planner's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Lifetime is how long a plan is kept after its last use (its making,
	// a fetch of its result or of one of its tasks). Default 10 minutes.
	Lifetime time.Duration
	// MaxPlans bounds the live plans: those with plan tasks not yet
	// fetched, which the planner cannot drop without failing a scan.
	// Default 128.
	MaxPlans int
	// MaxPlanBytes bounds the estimated memory of every plan kept, live or
	// answered in full; answered ones are dropped oldest first to make
	// room. Default 256 MiB.
	MaxPlanBytes int64
	// PageFiles is how many data files one page aims to hold; a page is
	// never smaller than one manifest. Default 2,000.
	PageFiles int
	// MaxPageFiles bounds the files one page reads: its data manifests and
	// every delete manifest of the snapshot, counted from the manifest
	// list. A scan that needs more in one page is ErrUnsupported.
	// Default 100,000.
	MaxPageFiles int64
	// Workers bounds the pages planned at once. Default GOMAXPROCS.
	Workers int
	// MaxWaiting bounds the requests waiting for a worker; more are
	// ErrBusy at once. Default 64.
	MaxWaiting int
	// QueueWait is how long a request waits for a worker before it is
	// ErrBusy. Default 10 seconds.
	QueueWait time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Planner makes and keeps scan plans. It is safe for concurrent use.
type Planner struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	slots   chan struct{}
	waiting chan struct{}

	mu    sync.Mutex
	plans map[string]*plan
	keys  map[string]string // table + idempotency key → plan ID
	live  int
	bytes int64
}

// New returns a Planner.
func New(opts Options) (*Planner, error) {
	if opts.FS == nil {
		return nil, errors.New("planning: Options.FS is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = 10 * time.Minute
	}
	if opts.MaxPlans <= 0 {
		opts.MaxPlans = 128
	}
	if opts.MaxPlanBytes <= 0 {
		opts.MaxPlanBytes = 256 << 20
	}
	if opts.PageFiles <= 0 {
		opts.PageFiles = 2000
	}
	if opts.MaxPageFiles <= 0 {
		opts.MaxPageFiles = 100_000
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = 64
	}
	if opts.QueueWait <= 0 {
		opts.QueueWait = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Planner{
		opts:    opts,
		log:     opts.Logger,
		metrics: newMetrics(opts.Registerer),
		slots:   make(chan struct{}, opts.Workers),
		waiting: make(chan struct{}, opts.MaxWaiting),
		plans:   map[string]*plan{},
		keys:    map[string]string{},
	}, nil
}

// Run forgets expired plans until ctx ends, so that what their Sources
// hold is released without waiting for the next request.
func (p *Planner) Run(ctx context.Context) {
	t := time.NewTicker(max(p.opts.Lifetime/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.mu.Lock()
			p.expire()
			p.mu.Unlock()
		}
	}
}

// Lifetime is how long an unused plan is kept.
func (p *Planner) Lifetime() time.Duration { return p.opts.Lifetime }

// Status is a plan's state as fetchPlanningResult reports it.
type Status string

// The statuses a plan reports.
const (
	Completed Status = "completed"
	Cancelled Status = "cancelled"
)

// Response is the answer to planTableScan or fetchPlanningResult: a
// completed plan's ID, the file scan tasks answered inline and the plan
// tasks to fetch, or a cancelled plan's status.
type Response struct {
	PlanID string
	Status Status
	// Location is the location of the table the plan reads (a completed
	// plan's): its files lie below it.
	Location string
	rest.ScanTasks
}

// plan is one plan in memory.
type plan struct {
	id      string
	ident   catalog.Ident
	key     string // table + idempotency key, if any
	reqHash string
	cost    int64
	used    time.Time
	expires time.Time // forgotten then at the latest; zero: only by use

	// What the pages read, fixed when the plan is made.
	meta     *planMeta
	metaLoc  string
	location string
	snap     *table.Snapshot
	deletes  []iceberg.ManifestFile
	pages    []page
	extra    []iceberg.DataFile
	release  func()
	filter   iceberg.BooleanExpression // unbound; nil: none
	bound    iceberg.BooleanExpression // filter bound to the scan schema
	cs       bool
	stats    map[int]bool
	minRows  *int64

	fetched   []bool
	pending   int // pages not fetched yet
	cancelled bool
}

// expired reports whether pl is to be forgotten at now: unused for the
// lifetime, or past its Target's Expires.
func (pl *plan) expired(now time.Time, lifetime time.Duration) bool {
	return pl.used.Before(now.Add(-lifetime)) || (!pl.expires.IsZero() && !now.Before(pl.expires))
}

// live reports whether pl has pages not fetched yet.
func (pl *plan) isLive() bool { return !pl.cancelled && pl.pending > 0 }

func (pl *plan) handle(i int) string { return pl.id + "." + strconv.Itoa(i) }

// Plan plans req on the table id as src resolves it and returns the plan's
// first page inline with the plan tasks of the others. With an
// idempotency key, a repeat of the same request while the plan is kept
// answers the same plan again.
func (p *Planner) Plan(ctx context.Context, src Source, id catalog.Ident, req *Request, idemKey string) (*Response, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	var key, hash string
	if idemKey != "" {
		key = id.String() + "\x00" + idemKey
		hash = requestHash(req)
		if pl, err := p.replay(key, hash); err != nil || pl != nil {
			if err != nil {
				return nil, err
			}
			return p.first(ctx, pl)
		}
	}
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	defer p.releaseSlot()
	start := p.opts.Now()
	pl, err := p.build(ctx, src, id, req)
	if err != nil {
		return nil, err
	}
	pl.key, pl.reqHash = key, hash
	if err := p.admit(pl); err != nil {
		pl.forget()
		return nil, err
	}
	resp, err := p.firstHeld(ctx, pl)
	if err != nil {
		p.drop(pl.id, "")
		return nil, err
	}
	p.metrics.plans.Inc()
	p.log.Debug("scan planned", "plan", pl.id, "table", id.String(), "request", req.String(),
		"pages", len(pl.pages), "inline_tasks", len(resp.FileScanTasks), "elapsed", p.opts.Now().Sub(start))
	return resp, nil
}

// first answers pl's first page again (an idempotent replay).
func (p *Planner) first(ctx context.Context, pl *plan) (*Response, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	defer p.releaseSlot()
	return p.firstHeld(ctx, pl)
}

// firstHeld plans pl's first page, holding a worker.
func (p *Planner) firstHeld(ctx context.Context, pl *plan) (*Response, error) {
	resp := &Response{PlanID: pl.id, Status: Completed, Location: pl.location}
	if len(pl.pages) == 0 {
		return resp, nil
	}
	tasks, err := p.page(ctx, pl, 0)
	if err != nil {
		return nil, err
	}
	next := 1
	if pl.minRows != nil && enough(tasks, *pl.minRows) {
		// The first page surely holds the rows asked for: the others
		// need not be read.
		next = len(pl.pages)
	}
	resp.ScanTasks = tasks
	for i := next; i < len(pl.pages); i++ {
		resp.PlanTasks = append(resp.PlanTasks, pl.handle(i))
	}
	p.mu.Lock()
	p.fetch(pl, 0)
	if next == len(pl.pages) {
		for i := 1; i < len(pl.pages); i++ {
			p.fetch(pl, i)
		}
	}
	p.mu.Unlock()
	return resp, nil
}

// enough reports whether the tasks surely return at least n rows: each
// task read whole (residual true) and without delete files counts its
// record count.
func enough(st rest.ScanTasks, n int64) bool {
	var rows int64
	for _, t := range st.FileScanTasks {
		if len(t.DeleteFileReferences) > 0 || string(t.ResidualFilter) != "true" {
			continue
		}
		rows += t.DataFile.RecordCount
		if rows >= n {
			return true
		}
	}
	return n == 0
}

// Result answers fetchPlanningResult: a kept plan is completed and lists
// every page as a plan task; a cancelled one says so.
func (p *Planner) Result(id catalog.Ident, planID string) (*Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl, err := p.lookup(id, planID, ErrNoSuchPlan)
	if err != nil {
		return nil, err
	}
	if pl.cancelled {
		return &Response{PlanID: pl.id, Status: Cancelled}, nil
	}
	resp := &Response{PlanID: pl.id, Status: Completed, Location: pl.location}
	for i := range pl.pages {
		resp.PlanTasks = append(resp.PlanTasks, pl.handle(i))
	}
	return resp, nil
}

// Cancel forgets a plan's pages: its plan tasks are answered with
// ErrNoSuchPlanTask from now on, and what its Source holds for it is
// released. Cancelling a cancelled plan again succeeds.
func (p *Planner) Cancel(id catalog.Ident, planID string) error {
	p.mu.Lock()
	pl, err := p.lookup(id, planID, ErrNoSuchPlan)
	if err != nil || pl.cancelled {
		p.mu.Unlock()
		return err
	}
	if pl.isLive() {
		p.live--
	}
	// The pages stay (a fetch may be planning one right now); they are
	// not answered any more, and go with the plan when it expires or is
	// dropped to make room.
	pl.cancelled = true
	release := pl.release
	pl.release = nil
	p.metrics.forgotten.WithLabelValues("cancelled").Inc()
	p.gauges()
	p.mu.Unlock()
	if release != nil {
		release()
	}
	return nil
}

// Tasks answers fetchScanTasks: it plans the page a plan task names.
func (p *Planner) Tasks(ctx context.Context, id catalog.Ident, planTask string) (rest.ScanTasks, error) {
	planID, n, ok := strings.Cut(planTask, ".")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 0 {
		return rest.ScanTasks{}, fmt.Errorf("%w: %q is not a plan task of this server", ErrNoSuchPlanTask, planTask)
	}
	p.mu.Lock()
	pl, err := p.lookup(id, planID, ErrNoSuchPlanTask)
	if err == nil && (pl.cancelled || i >= len(pl.pages)) {
		err = fmt.Errorf("%w: %s (its plan was cancelled, or it never was one)", ErrNoSuchPlanTask, planTask)
	}
	p.mu.Unlock()
	if err != nil {
		return rest.ScanTasks{}, err
	}
	if err := p.acquire(ctx); err != nil {
		return rest.ScanTasks{}, err
	}
	defer p.releaseSlot()
	tasks, err := p.page(ctx, pl, i)
	if err != nil {
		return rest.ScanTasks{}, err
	}
	p.mu.Lock()
	if !pl.cancelled {
		p.fetch(pl, i)
	}
	p.mu.Unlock()
	return tasks, nil
}

// fetch records that page i of pl was answered. p.mu is held.
func (p *Planner) fetch(pl *plan, i int) {
	pl.used = p.opts.Now()
	if i >= len(pl.fetched) || pl.fetched[i] {
		return
	}
	pl.fetched[i] = true
	pl.pending--
	if pl.pending == 0 && p.plans[pl.id] == pl {
		p.live--
		p.gauges()
	}
}

// kept returns plan planID if it is kept; an expired one is forgotten
// now. p.mu is held.
func (p *Planner) kept(planID string) (*plan, bool) {
	pl, ok := p.plans[planID]
	if !ok {
		return nil, false
	}
	if pl.expired(p.opts.Now(), p.opts.Lifetime) {
		if r := p.remove(pl); r != nil {
			go r()
		}
		p.metrics.forgotten.WithLabelValues("expired").Inc()
		return nil, false
	}
	return pl, true
}

// lookup finds the kept plan planID of table id and counts this as a use.
// p.mu is held.
func (p *Planner) lookup(id catalog.Ident, planID string, missing error) (*plan, error) {
	pl, ok := p.kept(planID)
	if !ok || pl.ident.String() != id.String() {
		return nil, fmt.Errorf("%w: %s on %s (plans are kept %s after their last use, on the node that made them)",
			missing, planID, id, p.opts.Lifetime)
	}
	pl.used = p.opts.Now()
	return pl, nil
}

// replay returns the kept plan an idempotency key names, if it was made
// from the same request.
func (p *Planner) replay(key, hash string) (*plan, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.keys[key]
	if !ok {
		return nil, nil
	}
	pl, ok := p.kept(id)
	if !ok || pl.cancelled {
		delete(p.keys, key)
		return nil, nil
	}
	if pl.reqHash != hash {
		return nil, fmt.Errorf("%w: Idempotency-Key was used for plan %s of a different request", ErrIdempotencyKeyReused, pl.id)
	}
	pl.used = p.opts.Now()
	return pl, nil
}

// admit keeps pl, making room by dropping answered plans oldest first.
func (p *Planner) admit(pl *plan) error {
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire()
	if pl.isLive() && p.live >= p.opts.MaxPlans {
		p.metrics.rejected.WithLabelValues("plans").Inc()
		return fmt.Errorf("%w: %d plans have plan tasks not fetched yet (the limit); retry later", ErrBusy, p.live)
	}
	for p.bytes+pl.cost > p.opts.MaxPlanBytes {
		var oldest *plan
		for _, q := range p.plans {
			if !q.isLive() && (oldest == nil || q.used.Before(oldest.used)) {
				oldest = q
			}
		}
		if oldest == nil {
			p.metrics.rejected.WithLabelValues("memory").Inc()
			return fmt.Errorf("%w: the plans kept use %d of %d bytes; retry later", ErrBusy, p.bytes, p.opts.MaxPlanBytes)
		}
		if r := p.remove(oldest); r != nil {
			releases = append(releases, r)
		}
		p.metrics.forgotten.WithLabelValues("evicted").Inc()
	}
	pl.used = p.opts.Now()
	p.plans[pl.id] = pl
	if pl.key != "" {
		p.keys[pl.key] = pl.id
	}
	p.bytes += pl.cost
	if pl.isLive() {
		p.live++
	}
	p.gauges()
	return nil
}

// drop forgets plan id (a plan whose first page failed).
func (p *Planner) drop(id, reason string) {
	p.mu.Lock()
	pl, ok := p.plans[id]
	var release func()
	if ok {
		release = p.remove(pl)
		if reason != "" {
			p.metrics.forgotten.WithLabelValues(reason).Inc()
		}
	}
	p.mu.Unlock()
	if release != nil {
		release()
	}
}

// expire forgets the plans unused for the lifetime. What their Sources
// hold is released by a goroutine, not under p.mu. p.mu is held.
func (p *Planner) expire() {
	now := p.opts.Now()
	var releases []func()
	for _, pl := range p.plans {
		if pl.expired(now, p.opts.Lifetime) {
			if r := p.remove(pl); r != nil {
				releases = append(releases, r)
			}
			p.metrics.forgotten.WithLabelValues("expired").Inc()
		}
	}
	if len(releases) > 0 {
		go func() {
			for _, r := range releases {
				r()
			}
		}()
	}
}

// remove deletes pl from the registry and returns its release function.
// p.mu is held.
func (p *Planner) remove(pl *plan) func() {
	if p.plans[pl.id] != pl {
		return nil
	}
	if pl.isLive() {
		p.live--
	}
	delete(p.plans, pl.id)
	if pl.key != "" && p.keys[pl.key] == pl.id {
		delete(p.keys, pl.key)
	}
	p.bytes -= pl.cost
	p.gauges()
	r := pl.release
	pl.release = nil
	return r
}

// forget releases what a plan that was never kept holds.
func (pl *plan) forget() {
	if pl.release != nil {
		pl.release()
		pl.release = nil
	}
}

func (p *Planner) gauges() {
	p.metrics.live.Set(float64(p.live))
	p.metrics.kept.Set(float64(len(p.plans)))
	p.metrics.bytes.Set(float64(p.bytes))
}

// acquire takes a planning slot, waiting up to QueueWait.
func (p *Planner) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.waiting <- struct{}{}:
	default:
		p.metrics.rejected.WithLabelValues("workers").Inc()
		return fmt.Errorf("%w: %d requests already wait for one of %d planning slots; retry later", ErrBusy, cap(p.waiting), cap(p.slots))
	}
	p.metrics.waiting.Inc()
	defer func() {
		<-p.waiting
		p.metrics.waiting.Dec()
	}()
	t := time.NewTimer(p.opts.QueueWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		p.metrics.rejected.WithLabelValues("workers").Inc()
		return fmt.Errorf("%w: no planning slot free within %s; retry later", ErrBusy, p.opts.QueueWait)
	}
}

func (p *Planner) releaseSlot() { <-p.slots }

func newPlanID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestHash(r *Request) string {
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
