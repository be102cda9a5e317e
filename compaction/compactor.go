// Package compaction keeps tables healthy through the catalog's commit
// path: it rewrites a partition's small data files into files near the
// target size (an Iceberg replace snapshot), expires old snapshots and
// deletes files no metadata references. Zombi's ingest tables are
// maintained by default, other tables when they opt in. One node at a time
// works on a table, under a lease in the pointer store.
package compaction

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	icompaction "github.com/apache/iceberg-go/table/compaction"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/tablefiles"
	"github.com/zombi-db/zombi/warehouse"
)

// Catalog is what compaction needs from the catalog.
type Catalog interface {
	LoadTable(ctx context.Context, id catalog.Ident) (*catalog.Table, error)
	CommitTable(ctx context.Context, ch catalog.TableChange, idem *catalog.Idempotency) (*catalog.Table, error)
	ListNamespaces(ctx context.Context, parent catalog.Namespace, pageToken string, pageSize int) (catalog.Page[catalog.Namespace], error)
	ListTables(ctx context.Context, ns catalog.Namespace, pageToken string, pageSize int) (catalog.Page[catalog.Ident], error)
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Options configure a Compactor. Zero values take the documented
// defaults.
type Options struct {
	Catalog Catalog
	// FS returns the warehouse's FileIO.
	FS table.FSysF
	// NodeID names this node as a lease holder.
	NodeID string
	// CheckInterval is how often the scheduler looks at the tables; 0
	// runs no scheduler (compaction only on request).
	CheckInterval time.Duration
	// Concurrency bounds the tables worked on at once. Default 1.
	Concurrency int
	// LeaseTTL is how long a lease lasts without renewal. Default 1m.
	LeaseTTL time.Duration
	// MinOrphanAge is the floor under every table's orphan window
	// (zombi.maintenance.orphan-age-ms): orphan cleanup never deletes a
	// file younger than this, which may belong to a commit in flight.
	// Default 1h; negative: no floor.
	MinOrphanAge time.Duration
	// MinSnapshotAge is the floor under every table's and ref's snapshot
	// retention: expiry never removes a snapshot that was the table's
	// current state or a branch head less than this long ago, whose files
	// readers may still be reading. Default 15m; negative: no floor.
	MinSnapshotAge time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Result is what one compaction did.
type Result struct {
	Table string
	// SnapshotID is the replace snapshot, or the current snapshot when
	// nothing needed rewriting.
	SnapshotID               int64
	FilesBefore, FilesAfter  int
	BytesBefore, BytesAfter  int64
	Rows                     int64
	Groups                   int
	RewrittenFiles, NewFiles int
	// Manifests of the current snapshot before and after merging them.
	ManifestsBefore, ManifestsAfter int
}

// Errors.
var (
	// ErrBusy: another node holds the table's lease. HTTP 409.
	ErrBusy = errors.New("another node is maintaining the table")
	// ErrAborted: a concurrent commit removed or changed an input file;
	// the rewrite was discarded and is retried later. HTTP 409.
	ErrAborted = errors.New("compaction aborted by a concurrent change")
	// ErrMismatch: what was written differs from the rows read, or a
	// file as stored differs from what was written (verify.go); nothing
	// was committed. A bug or corruption: the scheduler stops compacting
	// the table until restart.
	ErrMismatch = errors.New("compaction output does not match its input")
)

// Defaults of the maintenance floors.
const (
	DefaultMinOrphanAge   = time.Hour
	DefaultMinSnapshotAge = 15 * time.Minute
)

// Compactor runs compactions and maintenance. It is safe for concurrent
// use.
type Compactor struct {
	cat  Catalog
	fs   table.FSysF
	node string
	// The maintenance floors; 0 is none.
	minOrphanAge, minSnapshotAge time.Duration
	opts                         Options
	log                          *slog.Logger
	metrics                      *metrics

	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	halted map[string]error // table UUID → why the scheduler leaves it alone
	last   map[string]time.Time
	owned  map[string]bool // table UUIDs whose owner lease this node holds
}

// New returns a Compactor; with a CheckInterval its scheduler runs until
// Close.
func New(opts Options) (*Compactor, error) {
	if opts.Catalog == nil || opts.FS == nil || opts.NodeID == "" {
		return nil, errors.New("compaction: Catalog, FS and NodeID are required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	floor := func(d, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return max(d, 0)
	}
	c := &Compactor{
		cat: opts.Catalog, fs: opts.FS, node: opts.NodeID, opts: opts, log: opts.Logger,
		minOrphanAge:   floor(opts.MinOrphanAge, DefaultMinOrphanAge),
		minSnapshotAge: floor(opts.MinSnapshotAge, DefaultMinSnapshotAge),
		metrics:        newMetrics(), stop: make(chan struct{}), done: make(chan struct{}),
		halted: map[string]error{}, last: map[string]time.Time{}, owned: map[string]bool{},
	}
	if err := c.metrics.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("compaction: register metrics: %w", err)
	}
	if opts.CheckInterval > 0 {
		go c.loop()
	} else {
		close(c.done)
	}
	return c, nil
}

// Close stops the scheduler and waits for the work under way.
func (c *Compactor) Close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

// withLease runs fn holding the table's lease, renewing it meanwhile; the
// context fn gets ends if a renewal fails.
func (c *Compactor) withLease(ctx context.Context, uuid string, fn func(ctx context.Context) error) error {
	name := "maintain/" + uuid
	ok, err := c.cat.AcquireLease(ctx, name, c.node, c.opts.LeaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return ErrBusy
	}
	ctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(c.opts.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ok, err := c.cat.AcquireLease(ctx, name, c.node, c.opts.LeaseTTL)
			if err == nil && !ok {
				err = ErrBusy
			}
			if err != nil {
				cancel(fmt.Errorf("renewing the lease: %w", err))
				return
			}
		}
	}()
	err = fn(ctx)
	cancel(nil)
	<-renewed
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	if rerr := c.cat.ReleaseLease(rctx, name, c.node); rerr != nil {
		c.log.Warn("releasing a lease", "lease", name, "err", rerr)
	}
	return err
}

// Compact rewrites the table's small files, partition by partition, into
// files near its target size, and commits a replace snapshot.
func (c *Compactor) Compact(ctx context.Context, id catalog.Ident) (res Result, err error) {
	start := time.Now()
	defer func() { c.metrics.observe("compact", start, err) }()
	t, err := c.cat.LoadTable(ctx, id)
	if err != nil {
		return Result{}, err
	}
	err = c.withLease(ctx, t.Metadata.TableUUID().String(), func(ctx context.Context) error {
		if res, err = c.compact(ctx, id); err != nil {
			return err
		}
		if res.ManifestsBefore, res.ManifestsAfter, err = c.mergeManifests(ctx, id); err != nil {
			return err
		}
		if res.ManifestsAfter != res.ManifestsBefore {
			t, err := c.cat.LoadTable(ctx, id)
			if err != nil {
				return err
			}
			res.SnapshotID = tablefiles.CurrentSnapshotID(t.Metadata)
		}
		return nil
	})
	if err == nil {
		c.metrics.filesBefore.Add(float64(res.RewrittenFiles))
		c.metrics.filesAfter.Add(float64(res.NewFiles))
	}
	return res, err
}

func (c *Compactor) compact(ctx context.Context, id catalog.Ident) (Result, error) {
	t, err := c.cat.LoadTable(ctx, id)
	if err != nil {
		return Result{}, err
	}
	res := Result{Table: id.String(), SnapshotID: tablefiles.CurrentSnapshotID(t.Metadata)}
	tbl := c.icebergTable(t)
	if tbl.CurrentSnapshot() == nil {
		return res, nil
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return res, fmt.Errorf("planning %s: %w", id, err)
	}
	res.FilesBefore, res.FilesAfter = len(tasks), len(tasks)
	for _, task := range tasks {
		res.BytesBefore += task.File.FileSizeBytes()
	}
	res.BytesAfter = res.BytesBefore
	target := targetFileSize(t.Metadata.Properties())
	cfg := icompaction.DefaultConfig()
	cfg.TargetFileSizeBytes = target
	cfg.MinFileSizeBytes = target * 3 / 4
	cfg.MaxFileSizeBytes = target * 9 / 5
	cfg.MinInputFiles = 1
	plan, err := cfg.PlanCompaction(tasks)
	if err != nil {
		return res, err
	}
	// The planner packs groups by input bytes, but small files shrink a lot
	// when merged (fewer footers and row groups, better encodings): one
	// group per partition, whose output the writer rolls at the target
	// size, ends near ceil(bytes/target) files. A partition with a single
	// small file is left alone.
	plan.Groups = mergeByPartition(plan.Groups)
	if len(plan.Groups) == 0 {
		return res, nil
	}

	var results []table.CompactionGroupResult
	var written []iceberg.DataFile
	abandon := func() { tablefiles.Remove(ctx, c.fs, t.Metadata.Location(), c.log, written) }
	for _, g := range plan.Groups {
		gr, rows, err := c.rewriteGroup(ctx, tbl, g, target)
		written = append(written, gr.NewDataFiles...)
		if err != nil {
			abandon()
			return res, err
		}
		results = append(results, gr)
		res.Rows += rows
	}

	snap, err := c.commitRewrite(ctx, t, tasks, results)
	if err != nil {
		if !errors.Is(err, errOutcomeUnknown) {
			abandon()
		}
		return res, err
	}
	res.SnapshotID = snap
	res.Groups = len(results)
	for _, gr := range results {
		res.RewrittenFiles += len(gr.OldDataFiles)
		res.NewFiles += len(gr.NewDataFiles)
		res.BytesAfter += gr.BytesAfter - gr.BytesBefore
	}
	res.FilesAfter = res.FilesBefore - res.RewrittenFiles + res.NewFiles
	c.metrics.bytesBefore.Add(float64(res.BytesBefore))
	c.metrics.bytesAfter.Add(float64(res.BytesAfter))
	c.log.Info("compacted", "table", res.Table, "files_before", res.FilesBefore, "files_after", res.FilesAfter,
		"rewritten", res.RewrittenFiles, "rows", res.Rows, "snapshot", res.SnapshotID)
	return res, nil
}

// rewriteGroup reads a group's rows (deletes applied), its files in the
// order of their bounds of the sort order's first field (orderTasks), and
// writes them as files near target, each batch sorted by the table's sort
// order, then verifies what it wrote (verify.go): rows, column counts, and
// the bytes as stored. What it holds in memory does not grow with the
// group's bytes (see the bounds below and docs/maintenance.md).
func (c *Compactor) rewriteGroup(ctx context.Context, tbl *table.Table, g icompaction.Group, target int64) (table.CompactionGroupResult, int64, error) {
	gr := table.CompactionGroupResult{PartitionKey: g.PartitionKey, BytesBefore: g.TotalSizeBytes}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return gr, 0, err
	}
	width, err := rowWidth(fsys, g.Tasks)
	if err != nil {
		return gr, 0, fmt.Errorf("reading files to compact: %w", err)
	}
	rows := batchRows(tbl.Properties(), width)
	tasks := slices.Clone(g.Tasks)
	orderTasks(tasks, tbl.Schema(), tbl.SortOrder())
	sc, recs, err := tbl.Scan(table.WithMaxConcurrency(readFiles), table.WithArrowBatchSize(rows)).ReadTasks(ctx, tasks)
	if err != nil {
		return gr, 0, fmt.Errorf("reading files to compact: %w", err)
	}
	meta, err := boundRowGroups(tbl.Metadata(), tbl.MetadataLocation())
	if err != nil {
		return gr, 0, err
	}
	// Batches read from a file the flusher wrote are in the sort order
	// already; the compactor sorts the others itself and has the writer
	// sort none, which saves a copy of every batch (tablefiles.Sorter).
	sorter, sorting := tablefiles.NewSorter(tbl.Schema(), meta.SortOrder(), sc)
	if sorting {
		if meta, err = tablefiles.Unsorted(meta, tbl.MetadataLocation()); err != nil {
			return gr, 0, err
		}
	}
	in := newTally(tbl.Schema(), sc)
	hasher := newRowHasher(tbl.Schema(), sc)
	var read contentSum
	counted := func(yield func(arrow.RecordBatch, error) bool) {
		for rec, err := range recs {
			if err == nil {
				in.add(rec)
				read.add(hasher.batch(rec))
				if sorting {
					rec, err = sorter.Sort(ctx, rec)
				}
			}
			if !yield(rec, err) {
				return
			}
		}
	}
	var sums written
	out := table.New(tbl.Identifier(), meta, tbl.MetadataLocation(), sums.fs(tbl.FS), nil)
	for df, err := range table.WriteRecords(ctx, out, sc, counted, table.WithClusteredWrite(), table.WithTargetFileSize(target),
		table.WithRecordBatchBufferSize(writeQueue)) {
		if err != nil {
			return gr, 0, fmt.Errorf("writing compacted files: %w", err)
		}
		gr.NewDataFiles = append(gr.NewDataFiles, df)
		gr.BytesAfter += df.FileSizeBytes()
	}

	if err := in.check(gr.NewDataFiles); err != nil {
		return gr, 0, fmt.Errorf("%w: partition %q: %w", ErrMismatch, g.PartitionKey, err)
	}
	var stored contentSum
	for _, df := range gr.NewDataFiles {
		sum, ok := sums.sum(df.FilePath())
		if !ok {
			return gr, 0, fmt.Errorf("%w: partition %q: %s was not written through the compactor's FileIO", ErrMismatch, g.PartitionKey, df.FilePath())
		}
		content, err := verifyStored(fsys, df, sum, hasher)
		if errors.Is(err, errStored) {
			return gr, 0, fmt.Errorf("%w: partition %q: %w", ErrMismatch, g.PartitionKey, err)
		} else if err != nil {
			return gr, 0, fmt.Errorf("reading compacted files back: %w", err)
		}
		stored.add(content)
	}
	if stored != read {
		return gr, 0, fmt.Errorf("%w: partition %q: the rows read (%d, content checksum %016x) and the rows stored (%d, %016x) differ",
			ErrMismatch, g.PartitionKey, read.rows, read.sum, stored.rows, stored.sum)
	}
	for _, task := range g.Tasks {
		gr.OldDataFiles = append(gr.OldDataFiles, task.File)
	}
	gr.SafePosDeletes = table.CollectSafePositionDeletes(g.Tasks)
	gr.SafeDeletionVectors = table.CollectSafeDeletionVectors(g.Tasks)
	return gr, in.rows, nil
}

