package flusher

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/zombi-db/zombi/catalog"
)

// Tail is the part of a table's events that no snapshot holds yet, written
// as Parquet data files the way a flush cycle writes them: the live catalog
// view plans them beside the table's current snapshot.
//
// The table and the hot tier are read at one watermark: while no cycle of
// the table runs, the table's watermark for this node is After, and the
// hot tier holds every event after it (events leave the hot tier only once
// a commit holds them, and commits are made by cycles). So Table's current
// snapshot and Files together hold every event of this node acknowledged
// before the call, each once.
type Tail struct {
	// Table is the table as loaded while no cycle of it ran.
	Table *catalog.Table
	// After is the sequence the table holds this node's events through
	// (its watermark); every event in (After, Through] is in Files, and
	// every event acknowledged before the call is at or below Through.
	After, Through uint64
	// Files are data files under the table's location, in its current
	// schema and default partition spec, which no metadata references
	// until a cycle commits them. In a cluster (Options.Staging) they
	// also include the staged batches of every node that the next shared
	// commit would take.
	Files []iceberg.DataFile
	// Rows is the number of events in Files.
	Rows int64
	// Written is when the oldest of Files was written (zero: no files).
	// Files are handed out, and committed, only while younger than
	// Options.TailReuse.
	Written time.Time
}

// tail is the hot tail the flusher keeps for a table between plans: the
// chunks written so far, each the events of one read of at most
// MaxCycleBytes. Guarded by the table's exclusion (tableState.running):
// only a Tail call or a cycle holding it reads or changes it.
type tail struct {
	after, through uint64
	// What the files were written for: a table whose schema, default
	// spec, sort order or location differ cannot take them.
	schema, spec, order int
	location            string
	chunks              []tailChunk
	// oldest is the append time of the oldest event in the files.
	oldest time.Time
}

type tailChunk struct {
	files   []iceberg.DataFile
	rows    int64
	written time.Time
}

func (tl *tail) rows() int64 {
	if tl == nil {
		return 0
	}
	var n int64
	for _, c := range tl.chunks {
		n += c.rows
	}
	return n
}

func (tl *tail) files() []iceberg.DataFile {
	if tl == nil {
		return nil
	}
	var out []iceberg.DataFile
	for _, c := range tl.chunks {
		out = append(out, c.files...)
	}
	return out
}

// written is when the oldest chunk was written, zero if none.
func (tl *tail) written() time.Time {
	if tl == nil || len(tl.chunks) == 0 {
		return time.Time{}
	}
	return tl.chunks[0].written
}

// unfit says why tl cannot serve table t read after after at now (its
// files would not be the table's as a cycle writes them now, or are too
// old to hand out or commit), or "" if it can.
func (f *Flusher) unfit(tl *tail, t *catalog.Table, after uint64, now time.Time) string {
	m := t.Metadata
	switch {
	case tl.after != after:
		return "watermark"
	case tl.schema != m.CurrentSchema().ID || tl.spec != m.DefaultPartitionSpec() ||
		tl.order != m.DefaultSortOrder() || tl.location != m.Location():
		return "table"
	case len(tl.chunks) > 0 && !now.Before(tl.written().Add(f.opts.TailReuse)):
		return "age"
	}
	return ""
}

// takeTail takes st's hot tail for a cycle of t that reads after after:
// the tail if the cycle can commit its files as they are, else nil. Either
// way the table keeps none: the cycle commits it, or a later Tail writes
// one afresh. The cycle holds st's exclusion.
func (f *Flusher) takeTail(st *tableState, t *catalog.Table, after uint64) *tail {
	f.mu.Lock()
	tl := st.tail
	st.tail = nil
	f.mu.Unlock()
	if tl == nil {
		return nil
	}
	if why := f.unfit(tl, t, after, f.opts.Now()); why != "" {
		f.metrics.tailDropped.WithLabelValues(why).Inc()
		return nil
	}
	return tl
}

