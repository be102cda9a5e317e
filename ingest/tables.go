package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/ingest/codec"
	"github.com/zombi-db/zombi/internal/ingesttable"
)

// Table properties that steer ingest.
const (
	// PropFormat = "events" marks a table whose rows are Zombi event
	// envelopes (auto-created tables have it); any other table takes rows
	// as JSON objects.
	PropFormat = ingesttable.PropFormat
	// PropUnknownFields = "drop" drops JSON fields that match no column
	// instead of rejecting the row.
	PropUnknownFields = "zombi.ingest.unknown-fields"
	// PropIdempotencyColumn names a string column whose value is a row's
	// idempotency key.
	PropIdempotencyColumn = "zombi.ingest.idempotency-column"

	formatEvents = "events"
)

// Parquet settings of event tables, which Iceberg writers read from table
// properties.
const (
	propDictionaryPrefix = "write.parquet.dict-encoding-enabled.column."
	propCompressionLevel = "write.parquet.compression-level"
)

// noDictionary are the event columns whose values are mostly distinct:
// the payload, the sequence and the two times.
var noDictionary = []string{"payload", "sequence", "event_time", "ingest_time"}

// EventTableProperties are the properties of an auto-created event table:
// the format, and Parquet settings that make the flusher's and the
// compactor's files cheaper to write. A dictionary of mostly distinct
// values costs CPU and saves no bytes once zstd has compressed the pages
// (for payloads it makes files larger), so the payload, sequence and time
// columns have none; zstd at level 1 costs less CPU than the default
// level for files of about the same size. Together they take about a
// quarter off a flush cycle's time, the dictionary of the three integer
// columns a further 3-13% (BenchmarkFlushEvents in package flusher;
// figures in BENCHMARKS.md), which is what delays acks while a cycle
// runs. An operator may change them like any table property.
func EventTableProperties() map[string]string {
	props := map[string]string{
		PropFormat:           formatEvents,
		propCompressionLevel: "1",
	}
	for _, c := range noDictionary {
		props[propDictionaryPrefix+c] = "false"
	}
	return props
}

// tableState is what ingest keeps about a table between requests. It is
// immutable; a change to the table replaces it.
type tableState struct {
	ident  catalog.Ident
	name   string // dotted name (id.String()), as responses report it
	hotKey string // the table's UUID: the hot tier's key for it
	events bool
	schema *iceberg.Schema
	conv   *codec.Converter // nil for event tables
	props  iceberg.Properties
	// committed is this node's flush watermark when the state was loaded.
	committed uint64
	m         *tableMetrics
}

// tableCache maps identifiers to their state. The catalog tells it about
// every change (Watch), so an entry is current until then.
type tableCache struct {
	mu      sync.Mutex
	entries map[string]*tableState
	// loads are the loads of states in progress. A change to their table
	// makes them stale: what they read may predate the change, so their
	// state serves the request that loaded it but is not cached.
	loads map[*loading]struct{}
	// refs maps the table references of requests ("name", "ns.name") to
	// entries, so that a write to a known table parses no name: ref ->
	// *tableState. It only holds states that are in entries and loses
	// them with them.
	refs sync.Map
	// creating serialises auto-creation per table.
	creating sync.Map
}

func cacheKey(id catalog.Ident) string { return id.Namespace.String() + "\x00" + id.Name }

func (c *tableCache) get(id catalog.Ident) *tableState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[cacheKey(id)]
}

// loading is a load in progress of the state of the table with key key.
type loading struct {
	key   string
	stale bool
}

// startLoad registers a load of id's state; end it with put or endLoad.
func (c *tableCache) startLoad(id catalog.Ident) *loading {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loads == nil {
		c.loads = map[*loading]struct{}{}
	}
	l := &loading{key: cacheKey(id)}
	c.loads[l] = struct{}{}
	return l
}

// endLoad ends l; ending it again does nothing.
func (c *tableCache) endLoad(l *loading) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loads, l)
}

// put caches t, the state l loaded, unless its table changed since l
// started, and ends l.
func (c *tableCache) put(t *tableState, l *loading) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loads, l)
	if !l.stale {
		c.entries[l.key] = t
	}
}

// forget drops what the cache holds about id, or about every table for
// the zero Ident, and makes the loads of it in progress stale.
func (c *tableCache) forget(id catalog.Ident) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := id.Name == "" && len(id.Namespace) == 0
	key := cacheKey(id)
	for l := range c.loads {
		if all || l.key == key {
			l.stale = true
		}
	}
	if all {
		clear(c.entries)
		c.refs.Clear()
		return
	}
	delete(c.entries, key)
	c.refs.Range(func(ref, t any) bool {
		if cacheKey(t.(*tableState).ident) == key {
			c.refs.Delete(ref)
		}
		return true
	})
}

// byRef returns the state of the table ref names, nil if it is not cached.
func (c *tableCache) byRef(ref string) *tableState {
	if t, ok := c.refs.Load(ref); ok {
		return t.(*tableState)
	}
	return nil
}

// putRef remembers that ref names t, unless t is no longer the cached
// state of its table.
func (c *tableCache) putRef(ref string, t *tableState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[cacheKey(t.ident)] == t {
		c.refs.Store(ref, t)
	}
}

// evolves reports whether new fields in t's rows add columns to it.
func (t *tableState) evolves() bool {
	return !t.events && t.hotKey != "" && t.props[PropUnknownFields] == evolve
}

