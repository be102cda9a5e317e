// Package hot is Zombi's hot tier: the durable buffer between an
// acknowledged write and the Iceberg commit that makes it visible to
// engines. Events live in Pebble under per-table, strictly increasing
// sequence numbers that are never reused, drawn from the node's stream so
// that nodes sharing a table never hand out the same one (StreamBits);
// an append is acknowledged after
// its WAL write is synced (group-committed across concurrent appends), and
// events are deleted once a flush has committed them.
package hot

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Durability says when Append returns.
type Durability int

const (
	// Sync returns after the batch is in the synced WAL: an acknowledged
	// append survives kill -9 and power loss. The default.
	Sync Durability = iota
	// Async returns once the batch is in the memtable and the WAL buffer;
	// a crash can lose the last moments of acknowledged appends.
	Async
)

// Options configure a DB. Zero values take the documented defaults.
type Options struct {
	Durability Durability
	// SyncInterval is, with Sync durability, the least time between the
	// starts of two group commits, each one WAL write and sync: under
	// concurrent load, appends wait up to this long to share a sync with
	// the appends arriving meanwhile. Fewer syncs cost less CPU, in the
	// kernel and, on a virtual machine, in the host, whose time is taken
	// from the guest's. An append does not wait when the last group
	// started longer ago than this or had a single batch, and stops
	// waiting after a quarter of it without a new append. Zero means
	// 500µs; negative syncs as soon as the previous group is committed.
	SyncInterval time.Duration
	// NodeID is recorded when the directory is created and must match on
	// later opens; empty takes the recorded ID, or a random one at
	// creation. It must match ^[a-z0-9][a-z0-9-]{0,62}$.
	NodeID string
	// Stream, if not nil, gives the node's stream (see StreamBits). Open
	// calls it once, after the node ID is known, with what the directory
	// records, and records the answer in a directory that has none; a
	// recorded stream never changes. Nil keeps the recorded stream, or
	// stream 0 without recording it.
	Stream func(StreamRequest) (uint32, error)
	// IdempotencyWindow is how long an idempotency key is remembered,
	// across restarts. Default 24h.
	IdempotencyWindow time.Duration
	// MaxBacklogBytes caps the bytes of stored, not yet deleted events over
	// all tables; Append beyond it fails with ErrBacklogFull. Default 1 GiB.
	MaxBacklogBytes int64
	Logger          *slog.Logger
	// Registerer receives the hot tier's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// FS replaces the OS file system (tests use vfs.NewMem or a crash FS).
	FS vfs.FS
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Record is one event to append. Value is opaque to the hot tier.
type Record struct {
	// Key is the idempotency key; empty means none.
	Key   string
	Value []byte
}

// Result is the outcome of one Record of an Append, in the same order.
type Result struct {
	Seq uint64
	// Duplicate reports that Key was already appended within the window:
	// nothing was stored and Seq is the original event's sequence.
	Duplicate bool
}

// Event is a stored event.
type Event struct {
	Seq   uint64
	Key   string
	Value []byte
	// Appended is when the event was appended (server clock).
	Appended time.Time
}

// Errors.
var (
	// ErrBacklogFull: the backlog cap is reached; retry after flushes
	// catch up.
	ErrBacklogFull = errors.New("hot: backlog full")
	// ErrClosed: the DB is closed.
	ErrClosed = errors.New("hot: closed")
)
