package flusher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/hotrow"
	"github.com/zombi-db/zombi/internal/ingesttable"
	"github.com/zombi-db/zombi/internal/tablefiles"
	"github.com/zombi-db/zombi/warehouse"
)

// readBatch is how many events one hot-tier read returns at most, and
// firstReadBatch how many the first read of a cycle does, before the
// events' size is known.
const (
	readBatch      = 4096
	firstReadBatch = 64
)

// rowCost is what a cycle counts for each event beyond its hot-tier bytes
// against MaxCycleBytes: its fixed-width Arrow columns and offsets, and
// the table name each row repeats. Without it a cycle of tiny events held
// several times MaxCycleBytes (64 MiB of 30-byte events is 2 million
// rows, ~1 GiB while sorting and writing them).
const rowCost = 64

// maxConflicts is how many times one cycle rebases its files onto a
// concurrent commit before it gives up and the table backs off.
const maxConflicts = 30

// cycle flushes the events of st that are not yet in its table. It runs
// without f.mu; st's fields are read and written under it.
//
// With Options.Staging (shared.go) it stages its files instead of
// committing them; force (a Flush, a waiter, Close) then commits every
// node's staged batches of the table at once.
func (f *Flusher) cycle(ctx context.Context, st *tableState, force bool) (res Result, err error) {
	defer func() {
		switch {
		case err == nil && res.Rows > 0:
			f.metrics.cycles.WithLabelValues("committed").Inc()
		case err == nil:
			f.metrics.cycles.WithLabelValues("empty").Inc()
		default:
			f.metrics.cycles.WithLabelValues("failed").Inc()
			f.metrics.failures.WithLabelValues(failureReason(err)).Inc()
			f.log.Error("flush failed", "table", res.Table, "key", st.key, "err", err)
		}
	}()

	// The end of this node's staged batches is read before the table is
	// loaded (see shared.go).
	var staged uint64
	if f.opts.Staging != nil {
		if staged, err = f.opts.Staging.StagedThrough(ctx, st.key, f.node); err != nil {
			return Result{}, err
		}
	}
	f.mu.Lock()
	hint, resolved := st.ident, st.resolved
	f.mu.Unlock()
	t, err := f.resolve(ctx, st.key, hint, resolved)
	if errors.Is(err, errTableGone) {
		return Result{}, f.discard(ctx, st)
	}
	if err != nil {
		return Result{}, err
	}
	res.Table = t.Ident.String()
	w, after, err := f.begin(st, t)
	if err != nil {
		return res, err
	}

	if err := f.deleteCommitted(ctx, st); err != nil {
		return res, err
	}
	if f.opts.Staging != nil {
		after = max(w, staged)
		f.mu.Lock()
		st.staged, st.stagedThrough = max(st.staged, after), staged
		st.checkAt = f.opts.Now().Add(st.interval)
		f.mu.Unlock()
	}

	// The hot tail written for live plans since the last commit, if it
	// starts where this cycle does, is committed as it is: the files a
	// plan listed become the table's, and nothing is encoded twice.
	tl := f.takeTail(st, t, after)
	from := after
	if tl != nil {
		from = tl.through
	}
	rec, last, covered, oldest, err := f.read(ctx, st.key, from, t)
	if err != nil {
		return res, err
	}
	if rec == nil && tl.rows() == 0 {
		// Only sequences that hold no event (failed appends): move past
		// them. (With staging the next batch still starts at the chain
		// point: its first sequences hold nothing.)
		f.mu.Lock()
		if f.opts.Staging != nil {
			st.staged = max(st.staged, covered)
		} else {
			st.committed = max(st.committed, covered)
		}
		f.mu.Unlock()
		if f.opts.Staging != nil && force {
			return f.commitOwn(ctx, st, t, res)
		}
		res.SnapshotID = tablefiles.CurrentSnapshotID(t.Metadata)
		res.Watermark = w
		return res, nil
	}
	rows := tl.rows()
	files := tl.files()
	var own []iceberg.DataFile
	if rec != nil {
		rows += rec.NumRows()
		if own, err = f.write(ctx, t, rec); err != nil {
			return res, err
		}
		files = append(files, own...)
	} else {
		last = tl.through
	}
	if tl != nil && (oldest.IsZero() || tl.oldest.Before(oldest)) {
		oldest = tl.oldest
	}
	if f.opts.Staging != nil {
		if err := f.stage(ctx, t, files, own, after, last, rows, oldest); err != nil {
			return res, err
		}
		f.mu.Lock()
		st.staged, st.stagedThrough = max(st.staged, last), last
		st.oldest = time.Time{}
		f.mu.Unlock()
		if n := len(files) - len(own); n > 0 {
			f.metrics.tailCommitted.Add(float64(n))
		}
		if force {
			return f.commitOwn(ctx, st, t, res)
		}
		res.SnapshotID, res.Watermark = tablefiles.CurrentSnapshotID(t.Metadata), w
		return res, nil
	}
	start := time.Now()
	snap, err := f.commit(ctx, t, files, own, last)
	if err != nil {
		return res, err
	}
	f.metrics.commit.Observe(time.Since(start).Seconds())

	res.SnapshotID, res.Rows, res.Files, res.Watermark = snap, rows, len(files), last
	for _, df := range files {
		res.Bytes += df.FileSizeBytes()
	}
	f.metrics.rows.Add(float64(rows))
	f.metrics.files.Add(float64(len(files)))
	f.metrics.bytes.Add(float64(res.Bytes))
	f.metrics.lag.Observe(f.opts.Now().Sub(oldest).Seconds())
	if n := len(files) - len(own); n > 0 {
		f.metrics.tailCommitted.Add(float64(n))
	}

	f.mu.Lock()
	st.committed = max(st.committed, last)
	st.snapshot = snap
	st.oldest = time.Time{}
	f.lastCommit = f.opts.Now()
	st.noteCommit(Commit{At: f.lastCommit, SnapshotID: snap, Rows: rows, Files: len(files), Bytes: res.Bytes, Lag: f.lastCommit.Sub(oldest)})
	if f.opts.Retention > 0 {
		st.deletes = append(st.deletes, pendingDelete{seq: last, at: f.opts.Now().Add(f.opts.Retention)})
	}
	f.mu.Unlock()
	if err := f.deleteCommitted(ctx, st); err != nil {
		// The events are committed; their deletion is retried by the next
		// cycle.
		f.log.Warn("deleting flushed events from the hot tier", "table", res.Table, "err", err)
	}
	return res, nil
}

