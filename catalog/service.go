package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/view"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/internal/location"
	"golang.org/x/sync/singleflight"
)

// Warehouse is what the catalog needs from object storage: a FileIO for
// metadata files and a place to put new tables.
type Warehouse interface {
	// Root is the warehouse location URI (file:///dir or s3://bucket/prefix).
	Root() string
	// IO reads and writes files by full URI.
	IO() icebergio.IO
	// IOProps are the iceberg io properties that reproduce IO() through
	// iceberg-go's io registry.
	IOProps() map[string]string
	// ClientConfig is the config handed to REST clients so they can read
	// and write the warehouse's files.
	ClientConfig() map[string]string
	// Delete removes files; missing files are not an error.
	Delete(ctx context.Context, uris []string) error
	// DeletePrefix removes every file under a location inside the root.
	DeletePrefix(ctx context.Context, uri string) (int, error)
	Ping(ctx context.Context) error
}

// Options configure a Service.
type Options struct {
	Store     Store
	Warehouse Warehouse
	Logger    *slog.Logger
	// Registerer receives the catalog's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// ReceiptLifetime is how long an Idempotency-Key is honoured.
	// Default 30 minutes.
	ReceiptLifetime time.Duration
	// MetadataCacheSize bounds the number of parsed metadata files kept in
	// memory (they are immutable, so a cache hit is always current).
	// Default 1024.
	MetadataCacheSize int
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// MetadataCheckInterval is how long a metadata file in an object store
	// that was seen to exist is trusted to still exist: a loadTable within
	// it answers from the cache without asking the store. Local files are
	// checked on every load. Default 1s; negative: every load.
	MetadataCheckInterval time.Duration
	// AllowedLocations are the locations besides the warehouse below
	// which tables and views may live (the Warehouse must be able to read,
	// write and delete there).
	AllowedLocations []string
}

// Service is the catalog. It is safe for concurrent use.
type Service struct {
	store   Store
	wh      Warehouse
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	receiptLifetime time.Duration
	// roots are where tables and views may live: the warehouse first,
	// then the allowed locations.
	roots []location.Location
	cache *metadataCache
	// remote is set for an object-store warehouse, whose metadata file
	// checks are requests (see checkFile).
	remote        bool
	checkInterval time.Duration
	checks        singleflight.Group
	checked       struct {
		sync.Mutex
		at map[string]time.Time // metadata location → when it was seen to exist
	}
	watch watchers
	locks commitLocks
}

// New returns a Service over opts.Store and opts.Warehouse.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Warehouse == nil {
		return nil, errors.New("catalog: Store and Warehouse are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReceiptLifetime <= 0 {
		opts.ReceiptLifetime = 30 * time.Minute
	}
	if opts.MetadataCacheSize <= 0 {
		opts.MetadataCacheSize = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	roots, err := parseRoots(opts.Warehouse.Root(), opts.AllowedLocations)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.MetadataCheckInterval == 0:
		opts.MetadataCheckInterval = time.Second
	case opts.MetadataCheckInterval < 0:
		opts.MetadataCheckInterval = 0
	}
	svc := &Service{
		roots:           roots,
		remote:          roots[0].Scheme() != "file",
		checkInterval:   opts.MetadataCheckInterval,
		store:           opts.Store,
		wh:              opts.Warehouse,
		log:             opts.Logger,
		metrics:         newMetrics(opts.Registerer),
		now:             opts.Now,
		receiptLifetime: opts.ReceiptLifetime,
		cache:           newMetadataCache(opts.MetadataCacheSize),
	}
	svc.checked.at = map[string]time.Time{}
	return svc, nil
}

// ReceiptLifetime is how long idempotency receipts are kept.
func (s *Service) ReceiptLifetime() time.Duration { return s.receiptLifetime }

// Ready reports whether the store and the warehouse answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.wh.Ping(ctx); err != nil {
		return fmt.Errorf("warehouse: %w", err)
	}
	return nil
}

// metadataCache keeps parsed metadata files by location. Metadata files are
// never rewritten in place, so an entry never goes stale; the cache only
// saves re-reading and re-parsing.
type metadataCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cachedMetadata
}

type cachedMetadata struct {
	raw  []byte
	meta table.Metadata // a table's metadata file
	view view.Metadata  // or a view's
}

func newMetadataCache(max int) *metadataCache {
	return &metadataCache{max: max, entries: make(map[string]cachedMetadata)}
}

func (c *metadataCache) get(loc string) (cachedMetadata, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[loc]
	return e, ok
}

func (c *metadataCache) drop(locs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range locs {
		delete(c.entries, l)
	}
}

func (c *metadataCache) put(loc string, e cachedMetadata) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Evict an arbitrary entry: map iteration order is random, which
		// is good enough for a cache whose entries are cheap to refill.
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[loc] = e
}
