// Package cluster is what the Zombi nodes sharing one PostgreSQL database
// know of each other: who the nodes are, and which idempotency keys any of
// them has stored.
//
// Every node on Postgres registers in zombi_nodes under its node ID (the
// hot tier's) and renews a heartbeat there every few seconds, reporting
// its backlog, its oldest unflushed event and its last commit. The row is a
// lease on the ID: while its heartbeat is fresh no other process can take
// the ID, because two processes under one ID would hand out the same
// offsets and move the same flush watermark. At its first registration a
// node is given a stream number, never given to another node, from which
// its hot tier hands out sequences (hot.StreamBits), so a table's offsets
// are unique across the cluster. A node that shuts down gracefully is
// marked left; its row stays, and so does its stream.
//
// A node without --cluster must be the only live node on its database;
// cluster nodes refuse to share it with one.
//
// Idempotency keys are claimed in zombi_idempotency_claims before an event
// is stored (see Member.Claim), so that a producer's retry that reaches
// another node is answered with the original offset instead of being
// stored twice.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxStreams is how many streams there are; hot.MaxStreams must agree
// (the migration's CHECK does too).
const MaxStreams = 512

// Defaults.
const (
	DefaultHeartbeat = 2 * time.Second
	// DefaultExpiry is how old a heartbeat may get before its node counts
	// as stale and its ID may be taken: five missed heartbeats.
	DefaultExpiry = 5 * DefaultHeartbeat
	// DefaultWindow is how long claimed idempotency keys are kept.
	DefaultWindow = 24 * time.Hour
)

// PoolConns is the connections a member's pool should allow: one for
// heartbeats, the rest for the claim and record round trips of concurrent
// idempotent writes, each of which holds a connection for one round trip.
const PoolConns = 16

// joinLock is the pg_advisory_xact_lock key serialising joins, so that
// two nodes never take the same stream: "znodes" in ASCII.
const joinLock = 0x7a6e6f646573

// Errors.
var (
	// ErrNodeIDInUse: another live process holds the node ID.
	ErrNodeIDInUse = errors.New("node ID in use")
	// ErrNotAlone: the node's mode does not allow the other live nodes.
	ErrNotAlone = errors.New("another node is live on this database")
	// ErrLeaseLost: another process took the node ID after this one's
	// heartbeats stopped reaching the database.
	ErrLeaseLost = errors.New("node ID lease lost")
)

