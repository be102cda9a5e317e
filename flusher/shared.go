package flusher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/codec"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/tablefiles"
)

// Shared commits. With Options.Staging set (a cluster of nodes on one
// Postgres), a cycle does not commit its files: it stages them, as one
// batch of its node's events after the chain point (the higher of the
// node's watermark in the table and the end of its staged batches). Each
// flush interval, the node holding a table's commit lease (CommitLease)
// commits every node's staged batches in one append whose properties set
// every node's watermark to the end of its batches. So a table gets one
// append per interval whatever the number of nodes, and the
// watermark-in-the-commit rule still decides which events the table
// holds: a batch whose events a commit holds is stale and deleted, and a
// batch is committed only if it starts where its node's watermark ends.
//
// A node reads its staged end before it loads the table, so a commit and
// the deletion of its batches between the two reads cannot make it stage
// events the table already holds. Cycles that must see their events
// committed (Flush, WaitCommitted, Close) commit the staged batches
// themselves, lease or not: two committers are safe, by the same rule,
// and only cost a conflict.

// Staging is where the nodes of a cluster stage their batches
// (catalog/postgres.Store has it).
type Staging interface {
	Stage(ctx context.Context, b catalog.StagedBatch) (int64, error)
	StagedThrough(ctx context.Context, tableUUID, node string) (uint64, error)
	StagedBatches(ctx context.Context, tableUUID string) ([]catalog.StagedBatch, error)
	StagedTables(ctx context.Context) ([]string, error)
	Unstage(ctx context.Context, tableUUID string, ids []int64) error
}

// Leases hands out the commit lease of a table (catalog.Service has it).
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// CommitLease is the name of the lease whose holder commits the staged
// batches of the table with UUID tableUUID.
func CommitLease(tableUUID string) string { return "commit/" + tableUUID }

// stage records files, the events of this node after after through
// through, as a batch of table t. On failure it deletes own (the files
// the cycle wrote; a hot tail's are left to the plans that list them).
func (f *Flusher) stage(ctx context.Context, t *catalog.Table, files, own []iceberg.DataFile, after, through uint64, rows int64, oldest time.Time) error {
	m := t.Metadata
	b := catalog.StagedBatch{
		TableUUID: m.TableUUID().String(), Table: t.Ident, Node: f.node,
		After: after, Through: through, Rows: rows, Oldest: oldest, FormatVersion: m.Version(),
	}
	schema := m.CurrentSchema()
	for _, df := range files {
		spec := m.PartitionSpecByID(int(df.SpecID()))
		if spec == nil {
			tablefiles.Remove(ctx, f.fs, m.Location(), f.log, own)
			return fmt.Errorf("%w: table %s has no partition spec %d", catalog.ErrInvalid, t.Ident, df.SpecID())
		}
		data, err := codec.EncodeDataFile(df, *spec, schema, m.Version())
		if err != nil {
			tablefiles.Remove(ctx, f.fs, m.Location(), f.log, own)
			return fmt.Errorf("encoding data file %s: %w", df.FilePath(), err)
		}
		b.Files = append(b.Files, catalog.StagedFile{SpecID: int(df.SpecID()), SchemaID: schema.ID, Data: data})
	}
	start := time.Now()
	if _, err := f.opts.Staging.Stage(ctx, b); err != nil {
		// The outcome may be unknown: a batch that did land and is never
		// followed is committed or found stale; its files are left.
		return fmt.Errorf("staging %d files of %s: %w", len(files), t.Ident, err)
	}
	f.metrics.stageSeconds.Observe(time.Since(start).Seconds())
	f.metrics.stagedBatches.Inc()
	return nil
}

// chain is what a commit of a table's staged batches takes, by the
// watermarks of the table as loaded.
type chain struct {
	take  []catalog.StagedBatch
	marks map[string]uint64 // node -> the end of its batches taken
	// drop are batches no commit will take: stale ones (the table holds
	// their events) and broken ones (they do not start where their node's
	// watermark or previous batch ends: a batch before them was dropped,
	// and their node stages those events again).
	drop          []int64
	stale, broken int
}

