package compaction

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
)

// expire commits the expiry of t's snapshots and then deletes the files
// that only the expired snapshots referenced. iceberg-go's ExpireSnapshots
// proposes what to remove (the snapshots past p's retention or their refs'
// own, and the refs past their max-ref-age-ms); keepNeeded takes back
// whatever the table still needs or the server's floor protects. It
// returns how many snapshots it expired and the table after the commit (t
// when there was nothing to do).
func (c *Compactor) expire(ctx context.Context, t *catalog.Table, p policy) (int, *catalog.Table, error) {
	tbl := c.icebergTable(t)
	tx := tbl.NewTransaction()
	if err := tx.ExpireSnapshots(table.WithOlderThan(p.snapshotAge), table.WithRetainLast(p.keepLast), table.WithPostCommit(true)); err != nil {
		return 0, t, err
	}
	tc, err := tx.TableCommit()
	if err != nil {
		return 0, t, err
	}
	ids, refs, err := proposedExpiry(tc.Updates)
	if err != nil {
		return 0, t, err
	}
	keptIDs, keptRefs := keepNeeded(t.Metadata, p, c.minSnapshotAge, c.opts.Now(), ids, refs)
	if len(keptIDs) < len(ids) || len(keptRefs) < len(refs) {
		// Usual: the floor keeps the snapshot replaced last before it.
		c.log.Debug("expiry keeps snapshots its retention would remove", "table", t.Ident.String(),
			"snapshots", len(ids)-len(keptIDs), "refs", len(refs)-len(keptRefs))
	}
	ids, refs = keptIDs, keptRefs
	if len(ids) == 0 && len(refs) == 0 {
		return 0, t, nil
	}
	var updates []table.Update
	for _, r := range refs {
		updates = append(updates, table.NewRemoveSnapshotRefUpdate(r))
	}
	var remove table.Update
	if len(ids) > 0 {
		remove = table.NewRemoveSnapshotsUpdate(ids, true)
		updates = append(updates, remove)
	}
	next, err := c.cat.CommitTable(ctx, catalog.TableChange{Ident: t.Ident, Requirements: tc.Requirements, Updates: updates}, nil)
	if err != nil {
		return 0, t, err
	}
	if remove != nil {
		// Deletes, through tbl's confined FileIO, the manifest lists,
		// statistics, manifests and data files that only the expired
		// snapshots referenced.
		if err := remove.PostCommit(ctx, tbl, c.icebergTable(next)); err != nil {
			return len(ids), next, fmt.Errorf("deleting the files of %d expired snapshots: %w", len(ids), err)
		}
	}
	return len(ids), next, nil
}

// proposedExpiry reads the snapshots and refs that ExpireSnapshots staged
// for removal.
func proposedExpiry(updates []table.Update) (ids []int64, refs []string, err error) {
	for _, u := range updates {
		b, err := json.Marshal(u)
		if err != nil {
			return nil, nil, err
		}
		var v struct {
			Action      string  `json:"action"`
			SnapshotIDs []int64 `json:"snapshot-ids"`
			RefName     string  `json:"ref-name"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, nil, err
		}
		switch v.Action {
		case table.UpdateRemoveSnapshots:
			ids = append(ids, v.SnapshotIDs...)
		case table.UpdateRemoveSnapshotRef:
			refs = append(refs, v.RefName)
		default:
			return nil, nil, fmt.Errorf("snapshot expiry staged an unexpected %q update", v.Action)
		}
	}
	return ids, refs, nil
}

// keepNeeded is Zombi's own check of what expiry may remove, independent
// of iceberg-go's: it returns ids and refs less everything the table needs
// after the expiry or the floor protects.
//
// A ref is kept when its snapshot is protected by the floor. Every
// snapshot is kept that is
//   - the current snapshot or the snapshot of a ref that stays;
//   - on a branch that stays, one of its newest ancestors up to the
//     branch's min-snapshots-to-keep (else p.keepLast, and at least one),
//     or newer than its max-snapshot-age-ms (else p.snapshotAge): the
//     ref's own retention, as Iceberg defines it;
//   - protected by the floor: it was the table's current state or a
//     branch head less than floor ago. Its own timestamp, that of any
//     snapshot made on top of it, or that of the snapshot-log entry that
//     replaced it is within floor of now.
func keepNeeded(meta table.Metadata, p policy, floor time.Duration, now time.Time, ids []int64, refs []string) ([]int64, []string) {
	nowMs := now.UnixMilli()
	// until: the last time, as far as the metadata tells, that a snapshot
	// was current or a branch head.
	until := map[int64]int64{}
	later := func(id, ms int64) {
		if ms > until[id] {
			until[id] = ms
		}
	}
	for _, s := range meta.Snapshots() {
		later(s.SnapshotID, s.TimestampMs)
		if s.ParentSnapshotID != nil {
			later(*s.ParentSnapshotID, s.TimestampMs)
		}
	}
	var prev *table.SnapshotLogEntry
	for e := range meta.SnapshotLogs() {
		if prev != nil {
			later(prev.SnapshotID, e.TimestampMs)
		}
		prev = &e
	}
	floored := func(id int64) bool { return nowMs-until[id] < floor.Milliseconds() }

	refs = slices.DeleteFunc(slices.Clone(refs), func(name string) bool {
		s := meta.SnapshotByName(name)
		return s == nil || floored(s.SnapshotID)
	})
	keep := map[int64]bool{}
	if s := meta.CurrentSnapshot(); s != nil {
		keep[s.SnapshotID] = true
	}
	lookup := func(id int64) *table.Snapshot { return meta.SnapshotByID(id) }
	for name, ref := range meta.Refs() {
		if slices.Contains(refs, name) {
			continue
		}
		keep[ref.SnapshotID] = true
		if ref.SnapshotRefType != table.BranchRef {
			continue
		}
		minKeep, maxAge := p.keepLast, p.snapshotAge.Milliseconds()
		if ref.MinSnapshotsToKeep != nil {
			minKeep = *ref.MinSnapshotsToKeep
		}
		if ref.MaxSnapshotAgeMs != nil {
			maxAge = *ref.MaxSnapshotAgeMs
		}
		for i, s := range table.AncestorsOf(ref.SnapshotID, lookup) {
			if i >= max(minKeep, 1) && nowMs-s.TimestampMs > maxAge {
				break
			}
			keep[s.SnapshotID] = true
		}
	}
	ids = slices.DeleteFunc(slices.Clone(ids), func(id int64) bool {
		return keep[id] || floored(id)
	})
	return ids, refs
}
