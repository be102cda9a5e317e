// Package postgres is the catalog.Store on PostgreSQL, for deployments with
// several Zombi processes or a managed database. It uses
// github.com/jackc/pgx/v5 through a connection pool; pool settings come from
// the URL (pool_max_conns and friends, see pgxpool.ParseConfig).
//
// The schema is in package migrations; Open applies it. Namespaces are rows
// keyed by Namespace.String() with their levels, a reference to their
// parent and their properties as jsonb; tables are rows keyed by namespace
// and name; names use the "C" collation, so they compare byte-wise.
//
// Update runs fn in a READ COMMITTED transaction and takes the row locks
// each operation needs, so that concurrent transactions never lose an update
// or leave a table or a namespace in a dropped namespace:
//
//   - SwapTable is a conditional UPDATE (… WHERE metadata_location =
//     expected), which re-checks the row once a concurrent writer commits.
//   - CreateTable, RenameTable and CreateNamespace lock the target
//     namespace (or parent) FOR SHARE; DropNamespace locks it FOR UPDATE
//     before checking it is empty. Foreign keys back both up.
//   - Inserts use ON CONFLICT DO NOTHING, so an existing name is reported
//     without aborting the transaction.
//
// Update runs fn again, a bounded number of times, when PostgreSQL reports
// a serialization failure or a deadlock (SQLSTATE 40001, 40P01); when the
// attempts run out it returns ErrCommitFailed. View runs fn in a READ ONLY,
// REPEATABLE READ transaction: one consistent snapshot.
//
// Every change to a table or view is logged in zombi_changes by a trigger
// in the transaction that makes it, which also sends a notification;
// FollowChanges tells each process of the changes every process commits
// (see changes.go).
//
// Errors reaching the database map to catalog.ErrUnavailable; a commit whose
// outcome was lost with the connection to catalog.ErrCommitStateUnknown.
// PostgreSQL text cannot hold NUL bytes or invalid UTF-8: names with them
// are catalog.ErrInvalid.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/migrations"
)

// maxAttempts bounds how often Update runs fn when transactions conflict.
const maxAttempts = 10

// Store is a catalog.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	closed  atomic.Bool
	opts    options
	metrics *feedMetrics
}

var (
	_ catalog.Store       = (*Store)(nil)
	_ catalog.EntryLoader = (*Store)(nil)
	_ catalog.EntryLister = (*Store)(nil)
	_ catalog.ChangeFeed  = (*Store)(nil)
)

// An Option configures a Store.
type Option func(*options)

type options struct {
	log        *slog.Logger
	reg        prometheus.Registerer
	poll       time.Duration
	listen     bool
	retention  time.Duration
	pruneEvery time.Duration
}

// WithLogger sends the store's log messages to l.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the store's metrics with r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithPollInterval sets how often FollowChanges reads the change log when
// no notification came: the bound on how late a change is seen when
// notifications are lost. Default 500ms.
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithListen turns LISTEN for change notifications on (the default) or
// off. Off, FollowChanges only polls; that is for connections through a
// transaction-pooling proxy (PgBouncer), which does not deliver
// notifications.
func WithListen(on bool) Option { return func(o *options) { o.listen = on } }

// WithChangeRetention sets how long rows of the change log are kept
// before FollowChanges prunes them. A process that cannot read the log
// for longer assumes that everything changed. Default 1 hour.
func WithChangeRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// Open connects to the database at url (a postgres:// URL or a keyword/value
// string), applies pending schema migrations and returns the store. A
// database that cannot be reached is catalog.ErrUnavailable.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{
		log:        slog.New(slog.DiscardHandler),
		poll:       500 * time.Millisecond,
		listen:     true,
		retention:  time.Hour,
		pruneEvery: time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.poll <= 0 || o.retention <= 0 {
		return nil, errors.New("postgres: the poll interval and the change retention must be positive")
	}
	o.pruneEvery = min(o.pruneEvery, o.retention)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrations.Apply(ctx, pool); err != nil {
		pool.Close()
		return nil, wrap(err)
	}
	return &Store{pool: pool, opts: o, metrics: newFeedMetrics(o.reg)}, nil
}

var errClosed = fmt.Errorf("%w: postgres store is closed", catalog.ErrUnavailable)

// View runs fn in a read-only transaction on one snapshot.
func (s *Store) View(ctx context.Context, fn func(catalog.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	pgtx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return wrap(err)
	}
	t := &tx{ctx: ctx, pgtx: pgtx, readOnly: true}
	defer func() {
		t.done.Store(true)
		_ = pgtx.Rollback(ctx)
	}()
	return fn(t)
}