// begin records what the loaded table t says about st: its identifier,
// interval and this node's watermark w. It returns w and after, the
// sequence the table holds every event of this node through: w, or past it
// when only sequences that hold no event follow. A cycle or a tail reads
// the events after it.
func (f *Flusher) begin(st *tableState, t *catalog.Table) (w, after uint64, err error) {
	w, err = Watermark(t.Metadata.Properties(), f.node)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: table %s: %w", catalog.ErrInvalid, t.Ident, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st.ident, st.resolved = t.Ident, true
	st.interval = interval(t.Metadata.Properties(), f.opts.Interval)
	if w > st.committed || st.snapshot == 0 {
		if w > st.committed {
			// Committed before this process knew: after a restart, or by
			// a cycle whose outcome was unknown.
			st.committed = w
			st.oldest = time.Time{}
			if f.opts.Retention > 0 {
				st.deletes = append(st.deletes, pendingDelete{seq: w, at: f.opts.Now().Add(f.opts.Retention)})
			}
		}
		st.snapshot = tablefiles.CurrentSnapshotID(t.Metadata)
	}
	return w, st.committed, nil
}

// read builds one record of the table's events after seq, up to
// MaxCycleBytes. last is the sequence of the last event read; covered is
// a sequence through which every event after seq is in the record: last
// when the read stopped at MaxCycleBytes, else at least the high watermark
// seen when it began. With no events it returns a nil record.
func (f *Flusher) read(ctx context.Context, key string, after uint64, t *catalog.Table) (rec arrow.RecordBatch, last, covered uint64, oldest time.Time, err error) {
	hwm := f.hot.HighWatermark(key)
	schema := t.Metadata.CurrentSchema()
	maxSchema := 0
	for _, s := range t.Metadata.Schemas() {
		maxSchema = max(maxSchema, s.ID)
	}
	b, err := hotrow.NewArrowBuilder(memory.DefaultAllocator, schema, t.Ident.String(),
		hotrow.WithOffsetColumn(ingesttable.OffsetColumnID(t.Metadata.Properties(), schema)),
		hotrow.WithKnownSchemas(maxSchema))
	if err != nil {
		return nil, 0, 0, time.Time{}, fmt.Errorf("%w: table %s: %w", ErrSchema, t.Ident, err)
	}
	defer b.Release()
	var size, n int64
	newer := false // an event was written with a schema t does not know
read:
	for last = after; size < f.opts.MaxCycleBytes; {
		// Read no more events than the room left holds at the average
		// size so far (a first read of a few): a count alone would let
		// one read of large events go far past MaxCycleBytes.
		limit := int64(firstReadBatch)
		if n > 0 {
			limit = min(readBatch, (f.opts.MaxCycleBytes-size)/(size/n)+1)
		}
		evs, err := f.hot.Read(ctx, key, last, int(limit))
		if err != nil {
			return nil, 0, 0, time.Time{}, fmt.Errorf("hot: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			err := b.Append(ev.Seq, ev.Value)
			if errors.Is(err, hotrow.ErrNewerSchema) {
				// Ingest evolved the schema after t was loaded: stop
				// before this event; the next cycle loads the table again.
				newer = true
				break read
			}
			if err != nil {
				return nil, 0, 0, time.Time{}, fmt.Errorf("%w: table %s, event %d: %w (it stays in the hot tier; change the schema or the writer)",
					ErrSchema, t.Ident, ev.Seq, err)
			}
			if oldest.IsZero() || ev.Appended.Before(oldest) {
				oldest = ev.Appended
			}
			size += int64(len(ev.Key)+len(ev.Value)) + rowCost
			n++
			last = ev.Seq
		}
	}
	covered = last
	if size < f.opts.MaxCycleBytes && !newer {
		covered = max(last, hwm)
	}
	if b.Len() == 0 {
		return nil, after, covered, time.Time{}, nil
	}
	return b.NewRecord(), last, covered, oldest, nil
}

// write writes rec as Parquet data files of t, split by its partition spec
// and sorted by its sort order. On failure it deletes the files it wrote.
func (f *Flusher) write(ctx context.Context, t *catalog.Table, rec arrow.RecordBatch) ([]iceberg.DataFile, error) {
	tbl := f.icebergTable(t)
	meta, own := t.Metadata, false
	if limit, ok := pageRowLimit(meta.Properties(), rec); ok {
		m, err := tablefiles.WithProperties(meta, t.MetadataLocation,
			iceberg.Properties{table.ParquetPageRowLimitKey: strconv.Itoa(limit)})
		if err != nil {
			return nil, fmt.Errorf("%w: writing data files of %s: %w", ErrStorage, t.Ident, err)
		}
		meta, own = m, true
	}
	// A cycle of an event table is in its sort order already, mostly: the
	// sorter copies it only when it is not (tablefiles.Sorter), and the
	// writer sorts nothing.
	if sorter, ok := tablefiles.NewSorter(meta.CurrentSchema(), meta.SortOrder(), rec.Schema()); ok {
		m, err := tablefiles.Unsorted(meta, t.MetadataLocation)
		if err != nil {
			return nil, fmt.Errorf("%w: writing data files of %s: %w", ErrStorage, t.Ident, err)
		}
		meta, own = m, true
		if rec, err = sorter.Sort(ctx, rec); err != nil {
			return nil, fmt.Errorf("%w: sorting the events of %s: %w", ErrStorage, t.Ident, err)
		}
	}
	if own {
		tbl = table.New(tbl.Identifier(), meta, t.MetadataLocation, warehouse.ConfineF(f.fs, t.Metadata.Location()), nil)
	}
	batches := func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
	var files []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, tbl, rec.Schema(), batches) {
		if err != nil {
			tablefiles.Remove(ctx, f.fs, t.Metadata.Location(), f.log, files)
			return nil, fmt.Errorf("%w: writing data files of %s: %w", ErrStorage, t.Ident, err)
		}
		files = append(files, df)
	}
	return files, nil
}

