package compaction

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/tablefiles"
)

// MaintenanceResult is what one maintenance run did.
type MaintenanceResult struct {
	Table            string
	SnapshotID       int64
	ExpiredSnapshots int
	OrphanFiles      int
	OrphanBytes      int64
}

// Maintain expires the table's snapshots older than its retention (always
// keeping the most recent ones, and the files they need) and deletes files
// under its location that no metadata references and that are older than
// its orphan window.
func (c *Compactor) Maintain(ctx context.Context, id catalog.Ident) (res MaintenanceResult, err error) {
	start := time.Now()
	defer func() { c.metrics.observe("maintain", start, err) }()
	t, err := c.cat.LoadTable(ctx, id)
	if err != nil {
		return MaintenanceResult{}, err
	}
	err = c.withLease(ctx, t.Metadata.TableUUID().String(), func(ctx context.Context) error {
		res, err = c.maintain(ctx, id)
		return err
	})
	return res, err
}

func (c *Compactor) maintain(ctx context.Context, id catalog.Ident) (MaintenanceResult, error) {
	res := MaintenanceResult{Table: id.String()}
	if _, _, err := c.mergeManifests(ctx, id); err != nil {
		return res, err
	}
	// Expiry commits; a concurrent flush makes it conflict, and a retry
	// computes it again on the new metadata.
	for attempt := 0; ; attempt++ {
		t, err := c.cat.LoadTable(ctx, id)
		if err != nil {
			return res, err
		}
		p := c.policy(t.Metadata.Properties())
		expired, next, err := c.expire(ctx, t, p)
		if errors.Is(err, catalog.ErrCommitFailed) && attempt < maxConflicts {
			c.metrics.conflicts.Inc()
			if err := tablefiles.Sleep(ctx, conflictWait(attempt)); err != nil {
				return res, err
			}
			continue
		}
		res.ExpiredSnapshots = expired
		res.SnapshotID = tablefiles.CurrentSnapshotID(next.Metadata)
		c.metrics.expired.Add(float64(expired))
		if err != nil {
			return res, fmt.Errorf("expiring snapshots of %s: %w", id, err)
		}

		// Lists only under the table's location (and fails if another
		// table's metadata is there), deletes only inside it.
		orphans, err := c.icebergTable(next).DeleteOrphanFiles(ctx, table.WithFilesOlderThan(p.orphanAge))
		if err != nil {
			return res, fmt.Errorf("deleting orphan files of %s: %w", id, err)
		}
		res.OrphanFiles = len(orphans.DeletedFiles)
		res.OrphanBytes = orphans.TotalSizeBytes
		c.metrics.deleted.Add(float64(res.OrphanFiles))
		c.log.Info("maintained", "table", res.Table, "expired_snapshots", res.ExpiredSnapshots, "orphan_files", res.OrphanFiles)
		return res, nil
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrAborted):
		return "aborted"
	default:
		return "failed"
	}
}

// mergeManifests rewrites the current snapshot's data manifests into
// target-sized ones when there are more than the table's
// commit.manifest.min-count-to-merge (default 100): every fast append (a
// flush) adds one, and planning a scan reads them all. It returns how many
// manifests the snapshot had and has.
func (c *Compactor) mergeManifests(ctx context.Context, id catalog.Ident) (before, after int, err error) {
	for attempt := 0; ; attempt++ {
		t, err := c.cat.LoadTable(ctx, id)
		if err != nil {
			return 0, 0, err
		}
		tbl := c.icebergTable(t)
		snap := tbl.CurrentSnapshot()
		if snap == nil {
			return 0, 0, nil
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return 0, 0, err
		}
		manifests, err := snap.Manifests(fs)
		if err != nil {
			return 0, 0, fmt.Errorf("reading manifests of %s: %w", id, err)
		}
		minCount := 100
		if n := propInt(t.Metadata.Properties(), table.ManifestMinMergeCountKey); n > 0 {
			minCount = int(n)
		}
		if len(manifests) <= minCount {
			return len(manifests), len(manifests), nil
		}
		tx := tbl.NewTransaction()
		r, err := tx.RewriteManifests(ctx)
		if err != nil {
			return len(manifests), len(manifests), fmt.Errorf("merging manifests of %s: %w", id, err)
		}
		if r.IsNoOp() {
			return len(manifests), len(manifests), nil
		}
		_, err = tx.Commit(ctx)
		if errors.Is(err, table.ErrCommitFailed) && attempt < maxConflicts {
			c.metrics.conflicts.Inc()
			if err := tablefiles.Sleep(ctx, conflictWait(attempt)); err != nil {
				return 0, 0, err
			}
			continue
		}
		if err != nil {
			return len(manifests), len(manifests), fmt.Errorf("merging manifests of %s: %w", id, err)
		}
		return len(manifests), len(manifests) - len(r.RewrittenManifests) + len(r.AddedManifests), nil
	}
}
