package planning

import (
	"context"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
)

// A Source decides what a plan reads. CatalogSource reads committed
// snapshots; another Source (such as a live view of an ingest table) may
// wrap it and add files the snapshot does not list yet.
type Source interface {
	// Resolve loads the table id and picks what req reads. For an
	// incremental request only Target.Table is used.
	Resolve(ctx context.Context, id catalog.Ident, req *Request) (*Target, error)
}

// Target is what one plan reads.
type Target struct {
	// Table is the table as loaded: the plan reads its metadata, and every
	// file it opens or lists must lie inside its location.
	Table *catalog.Table
	// Snapshot is the snapshot a point-in-time plan reads; nil plans no
	// committed files (a table without snapshots).
	Snapshot *table.Snapshot
	// Extra are data files beyond Snapshot's manifests, in the table's
	// partition specs and inside its location. They are planned as if a
	// commit after Snapshot had added them: pruned by the filter like any
	// other file, and no delete file of Snapshot applies to them. Format
	// v2 and later only.
	Extra []iceberg.DataFile
	// Release, when set, is called once when the plan is forgotten
	// (cancelled, expired or evicted), or at once if planning fails.
	Release func()
	// Expires, when not zero, is when the plan is forgotten at the latest,
	// however recently it was used: what it reads may not outlive that
	// (files no metadata references, which orphan cleanup deletes once
	// they are old enough).
	Expires time.Time
}

// Tables is what CatalogSource needs from the catalog.
type Tables interface {
	LoadTable(ctx context.Context, id catalog.Ident) (*catalog.Table, error)
}

// CatalogSource plans committed data: the snapshot the request names, or
// the table's current snapshot.
type CatalogSource struct {
	Tables Tables
}

// Resolve implements Source.
func (s CatalogSource) Resolve(ctx context.Context, id catalog.Ident, req *Request) (*Target, error) {
	t, err := s.Tables.LoadTable(ctx, id)
	if err != nil {
		return nil, err
	}
	return At(t, req)
}

// At is what req reads of the loaded table t and nothing more: the
// snapshot it names, or the current one (for an incremental request, only
// the table).
func At(t *catalog.Table, req *Request) (*Target, error) {
	tg := &Target{Table: t}
	switch {
	case req.incremental():
	case req.SnapshotID != nil:
		if tg.Snapshot = t.Metadata.SnapshotByID(*req.SnapshotID); tg.Snapshot == nil {
			return nil, invalidf("table %s has no snapshot %d", t.Ident, *req.SnapshotID)
		}
	default:
		tg.Snapshot = t.Metadata.CurrentSnapshot()
	}
	return tg, nil
}

// Incremental reports whether r reads the files appended between two
// snapshots rather than one snapshot.
func (r *Request) Incremental() bool { return r.incremental() }
