package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
)

// Catalog is what ingest needs from the catalog.
type Catalog interface {
	LoadTable(ctx context.Context, id catalog.Ident) (*catalog.Table, error)
	CreateTable(ctx context.Context, req catalog.CreateTableRequest, idem *catalog.Idempotency) (*catalog.Table, error)
	CommitTable(ctx context.Context, ch catalog.TableChange, idem *catalog.Idempotency) (*catalog.Table, error)
	CreateNamespace(ctx context.Context, ns catalog.Namespace, props map[string]string, idem *catalog.Idempotency) (map[string]string, error)
	LoadNamespace(ctx context.Context, ns catalog.Namespace) (map[string]string, error)
	Watch(fn func(catalog.Ident)) (stop func())
}

// Hot is what ingest needs from the hot tier.
type Hot interface {
	Append(ctx context.Context, table string, recs []hot.Record) ([]hot.Result, error)
	Read(ctx context.Context, table string, after uint64, limit int) ([]hot.Event, error)
	HighWatermark(table string) uint64
	Watch(table string) (uint64, <-chan struct{})
	DeletedThrough(table string) uint64
	NodeID() string
	SetLabel(table, label string) error
	AdvanceTo(table string, seq uint64) error
}

// Committer is what ingest needs from the flusher for writes that wait
// for their Iceberg commit (?ack=committed).
type Committer interface {
	WaitCommitted(ctx context.Context, table string, seq uint64) (snapshotID int64, err error)
}

// Options configure a Service.
type Options struct {
	Catalog Catalog
	Hot     Hot
	// DefaultNamespace holds tables named without a namespace. Default
	// "default".
	DefaultNamespace string
	// AutoCreate creates an unknown table on its first write: an event
	// table for event envelopes, a typed table with columns from the data
	// for plain JSON objects (unless Infer.Disabled). Without it such
	// writes are ErrNoSuchTable.
	AutoCreate bool
	// Infer configures the tables created from plain JSON objects.
	Infer InferOptions
	// Files and Flusher let ReplayDeadLetters commit and read dead-letter
	// tables; without them it is unavailable.
	Files   func(context.Context) (icebergio.IO, error)
	Flusher Flusher
	// Committer serves writes that wait for their commit; without it such
	// writes fail.
	Committer Committer
	// CommitWait bounds how long such a write waits. Default 30s.
	CommitWait time.Duration
	// Staged, in a cluster, tells how far this node's staged batches of a
	// table reach (flusher.Staging has it): new events get sequences past
	// them too, so a node whose hot tier was lost never reuses one.
	Staged Staged
	// Claims makes idempotency keys hold across a cluster's nodes; nil
	// (a single node) leaves them to the hot tier, with no round trip.
	Claims  Claims
	Logger  *slog.Logger
	Metrics *Metrics
	Now     func() time.Time
}

// Flusher is what a replay of dead letters needs from the flusher.
type Flusher interface {
	Flush(ctx context.Context, id catalog.Ident) (flusher.Result, error)
}

// Staged is what ingest needs from a cluster's staged batches.
type Staged interface {
	StagedThrough(ctx context.Context, tableUUID, node string) (uint64, error)
}

// Service is the ingest API's logic. It is safe for concurrent use.
type Service struct {
	catalog          Catalog
	hot              Hot
	defaultNamespace string
	autoCreate       bool
	committer        Committer
	commitWait       time.Duration
	staged           Staged
	// advanced holds the tables (hot keys) whose sequences this process
	// moved past their staged batches (Staged): once is enough.
	advanced  sync.Map
	claims    Claims
	node      string
	log       *slog.Logger
	metrics   *Metrics
	now       func() time.Time
	cache     tableCache
	stopWatch func()
	infer     InferOptions
	// evolving serialises this node's schema changes per table: cacheKey
	// -> *sync.Mutex.
	evolving sync.Map
	// replaying serialises this node's replays of dead letters per table.
	replaying sync.Map
	files     func(context.Context) (icebergio.IO, error)
	flusher   Flusher
}

// New returns a Service. Close it to stop following catalog changes.
func New(opts Options) (*Service, error) {
	if opts.Catalog == nil || opts.Hot == nil {
		return nil, errors.New("ingest: Catalog and Hot are required")
	}
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "default"
	}
	if !namePart.MatchString(opts.DefaultNamespace) {
		return nil, fmt.Errorf("ingest: default namespace %q must match %s", opts.DefaultNamespace, namePart)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CommitWait <= 0 {
		opts.CommitWait = 30 * time.Second
	}
	s := &Service{
		committer:        opts.Committer,
		claims:           opts.Claims,
		commitWait:       opts.CommitWait,
		staged:           opts.Staged,
		node:             opts.Hot.NodeID(),
		catalog:          opts.Catalog,
		hot:              opts.Hot,
		defaultNamespace: opts.DefaultNamespace,
		autoCreate:       opts.AutoCreate,
		log:              opts.Logger,
		metrics:          opts.Metrics,
		now:              opts.Now,
		cache:            tableCache{entries: map[string]*tableState{}},
		infer:            opts.Infer,
		files:            opts.Files,
		flusher:          opts.Flusher,
	}
	s.stopWatch = opts.Catalog.Watch(s.cache.forget)
	return s, nil
}

// Close stops following catalog changes.
func (s *Service) Close() { s.stopWatch() }

// Table parses an ingest table reference.
func (s *Service) Table(ref string) (catalog.Ident, error) {
	return ParseTableRef(ref, s.defaultNamespace)
}