// The memory of a rewrite is bounded by these, not by the bytes of the
// group: iceberg-go's defaults read as many files at once as there are
// cores, in batches of 131,072 rows, and queue 64 batches for the writer,
// which runs slower than the reader, so a large group's decoded rows
// piled up in the queue (2.1 GB of heap for 480 MB of Parquet,
// BENCHMARKS.md).
const (
	// readFiles is how many input files are read at once. One reader
	// keeps up with the writer, which is the slower of the two.
	readFiles = 1
	// maxBatchRows caps the rows of a batch read (and sorted): the
	// table's read.parquet.batch-size when that is smaller.
	maxBatchRows = 32 << 10
	// maxBatchBytes caps the bytes of a batch, by the width of a row
	// that rowWidth estimates: rows as wide as an event may be (1 MiB)
	// come a few at a time. A batch of 32,768 events of 100 bytes is
	// about 5 MB.
	maxBatchBytes = 8 << 20
	// widthSample is how many input files' footers rowWidth reads.
	widthSample = 4
	// writeQueue is how many batches wait for the writer.
	writeQueue = 2
	// maxRowGroupBytes caps write.parquet.row-group-size-bytes (Iceberg's
	// default 128 MiB) for the compactor's output: the Parquet writer
	// holds a whole row group, compressed, until it is complete.
	maxRowGroupBytes = 32 << 20
)