// rowConverter is the converter of rows to t's schema, as t's properties
// configure it.
func rowConverter(t *tableState) (*codec.Converter, error) {
	return codec.NewConverter(t.schema, codec.ConverterOptions{
		DropUnknown:       t.props[PropUnknownFields] == "drop",
		SkipEmptyUnknown:  t.props[PropUnknownFields] == evolve,
		ExactFloats:       t.props[PropUnknownFields] == evolve,
		IdempotencyColumn: t.props[PropIdempotencyColumn],
		IngestTimeColumn:  t.props[ingesttable.PropIngestTimeColumn],
		OffsetColumn:      t.props[ingesttable.PropOffsetColumn],
	})
}

// table returns the state of id, loading it from the catalog when needed
// and, with create (and auto-create on), creating a missing table as
// create says: an event table when it has no schema.
func (s *Service) table(ctx context.Context, id catalog.Ident, create *catalog.CreateTableRequest) (*tableState, error) {
	if t := s.cache.get(id); t != nil {
		return t, nil
	}
	t, err := s.load(ctx, id)
	missing := errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace)
	if err == nil || !missing {
		return t, err
	}
	if create == nil || !s.autoCreate {
		// To a producer a missing namespace is a missing table.
		return nil, fmt.Errorf("%w: %s", catalog.ErrNoSuchTable, id.String())
	}
	// One creator per table; the others wait and load its result.
	mu, _ := s.cache.creating.LoadOrStore(cacheKey(id), &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if t, err := s.load(ctx, id); err == nil {
		return t, nil
	}
	if err := s.createTable(ctx, id, create); err != nil {
		return nil, err
	}
	return s.load(ctx, id)
}

func (s *Service) load(ctx context.Context, id catalog.Ident) (*tableState, error) {
	l := s.cache.startLoad(id)
	defer s.cache.endLoad(l)
	tbl, err := s.catalog.LoadTable(ctx, id)
	if err != nil {
		return nil, err
	}
	meta := tbl.Metadata
	t := &tableState{
		ident:  id,
		name:   id.String(),
		hotKey: meta.TableUUID().String(),
		schema: meta.CurrentSchema(),
		props:  meta.Properties(),
		m:      s.metrics.forTable(id.String()),
	}
	// The flusher's watermark of this node is in the table. Sequences at
	// or below it count as committed, so new events must get higher ones
	// (this matters if the hot tier's directory was lost), and a flusher
	// that restarts must find the table of the events (the label).
	w, err := flusher.Watermark(t.props, s.node)
	if err != nil {
		return nil, fmt.Errorf("%w: table %s: %w", catalog.ErrInvalid, t.name, err)
	}
	if err := s.hot.AdvanceTo(t.hotKey, w); err != nil {
		return nil, err
	}
	if _, done := s.advanced.Load(t.hotKey); s.staged != nil && !done {
		// In a cluster, sequences this node staged and no commit holds
		// yet count as taken too.
		staged, err := s.staged.StagedThrough(ctx, t.hotKey, s.node)
		if err != nil {
			return nil, err
		}
		if err := s.hot.AdvanceTo(t.hotKey, staged); err != nil {
			return nil, err
		}
		s.advanced.Store(t.hotKey, true)
	}
	if err := s.hot.SetLabel(t.hotKey, flusher.Label(id)); err != nil {
		return nil, err
	}
	t.committed = w
	t.events = t.props[PropFormat] == formatEvents
	if !t.events {
		if t.conv, err = rowConverter(t); err != nil {
			return nil, fmt.Errorf("%w: table %s cannot take rows: %w", catalog.ErrInvalid, t.name, err)
		}
	}
	s.cache.put(t, l)
	return t, nil
}

// createTable creates id (and its namespace) as req says, or without a
// schema in req as a Zombi event table: the event schema, partitioned by
// hour of event time, sorted by event time and sequence. A request's
// caller (auth.FromContext) without the writer role in a missing
// namespace, an ancestor of its own, may not have it made:
// auth.ErrForbidden.
func (s *Service) createTable(ctx context.Context, id catalog.Ident, req *catalog.CreateTableRequest) error {
	caller, limited := auth.FromContext(ctx)
	for i := 1; i <= len(id.Namespace); i++ {
		ns := id.Namespace[:i]
		if limited && caller.Role(ns) < auth.RoleWriter {
			_, err := s.catalog.LoadNamespace(ctx, ns)
			if errors.Is(err, catalog.ErrNoSuchNamespace) {
				return fmt.Errorf("%w: writing to %s would create namespace %s, where %s has no writer role",
					auth.ErrForbidden, id, strings.Join(ns, "."), caller.Name)
			}
			if err != nil {
				return err
			}
			continue
		}
		_, err := s.catalog.CreateNamespace(ctx, ns, nil, nil)
		if err != nil && !errors.Is(err, catalog.ErrNamespaceExists) {
			return err
		}
	}
	kind := "typed table from data"
	if req.Schema == nil {
		kind = "event table"
		schema := hotrow.EventSchema()
		spec := hotrow.EventPartitionSpec(schema)
		order := hotrow.EventSortOrder(schema)
		req = &catalog.CreateTableRequest{Schema: schema, Spec: &spec, SortOrder: &order, Properties: EventTableProperties()}
	}
	r := *req
	r.Ident = id
	_, err := s.catalog.CreateTable(ctx, r, nil)
	if err != nil && !errors.Is(err, catalog.ErrTableExists) {
		return err
	}
	if err == nil {
		if req.Properties[PropFormat] == formatRows {
			s.metrics.schema.WithLabelValues("created").Inc()
		}
		s.log.Info("auto-created "+kind, "table", id.String(), "columns", len(r.Schema.Fields()))
	}
	return nil
}
