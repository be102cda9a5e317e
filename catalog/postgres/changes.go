package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zombi-db/zombi/catalog"
)

// How the processes sharing a database learn of each other's changes:
//
// A trigger on zombi_tables (migration 0004) writes a row to zombi_changes
// for every entry a transaction creates, changes, renames or drops, and
// sends a notification on the channel zombi_changes; both become visible
// with the commit, and not at all without one. FollowChanges keeps a
// connection that LISTENs on the channel and, on a notification, or after
// the poll interval without one, reads the rows it has not read yet.
//
// Which rows those are is decided by snapshot, not by seq: seqs are taken
// at insert and transactions commit in another order, so a row with a
// smaller seq than one already read can still appear. Each read runs in one
// statement that also returns the statement's snapshot; the next read asks
// for the rows whose transaction the snapshot did not see as committed (an
// xid at or above its xmax, or among its in-progress xids). So every row is
// read exactly once, whatever the commit order.
//
// Rows older than the retention are pruned by whichever process gets to
// them first. Pruning records the highest xid it deleted and counts its
// deletions; a reader whose last snapshot may not have seen a deleted row
// reports that everything changed.

const changesChannel = "zombi_changes"

// readChanges returns, under one snapshot, a first row with that snapshot,
// the count of prunes and whether a pruned row may have been invisible in
// $1, the snapshot of the previous read; then the changes invisible in $1,
// in seq order. Without a previous snapshot ($1 NULL) it returns the first
// row only.
const readChanges = `SELECT pg_current_snapshot()::text, p.prunes, p.xid >= pg_snapshot_xmin($1::text::pg_snapshot),
	NULL::bigint, NULL::text, NULL::text, NULL::float8
FROM zombi_changes_pruned p
UNION ALL
SELECT NULL, NULL, NULL, c.seq, c.namespace, c.name, extract(epoch FROM clock_timestamp() - c.at)::float8
FROM zombi_changes c
WHERE c.xid >= pg_snapshot_xmax($1::text::pg_snapshot)
   OR c.xid = ANY (ARRAY(SELECT pg_snapshot_xip($1::text::pg_snapshot)))
ORDER BY 4 NULLS FIRST`

// pruneChanges deletes the changes older than $1 seconds, by the
// database's clock, records the highest xid deleted and returns the count.
const pruneChanges = `WITH gone AS (
	DELETE FROM zombi_changes WHERE at < clock_timestamp() - make_interval(secs => $1) RETURNING xid
), bump AS (
	UPDATE zombi_changes_pruned p SET xid = greatest(p.xid, g.xid), prunes = p.prunes + 1
	FROM (SELECT xid FROM gone ORDER BY xid DESC LIMIT 1) g
	RETURNING 1
)
SELECT count(*) FROM gone`

// Causes of a read of the change log, as metric labels.
const (
	causeNotify = "notify" // a notification came
	causePoll   = "poll"   // the poll interval passed without one
	causeListen = "listen" // the listening connection was (re)established
)

// Reconnection delays of the listening connection.
const (
	minListenDelay = 100 * time.Millisecond
	maxListenDelay = 5 * time.Second
)

// FollowChanges calls fn with the tables and views whose entries any
// process changes in the database, within the poll interval of the commit
// and usually within milliseconds (catalog.ChangeFeed). The first call
// reports All, as does a read that finds the log pruned past the previous
// one. fn runs on one goroutine, one call at a time. A database that
// cannot be reached is retried. FollowChanges returns nil when ctx ends,
// or the error of a closed store.
func (s *Store) FollowChanges(ctx context.Context, fn func(catalog.Changes)) error {
	if s.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{s: s, fn: fn, kick: make(chan string, 1)}
	var wg sync.WaitGroup
	if s.opts.listen {
		wg.Go(func() { f.listen(ctx) })
	}
	err := f.run(ctx)
	cancel()
	wg.Wait()
	return err
}

// PruneChanges deletes the rows of the change log written more than age
// ago and returns how many it deleted. FollowChanges calls it every
// minute with the retention (WithChangeRetention).
func (s *Store) PruneChanges(ctx context.Context, age time.Duration) (int64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var n int64
	if err := s.pool.QueryRow(ctx, pruneChanges, age.Seconds()).Scan(&n); err != nil {
		return 0, wrap(err)
	}
	s.metrics.pruned.Add(float64(n))
	return n, nil
}

// follower is one FollowChanges.
type follower struct {
	s  *Store
	fn func(catalog.Changes)
	// kick asks for a read now; it holds the cause.
	kick chan string
	// snap is the snapshot of the last read, "" before the first; prunes
	// the count of prunes it saw.
	snap   string
	prunes int64
	// failing is set while reads fail, so that an outage is logged once.
	failing    bool
	lastPruned time.Time
}

func (f *follower) poke(cause string) {
	select {
	case f.kick <- cause:
	default: // a read is asked for already
	}
}

// run reads the change log when kicked or polled, until ctx ends.
func (f *follower) run(ctx context.Context) error {
	poll := time.NewTimer(0) // the first read at once
	defer poll.Stop()
	for {
		cause := causePoll
		select {
		case <-ctx.Done():
			return nil
		case cause = <-f.kick:
		case <-poll.C:
		}
		if f.s.closed.Load() {
			return errClosed
		}
		f.readLogged(ctx, cause)
		if time.Since(f.lastPruned) >= f.s.opts.pruneEvery {
			f.lastPruned = time.Now()
			if _, err := f.s.PruneChanges(ctx, f.s.opts.retention); err != nil && ctx.Err() == nil {
				f.s.opts.log.Warn("pruning the change log", "err", err)
			}
		}
		poll.Reset(f.s.opts.poll)
	}
}

