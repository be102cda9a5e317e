package planning

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/warehouse"
)

// page is one unit of a plan: answered inline (the first) or fetched by
// its plan task.
type page struct {
	// data are the data manifests a point-in-time page reads, with every
	// delete manifest of the snapshot. With whole, the page is the
	// snapshot's own manifest list.
	data  []iceberg.ManifestFile
	whole bool
	// extra pages plan the Target's Extra files.
	extra bool
	// An incremental page plans the files appended in (from, to].
	incremental bool
	from, to    int64
}

// planMeta is the table metadata a plan's scans see: the plan's schema
// as the current one (and as every snapshot's, so that an incremental
// scan binds like a point-in-time one), and the page's snapshot as the
// current snapshot. iceberg-go then needs no snapshot option, which would
// switch it to the snapshot's schema.
type planMeta struct {
	table.Metadata
	schema  *iceberg.Schema
	current *table.Snapshot
}

func (m *planMeta) CurrentSchema() *iceberg.Schema   { return m.schema }
func (m *planMeta) CurrentSnapshot() *table.Snapshot { return m.current }

func (m *planMeta) SnapshotByID(id int64) *table.Snapshot {
	if m.current != nil && m.current.SnapshotID == id {
		return m.current
	}
	s := m.Metadata.SnapshotByID(id)
	if s == nil {
		return nil
	}
	c := *s
	sid := m.schema.ID
	c.SchemaID = &sid
	return &c
}

// build resolves req and cuts the plan into pages. It reads the
// snapshot's manifest list (or the snapshot log of an incremental scan).
func (p *Planner) build(ctx context.Context, src Source, id catalog.Ident, req *Request) (pl *plan, err error) {
	tg, err := src.Resolve(ctx, id, req)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && tg.Release != nil {
			tg.Release()
		}
	}()
	meta := tg.Table.Metadata
	pl = &plan{
		meta:     &planMeta{Metadata: meta},
		id:       newPlanID(),
		ident:    id,
		metaLoc:  tg.Table.MetadataLocation,
		location: meta.Location(),
		snap:     tg.Snapshot,
		extra:    tg.Extra,
		release:  tg.Release,
		expires:  tg.Expires,
		cs:       req.CaseSensitive,
		minRows:  req.MinRowsRequested,
	}
	var end *table.Snapshot
	if req.incremental() {
		end = meta.SnapshotByID(*req.EndSnapshotID)
		if end == nil {
			return nil, invalidf("table %s has no snapshot %d", id, *req.EndSnapshotID)
		}
		if meta.SnapshotByID(*req.StartSnapshotID) == nil {
			return nil, invalidf("table %s has no snapshot %d", id, *req.StartSnapshotID)
		}
		pl.snap, pl.extra = nil, nil
	}
	// Names bind to the schema the request asks for; when they do not,
	// to the other one (current or snapshot): Spark pins the current
	// snapshot with use-snapshot-schema true on every scan, yet names
	// columns as the current schema does after an ALTER TABLE without a
	// new snapshot.
	schemas, err := scanSchemas(meta, req, pl.snap, end)
	if err != nil {
		return nil, err
	}
	for i, schema := range schemas {
		if err = pl.bind(schema, req); err == nil || i == len(schemas)-1 {
			break
		}
	}
	if err != nil {
		// The error of the schema asked for.
		if len(schemas) > 1 {
			err = pl.bind(schemas[0], req)
		}
		return nil, err
	}
	for _, f := range pl.extra {
		if err := warehouse.CheckInTable(pl.location, f.FilePath()); err != nil {
			return nil, fmt.Errorf("extra file of the plan: %w", err)
		}
		if meta.PartitionSpecByID(int(f.SpecID())) == nil {
			return nil, fmt.Errorf("extra file %s has unknown partition spec %d", f.FilePath(), f.SpecID())
		}
	}
	if len(pl.extra) > 0 && meta.Version() < 2 {
		return nil, fmt.Errorf("%w: files beyond the snapshot need format v2 or later; table %s is v%d", ErrUnsupported, id, meta.Version())
	}
	if req.incremental() {
		err = p.incrementalPages(pl, meta, *req.StartSnapshotID, end)
	} else {
		err = p.snapshotPages(ctx, pl)
	}
	if err != nil {
		return nil, err
	}
	if len(pl.extra) > 0 {
		pl.pages = append(pl.pages, page{extra: true})
	}
	pl.fetched = make([]bool, len(pl.pages))
	pl.pending = len(pl.pages)
	pl.cost = pl.estimate(len(tg.Table.RawMetadata), len(req.Filter))
	return pl, nil
}