// Options configure a Member.
type Options struct {
	// Pool is the database; its schema must be migrated.
	Pool *pgxpool.Pool
	// Cluster is whether the node shares the database with other nodes
	// (--cluster). Without it, Join refuses when another node is live.
	Cluster bool
	// URL is the address other nodes and operators reach the node at, if
	// any.
	URL string
	// Heartbeat is how often the node renews its lease. Default
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Expiry is how old a heartbeat may get before its node is stale.
	// Default five heartbeats.
	Expiry time.Duration
	// Window is how long idempotency claims are kept: the hot tier's
	// idempotency window. Default DefaultWindow.
	Window time.Duration
	// Token names this process in the node's row; default a random one.
	// It must differ between processes; a caller that records it may make
	// it say where the process runs (JoinRequest.PreviousToken).
	Token      string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// JoinRequest is what a node knows about itself when it joins: its ID
// and what its hot tier records (hot.StreamRequest).
type JoinRequest struct {
	NodeID string
	// Stream is the stream the hot tier records, if HasStream.
	Stream    uint32
	HasStream bool
	// Legacy: the hot tier holds events from before streams; they are
	// stream 0's, which the node keeps if no other node has it.
	Legacy bool
	// PreviousToken is the token of the last process that ran on this
	// node's data directory, if the caller knows it. The caller holds the
	// directory's lock, so that process is gone: its lease, even with a
	// fresh heartbeat (after a kill -9), is taken over at once instead of
	// refused. A token that names where its process ran (host and
	// directory) keeps a copy of the directory elsewhere from matching.
	PreviousToken string
}

// Stats is what a node reports with its heartbeat.
type Stats struct {
	BacklogBytes    int64
	OldestUnflushed time.Time // zero: none
	LastCommit      time.Time // zero: none yet
}

// Member is this process's membership: its lease on the node ID, its
// heartbeat and its idempotency claims. It is safe for concurrent use.
type Member struct {
	pool      *pgxpool.Pool
	cluster   bool
	url       string
	heartbeat time.Duration
	expiry    time.Duration
	window    time.Duration
	log       *slog.Logger
	metrics   *metrics
	token     string

	node   string // set by Join
	stream uint32

	lastBeat atomic.Int64 // unix nanoseconds of the last renewed heartbeat
	lost     atomic.Bool
	// view is what the node last read of the registry, for its metrics
	// (observe); nil before the first read and after a failed one.
	view atomic.Pointer[registryView]

	// inflight counts, per table and key, this process's writes between
	// Claim and Record or Release (see Member.Claim).
	mu       sync.Mutex
	inflight map[claimKey]int

	claims  batcher[claimReq, []Claim]
	records batcher[recordReq, struct{}]
}

type claimKey struct{ table, key string }

// New returns a Member that has not joined yet.
func New(opts Options) (*Member, error) {
	if opts.Pool == nil {
		return nil, errors.New("cluster: Pool is required")
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Expiry <= 0 {
		opts.Expiry = 5 * opts.Heartbeat
	}
	if opts.Expiry <= opts.Heartbeat {
		return nil, fmt.Errorf("cluster: expiry %s must exceed the heartbeat interval %s", opts.Expiry, opts.Heartbeat)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Token == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		opts.Token = hex.EncodeToString(b[:])
	}
	m := &Member{
		pool:      opts.Pool,
		cluster:   opts.Cluster,
		url:       opts.URL,
		heartbeat: opts.Heartbeat,
		expiry:    opts.Expiry,
		window:    opts.Window,
		log:       opts.Logger,
		token:     opts.Token,
		inflight:  make(map[claimKey]int),
	}
	m.claims = batcher[claimReq, []Claim]{inFlight: claimsInFlight, do: m.claimAll}
	m.records = batcher[recordReq, struct{}]{inFlight: claimsInFlight, do: m.recordAll}
	m.metrics = newMetrics(m)
	if err := m.metrics.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("cluster: register metrics: %w", err)
	}
	return m, nil
}

// NodeID is the node ID the member joined with.
func (m *Member) NodeID() string { return m.node }

// Stream is the node's stream, once joined.
func (m *Member) Stream() uint32 { return m.stream }

// Join registers the node, taking the lease on its ID, and returns its
// stream: the one its row has, or for a node new to the database the one
// its hot tier records, or stream 0 for a legacy hot tier if no node has
// it, or the next stream never given out. It fails with ErrNodeIDInUse when
// a live process of another token holds the ID, and with ErrNotAlone when
// this node runs without Cluster and another node is live, or with Cluster
// while a live node runs without.
func (m *Member) Join(ctx context.Context, req JoinRequest) (uint32, error) {
	var stream uint32
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		var err error
		stream, err = m.join(ctx, tx, req)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cluster: node %s: %w", req.NodeID, err)
	}
	m.node, m.stream = req.NodeID, stream
	m.lastBeat.Store(time.Now().UnixNano())
	m.log.Info("joined", "node", m.node, "stream", stream, "cluster", m.cluster, "url", m.url)
	return stream, nil
}

