// Package live is the live view of Zombi's catalog: what a client that
// chose the catalog view `live` (the standard `warehouse` catalog property)
// reads. A plan of an ingest table's latest state lists the table's
// current snapshot and, beside it, its hot tail: the events acknowledged
// and not yet committed, as Parquet data files the flusher wrote (and will
// commit as they are). Any other plan (an older snapshot, an incremental
// range, a table Zombi does not ingest into) reads exactly what it names.
//
// Source is a planning.Source, so live plans share the planner's IDs,
// pages, limits and lifetime with committed ones.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/internal/ingesttable"
	"github.com/zombi-db/zombi/planning"
)

// Prefix is the catalog view's name: the value of the `warehouse` catalog
// property that selects it, and the path prefix its clients are given.
const Prefix = "live"

// DefaultPinWindow is Options.PinWindow's default.
const DefaultPinWindow = time.Minute

// Flusher is what the live view needs from the flusher.
type Flusher interface {
	Tail(ctx context.Context, id catalog.Ident) (*flusher.Tail, error)
	Seed(ctx context.Context, t *catalog.Table) (*catalog.Table, error)
	Ingests(tableUUID string) bool
}

// Options configure a Source.
type Options struct {
	Tables  planning.Tables
	Flusher Flusher
	// PinWindow: a plan that names a snapshot which stopped being the
	// table's current one less than this long ago (by the table's snapshot
	// log) reads the latest state, like a plan of the current snapshot.
	// Engines name the snapshot they loaded (Spark does on every scan);
	// the window covers the time between their load and their plan, in
	// which the flusher may have committed. Default DefaultPinWindow.
	PinWindow time.Duration
	// PlanLifetime is how long a plan that lists hot-tail files is kept
	// after it was made, however it is used (planning.Target.Expires):
	// the files are orphans to orphan cleanup once a commit no longer can
	// take them. Required; the planner's lifetime.
	PlanLifetime time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	Now          func() time.Time
}

// Source plans the live view. It is safe for concurrent use.
type Source struct {
	tables   planning.Tables
	fl       Flusher
	window   time.Duration
	lifetime time.Duration
	log      *slog.Logger
	now      func() time.Time
	plans    *prometheus.CounterVec
	seeded   prometheus.Counter
}

// New returns a Source.
func New(opts Options) (*Source, error) {
	if opts.Tables == nil || opts.Flusher == nil || opts.PlanLifetime <= 0 {
		return nil, errors.New("live: Tables, Flusher and PlanLifetime are required")
	}
	if opts.PinWindow <= 0 {
		opts.PinWindow = DefaultPinWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Source{
		tables: opts.Tables, fl: opts.Flusher, window: opts.PinWindow, lifetime: opts.PlanLifetime,
		log: opts.Logger, now: opts.Now,
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "live", Name: "plans_total",
			Help: "Plans of the live catalog view by what they read: latest (the current snapshot and the hot tail) or exact (what the request names, no tail).",
		}, []string{"read"}),
		seeded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "live", Name: "seeded_tables_total",
			Help: "Ingest tables without a snapshot that a live loadTable gave an empty one, so that engines plan them.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.plans, s.seeded} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("live: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Ingest reports whether the live view reads t with its hot tail: a table
// Zombi ingests into (ingesttable.Is), or one whose events this node has
// taken before any commit marked it.
func (s *Source) Ingest(t *catalog.Table) bool {
	return ingesttable.Is(t.Metadata.Properties()) || s.fl.Ingests(t.Metadata.TableUUID().String())
}

// Load is what a live loadTable answers for t: t, except that an ingest
// table without any snapshot first gets an empty one (flusher.Seed), or
// Spark would read it as empty without planning it. A failed seed is
// logged and t answered as it is.
func (s *Source) Load(ctx context.Context, t *catalog.Table) *catalog.Table {
	if t.Metadata.CurrentSnapshot() != nil || !s.Ingest(t) {
		return t
	}
	seeded, err := s.fl.Seed(ctx, t)
	if err != nil {
		s.log.Warn("a live loadTable could not give an ingest table its first snapshot; Spark reads it as empty until its first flush",
			"table", t.Ident.String(), "err", err)
		return t
	}
	s.seeded.Inc()
	return seeded
}

// Resolve implements planning.Source: a plan of the latest state of an
// ingest table reads its current snapshot and its hot tail, taken at one
// watermark; any other plan reads exactly what it names.
func (s *Source) Resolve(ctx context.Context, id catalog.Ident, req *planning.Request) (*planning.Target, error) {
	if req.Incremental() {
		s.plans.WithLabelValues("exact").Inc()
		return planning.CatalogSource{Tables: s.tables}.Resolve(ctx, id, req)
	}
	t, err := s.tables.LoadTable(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.Ingest(t) || (req.SnapshotID != nil && !s.latest(t.Metadata, *req.SnapshotID)) {
		s.plans.WithLabelValues("exact").Inc()
		return planning.At(t, req)
	}
	tl, err := s.fl.Tail(ctx, id)
	if errors.Is(err, flusher.ErrBusy) {
		return nil, fmt.Errorf("%w: %w", planning.ErrBusy, err)
	}
	if err != nil {
		return nil, err
	}
	m := tl.Table.Metadata
	if req.SnapshotID != nil && !s.latest(m, *req.SnapshotID) {
		// The snapshot stopped being latest between the two loads (a
		// rollback past the window): read it exactly.
		s.plans.WithLabelValues("exact").Inc()
		return planning.At(tl.Table, req)
	}
	s.plans.WithLabelValues("latest").Inc()
	tg := &planning.Target{Table: tl.Table, Snapshot: m.CurrentSnapshot(), Extra: tl.Files}
	if len(tl.Files) > 0 {
		tg.Expires = s.now().Add(s.lifetime)
	}
	return tg, nil
}

// latest reports whether snapshot id of m is the table's latest state for
// a live plan: its current snapshot, or one that stopped being current
// less than the pin window ago by the snapshot log (the timestamp of the
// entry after its last one).
func (s *Source) latest(m table.Metadata, id int64) bool {
	if cur := m.CurrentSnapshot(); cur != nil && cur.SnapshotID == id {
		return true
	}
	replaced, found := int64(0), false
	prev := int64(-1)
	for e := range m.SnapshotLogs() {
		if prev == id {
			replaced, found = e.TimestampMs, true
		}
		prev = e.SnapshotID
	}
	return found && s.now().Sub(time.UnixMilli(replaced)) < s.window
}
