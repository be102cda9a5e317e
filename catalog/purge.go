package catalog

import (
	"context"
	"fmt"
	"path"
	"regexp"

	"github.com/apache/iceberg-go/table"
)

// ownedLocation matches the last path segment of a location the catalog
// chose itself (see defaultLocation): name-<32 hex>. Such a directory
// belongs to exactly one table, so purging may remove all of it.
var ownedLocation = regexp.MustCompile(`-[0-9a-f]{32}$`)

// purge deletes the files of the table whose last metadata file is
// metaLoc: data and delete files, manifests, manifest lists, statistics
// and metadata files, then everything left under a location the catalog
// chose.
func (s *Service) purge(ctx context.Context, metaLoc string) error {
	m, err := s.readMetadata(ctx, metaLoc)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	files, err := referencedFiles(m.meta, s.wh)
	if err != nil {
		return fmt.Errorf("%w: purge: listing files: %w", ErrUnavailable, err)
	}
	files = append(files, metaLoc)
	if err := s.wh.Delete(ctx, files); err != nil {
		return fmt.Errorf("%w: purge: %w", ErrUnavailable, err)
	}
	n := len(files)
	loc := m.meta.Location()
	if inside(s.wh.Root(), loc) && ownedLocation.MatchString(path.Base(loc)) {
		rest, err := s.wh.DeletePrefix(ctx, loc)
		if err != nil {
			return fmt.Errorf("%w: purge: %w", ErrUnavailable, err)
		}
		n += rest
	}
	s.metrics.purgedFiles.Add(float64(n))
	s.log.Info("purged table files", "location", loc, "files", n)
	return nil
}

// referencedFiles lists every file meta refers to, directly or through
// manifest lists and manifests. Only files inside the warehouse are
// returned: purge never deletes what the catalog does not own.
func referencedFiles(meta table.Metadata, wh Warehouse) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && !seen[p] && inside(wh.Root(), p) {
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
	fsys := wh.IO()
	for _, snap := range meta.Snapshots() {
		add(snap.ManifestList)
		manifests, err := snap.Manifests(fsys)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", snap.SnapshotID, err)
		}
		for _, mf := range manifests {
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