// commit appends files to t with its watermark set to last, rebasing onto
// concurrent commits. It returns the new snapshot's ID. When the outcome of
// a commit is unknown it reloads the table until the table says: a
// watermark at last means the commit landed. When nothing was committed,
// it deletes the files the cycle wrote itself (own); a hot tail's files are
// left, for the plans that list them, and orphan cleanup.
func (f *Flusher) commit(ctx context.Context, t *catalog.Table, files, own []iceberg.DataFile, last uint64) (int64, error) {
	uuid, id := t.Metadata.TableUUID(), t.Ident
	// The files were written under the table's location as it was then.
	loc := t.Metadata.Location()
	wm := strconv.FormatUint(last, 10)
	key := WatermarkProperty(f.node)
	conflicts, unknown := 0, 0
	for {
		tbl := f.icebergTable(t)
		tx := tbl.NewTransaction()
		err := tx.AddDataFiles(ctx, files, iceberg.Properties{key: wm},
			table.WithoutDuplicateCheck(), table.WithoutAutoNameMapping())
		if err == nil {
			err = tx.SetProperties(iceberg.Properties{key: wm})
		}
		var tc table.TableCommit
		if err == nil {
			tc, err = tx.TableCommit()
		}
		if err != nil {
			tablefiles.Remove(ctx, f.fs, loc, f.log, own)
			return 0, fmt.Errorf("%w: preparing the commit to %s: %w", catalog.ErrInvalid, t.Ident, err)
		}
		next, err := f.cat.CommitTable(ctx, catalog.TableChange{Ident: t.Ident, Requirements: tc.Requirements, Updates: tc.Updates}, nil)
		if err == nil {
			return tablefiles.CurrentSnapshotID(next.Metadata), nil
		}
		switch {
		case errors.Is(err, catalog.ErrCommitFailed):
			f.metrics.conflicts.Inc()
			conflicts++
			if conflicts > maxConflicts {
				tablefiles.Remove(ctx, f.fs, loc, f.log, own)
				return 0, fmt.Errorf("commit to %s lost %d times to concurrent commits: %w", t.Ident, conflicts, err)
			}
			f.log.Debug("commit conflict; rebasing", "table", t.Ident.String(), "attempt", conflicts, "err", err)
		case errors.Is(err, catalog.ErrNoSuchTable), errors.Is(err, catalog.ErrNoSuchNamespace),
			errors.Is(err, catalog.ErrInvalid), errors.Is(err, catalog.ErrUnprocessable):
			// Nothing was committed and retrying cannot help.
			tablefiles.Remove(ctx, f.fs, loc, f.log, own)
			return 0, fmt.Errorf("committing to %s: %w", t.Ident, err)
		default:
			unknown++
			f.log.Warn("commit outcome unknown; checking the table", "table", t.Ident.String(), "attempt", unknown, "err", err)
		}
		if err := tablefiles.Sleep(ctx, retryWait(conflicts+unknown)); err != nil {
			return 0, fmt.Errorf("committing to %s: %w (data files are left for orphan cleanup)", t.Ident, err)
		}
		// Reload; if the commit landed after all, the watermark says so.
		for {
			next, err := f.cat.LoadTable(ctx, id)
			if err == nil {
				t = next
				break
			}
			if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
				tablefiles.Remove(ctx, f.fs, loc, f.log, own)
				return 0, fmt.Errorf("committing to %s: %w", id, err)
			}
			unknown++
			if err := tablefiles.Sleep(ctx, retryWait(unknown)); err != nil {
				return 0, fmt.Errorf("reloading %s: %w (data files are left for orphan cleanup)", id, err)
			}
		}
		if t.Metadata.TableUUID() != uuid {
			tablefiles.Remove(ctx, f.fs, loc, f.log, own)
			return 0, fmt.Errorf("committing to %s: %w: it was dropped and created again", id, catalog.ErrNoSuchTable)
		}
		if w, _ := Watermark(t.Metadata.Properties(), f.node); w >= last {
			return snapshotWithWatermark(t.Metadata, key, wm), nil
		}
	}
}

