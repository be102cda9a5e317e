package compaction

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/catalog"
)

// catalogIO lets iceberg-go's Transaction.Commit (used for manifest
// merges) commit through the catalog's commit path in this process.
type catalogIO struct{ c *Compactor }

func identOf(id table.Identifier) (catalog.Ident, error) {
	if len(id) < 2 {
		return catalog.Ident{}, fmt.Errorf("%w: identifier %v has no namespace", catalog.ErrInvalid, id)
	}
	return catalog.Ident{Namespace: catalog.Namespace(id[:len(id)-1]), Name: id[len(id)-1]}, nil
}

func (a catalogIO) LoadTable(ctx context.Context, id table.Identifier) (*table.Table, error) {
	ident, err := identOf(id)
	if err != nil {
		return nil, err
	}
	t, err := a.c.cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, err
	}
	return a.c.icebergTable(t), nil
}

func (a catalogIO) CommitTable(ctx context.Context, id table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	ident, err := identOf(id)
	if err != nil {
		return nil, "", err
	}
	t, err := a.c.cat.CommitTable(ctx, catalog.TableChange{Ident: ident, Requirements: reqs, Updates: updates}, nil)
	if errors.Is(err, catalog.ErrCommitFailed) {
		// iceberg-go retries (or reports) its own sentinel.
		return nil, "", fmt.Errorf("%w: %w", table.ErrCommitFailed, err)
	}
	if err != nil {
		return nil, "", err
	}
	return t.Metadata, t.MetadataLocation, nil
}
