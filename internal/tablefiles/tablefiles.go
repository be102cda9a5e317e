// Package tablefiles holds the small pieces the flusher and the compactor
// share when they write an Iceberg table's files and commit them: removing
// files no commit references, the current snapshot's ID, a context-aware
// wait between commit attempts, write settings of their own, and sorting
// batches by a table's sort order without copying those already in order.
package tablefiles

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/warehouse"
)

// Remove deletes data files that the table at tableLocation wrote and no
// commit references, best effort: what it cannot delete is logged and left
// for orphan cleanup. A file that is not inside tableLocation is never
// deleted (warehouse.ErrOutsideTable, logged as an error): the table's
// write.data.path or a bug put it there, and it may be another table's.
func Remove(ctx context.Context, fsF table.FSysF, tableLocation string, log *slog.Logger, files []iceberg.DataFile) {
	if len(files) == 0 {
		return
	}
	fs, err := warehouse.ConfineF(fsF, tableLocation)(ctx)
	if err != nil {
		log.Warn("cannot remove unreferenced data files", "files", len(files), "err", err)
		return
	}
	for _, df := range files {
		err := fs.Remove(df.FilePath())
		switch {
		case errors.Is(err, warehouse.ErrOutsideTable):
			log.Error("not removing a data file outside its table", "file", df.FilePath(), "err", err)
		case err != nil:
			log.Warn("cannot remove unreferenced data file", "file", df.FilePath(), "err", err)
		}
	}
}

// CurrentSnapshotID is the ID of meta's current snapshot, 0 if none.
func CurrentSnapshotID(meta table.Metadata) int64 {
	if s := meta.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}

// Sleep waits d or until ctx ends, whose cause it then returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// WithProperties returns meta with props set, for a writer's own use: the
// table in the catalog keeps its properties. The flusher and the compactor
// bound the Parquet pages and row groups they write this way.
func WithProperties(meta table.Metadata, location string, props iceberg.Properties) (table.Metadata, error) {
	b, err := table.MetadataBuilderFromBase(meta, location)
	if err != nil {
		return nil, err
	}
	if err := b.SetProperties(props); err != nil {
		return nil, err
	}
	return b.Build()
}

// Unsorted returns a copy of meta whose default sort order is the
// unsorted one, for a writer of rows that are in the table's order
// already: iceberg-go's writer sorts every batch by the default order
// otherwise. The table keeps its sort order.
func Unsorted(meta table.Metadata, location string) (table.Metadata, error) {
	b, err := table.MetadataBuilderFromBase(meta, location)
	if err != nil {
		return nil, err
	}
	unsorted := table.UnsortedSortOrder
	if err := b.AddSortOrder(&unsorted); err != nil {
		return nil, err
	}
	if err := b.SetDefaultSortOrderID(table.UnsortedSortOrderID); err != nil {
		return nil, err
	}
	return b.Build()
}
