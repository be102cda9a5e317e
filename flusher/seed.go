package flusher

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/warehouse"
)

// Seed gives table t, if it has no snapshot yet, an empty one: an append
// of no files, with no watermark. Spark reads a table without snapshots as
// empty without planning it, so a live plan could not show such a table's
// hot tail to it; with a snapshot Spark plans on the server and gets the
// tail. The table's rows do not change. It returns the table as it is
// after (t itself when it had a snapshot), and commits nothing when a
// concurrent commit gave the table one first.
func (f *Flusher) Seed(ctx context.Context, t *catalog.Table) (*catalog.Table, error) {
	m := t.Metadata
	if m.CurrentSnapshot() != nil {
		return t, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	seq := m.LastSequenceNumber() + 1
	if m.Version() < 2 {
		seq = 0
	}
	var list bytes.Buffer
	if err := iceberg.WriteManifestList(m.Version(), &list, id, nil, &seq, m.NextRowID(), nil); err != nil {
		return nil, fmt.Errorf("writing an empty manifest list: %w", err)
	}
	path := m.Location() + "/metadata/snap-" + strconv.FormatInt(id, 10) + "-0-" + uuid.NewString() + ".avro"
	fsys, err := f.fs(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	wfs, ok := warehouse.Confine(fsys, m.Location()).(icebergio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("%w: the warehouse cannot write files", ErrStorage)
	}
	if err := wfs.WriteFile(path, list.Bytes()); err != nil {
		return nil, fmt.Errorf("%w: writing %s: %w", ErrStorage, path, err)
	}
	schema := m.CurrentSchema().ID
	snap := &table.Snapshot{
		SnapshotID:     id,
		SequenceNumber: seq,
		TimestampMs:    f.opts.Now().UnixMilli(),
		ManifestList:   path,
		SchemaID:       &schema,
		Summary: &table.Summary{Operation: table.OpAppend, Properties: iceberg.Properties{
			"total-records": "0", "total-data-files": "0", "total-delete-files": "0",
			"total-files-size": "0", "total-position-deletes": "0", "total-equality-deletes": "0",
		}},
	}
	if m.Version() >= 3 {
		first, added := m.NextRowID(), int64(0)
		snap.FirstRowID, snap.AddedRows = &first, &added
	}
	next, err := f.cat.CommitTable(ctx, catalog.TableChange{
		Ident:        t.Ident,
		Requirements: []table.Requirement{table.AssertTableUUID(m.TableUUID()), table.AssertRefSnapshotID(table.MainBranch, nil)},
		Updates: []table.Update{
			table.NewAddSnapshotUpdate(snap),
			table.NewSetSnapshotRefUpdate(table.MainBranch, id, table.BranchRef, -1, -1, -1),
		},
	}, nil)
	if errors.Is(err, catalog.ErrCommitFailed) {
		// Someone else committed first: the table has a snapshot now.
		_ = wfs.Remove(path)
		return f.cat.LoadTable(ctx, t.Ident)
	}
	if err != nil {
		return nil, fmt.Errorf("giving %s a first, empty snapshot: %w", t.Ident, err)
	}
	f.log.Info("gave an ingest table a first, empty snapshot for live reads", "table", t.Ident.String(), "snapshot", id)
	return next, nil
}

// Ingests reports whether this node's hot tier holds or held events of the
// table with UUID key: a table ingest writes into, even before any commit
// marks it as one (ingesttable.Is).
func (f *Flusher) Ingests(key string) bool { return f.hot.HighWatermark(key) > 0 }
