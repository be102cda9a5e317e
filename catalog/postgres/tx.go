package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zombi-db/zombi/catalog"
)

// tx is a catalog.Tx on a pgx transaction.
type tx struct {
	ctx      context.Context
	pgtx     pgx.Tx
	readOnly bool
	done     atomic.Bool
	// failed is the first statement error; PostgreSQL rejects every later
	// statement of the transaction. conflict is set if it was a
	// serialization failure or deadlock.
	failed   error
	conflict error
}

var _ catalog.Tx = (*tx)(nil)

var errReadOnly = errors.New("postgres: write in a read-only transaction")

// check returns the error an operation must fail with before touching the
// database, if any.
func (t *tx) check(write bool) error {
	switch {
	case t.done.Load():
		return catalog.ErrTxDone
	case write && t.readOnly:
		return errReadOnly
	case t.failed != nil:
		return fmt.Errorf("postgres: transaction aborted by an earlier error: %w", t.failed)
	}
	return nil
}

// fail records a statement error and returns it classified.
func (t *tx) fail(err error) error {
	if t.failed == nil {
		t.failed = err
	}
	if t.conflict == nil && isConflict(err) {
		t.conflict = err
	}
	return wrap(err)
}

func (t *tx) exec(sql string, args ...any) (int64, error) {
	tag, err := t.pgtx.Exec(t.ctx, sql, args...)
	if err != nil {
		return 0, t.fail(err)
	}
	return tag.RowsAffected(), nil
}

// queryRow scans the single row sql returns into dest; found is false if
// there is none.
func (t *tx) queryRow(sql string, args []any, dest ...any) (found bool, err error) {
	err = t.pgtx.QueryRow(t.ctx, sql, args...).Scan(dest...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, t.fail(err)
	}
	return true, nil
}

// exists reports whether sql returns a row.
func (t *tx) exists(sql string, args ...any) (bool, error) {
	var one int
	return t.queryRow(sql, args, &one)
}

// nsKey validates ns and returns its key, Namespace.String().
func nsKey(ns catalog.Namespace) (string, error) {
	if len(ns) == 0 {
		return "", fmt.Errorf("%w: empty namespace", catalog.ErrInvalid)
	}
	for _, level := range ns {
		if strings.IndexByte(level, 0x1f) >= 0 {
			return "", fmt.Errorf("%w: namespace level %q contains 0x1F", catalog.ErrInvalid, level)
		}
	}
	return ns.String(), nil
}

// display renders ns for error messages, levels joined with dots.
func display(ns catalog.Namespace) string { return strings.Join(ns, ".") }

// limitArg is the LIMIT parameter for a limit argument: NULL (no limit)
// when limit <= 0.
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

// afterArg is the strict lower bound parameter for an after argument: NULL
// (no bound) for "".
func afterArg(after string) any {
	if after == "" {
		return nil
	}
	return after
}

// lockNamespace locks ns's row FOR SHARE, so it cannot be dropped before the
// transaction ends, and reports whether it exists.
func (t *tx) lockNamespace(key string) (bool, error) {
	return t.exists(`SELECT 1 FROM zombi_namespaces WHERE key = $1 FOR SHARE`, key)
}

func (t *tx) LoadNamespace(ns catalog.Namespace) (map[string]string, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	key, err := nsKey(ns)
	if err != nil {
		return nil, err
	}
	var props map[string]string
	found, err := t.queryRow(`SELECT properties FROM zombi_namespaces WHERE key = $1`, []any{key}, &props)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	if props == nil {
		props = map[string]string{}
	}
	return props, nil
}

func (t *tx) CreateNamespace(ns catalog.Namespace, props map[string]string) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(ns)
	if err != nil {
		return err
	}
	var parent any // NULL at the top level
	if len(ns) > 1 {
		pkey := ns[:len(ns)-1].String()
		found, err := t.lockNamespace(pkey)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns[:len(ns)-1]))
		}
		parent = pkey
	}
	if props == nil {
		props = map[string]string{}
	}
	n, err := t.exec(`INSERT INTO zombi_namespaces (key, levels, parent, properties)
VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING`, key, []string(ns), parent, props)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", catalog.ErrNamespaceExists, display(ns))
	}
	return nil
}