// batchRows is the rows per batch the compactor reads rows of width
// bytes of a table with properties props in.
func batchRows(props iceberg.Properties, width int64) int {
	rows := int(min(maxBatchRows, max(1, maxBatchBytes/max(width, 1))))
	if n := props.GetInt(table.ParquetBatchSizeKey, rows); n > 0 && n < rows {
		return n
	}
	return rows
}

// rowWidth estimates the bytes a row of tasks' files takes decoded: the
// most uncompressed bytes per row of any row group, by the footers of the
// widthSample Parquet files with the most bytes per row as stored, the
// widest rows most likely. Reading a footer costs two small reads; a
// group may have thousands of files. Values of a column the footer
// counts dictionary-encoded take more room decoded than it says.
func rowWidth(fsys icebergio.IO, tasks []table.FileScanTask) (int64, error) {
	var files []iceberg.DataFile
	seen := map[string]bool{}
	for _, task := range tasks {
		df := task.File
		if df.FileFormat() == iceberg.ParquetFile && df.Count() > 0 && !seen[df.FilePath()] {
			seen[df.FilePath()] = true
			files = append(files, df)
		}
	}
	stored := func(df iceberg.DataFile) int64 { return df.FileSizeBytes() / df.Count() }
	slices.SortFunc(files, func(a, b iceberg.DataFile) int { return cmp.Compare(stored(b), stored(a)) })
	width := int64(1)
	for _, df := range files[:min(len(files), widthSample)] {
		w, err := footerWidth(fsys, df.FilePath())
		if err != nil {
			return 0, err
		}
		width = max(width, w)
	}
	return width, nil
}