func (m *Member) join(ctx context.Context, tx pgx.Tx, req JoinRequest) (uint32, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(joinLock)); err != nil {
		return 0, err
	}
	expiry := m.expiry.Seconds()
	rows, err := tx.Query(ctx, `SELECT node_id, stream, cluster, url, token, started,
	extract(epoch FROM now() - heartbeat)::float8,
	left_at IS NULL AND heartbeat > now() - make_interval(secs => $1)
FROM zombi_nodes ORDER BY node_id`, expiry)
	if err != nil {
		return 0, err
	}
	type row struct {
		id, url, token string
		stream         int32
		cluster, alive bool
		started        time.Time
		age            float64
	}
	var (
		own    *row
		others []row
		taken  = make(map[uint32]string)
		next   uint32
	)
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.stream, &r.cluster, &r.url, &r.token, &r.started, &r.age, &r.alive); err != nil {
			return 0, err
		}
		taken[uint32(r.stream)] = r.id
		next = max(next, uint32(r.stream)+1)
		if r.id == req.NodeID {
			own = &r
		} else if r.alive {
			others = append(others, r)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if own != nil && own.alive && own.token != m.token && (req.PreviousToken == "" || own.token != req.PreviousToken) {
		return 0, fmt.Errorf("%w: a live process holds it (started %s, last heartbeat %.1fs ago%s); "+
			"two processes under one node ID would hand out the same offsets: give each node its own "+
			"--data-dir and --node-id, or stop the other process (its lease ends %s after its last heartbeat)",
			ErrNodeIDInUse, own.started.Format(time.RFC3339), own.age, urlNote(own.url), m.expiry)
	}
	for _, o := range others {
		switch {
		case !m.cluster:
			return 0, fmt.Errorf("%w: node %s%s is live; nodes sharing a Postgres database must all run with --cluster "+
				"(without it a node takes itself to be the only one)", ErrNotAlone, o.id, urlNote(o.url))
		case !o.cluster:
			return 0, fmt.Errorf("%w: node %s%s runs without --cluster; stop it, or restart it with --cluster",
				ErrNotAlone, o.id, urlNote(o.url))
		}
	}

	var stream uint32
	switch {
	case own != nil:
		stream = uint32(own.stream)
		if req.HasStream && req.Stream != stream {
			return 0, fmt.Errorf("its hot tier records stream %d, but this database gives it stream %d: "+
				"the data directory belongs to another database", req.Stream, stream)
		}
	case req.HasStream:
		if holder, ok := taken[req.Stream]; ok {
			return 0, fmt.Errorf("its hot tier records stream %d, which this database gives node %s: "+
				"the data directory belongs to another database", req.Stream, holder)
		}
		stream = req.Stream
	case req.Legacy && taken[0] == "":
		stream = 0
	default:
		stream = next
	}
	if stream >= MaxStreams {
		return 0, fmt.Errorf("every one of the %d streams is taken", MaxStreams)
	}
	_, err = tx.Exec(ctx, `INSERT INTO zombi_nodes (node_id, stream, cluster, url, token, started, heartbeat)
VALUES ($1, $2, $3, $4, $5, now(), now())
ON CONFLICT (node_id) DO UPDATE SET cluster = excluded.cluster, url = excluded.url, token = excluded.token,
	started = excluded.started, heartbeat = excluded.heartbeat, left_at = NULL`,
		req.NodeID, int32(stream), m.cluster, m.url, m.token)
	return stream, err
}

func urlNote(url string) string {
	if url == "" {
		return ""
	}
	return ", at " + url
}