// scanSchemas are the schemas a request may bind to, the one it asks for
// first: the current schema, or with use-snapshot-schema the schema of the
// snapshot read (the end snapshot of an incremental scan); then the other
// one, if different.
func scanSchemas(meta table.Metadata, req *Request, snap, end *table.Snapshot) ([]*iceberg.Schema, error) {
	if end != nil {
		snap = end
	}
	current := meta.CurrentSchema()
	if snap == nil || snap.SchemaID == nil || *snap.SchemaID == current.ID {
		return []*iceberg.Schema{current}, nil
	}
	var own *iceberg.Schema
	for _, s := range meta.Schemas() {
		if s.ID == *snap.SchemaID {
			own = s
		}
	}
	if own == nil {
		return nil, fmt.Errorf("snapshot %d names schema %d, which the table does not have", snap.SnapshotID, *snap.SchemaID)
	}
	if req.UseSnapshotSchema {
		return []*iceberg.Schema{own, current}, nil
	}
	return []*iceberg.Schema{current, own}, nil
}

// bind resolves the request's filter, select and stats-fields in schema
// and makes it the plan's schema.
func (pl *plan) bind(schema *iceberg.Schema, req *Request) (err error) {
	pl.meta = &planMeta{Metadata: pl.meta.Metadata, schema: schema}
	pl.filter, pl.bound, pl.stats = nil, nil, nil
	if pl.filter, err = parseFilter(req.Filter, schema, req.CaseSensitive); err != nil {
		return err
	}
	if pl.filter != nil {
		if pl.bound, err = iceberg.BindExpr(schema, pl.filter, req.CaseSensitive); err != nil {
			return invalidf("filter: %v", err)
		}
	}
	if err := checkSelect(schema, req.Select, req.CaseSensitive); err != nil {
		return err
	}
	pl.stats, err = statsIDs(schema, req.StatsFields, req.CaseSensitive)
	return err
}

// estimate is what pl costs in memory, roughly: the metadata it keeps
// alive, the parsed filter, the manifest descriptors and extra files.
func (pl *plan) estimate(metadataBytes, filterBytes int) int64 {
	manifests := len(pl.deletes)
	for _, pg := range pl.pages {
		manifests += len(pg.data)
	}
	return 4<<10 + int64(metadataBytes) + 4*int64(filterBytes) + 512*int64(manifests) + 1024*int64(len(pl.extra))
}

// liveFiles is the number of live files of a manifest from the manifest
// list, or an estimate from its size when the list does not say (v1).
func liveFiles(m iceberg.ManifestFile) int64 {
	added, existing := m.AddedDataFiles(), m.ExistingDataFiles()
	if added < 0 || existing < 0 {
		return max(1, m.Length()/256)
	}
	return int64(added) + int64(existing)
}

// snapshotPages cuts a point-in-time plan: the snapshot's data manifests
// in manifest-list order, as many per page as fit PageFiles (at least
// one), each page with all delete manifests.
func (p *Planner) snapshotPages(ctx context.Context, pl *plan) error {
	if pl.snap == nil {
		return nil
	}
	fsys, err := p.opts.FS(ctx)
	if err != nil {
		return err
	}
	manifests, err := pl.snap.Manifests(warehouse.Confine(fsys, pl.location))
	if err != nil {
		return readError(fmt.Errorf("reading the manifest list of snapshot %d: %w", pl.snap.SnapshotID, err))
	}
	var deleteFiles int64
	var data []iceberg.ManifestFile
	for _, m := range manifests {
		if !m.HasAddedFiles() && !m.HasExistingFiles() {
			continue // no live files: iceberg-go skips it too
		}
		if m.ManifestContent() == iceberg.ManifestContentDeletes {
			pl.deletes = append(pl.deletes, m)
			deleteFiles += liveFiles(m)
		} else {
			data = append(data, m)
		}
	}
	if len(data) == 0 {
		return nil
	}
	var cur []iceberg.ManifestFile
	var files int64
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		if files+deleteFiles > p.opts.MaxPageFiles {
			return fmt.Errorf("%w: a page would read %d data and %d delete files (at most %d; the smallest page is one manifest); plan this scan on the client",
				ErrUnsupported, files, deleteFiles, p.opts.MaxPageFiles)
		}
		pl.pages = append(pl.pages, page{data: cur})
		cur, files = nil, 0
		return nil
	}
	for _, m := range data {
		n := liveFiles(m)
		if len(cur) > 0 && files+n > int64(p.opts.PageFiles) {
			if err := flush(); err != nil {
				return err
			}
		}
		cur = append(cur, m)
		files += n
	}
	if err := flush(); err != nil {
		return err
	}
	if len(pl.pages) == 1 && len(pl.extra) == 0 {
		// One page reads the snapshot as it is.
		pl.pages[0] = page{whole: true}
	}
	return nil
}