// readLogged reads and logs the start and the end of a streak of failures.
func (f *follower) readLogged(ctx context.Context, cause string) {
	err := f.read(ctx, cause)
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil:
		f.s.metrics.readErrors.Inc()
		if !f.failing {
			f.s.opts.log.Warn("cannot read the change log; tables changed by other nodes may be seen late", "err", err)
		}
		f.failing = true
	case f.failing:
		f.failing = false
		f.s.opts.log.Info("reading the change log again")
	}
}

// read reads the changes committed since the last read and reports them.
func (f *follower) read(ctx context.Context, cause string) error {
	var prev any // NULL before the first read
	if f.snap != "" {
		prev = f.snap
	}
	rows, err := f.s.pool.Query(ctx, readChanges, prev)
	if err != nil {
		return wrap(err)
	}
	var (
		snap   *string
		prunes *int64
		missed bool
		ids    []catalog.Ident
		seen   = map[[2]string]bool{}
	)
	for rows.Next() {
		var (
			s        *string
			p, seq   *int64
			m        *bool
			ns, name *string
			lag      *float64
		)
		if err := rows.Scan(&s, &p, &m, &seq, &ns, &name, &lag); err != nil {
			rows.Close()
			return wrap(err)
		}
		if seq == nil {
			snap, prunes, missed = s, p, m != nil && *m
			continue
		}
		f.s.metrics.lag.Observe(*lag)
		if k := [2]string{*ns, *name}; !seen[k] {
			seen[k] = true
			ids = append(ids, catalog.Ident{Namespace: strings.Split(*ns, "\x1f"), Name: *name})
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	if snap == nil || prunes == nil {
		return errors.New("postgres: the change log's first row is missing")
	}
	f.s.metrics.reads.WithLabelValues(cause).Inc()
	switch {
	case f.snap == "":
		// Whatever was cached before the feed began may be stale.
		f.fn(catalog.Changes{All: true})
	case missed && *prunes != f.prunes:
		f.s.metrics.lost.Inc()
		f.s.opts.log.Warn("the change log was pruned past this node's last read; treating every table as changed")
		f.fn(catalog.Changes{All: true})
	case len(ids) > 0:
		f.s.metrics.changes.WithLabelValues(cause).Add(float64(len(ids)))
		f.fn(catalog.Changes{Idents: ids})
	}
	f.snap, f.prunes = *snap, *prunes
	return nil
}

// listen keeps a connection listening for change notifications until ctx
// ends, reconnecting with growing delays when it is lost.
func (f *follower) listen(ctx context.Context) {
	delay := minListenDelay
	lost := false
	for {
		start := time.Now()
		err := f.listenOnce(ctx, func() {
			if lost {
				lost = false
				f.s.opts.log.Info("listening for change notifications again")
			}
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = minListenDelay
		}
		if !lost {
			f.s.metrics.reconnects.Inc()
			f.s.opts.log.Warn("change notifications: connection lost; reconnecting, polling meanwhile", "err", err)
		}
		lost = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxListenDelay)
	}
}

// listenOnce connects, listens, calls up once it listens and pokes the
// reader for each notification, until the connection fails or ctx ends.
func (f *follower) listenOnce(ctx context.Context, up func()) error {
	conn, err := pgx.ConnectConfig(ctx, f.s.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return err
	}
	up()
	// What was committed while nobody listened.
	f.poke(causeListen)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		f.s.metrics.notifications.Inc()
		f.poke(causeNotify)
	}
}

// feedMetrics are the change feed's Prometheus metrics.
type feedMetrics struct {
	notifications prometheus.Counter
	reads         *prometheus.CounterVec
	readErrors    prometheus.Counter
	changes       *prometheus.CounterVec
	lag           prometheus.Histogram
	reconnects    prometheus.Counter
	lost          prometheus.Counter
	pruned        prometheus.Counter
}

func newFeedMetrics(r prometheus.Registerer) *feedMetrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "zombi", Subsystem: "catalog", Name: name, Help: help}
	}
	m := &feedMetrics{
		notifications: prometheus.NewCounter(opts("change_notifications_total",
			"Change notifications received from Postgres.")),
		reads: prometheus.NewCounterVec(opts("change_reads_total",
			"Reads of the change log, by cause: notify, poll (no notification within the poll interval), listen (after listening began)."),
			[]string{"cause"}),
		readErrors: prometheus.NewCounter(opts("change_read_errors_total",
			"Reads of the change log that failed.")),
		changes: prometheus.NewCounterVec(opts("changes_total",
			"Changed tables and views reported to this node, by the cause of the read that found them; changes found by poll mean notifications are lost."),
			[]string{"cause"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "catalog", Name: "change_lag_seconds",
			Help:    "Time from a change's commit to this node reading it, by the database's clock.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		reconnects: prometheus.NewCounter(opts("change_listen_reconnects_total",
			"Times the connection listening for change notifications was lost.")),
		lost: prometheus.NewCounter(opts("change_log_lost_total",
			"Reads that found the change log pruned past the previous read, after which every table counts as changed.")),
		pruned: prometheus.NewCounter(opts("changes_pruned_total",
			"Rows of the change log this node deleted as older than the retention.")),
	}
	if r != nil {
		r.MustRegister(m.notifications, m.reads, m.readErrors, m.changes, m.lag, m.reconnects, m.lost, m.pruned)
	}
	return m
}