// LoadEntry reads one entry with a single statement outside a
// transaction: one round trip (catalog.EntryLoader).
func (s *Store) LoadEntry(ctx context.Context, kind catalog.Kind, id catalog.Ident) (catalog.Entry, error) {
	if err := ctx.Err(); err != nil {
		return catalog.Entry{}, err
	}
	if s.closed.Load() {
		return catalog.Entry{}, errClosed
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return catalog.Entry{}, err
	}
	e, found, err := scanEntry(s.pool.QueryRow(ctx, selectEntry, key, id.Name))
	if err != nil {
		return catalog.Entry{}, wrap(err)
	}
	if !found || e.Kind != kind {
		return catalog.Entry{}, catalog.NoSuch(kind, id)
	}
	return e, nil
}

// listEntries lists a namespace's entries of one kind in one statement:
// no row when the namespace does not exist, one row of NULL when it has no
// such entry.
const listEntries = `SELECT t.name FROM zombi_namespaces n
LEFT JOIN LATERAL (SELECT name FROM zombi_tables
	WHERE namespace = n.key AND kind = $2 AND ($3::text IS NULL OR name > $3) ORDER BY name LIMIT $4) t ON true
WHERE n.key = $1 ORDER BY t.name`

// ListEntries lists with a single statement outside a transaction: one
// round trip (catalog.EntryLister).
func (s *Store) ListEntries(ctx context.Context, kind catalog.Kind, ns catalog.Namespace, after string, limit int) ([]catalog.Ident, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	key, err := nsKey(ns)
	if err != nil {
		return nil, err
	}
	k, err := kindName(kind)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, listEntries, key, k, afterArg(after), limitArg(limit))
	if err != nil {
		return nil, wrap(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		return nil, wrap(err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	out := make([]catalog.Ident, 0, len(names))
	for _, n := range names {
		if n != nil {
			out = append(out, catalog.Ident{Namespace: append(catalog.Namespace(nil), ns...), Name: *n})
		}
	}
	return out, nil
}

// Update runs fn in a read-write transaction and commits it if fn returns
// nil, running fn again if the transaction conflicts with another.
func (s *Store) Update(ctx context.Context, fn func(catalog.Tx) error) error {
	var err error
	for attempt := range maxAttempts {
		if attempt > 0 {
			// Jittered, growing pause so conflicting writers spread out.
			d := time.Duration(rand.Int64N(int64(min(5*time.Millisecond<<attempt, 200*time.Millisecond))))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var retry bool
		if retry, err = s.update(ctx, fn); !retry {
			return err
		}
	}
	return fmt.Errorf("%w: transaction conflicted %d times: %w", catalog.ErrCommitFailed, maxAttempts, err)
}

// update makes one attempt; retry reports a conflict worth another.
func (s *Store) update(ctx context.Context, fn func(catalog.Tx) error) (retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if s.closed.Load() {
		return false, errClosed
	}
	pgtx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return false, wrap(err)
	}
	t := &tx{ctx: ctx, pgtx: pgtx}
	defer func() {
		t.done.Store(true)
		_ = pgtx.Rollback(ctx)
	}()
	err = fn(t)
	t.done.Store(true)
	switch {
	case t.conflict != nil:
		return true, t.conflict
	case err != nil:
		return isConflict(err), err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := pgtx.Commit(ctx); err != nil {
		var pgErr *pgconn.PgError
		switch {
		case isConflict(err):
			return true, err
		case errors.As(err, &pgErr):
			// The server answered: the transaction did not commit.
			return false, wrap(fmt.Errorf("commit: %w", err))
		case errors.Is(err, pgx.ErrTxCommitRollback):
			return false, fmt.Errorf("postgres: commit: transaction had failed: %w", errors.Join(err, t.failed))
		default:
			// The COMMIT may or may not have reached the server.
			return false, fmt.Errorf("%w: postgres: commit: %w", catalog.ErrCommitStateUnknown, err)
		}
	}
	return false, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return wrap(s.pool.Ping(ctx))
}

// Close closes the pool's connections once the transactions using them end.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// isConflict reports a serialization failure or a deadlock: the transaction
// was rolled back and may succeed if run again.
func isConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// wrap classifies a database error: unreachable database is
// ErrUnavailable, text PostgreSQL cannot store is ErrInvalid.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && !isNetwork(err):
		return err
	case errors.As(err, &pgErr):
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection_exception
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03": // cannot_connect_now
			return fmt.Errorf("%w: postgres: %w", catalog.ErrUnavailable, err)
		case pgErr.Code == "22021", // character_not_in_repertoire (NUL, invalid UTF-8)
			pgErr.Code == "22P05": // untranslatable_character
			return fmt.Errorf("%w: postgres: %w", catalog.ErrInvalid, err)
		}
		return fmt.Errorf("postgres: %w", err)
	case isNetwork(err):
		return fmt.Errorf("%w: postgres: %w", catalog.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// isNetwork reports an error from connecting or talking to the server, as
// opposed to one the server answered with.
func isNetwork(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