// incrementalPages cuts an incremental plan: the snapshots after start up
// to end, oldest first, as many per page as their summaries' added data
// files fit PageFiles (at least one).
func (p *Planner) incrementalPages(pl *plan, meta table.Metadata, start int64, end *table.Snapshot) error {
	var chain []*table.Snapshot
	for s := end; s.SnapshotID != start; {
		chain = append(chain, s)
		if s.ParentSnapshotID == nil {
			return invalidf("snapshot %d is not an ancestor of snapshot %d", start, end.SnapshotID)
		}
		if s = meta.SnapshotByID(*s.ParentSnapshotID); s == nil {
			return invalidf("snapshot %d is not an ancestor of snapshot %d (its ancestry is expired)", start, end.SnapshotID)
		}
	}
	slices.Reverse(chain)
	from, files := start, int64(0)
	for i, s := range chain {
		files += addedFiles(s)
		last := i == len(chain)-1
		if last || files+addedFiles(chain[i+1]) > int64(p.opts.PageFiles) {
			pl.pages = append(pl.pages, page{incremental: true, from: from, to: s.SnapshotID})
			from, files = s.SnapshotID, 0
		}
	}
	return nil
}

// addedFiles is the number of data files a snapshot added, from its
// summary; unknown counts as a full page.
func addedFiles(s *table.Snapshot) int64 {
	if s.Summary == nil || s.Summary.Operation != table.OpAppend {
		return 0
	}
	v, ok := s.Summary.Properties["added-data-files"]
	if !ok {
		return 1 << 40
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 1 << 40
	}
	return n
}

// page plans and encodes page i of pl, holding a worker.
func (p *Planner) page(ctx context.Context, pl *plan, i int) (rest.ScanTasks, error) {
	start := time.Now()
	tasks, err := p.planPage(ctx, pl, i)
	if err == nil {
		var enc *encoder
		if enc, err = newEncoder(pl.meta.Metadata, pl.meta.schema, pl.stats, pl.bound); err == nil {
			var out rest.ScanTasks
			if out, err = enc.page(tasks); err == nil {
				p.metrics.pages.WithLabelValues("ok").Inc()
				p.metrics.pageDuration.Observe(time.Since(start).Seconds())
				p.metrics.files.WithLabelValues("data").Add(float64(len(out.FileScanTasks)))
				p.metrics.files.WithLabelValues("delete").Add(float64(len(out.DeleteFiles)))
				return out, nil
			}
		}
	}
	p.metrics.pages.WithLabelValues("error").Inc()
	if ctx.Err() != nil {
		return rest.ScanTasks{}, ctx.Err()
	}
	return rest.ScanTasks{}, err
}

