package catalog

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/location"
	"github.com/zombi-db/zombi/warehouse"
)

// ownedLocation matches the last path segment of a location the catalog
// chose itself (see defaultLocation): name-<32 hex>. Such a directory
// belongs to exactly one table, so purging may remove all of it.
var ownedLocation = regexp.MustCompile(`-[0-9a-f]{32}$`)

// purgePlan is what dropping a table with purge deletes.
type purgePlan struct {
	metadata string   // the table's metadata file when it was listed
	table    string   // the table's location
	files    []string // every file the metadata references, metadata included
	location string   // set when the whole table location may go
}

// planPurge lists the files of the table whose current metadata file is
// metaLoc: data and delete files, manifests, manifest lists, statistics and
// metadata files, and, for a location the catalog chose, the location.
func (s *Service) planPurge(ctx context.Context, metaLoc string) (*purgePlan, error) {
	m, err := s.readMetadata(ctx, metaLoc)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	files, err := referencedFiles(m.meta, warehouse.Confine(s.wh.IO(), m.meta.Location()))
	if err != nil {
		return nil, fmt.Errorf("%w: purge: listing files: %w", ErrUnavailable, err)
	}
	p := &purgePlan{metadata: metaLoc, table: m.meta.Location(), files: files}
	if location.Within(m.meta.Location(), metaLoc) {
		p.files = append(p.files, metaLoc)
	}
	if loc, err := location.Parse(m.meta.Location()); err == nil && s.roots[0].Below(loc) && ownedLocation.MatchString(path.Base(loc.Path())) {
		p.location = m.meta.Location()
	}
	return p, nil
}

// purge deletes what p lists, retrying a few times; what cannot be deleted
// is logged and counted, and left for orphan cleanup.
func (s *Service) purge(ctx context.Context, p *purgePlan) {
	ctx = context.WithoutCancel(ctx)
	// Check again, at the moment of deleting, that each file is the
	// table's: a bug in listing must not become another table's loss.
	files := p.files[:0:0]
	for _, f := range p.files {
		if err := warehouse.CheckInTable(p.table, f); err != nil {
			s.log.Error("purge: not deleting a file outside the table", "table", p.table, "err", err)
			continue
		}
		files = append(files, f)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		if err = s.wh.Delete(ctx, files); err != nil {
			continue
		}
		n := len(files)
		if p.location != "" {
			var rest int
			if rest, err = s.wh.DeletePrefix(ctx, p.location); err != nil {
				continue
			}
			n += rest
		}
		s.metrics.purgedFiles.Add(float64(n))
		s.log.Info("purged table files", "metadata", p.metadata, "files", n)
		return
	}
	s.metrics.purgeFailures.Inc()
	s.log.Error("purge left files behind; orphan cleanup will find them", "metadata", p.metadata, "err", err)
}

// referencedFiles lists every file meta refers to, directly or through
// manifest lists and manifests, that lies inside the table's location:
// purge never reads or deletes what the table does not own.
func referencedFiles(meta table.Metadata, fsys icebergio.IO) ([]string, error) {
	loc, err := location.Parse(meta.Location())
	if err != nil {
		return nil, err
	}
	owned := func(p string) bool {
		l, err := location.Parse(p)
		return err == nil && loc.Contains(l)
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && !seen[p] && owned(p) {
			seen[p] = true
			out = append(out, p)
		}
	}
	for e := range meta.PreviousFiles() {
		add(e.MetadataFile)
	}
	for st := range meta.Statistics() {
		add(st.StatisticsPath)
	}
	for st := range meta.PartitionStatistics() {
		add(st.StatisticsPath)
	}
	for _, snap := range meta.Snapshots() {
		if !owned(snap.ManifestList) {
			continue
		}
		add(snap.ManifestList)
		manifests, err := snap.Manifests(fsys)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", snap.SnapshotID, err)
		}
		for _, mf := range manifests {
			if !owned(mf.FilePath()) {
				continue
			}
			add(mf.FilePath())
			entries, err := mf.FetchEntries(fsys, false)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", mf.FilePath(), err)
			}
			for _, e := range entries {
				add(e.DataFile().FilePath())
			}
		}
	}
	return out, nil
}