func chainBatches(m table.Metadata, batches []catalog.StagedBatch) (chain, error) {
	c := chain{marks: map[string]uint64{}}
	byNode := map[string][]catalog.StagedBatch{}
	for _, b := range batches {
		byNode[b.Node] = append(byNode[b.Node], b)
	}
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		group := byNode[node]
		slices.SortFunc(group, func(a, b catalog.StagedBatch) int {
			return cmp.Or(cmp.Compare(a.After, b.After), cmp.Compare(a.ID, b.ID))
		})
		point, err := Watermark(m.Properties(), node)
		if err != nil {
			return chain{}, err
		}
		for _, b := range group {
			switch {
			case b.Through <= point:
				c.drop = append(c.drop, b.ID)
				c.stale++
			case b.After == point && fits(m, b):
				c.take = append(c.take, b)
				point = b.Through
				c.marks[node] = point
			default:
				c.drop = append(c.drop, b.ID)
				c.broken++
			}
		}
	}
	return c, nil
}

// fits reports whether b's files can be added to a table with metadata m:
// its format version, partition specs and schemas are the table's.
func fits(m table.Metadata, b catalog.StagedBatch) bool {
	if b.FormatVersion != m.Version() {
		return false
	}
	for _, f := range b.Files {
		if m.PartitionSpecByID(f.SpecID) == nil || schemaByID(m, f.SchemaID) == nil {
			return false
		}
	}
	return true
}