func (t *tx) SetNamespaceProperties(ns catalog.Namespace, props map[string]string) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(ns)
	if err != nil {
		return err
	}
	if props == nil {
		props = map[string]string{}
	}
	n, err := t.exec(`UPDATE zombi_namespaces SET properties = $2 WHERE key = $1`, key, props)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	return nil
}

func (t *tx) DropNamespace(ns catalog.Namespace) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(ns)
	if err != nil {
		return err
	}
	// Lock first, then look for contents in a later statement: under READ
	// COMMITTED it sees whatever a creator holding the row committed.
	found, err := t.exists(`SELECT 1 FROM zombi_namespaces WHERE key = $1 FOR UPDATE`, key)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	var nonEmpty bool
	if _, err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM zombi_tables WHERE namespace = $1)
	OR EXISTS (SELECT 1 FROM zombi_namespaces WHERE parent = $1)`, []any{key}, &nonEmpty); err != nil {
		return err
	}
	if nonEmpty {
		return fmt.Errorf("%w: %s", catalog.ErrNamespaceNotEmpty, display(ns))
	}
	if _, err := t.exec(`DELETE FROM zombi_namespaces WHERE key = $1`, key); err != nil {
		return err
	}
	return nil
}

func (t *tx) ListNamespaces(parent catalog.Namespace, after string, limit int) ([]catalog.Namespace, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	var (
		rows pgx.Rows
		err  error
	)
	if len(parent) == 0 {
		rows, err = t.pgtx.Query(t.ctx, `SELECT levels FROM zombi_namespaces
WHERE parent IS NULL AND ($1::text IS NULL OR key > $1) ORDER BY key LIMIT $2`,
			afterArg(after), limitArg(limit))
	} else {
		var pkey string
		if pkey, err = nsKey(parent); err != nil {
			return nil, err
		}
		// after is a child's last level or, holding the separator no level
		// may hold, a child's full key.
		if after != "" && strings.IndexByte(after, 0x1f) < 0 {
			after = pkey + "\x1f" + after
		}
		rows, err = t.pgtx.Query(t.ctx, `SELECT levels FROM zombi_namespaces
WHERE parent = $1 AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3`,
			pkey, afterArg(after), limitArg(limit))
	}
	if err != nil {
		return nil, t.fail(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Namespace, error) {
		var levels []string
		err := row.Scan(&levels)
		return catalog.Namespace(levels), err
	})
	if err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}

func (t *tx) LoadTable(id catalog.Ident) (string, error) {
	if err := t.check(false); err != nil {
		return "", err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return "", err
	}
	var loc string
	found, err := t.queryRow(`SELECT metadata_location FROM zombi_tables WHERE namespace = $1 AND name = $2`,
		[]any{key, id.Name}, &loc)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%w: %s", catalog.ErrNoSuchTable, id)
	}
	return loc, nil
}

func (t *tx) CreateTable(id catalog.Ident, metadataLocation string) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return err
	}
	return t.createTable(key, id, metadataLocation)
}

// createTable inserts the row of id in the namespace with key nsKey, which
// it locks.
func (t *tx) createTable(nsKey string, id catalog.Ident, location string) error {
	found, err := t.lockNamespace(nsKey)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(id.Namespace))
	}
	n, err := t.exec(`INSERT INTO zombi_tables (namespace, name, metadata_location)
VALUES ($1, $2, $3) ON CONFLICT (namespace, name) DO NOTHING`, nsKey, id.Name, location)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", catalog.ErrTableExists, id)
	}
	return nil
}

func (t *tx) SwapTable(id catalog.Ident, expected, next string) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return err
	}
	// Under READ COMMITTED an UPDATE blocked by a concurrent writer
	// re-evaluates its condition on the row that writer committed.
	n, err := t.exec(`UPDATE zombi_tables SET metadata_location = $4