// footerWidth is the most uncompressed bytes per row of a row group of
// the Parquet file path, by its footer.
func footerWidth(fsys icebergio.IO, path string) (int64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	var width int64
	for i := range pf.NumRowGroups() {
		rg := pf.MetaData().RowGroup(i)
		if n := rg.NumRows(); n > 0 {
			width = max(width, (rg.TotalByteSize()+n-1)/n)
		}
	}
	return width, nil
}

// boundRowGroups returns meta with its Parquet row-group size capped at
// maxRowGroupBytes, for the compactor's writer only: the table keeps its
// properties. A value that is not a positive number is left for the
// writer to refuse, as it would for any other writer.
func boundRowGroups(meta table.Metadata, location string) (table.Metadata, error) {
	if v, ok := meta.Properties()[table.ParquetRowGroupSizeBytesKey]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= maxRowGroupBytes {
			return meta, nil
		}
	}
	return tablefiles.WithProperties(meta, location, iceberg.Properties{table.ParquetRowGroupSizeBytesKey: strconv.Itoa(maxRowGroupBytes)})
}

// errOutcomeUnknown: the commit may or may not have landed; its files
// must stay.
var errOutcomeUnknown = errors.New("commit outcome unknown")

// maxConflicts is how often a compaction rebases onto concurrent appends
// before it gives up for now.
const maxConflicts = 20