func schemaByID(m table.Metadata, id int) *iceberg.Schema {
	for _, s := range m.Schemas() {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// decode returns the data files of batches, decoded for metadata m.
func decode(m table.Metadata, batches []catalog.StagedBatch) ([]iceberg.DataFile, error) {
	var out []iceberg.DataFile
	for _, b := range batches {
		for _, sf := range b.Files {
			df, err := codec.DecodeDataFile(sf.Data, *m.PartitionSpecByID(sf.SpecID), schemaByID(m, sf.SchemaID), b.FormatVersion)
			if err != nil {
				return nil, fmt.Errorf("decoding a data file of staged batch %d: %w", b.ID, err)
			}
			out = append(out, df)
		}
	}
	return out, nil
}

// Staged returns the data files of the staged batches of table t (as
// loaded after the batches were listed) that a commit would take now, for
// live plans.
func (f *Flusher) staged(t *catalog.Table, batches []catalog.StagedBatch) ([]iceberg.DataFile, int64, error) {
	c, err := chainBatches(t.Metadata, batches)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: table %s: %w", catalog.ErrInvalid, t.Ident, err)
	}
	var rows int64
	for _, b := range c.take {
		rows += b.Rows
	}
	files, err := decode(t.Metadata, c.take)
	return files, rows, err
}

// sharedResult is what commitStaged did.
type sharedResult struct {
	table    *catalog.Table // as committed, or as loaded when nothing was
	snapshot int64
	rows     int64
	files    int
	bytes    int64
	oldest   time.Time
}

// commitStaged commits every staged batch of table id (UUID key) that
// chains from the table's watermarks, in one append, rebasing onto
// concurrent commits; it then deletes the batches the table holds or no
// commit can take.
func (f *Flusher) commitStaged(ctx context.Context, key string, id catalog.Ident) (sharedResult, error) {
	batches, err := f.opts.Staging.StagedBatches(ctx, key)
	if err != nil {
		return sharedResult{}, err
	}
	t, err := f.cat.LoadTable(ctx, id)
	if err != nil {
		return sharedResult{}, err
	}
	if t.Metadata.TableUUID().String() != key {
		return sharedResult{}, fmt.Errorf("%w: %s is no longer the table with UUID %s", errTableGone, id, key)
	}
	return f.commitBatches(ctx, key, batches, t)
}

// commitBatches is commitStaged with the batches listed and, after that,
// the table t loaded.
func (f *Flusher) commitBatches(ctx context.Context, key string, batches []catalog.StagedBatch, t *catalog.Table) (sharedResult, error) {
	id := t.Ident
	conflicts, unknown := 0, 0
	for {
		c, err := chainBatches(t.Metadata, batches)
		if err != nil {
			return sharedResult{}, fmt.Errorf("%w: table %s: %w", catalog.ErrInvalid, t.Ident, err)
		}
		if c.stale+c.broken > 0 {
			f.metrics.stagedDropped.WithLabelValues("stale").Add(float64(c.stale))
			f.metrics.stagedDropped.WithLabelValues("broken").Add(float64(c.broken))
		}
		if len(c.take) == 0 {
			return sharedResult{table: t, snapshot: tablefiles.CurrentSnapshotID(t.Metadata)}, f.unstage(ctx, key, c.drop)
		}
		files, err := decode(t.Metadata, c.take)
		if err != nil {
			return sharedResult{}, err
		}
		res := sharedResult{files: len(files)}
		for _, b := range c.take {
			res.rows += b.Rows
			if res.oldest.IsZero() || b.Oldest.Before(res.oldest) {
				res.oldest = b.Oldest
			}
		}
		for _, df := range files {
			res.bytes += df.FileSizeBytes()
		}
		props := iceberg.Properties{}
		for node, mark := range c.marks {
			props[WatermarkProperty(node)] = strconv.FormatUint(mark, 10)
		}
		tx := f.icebergTable(t).NewTransaction()
		err = tx.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck(), table.WithoutAutoNameMapping())
		if err == nil {
			err = tx.SetProperties(props)
		}
		var tc table.TableCommit
		if err == nil {
			tc, err = tx.TableCommit()
		}
		if err != nil {
			// No commit can take these batches: their nodes stage the
			// events again.
			f.metrics.stagedDropped.WithLabelValues("invalid").Add(float64(len(c.take)))
			return sharedResult{}, errors.Join(fmt.Errorf("%w: preparing the commit of staged batches to %s: %w", catalog.ErrInvalid, t.Ident, err),
				f.unstage(ctx, key, append(c.drop, ids(c.take)...)))
		}
		next, err := f.cat.CommitTable(ctx, catalog.TableChange{Ident: t.Ident, Requirements: tc.Requirements, Updates: tc.Updates}, nil)
		switch {
		case err == nil:
			res.table, res.snapshot = next, tablefiles.CurrentSnapshotID(next.Metadata)
			f.metrics.sharedCommits.Inc()
			f.metrics.sharedNodes.Observe(float64(len(c.marks)))
			f.log.Debug("shared commit", "table", t.Ident.String(), "watermarks", describeChain(c), "rows", res.rows, "files", res.files)
			return res, f.unstage(ctx, key, append(c.drop, ids(c.take)...))
		case errors.Is(err, catalog.ErrCommitFailed):
			f.metrics.conflicts.Inc()
			if conflicts++; conflicts > maxConflicts {
				return sharedResult{}, fmt.Errorf("commit of staged batches to %s lost %d times to concurrent commits: %w", t.Ident, conflicts, err)
			}
		case errors.Is(err, catalog.ErrNoSuchTable), errors.Is(err, catalog.ErrNoSuchNamespace):
			return sharedResult{}, fmt.Errorf("committing staged batches to %s: %w", t.Ident, err)
		case errors.Is(err, catalog.ErrInvalid), errors.Is(err, catalog.ErrUnprocessable):
			f.metrics.stagedDropped.WithLabelValues("invalid").Add(float64(len(c.take)))
			return sharedResult{}, errors.Join(fmt.Errorf("committing staged batches to %s: %w", t.Ident, err),
				f.unstage(ctx, key, append(c.drop, ids(c.take)...)))
		default:
			unknown++
			f.log.Warn("commit outcome unknown; checking the table", "table", t.Ident.String(), "attempt", unknown, "err", err)
		}
		if err := tablefiles.Sleep(ctx, retryWait(conflicts+unknown)); err != nil {
			return sharedResult{}, fmt.Errorf("committing staged batches to %s: %w", t.Ident, err)
		}
		// Reload and chain again: a commit that landed after all, or a
		// concurrent one, moved the watermarks, and its batches are stale.
		if t, err = f.cat.LoadTable(ctx, id); err != nil {
			return sharedResult{}, err
		}
		if t.Metadata.TableUUID().String() != key {
			return sharedResult{}, fmt.Errorf("%w: %s was dropped and created again", errTableGone, id)
		}
	}
}

