package postgres

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/zombi-db/zombi/catalog"
)

// The staged batches of a cluster's shared commits (catalog.StagedBatch).
// Each call is one statement outside any catalog transaction: a batch is
// a row, written once and deleted once a commit holds its events.

// Stage records b and returns its ID.
func (s *Store) Stage(ctx context.Context, b catalog.StagedBatch) (int64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	if b.Through <= b.After || b.Through > math.MaxInt64 || b.Rows <= 0 || len(b.Files) == 0 {
		return 0, fmt.Errorf("%w: staged batch (%d, %d] of %d rows in %d files", catalog.ErrInvalid, b.After, b.Through, b.Rows, len(b.Files))
	}
	specs := make([]int32, len(b.Files))
	schemas := make([]int32, len(b.Files))
	files := make([][]byte, len(b.Files))
	for i, f := range b.Files {
		specs[i], schemas[i], files[i] = int32(f.SpecID), int32(f.SchemaID), f.Data
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO zombi_staged
	(table_uuid, namespace, name, node, after_seq, through_seq, rows, oldest, format_version, spec_ids, schema_ids, files)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
		b.TableUUID, []string(b.Table.Namespace), b.Table.Name, b.Node, int64(b.After), int64(b.Through), b.Rows, b.Oldest,
		b.FormatVersion, specs, schemas, files).Scan(&id)
	return id, wrap(err)
}

// StagedThrough returns the highest sequence of node's staged batches of
// the table, 0 if it has none.
func (s *Store) StagedThrough(ctx context.Context, tableUUID, node string) (uint64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var through int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(through_seq), 0) FROM zombi_staged WHERE table_uuid = $1 AND node = $2`,
		tableUUID, node).Scan(&through)
	return uint64(through), wrap(err)
}

// StagedBatches returns the table's staged batches, by node and sequence.
func (s *Store) StagedBatches(ctx context.Context, tableUUID string) ([]catalog.StagedBatch, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT id, namespace, name, node, after_seq, through_seq, rows, oldest, format_version,
	spec_ids, schema_ids, files, created
FROM zombi_staged WHERE table_uuid = $1 ORDER BY node, after_seq, id`, tableUUID)
	if err != nil {
		return nil, wrap(err)
	}
	var out []catalog.StagedBatch
	for rows.Next() {
		var (
			b              catalog.StagedBatch
			ns             []string
			after, through int64
			specs, schemas []int32
			files          [][]byte
		)
		if err := rows.Scan(&b.ID, &ns, &b.Table.Name, &b.Node, &after, &through, &b.Rows, &b.Oldest, &b.FormatVersion,
			&specs, &schemas, &files, &b.Created); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		if len(specs) != len(files) || len(schemas) != len(files) {
			rows.Close()
			return nil, fmt.Errorf("postgres: staged batch %d has %d files, %d spec and %d schema IDs", b.ID, len(files), len(specs), len(schemas))
		}
		b.TableUUID, b.Table.Namespace, b.After, b.Through = tableUUID, catalog.Namespace(ns), uint64(after), uint64(through)
		for i := range files {
			b.Files = append(b.Files, catalog.StagedFile{SpecID: int(specs[i]), SchemaID: int(schemas[i]), Data: files[i]})
		}
		out = append(out, b)
	}
	return out, wrap(rows.Err())
}

// StagedTables returns the UUIDs of the tables with staged batches.
func (s *Store) StagedTables(ctx context.Context) ([]string, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT table_uuid FROM zombi_staged ORDER BY table_uuid`)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrap(err)
}

// Unstage deletes the table's batches ids; IDs that are gone are no
// error.
func (s *Store) Unstage(ctx context.Context, tableUUID string, ids []int64) error {
	if s.closed.Load() {
		return errClosed
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM zombi_staged WHERE table_uuid = $1 AND id = ANY($2)`, tableUUID, ids)
	return wrap(err)
}