WHERE namespace = $1 AND name = $2 AND metadata_location = $3`, key, id.Name, expected, next)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var cur string
	found, err := t.queryRow(`SELECT metadata_location FROM zombi_tables WHERE namespace = $1 AND name = $2`,
		[]any{key, id.Name}, &cur)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchTable, id)
	}
	return fmt.Errorf("%w: %s: metadata location is %s, not %s", catalog.ErrCommitFailed, id, cur, expected)
}

func (t *tx) DropTable(id catalog.Ident) (string, error) {
	if err := t.check(true); err != nil {
		return "", err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return "", err
	}
	var loc string
	found, err := t.queryRow(`DELETE FROM zombi_tables WHERE namespace = $1 AND name = $2 RETURNING metadata_location`,
		[]any{key, id.Name}, &loc)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%w: %s", catalog.ErrNoSuchTable, id)
	}
	return loc, nil
}

func (t *tx) RenameTable(from, to catalog.Ident) error {
	if err := t.check(true); err != nil {
		return err
	}
	fromKey, err := nsKey(from.Namespace)
	if err != nil {
		return err
	}
	toKey, err := nsKey(to.Namespace)
	if err != nil {
		return err
	}
	var loc string
	found, err := t.queryRow(`SELECT metadata_location FROM zombi_tables WHERE namespace = $1 AND name = $2 FOR UPDATE`,
		[]any{fromKey, from.Name}, &loc)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchTable, from)
	}
	if err := t.createTable(toKey, to, loc); err != nil {
		return err
	}
	_, err = t.exec(`DELETE FROM zombi_tables WHERE namespace = $1 AND name = $2`, fromKey, from.Name)
	return err
}

func (t *tx) ListTables(ns catalog.Namespace, after string, limit int) ([]catalog.Ident, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	key, err := nsKey(ns)
	if err != nil {
		return nil, err
	}
	found, err := t.exists(`SELECT 1 FROM zombi_namespaces WHERE key = $1`, key)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	rows, err := t.pgtx.Query(t.ctx, `SELECT name FROM zombi_tables
WHERE namespace = $1 AND ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $3`,
		key, afterArg(after), limitArg(limit))
	if err != nil {
		return nil, t.fail(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Ident, error) {
		id := catalog.Ident{Namespace: append(catalog.Namespace(nil), ns...)}
		err := row.Scan(&id.Name)
		return id, err
	})
	if err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}

func (t *tx) LoadReceipt(key string) (*catalog.Receipt, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	r := catalog.Receipt{Key: key}
	found, err := t.queryRow(`SELECT op, status, body, created FROM zombi_receipts WHERE key = $1`,
		[]any{key}, &r.Op, &r.Status, &r.Body, &r.Created)
	if err != nil || !found {
		return nil, err
	}
	r.Created = r.Created.UTC()
	return &r, nil
}

func (t *tx) PutReceipt(r catalog.Receipt) error {
	if err := t.check(true); err != nil {
		return err
	}
	body := r.Body
	if body == nil {
		body = []byte{}
	}
	_, err := t.exec(`INSERT INTO zombi_receipts (key, op, status, body, created) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key) DO UPDATE SET op = EXCLUDED.op, status = EXCLUDED.status, body = EXCLUDED.body, created = EXCLUDED.created`,
		r.Key, r.Op, r.Status, body, r.Created)
	return err
}

func (t *tx) DeleteReceiptsBefore(before time.Time) error {
	if err := t.check(true); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM zombi_receipts WHERE created < $1`, before)
	return err
}

func (t *tx) AcquireLease(name, holder string, now, until time.Time) (bool, error) {
	if err := t.check(true); err != nil {
		return false, err
	}
	// The conflict clause locks the row, so two nodes cannot both see the
	// lease free.
	n, err := t.exec(`INSERT INTO zombi_leases (name, holder, expires) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
WHERE zombi_leases.holder = EXCLUDED.holder OR zombi_leases.expires <= $4`, name, holder, until, now)
	return n == 1, err
}

func (t *tx) ReleaseLease(name, holder string) error {
	if err := t.check(true); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM zombi_leases WHERE name = $1 AND holder = $2`, name, holder)
	return err
}