func (f *Flusher) unstage(ctx context.Context, key string, drop []int64) error {
	if err := f.opts.Staging.Unstage(ctx, key, drop); err != nil {
		// Harmless: a later commit finds them stale or broken again.
		f.log.Warn("deleting staged batches", "key", key, "batches", len(drop), "err", err)
	}
	return nil
}

func ids(bs []catalog.StagedBatch) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

// committer is the shared-commit loop: every tick it looks at the tables
// with staged batches and, for each whose last commit is an interval old,
// takes its commit lease and commits its batches.
func (f *Flusher) committer() {
	defer close(f.committerDone)
	tick := time.NewTicker(max(f.opts.Interval/4, 10*time.Millisecond))
	defer tick.Stop()
	next := map[string]time.Time{} // table UUID -> earliest next commit
	held := map[string]bool{}      // table UUIDs whose commit lease this node took
	defer func() {
		// Another node commits these tables at once, not a lease later.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for key := range held {
			if err := f.opts.Leases.ReleaseLease(ctx, CommitLease(key), f.node); err != nil {
				f.log.Warn("releasing a commit lease", "key", key, "err", err)
			}
		}
	}()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		}
		keys, err := f.opts.Staging.StagedTables(f.ctx)
		if err != nil {
			if f.ctx.Err() == nil {
				f.log.Warn("listing staged tables", "err", err)
			}
			continue
		}
		now := f.opts.Now()
		for _, key := range keys {
			if now.Before(next[key]) {
				continue
			}
			wait, took := f.commitShared(f.ctx, key)
			next[key] = now.Add(wait)
			if took {
				held[key] = true // released at the end, if still ours
			}
		}
		for key := range next {
			if !slices.Contains(keys, key) {
				delete(next, key)
			}
		}
	}
}

// commitShared commits table key's staged batches if this node holds or
// gets its commit lease and its last commit is an interval old. It
// returns how long to wait before looking at the table again, and whether
// it took the lease.
func (f *Flusher) commitShared(ctx context.Context, key string) (wait time.Duration, took bool) {
	batches, err := f.opts.Staging.StagedBatches(ctx, key)
	if err != nil || len(batches) == 0 {
		return f.opts.Interval / 4, false
	}
	hint := batches[0].Table
	f.mu.Lock()
	if st := f.tables[key]; st != nil && st.resolved {
		hint = st.ident
	}
	f.mu.Unlock()
	t, err := f.resolve(ctx, key, hint, true)
	if errors.Is(err, errTableGone) {
		f.log.Warn("deleting the staged batches of a dropped table", "key", key, "batches", len(batches))
		_ = f.unstage(ctx, key, ids(batches))
		return f.opts.Interval, false
	}
	if err != nil {
		f.log.Warn("finding the table of staged batches", "key", key, "err", err)
		return f.opts.Interval, false
	}
	every := interval(t.Metadata.Properties(), f.opts.Interval)
	if s := t.Metadata.CurrentSnapshot(); s != nil {
		if wait := time.UnixMilli(s.TimestampMs).Add(every).Sub(f.opts.Now()); wait > 0 {
			return min(wait, every), false
		}
	}
	ok, err := f.opts.Leases.AcquireLease(ctx, CommitLease(key), f.node, max(3*every, 5*time.Second))
	if err != nil || !ok {
		if err != nil {
			f.log.Warn("taking a commit lease", "table", t.Ident.String(), "err", err)
		}
		return every, false
	}
	start := time.Now()
	// The batches were listed before resolve loaded t: what commitStaged
	// would do again.
	res, err := f.commitBatches(ctx, key, batches, t)
	if err != nil {
		f.metrics.failures.WithLabelValues(failureReason(err)).Inc()
		f.log.Error("shared commit failed", "table", t.Ident.String(), "err", err)
		return every, true
	}
	if res.rows > 0 {
		f.metrics.commit.Observe(time.Since(start).Seconds())
		f.noteShared(key, res)
	}
	return every, true
}