// planPage runs iceberg-go's planner over page i.
func (p *Planner) planPage(ctx context.Context, pl *plan, i int) ([]table.FileScanTask, error) {
	pg := pl.pages[i]
	fsys, err := p.opts.FS(ctx)
	if err != nil {
		return nil, err
	}
	ov := overlayIO{inner: warehouse.Confine(fsys, pl.location), files: map[string][]byte{}}
	fsF := func(context.Context) (icebergio.IO, error) { return ov, nil }
	meta := &planMeta{Metadata: pl.meta.Metadata, schema: pl.meta.schema}
	ident := append(append(table.Identifier{}, pl.ident.Namespace...), pl.ident.Name)
	opts := []table.ScanOption{table.WithRowFilter(pl.filter), table.WithCaseSensitive(pl.cs), table.WithMaxConcurrency(4)}

	if pg.incremental {
		tbl := table.New(ident, meta, pl.metaLoc, fsF, nil)
		tasks, err := tbl.NewIncrementalAppendScan(opts...).FromSnapshotExclusive(pg.from).ToSnapshot(pg.to).PlanFiles(ctx)
		return tasks, readError(err)
	}
	if meta.current, err = p.pageSnapshot(pl, i, ov); err != nil {
		return nil, err
	}
	tbl := table.New(ident, meta, pl.metaLoc, fsF, nil)
	tasks, err := tbl.Scan(opts...).PlanFiles(ctx)
	return tasks, readError(err)
}

// pageSnapshot is the snapshot the scan of page i reads: the plan's own
// for a whole page, else a copy whose manifest list, served from memory,
// names only the page's manifests.
func (p *Planner) pageSnapshot(pl *plan, i int, ov overlayIO) (*table.Snapshot, error) {
	pg := pl.pages[i]
	if pg.whole {
		return pl.snap, nil
	}
	var snap table.Snapshot
	version := pl.meta.Version()
	var list []iceberg.ManifestFile
	listSnapshot := int64(0)
	if pl.snap != nil {
		snap = *pl.snap
		listSnapshot = snap.SnapshotID
	} else {
		snap = table.Snapshot{SnapshotID: 1, SequenceNumber: pl.meta.LastSequenceNumber(), TimestampMs: time.Now().UnixMilli()}
	}
	seq := snap.SequenceNumber
	if pg.extra {
		// The extra files are added by a virtual commit after the
		// snapshot: a sequence number above it keeps its delete files
		// from applying to them.
		extraSnapshot := snap.SnapshotID + 1
		manifests, err := p.extraManifests(pl, ov, extraSnapshot, version)
		if err != nil {
			return nil, err
		}
		list, listSnapshot, seq = manifests, extraSnapshot, seq+1
	} else {
		list = append(slices.Clone(pl.deletes), pg.data...)
	}
	var buf bytes.Buffer
	firstRowID := pl.meta.NextRowID()
	if err := iceberg.WriteManifestList(version, &buf, listSnapshot, nil, &seq, firstRowID, list); err != nil {
		return nil, fmt.Errorf("writing the manifest list of page %d: %w", i, err)
	}
	path := pl.location + "/metadata/zombi-plan-" + pl.id + "-" + strconv.Itoa(i) + ".avro"
	ov.files[path] = buf.Bytes()
	snap.ManifestList = path
	snap.ManifestLocations = nil
	return &snap, nil
}

// extraManifests writes in memory one manifest per partition spec of the
// plan's extra files, added by snapshot extraSnapshot.
func (p *Planner) extraManifests(pl *plan, ov overlayIO, extraSnapshot int64, version int) ([]iceberg.ManifestFile, error) {
	bySpec := map[int32][]iceberg.ManifestEntry{}
	var specs []int32
	for _, f := range pl.extra {
		id := f.SpecID()
		if _, ok := bySpec[id]; !ok {
			specs = append(specs, id)
		}
		snap := extraSnapshot
		bySpec[id] = append(bySpec[id], iceberg.NewManifestEntry(iceberg.EntryStatusADDED, &snap, nil, nil, f))
	}
	slices.Sort(specs)
	var out []iceberg.ManifestFile
	for _, id := range specs {
		spec := pl.meta.PartitionSpecByID(int(id))
		path := pl.location + "/metadata/zombi-plan-" + pl.id + "-extra-" + strconv.Itoa(int(id)) + ".avro"
		var buf bytes.Buffer
		mf, err := iceberg.WriteManifest(path, &buf, version, *spec, pl.meta.Metadata.CurrentSchema(), extraSnapshot, bySpec[id])
		if err != nil {
			return nil, fmt.Errorf("writing the manifest of the extra files: %w", err)
		}
		ov.files[path] = buf.Bytes()
		out = append(out, mf)
	}
	return out, nil
}

// readError marks a file the plan needs and cannot find.
func readError(err error) error {
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", catalog.ErrNotFound, err)
	}
	return err
}