// Tail returns the hot tail of table id: the table as loaded while no
// cycle of it runs, and Parquet data files of the events after its
// watermark through at least every event acknowledged before the call.
// The files are kept and handed to later calls while the table's
// watermark, schema, default spec, sort order and location stay, for at
// most Options.TailReuse after they were written; events that arrived
// meanwhile are written as a further chunk. The next cycle of the table
// commits those very files when it can (same conditions), so events are
// encoded once.
//
// Tail waits for a running cycle of the table, and for one of
// Options.TailWriters to write, at most Options.TailWait in all
// (ErrBusy beyond). Concurrent calls for one table take turns; the later
// ones find the first one's files.
func (f *Flusher) Tail(ctx context.Context, id catalog.Ident) (out *Tail, err error) {
	start := time.Now()
	outcome := "failed"
	defer func() {
		f.metrics.tailRequests.WithLabelValues(outcome).Inc()
		if err == nil {
			f.metrics.tailSeconds.Observe(time.Since(start).Seconds())
		}
	}()
	t, err := f.cat.LoadTable(ctx, id)
	if err != nil {
		return nil, err
	}
	key := t.Metadata.TableUUID().String()
	deadline := time.NewTimer(f.opts.TailWait)
	defer deadline.Stop()
	st, err := f.exclude(ctx, key, deadline.C)
	if err != nil {
		if err == ErrBusy {
			outcome = "busy"
		}
		return nil, err
	}
	defer f.unexclude(st)

	// With staging, the staged batches are listed before the table is
	// loaded (see shared.go): those the loaded table's watermarks chain
	// are in no snapshot yet, and go in the tail, and this node's tail
	// starts after its own.
	var batches []catalog.StagedBatch
	var staged uint64
	if f.opts.Staging != nil {
		if batches, err = f.opts.Staging.StagedBatches(ctx, key); err != nil {
			return nil, err
		}
		for _, b := range batches {
			if b.Node == f.node {
				staged = max(staged, b.Through)
			}
		}
	}
	// Loaded again under the exclusion: no cycle of this node commits or
	// stages until we are done.
	if t, err = f.cat.LoadTable(ctx, id); err != nil {
		return nil, err
	}
	if t.Metadata.TableUUID().String() != key {
		return nil, fmt.Errorf("%w: table %s was dropped and created again while its tail was read; retry", ErrBusy, id)
	}
	w, after, err := f.begin(st, t)
	if err != nil {
		return nil, err
	}
	var stagedFiles []iceberg.DataFile
	var stagedRows int64
	if f.opts.Staging != nil {
		after = max(w, staged)
		if stagedFiles, stagedRows, err = f.staged(t, batches); err != nil {
			return nil, err
		}
	}
	hwm, err := f.hot.Settle(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("hot: %w", err)
	}
	now := f.opts.Now()
	f.mu.Lock()
	tl := st.tail
	f.mu.Unlock()
	if tl != nil {
		if why := f.unfit(tl, t, after, now); why != "" {
			f.metrics.tailDropped.WithLabelValues(why).Inc()
			tl = nil
		}
	}
	outcome = "reused"
	if tl == nil {
		m := t.Metadata
		tl = &tail{after: after, through: after, schema: m.CurrentSchema().ID, spec: m.DefaultPartitionSpec(),
			order: m.DefaultSortOrder(), location: m.Location()}
		outcome = "written"
	}
	// What is written so far stays with the table even if a later chunk
	// fails: it is valid, and the next call or cycle continues from it.
	defer func() {
		f.mu.Lock()
		st.tail = tl
		f.mu.Unlock()
	}()
	for extended := false; tl.through < hwm; {
		if err := f.writeSlot(ctx, deadline.C); err != nil {
			if err == ErrBusy {
				outcome = "busy"
			}
			return nil, err
		}
		from := tl.through
		rec, last, covered, oldest, err := f.read(ctx, key, from, t)
		if err != nil {
			f.releaseWriteSlot()
			return nil, err
		}
		if rec == nil {
			f.releaseWriteSlot()
			tl.through = covered
			break
		}
		rows := rec.NumRows()
		wstart := time.Now()
		files, err := f.write(ctx, t, rec)
		f.releaseWriteSlot()
		if err != nil {
			return nil, err
		}
		f.metrics.tailWriteSeconds.Observe(time.Since(wstart).Seconds())
		tl.chunks = append(tl.chunks, tailChunk{files: files, rows: rows, written: f.opts.Now()})
		tl.through = covered
		if tl.oldest.IsZero() || oldest.Before(tl.oldest) {
			tl.oldest = oldest
		}
		f.metrics.tailFiles.Add(float64(len(files)))
		f.metrics.tailRows.Add(float64(rows))
		for _, df := range files {
			f.metrics.tailBytes.Add(float64(df.FileSizeBytes()))
		}
		if outcome == "reused" && !extended {
			outcome, extended = "extended", true
		}
		f.log.Debug("hot tail written", "table", id.String(), "after", from, "through", last, "rows", rows, "files", len(files))
	}
	if len(tl.chunks) == 0 {
		outcome = "empty"
	}
	files := append(stagedFiles, tl.files()...)
	return &Tail{Table: t, After: tl.after, Through: tl.through, Files: files, Rows: stagedRows + tl.rows(), Written: tl.written()}, nil
}

// exclude waits until no cycle or other Tail of table key runs, and none
// is due to (a cycle the scheduler wants waits for no Tail that comes
// after it), then holds the table's exclusion. It gives up with ErrBusy
// when giveUp fires.
func (f *Flusher) exclude(ctx context.Context, key string, giveUp <-chan time.Time) (*tableState, error) {
	for {
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			return nil, ErrClosed
		}
		st := f.state(key)
		if !st.running && !st.cycleWanted {
			st.running, st.tailing = true, true
			f.mu.Unlock()
			return st, nil
		}
		if st.idle == nil {
			st.idle = make(chan struct{})
		}
		ch := st.idle
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-giveUp:
			return nil, ErrBusy
		}
	}
}

// unexclude ends a Tail's exclusion of st.
func (f *Flusher) unexclude(st *tableState) {
	f.mu.Lock()
	st.running, st.tailing = false, false
	st.wakeWaiters()
	f.mu.Unlock()
	f.poke()
}

// wakeWaiters wakes the Tail calls waiting for st's exclusion. f.mu is
// held.
func (st *tableState) wakeWaiters() {
	if st.idle != nil {
		close(st.idle)
		st.idle = nil
	}
}

// writeSlot takes one of the TailWriters slots, or gives up with ErrBusy
// when giveUp fires.
func (f *Flusher) writeSlot(ctx context.Context, giveUp <-chan time.Time) error {
	select {
	case f.tailSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-giveUp:
		return ErrBusy
	}
}

func (f *Flusher) releaseWriteSlot() { <-f.tailSlots }