// noteShared records a shared commit in the metrics and, if it holds this
// node's events, in the table's state: its events become deletable.
func (f *Flusher) noteShared(key string, res sharedResult) {
	f.metrics.rows.Add(float64(res.rows))
	f.metrics.files.Add(float64(res.files))
	f.metrics.bytes.Add(float64(res.bytes))
	if !res.oldest.IsZero() {
		f.metrics.lag.Observe(f.opts.Now().Sub(res.oldest).Seconds())
	}
	if res.rows > 0 {
		f.mu.Lock()
		f.lastCommit = f.opts.Now()
		f.mu.Unlock()
	}
	w, err := Watermark(res.table.Metadata.Properties(), f.node)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.tables[key]
	if st != nil && res.rows > 0 {
		c := Commit{At: f.opts.Now(), SnapshotID: res.snapshot, Rows: res.rows, Files: res.files, Bytes: res.bytes, Shared: true}
		if !res.oldest.IsZero() {
			c.Lag = c.At.Sub(res.oldest)
		}
		st.noteCommit(c)
	}
	if st == nil || w <= st.committed {
		return
	}
	st.committed, st.snapshot = w, res.snapshot
	st.checkAt = time.Time{} // a cycle deletes the events now
	if f.opts.Retention > 0 {
		st.deletes = append(st.deletes, pendingDelete{seq: w, at: f.opts.Now().Add(f.opts.Retention)})
	}
	st.waiters = slices.DeleteFunc(st.waiters, func(wt *waiter) bool {
		if wt.seq > st.committed {
			return false
		}
		wt.done <- st.snapshot
		return true
	})
}

// describeChain is for logs: each node's watermark in the commit.
func describeChain(c chain) string {
	var parts []string
	for _, node := range slices.Sorted(maps.Keys(c.marks)) {
		parts = append(parts, node+"→"+strconv.FormatUint(c.marks[node], 10))
	}
	return strings.Join(parts, ",")
}

// commitOwn commits the staged batches of st's table t for a cycle that
// must see its events committed, and records this node's part in res.
func (f *Flusher) commitOwn(ctx context.Context, st *tableState, t *catalog.Table, res Result) (Result, error) {
	start := time.Now()
	sr, err := f.commitStaged(ctx, st.key, t.Ident)
	if err != nil {
		return res, err
	}
	if sr.rows > 0 {
		f.metrics.commit.Observe(time.Since(start).Seconds())
		f.noteShared(st.key, sr)
	}
	w, err := Watermark(sr.table.Metadata.Properties(), f.node)
	if err != nil {
		return res, fmt.Errorf("%w: table %s: %w", catalog.ErrInvalid, t.Ident, err)
	}
	res.SnapshotID, res.Watermark = sr.snapshot, w
	res.Rows, res.Files, res.Bytes = sr.rows, sr.files, sr.bytes
	f.mu.Lock()
	if w > st.committed {
		st.committed, st.snapshot = w, sr.snapshot
	}
	f.mu.Unlock()
	if err := f.deleteCommitted(ctx, st); err != nil {
		f.log.Warn("deleting flushed events from the hot tier", "table", res.Table, "err", err)
	}
	return res, nil
}