// retryWait is the pause before retry n of a commit: 10ms doubling to 5s.
func retryWait(n int) time.Duration {
	d := 10 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// deleteCommitted deletes the events of st that are committed and past
// their retention.
func (f *Flusher) deleteCommitted(ctx context.Context, st *tableState) error {
	now := f.opts.Now()
	f.mu.Lock()
	through := st.deleted
	if f.opts.Retention == 0 {
		through = max(through, st.committed)
	}
	n := 0
	for _, d := range st.deletes {
		if now.Before(d.at) {
			break
		}
		through = max(through, d.seq)
		n++
	}
	st.deletes = st.deletes[n:]
	do := through > st.deleted
	f.mu.Unlock()
	if !do {
		return nil
	}
	if err := f.hot.DeleteThrough(ctx, st.key, through); err != nil {
		return fmt.Errorf("hot: %w", err)
	}
	f.mu.Lock()
	st.deleted = max(st.deleted, through)
	f.mu.Unlock()
	return nil
}

// discard deletes the hot events of a table that no longer exists. Loud:
// this drops acknowledged events, which is what dropping their table asks
// for.
func (f *Flusher) discard(ctx context.Context, st *tableState) error {
	hwm := f.hot.HighWatermark(st.key)
	_, events, _ := f.hot.TableBacklog(st.key)
	if events > 0 {
		f.log.Error("discarding hot events of a dropped table", "key", st.key, "events", events, "through", hwm)
		f.metrics.discarded.Add(float64(events))
	}
	if err := f.hot.DeleteThrough(ctx, st.key, hwm); err != nil {
		return fmt.Errorf("hot: %w", err)
	}
	f.mu.Lock()
	st.committed = max(st.committed, hwm)
	st.deleted = max(st.deleted, hwm)
	st.oldest = time.Time{}
	st.resolved = false
	st.tail = nil
	f.mu.Unlock()
	return nil
}

// icebergTable is t for iceberg-go, with a FileIO confined to t's
// location: the flusher reads (the parent snapshot's manifests) and writes
// only the table's own files, whatever its metadata says.
func (f *Flusher) icebergTable(t *catalog.Table) *table.Table {
	id := append(append(table.Identifier{}, t.Ident.Namespace...), t.Ident.Name)
	return table.New(id, t.Metadata, t.MetadataLocation, warehouse.ConfineF(f.fs, t.Metadata.Location()), nil)
}

// snapshotWithWatermark finds the snapshot whose summary records the
// watermark, falling back to the current snapshot.
func snapshotWithWatermark(meta table.Metadata, key, wm string) int64 {
	for _, s := range meta.Snapshots() {
		if s.Summary != nil && s.Summary.Properties[key] == wm {
			return s.SnapshotID
		}
	}
	return tablefiles.CurrentSnapshotID(meta)
}

func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrSchema):
		return "schema"
	case errors.Is(err, ErrStorage):
		return "storage"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		if s := err.Error(); len(s) >= 4 && s[:4] == "hot:" {
			return "hot"
		}
		return "catalog"
	}
}