// Beat renews the lease and reports stats. It fails with ErrLeaseLost if
// another process took the node ID, or the node left.
func (m *Member) Beat(ctx context.Context, s Stats) error {
	tag, err := m.pool.Exec(ctx, `UPDATE zombi_nodes SET heartbeat = now(),
	backlog_bytes = $3, oldest_unflushed = $4, last_commit = $5
WHERE node_id = $1 AND token = $2 AND left_at IS NULL`,
		m.node, m.token, s.BacklogBytes, nullTime(s.OldestUnflushed), nullTime(s.LastCommit))
	switch {
	case err != nil:
		m.metrics.heartbeats.WithLabelValues("failed").Inc()
		return fmt.Errorf("cluster: heartbeat: %w", err)
	case tag.RowsAffected() == 0:
		m.metrics.heartbeats.WithLabelValues("lost").Inc()
		m.lost.Store(true)
		return fmt.Errorf("cluster: node %s: %w", m.node, ErrLeaseLost)
	}
	m.metrics.heartbeats.WithLabelValues("ok").Inc()
	m.lastBeat.Store(time.Now().UnixNano())
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Run renews the lease every heartbeat interval with the stats stats
// returns until ctx ends (nil) or the lease is lost (ErrLeaseLost). A
// heartbeat that fails, or takes longer than the expiry, is logged and
// retried at the next tick; the lease holds while the database answers
// within the expiry. After each heartbeat it reads the registry for the
// node's metrics (see registryView). Once a minute it also settles this
// node's pending idempotency claims with lookup and expires old claims.
func (m *Member) Run(ctx context.Context, stats func() Stats, lookup KeyLookup) error {
	tick := time.NewTicker(m.heartbeat)
	defer tick.Stop()
	lastExpiry := time.Now()
	m.refreshView(ctx, nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// A heartbeat that takes longer than the expiry is a failure
		// anyway: the lease lapsed meanwhile. Bounding it keeps a hung
		// connection from stopping the heartbeats, and their failures
		// from being counted.
		bctx, cancel := context.WithTimeout(ctx, m.expiry)
		err := m.Beat(bctx, stats())
		cancel()
		switch {
		case errors.Is(err, ErrLeaseLost):
			m.log.Error("another process took this node's ID; stopping", "node", m.node, "err", err)
			return err
		case err != nil && ctx.Err() == nil:
			m.log.Warn("heartbeat failed", "node", m.node, "err", err)
		}
		m.refreshView(ctx, err)
		if time.Since(lastExpiry) >= time.Minute {
			lastExpiry = time.Now()
			if _, err := m.Settle(ctx, lookup); err != nil && ctx.Err() == nil {
				m.log.Warn("settling idempotency claims", "err", err)
			}
			if n, err := m.ExpireClaims(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("expiring idempotency claims", "err", err)
			} else if n > 0 {
				m.log.Debug("expired idempotency claims", "claims", n)
			}
		}
	}
}

// Err reports a lost lease; nil while the node holds its ID.
func (m *Member) Err() error {
	if m.lost.Load() {
		return fmt.Errorf("cluster: node %s: %w", m.node, ErrLeaseLost)
	}
	return nil
}

// Leave marks the node left, keeping its row and stream. A node leaves
// after its final flush, once it takes no more writes.
func (m *Member) Leave(ctx context.Context) error {
	_, err := m.pool.Exec(ctx, `UPDATE zombi_nodes SET left_at = now(), heartbeat = now()
WHERE node_id = $1 AND token = $2`, m.node, m.token)
	if err != nil {
		return fmt.Errorf("cluster: leaving: %w", err)
	}
	m.log.Info("left", "node", m.node)
	return nil
}

// State is a node's state as the database sees it.
type State string

const (
	// Alive: running, heartbeat fresh.
	Alive State = "alive"
	// Left: shut down gracefully.
	Left State = "left"
	// Stale: no heartbeat within the expiry and not left: the node died,
	// hangs, or cannot reach the database.
	Stale State = "stale"
)

// Node is one registered node.
type Node struct {
	ID      string
	Stream  uint32
	Cluster bool
	URL     string
	State   State
	Started time.Time
	// HeartbeatAge is how long ago the last heartbeat was, by the
	// database's clock.
	HeartbeatAge    time.Duration
	BacklogBytes    int64
	OldestUnflushed time.Time // zero: none
	LastCommit      time.Time // zero: none
}

// Nodes lists the registered nodes by ID.
func (m *Member) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := m.pool.Query(ctx, `SELECT node_id, stream, cluster, url, started,
	extract(epoch FROM now() - heartbeat)::float8, left_at IS NOT NULL,
	backlog_bytes, oldest_unflushed, last_commit
FROM zombi_nodes ORDER BY node_id`)
	if err != nil {
		return nil, fmt.Errorf("cluster: listing nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Node, error) {
		var (
			n              Node
			stream         int32
			age            float64
			left           bool
			oldest, commit *time.Time
		)
		err := row.Scan(&n.ID, &stream, &n.Cluster, &n.URL, &n.Started, &age, &left, &n.BacklogBytes, &oldest, &commit)
		n.Stream = uint32(stream)
		n.HeartbeatAge = time.Duration(age * float64(time.Second))
		n.State = m.stateOf(left, n.HeartbeatAge)
		if oldest != nil {
			n.OldestUnflushed = *oldest
		}
		if commit != nil {
			n.LastCommit = *commit
		}
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: listing nodes: %w", err)
	}
	return nodes, nil
}

// stateOf is the state of a node that left or not, whose last heartbeat
// is age old.
func (m *Member) stateOf(left bool, age time.Duration) State {
	switch {
	case left:
		return Left
	case age < m.expiry:
		return Alive
	default:
		return Stale
	}
}