// commitRewrite commits the replace snapshot. On a conflict it reloads the
// table: if every input file is still live with the same delete files,
// only appends happened and the same output is committed on the new
// metadata; otherwise it aborts.
func (c *Compactor) commitRewrite(ctx context.Context, t *catalog.Table, base []table.FileScanTask, results []table.CompactionGroupResult) (int64, error) {
	inputs := map[string]int{} // path → delete files at planning
	for _, gr := range results {
		for _, df := range gr.OldDataFiles {
			inputs[df.FilePath()] = -1
		}
	}
	for _, task := range base {
		if _, ok := inputs[task.File.FilePath()]; ok {
			inputs[task.File.FilePath()] = len(task.DeleteFiles) + len(task.EqualityDeleteFiles) + len(task.DeletionVectorFiles)
		}
	}
	props := iceberg.Properties{"zombi.compaction.node": c.node}
	for attempt := 0; ; attempt++ {
		tbl := c.icebergTable(t)
		tx := tbl.NewTransaction()
		rw := tx.NewRewrite(props)
		for _, gr := range results {
			rw.ApplyResult(gr)
		}
		if err := rw.Commit(ctx); err != nil {
			return 0, fmt.Errorf("preparing the replace snapshot: %w", err)
		}
		tc, err := tx.TableCommit()
		if err != nil {
			return 0, fmt.Errorf("preparing the replace snapshot: %w", err)
		}
		next, err := c.cat.CommitTable(ctx, catalog.TableChange{Ident: t.Ident, Requirements: tc.Requirements, Updates: tc.Updates}, nil)
		if err == nil {
			return tablefiles.CurrentSnapshotID(next.Metadata), nil
		}
		if !errors.Is(err, catalog.ErrCommitFailed) {
			if errors.Is(err, catalog.ErrInvalid) || errors.Is(err, catalog.ErrUnprocessable) || errors.Is(err, catalog.ErrNoSuchTable) {
				return 0, err
			}
			return 0, fmt.Errorf("%w: %w", errOutcomeUnknown, err)
		}
		c.metrics.conflicts.Inc()
		if attempt >= maxConflicts {
			return 0, fmt.Errorf("%w: lost %d commits in a row: %w", ErrAborted, attempt+1, err)
		}
		// Wait before reloading, not between the reload and the commit:
		// metadata as old as the wait loses to any writer that commits
		// more often (the flusher does, every interval or at once for
		// ?ack=committed), and the waits grow.
		if err := tablefiles.Sleep(ctx, conflictWait(attempt)); err != nil {
			return 0, err
		}
		if t, err = c.cat.LoadTable(ctx, t.Ident); err != nil {
			return 0, err
		}
		tasks, err := c.icebergTable(t).Scan().PlanFiles(ctx)
		if err != nil {
			return 0, err
		}
		live := 0
		for _, task := range tasks {
			deletes, ok := inputs[task.File.FilePath()]
			if !ok {
				continue
			}
			if n := len(task.DeleteFiles) + len(task.EqualityDeleteFiles) + len(task.DeletionVectorFiles); n != deletes {
				return 0, fmt.Errorf("%w: rows of input file %s were deleted meanwhile", ErrAborted, task.File.FilePath())
			}
			live++
		}
		if live != len(inputs) {
			return 0, fmt.Errorf("%w: %d of %d input files were removed or rewritten meanwhile", ErrAborted, len(inputs)-live, len(inputs))
		}
	}
}

