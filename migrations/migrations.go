// Package migrations holds Zombi's PostgreSQL schema as numbered SQL files
// (0001_init.sql, 0002_….sql, …) embedded in the binary, and applies the
// ones a database lacks.
//
// Apply runs each pending migration in its own transaction, in order, and
// records it in zombi_schema_migrations with a checksum of its text. Every
// transaction first takes a transaction-scoped advisory lock, so processes
// starting together apply each migration once, one after the other. A
// migration, once released, is never edited: Apply refuses a database whose
// recorded checksum differs, or that records a migration this binary does
// not know (a newer Zombi migrated it).
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

//go:embed *.sql
var files embed.FS

// lockKey is the pg_advisory_xact_lock key serialising migrations: "zombi"
// in ASCII.
const lockKey = 0x7a6f6d6269

// Conn is what Apply needs: *pgx.Conn, *pgxpool.Pool and *pgxpool.Conn all
// have it.
type Conn interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migration is one schema change.
type Migration struct {
	Version  int    // from the file name, counting from 1 without gaps
	Name     string // the file name
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

var fileName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// All returns the embedded migrations in order.
func All() ([]Migration, error) {
	return load(files)
}

func load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("migrations: %q is not named NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: %s: want version %04d (versions count from 1 without gaps)", m.Name, i+1)
		}
	}
	return ms, nil
}

// Apply brings the database conn is connected to up to the latest schema.
// It is safe to call concurrently from several processes and does nothing
// when the schema is current.
func Apply(ctx context.Context, conn Conn) error {
	ms, err := All()
	if err != nil {
		return err
	}
	return apply(ctx, conn, ms)
}

func apply(ctx context.Context, conn Conn, ms []Migration) error {
	for _, m := range ms {
		if err := applyOne(ctx, conn, ms, m); err != nil {
			return fmt.Errorf("migrations: %s: %w", m.Name, err)
		}
	}
	return nil
}

// applyOne applies m in a transaction unless the database has it, checking
// what the database records against ms.
func applyOne(ctx context.Context, conn Conn, ms []Migration, m Migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockKey)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS zombi_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	checksum   text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, "SELECT version, name, checksum FROM zombi_schema_migrations ORDER BY version")
	if err != nil {
		return err
	}
	applied := false
	for rows.Next() {
		var (
			version        int
			name, checksum string
		)
		if err := rows.Scan(&version, &name, &checksum); err != nil {
			return err
		}
		if version < 1 {
			return fmt.Errorf("the database records migration version %d (%s), which no binary has", version, name)
		}
		if version > len(ms) {
			return fmt.Errorf("the database has migration %04d (%s), newer than this binary's latest, %s", version, name, ms[len(ms)-1].Name)
		}
		if want := ms[version-1]; checksum != want.Checksum {
			return fmt.Errorf("migration %s was applied with checksum %s, but %s has %s: released migrations must not change",
				name, checksum, want.Name, want.Checksum)
		}
		applied = applied || version == m.Version
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if applied {
		return nil
	}
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO zombi_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
		m.Version, m.Name, m.Checksum); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