// icebergTable is t for iceberg-go. Its FileIO is confined to t's
// location: every manifest list, manifest, data and statistics file the
// compactor reads, writes, lists or deletes for t is checked, when it is
// used, to be inside it (warehouse.ErrOutsideTable otherwise).
func (c *Compactor) icebergTable(t *catalog.Table) *table.Table {
	id := append(append(table.Identifier{}, t.Ident.Namespace...), t.Ident.Name)
	return table.New(id, t.Metadata, t.MetadataLocation, warehouse.ConfineF(c.fs, t.Metadata.Location()), catalogIO{c})
}

// conflictWait is the wait after losing attempt+1 commits in a row:
// 10ms, doubling up to 1.28s.
func conflictWait(attempt int) time.Duration {
	return time.Duration(10<<min(attempt, 7)) * time.Millisecond
}

func targetFileSize(props iceberg.Properties) int64 {
	if v, ok := props[table.WriteTargetFileSizeBytesKey]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return table.WriteTargetFileSizeBytesDefault
}

// mergeByPartition joins the groups of each partition, in plan order, and
// drops partitions with fewer than two files.
func mergeByPartition(groups []icompaction.Group) []icompaction.Group {
	var out []icompaction.Group
	at := map[string]int{}
	for _, g := range groups {
		i, ok := at[g.PartitionKey]
		if !ok {
			at[g.PartitionKey] = len(out)
			out = append(out, g)
			continue
		}
		out[i].Tasks = append(out[i].Tasks, g.Tasks...)
		out[i].TotalSizeBytes += g.TotalSizeBytes
		out[i].DeleteFileCount += g.DeleteFileCount
	}
	return slices.DeleteFunc(out, func(g icompaction.Group) bool { return len(g.Tasks) < 2 })
}
