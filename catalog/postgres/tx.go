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
	"github.com/zombi-db/zombi/internal/location"
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

// locationLockKey is the pg_advisory_xact_lock key that serialises the
// transactions giving an entry a new location or UUID, so two of them
// cannot both find their location free: "zombiL" in ASCII.
const locationLockKey = 0x7a6f6d62694c

func kindName(k catalog.Kind) (string, error) {
	switch k {
	case catalog.KindTable:
		return "table", nil
	case catalog.KindView:
		return "view", nil
	}
	return "", fmt.Errorf("%w: entry kind %d", catalog.ErrInvalid, k)
}

func kindOf(name string) (catalog.Kind, error) {
	switch name {
	case "table":
		return catalog.KindTable, nil
	case "view":
		return catalog.KindView, nil
	}
	return 0, fmt.Errorf("postgres: unknown entry kind %q", name)
}

// nullable maps "" to NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// selectEntry reads the entry of a namespace key and name.
const selectEntry = `SELECT kind, metadata_location, location, coalesce(uuid, '') FROM zombi_tables WHERE namespace = $1 AND name = $2`

// scanEntry scans a selectEntry row; found is false if there was none.
func scanEntry(row pgx.Row) (e catalog.Entry, found bool, err error) {
	var kind string
	err = row.Scan(&kind, &e.MetadataLocation, &e.Location, &e.UUID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return catalog.Entry{}, false, nil
	case err != nil:
		return catalog.Entry{}, false, err
	}
	if e.Kind, err = kindOf(kind); err != nil {
		return catalog.Entry{}, false, err
	}
	return e, true, nil
}

// entry reads the entry named id of any kind; lock takes its row FOR
// UPDATE.
func (t *tx) entry(nsKey string, id catalog.Ident, lock bool) (e catalog.Entry, found bool, err error) {
	q := selectEntry
	if lock {
		q += ` FOR UPDATE`
	}
	e, found, err = scanEntry(t.pgtx.QueryRow(t.ctx, q, nsKey, id.Name))
	if err != nil {
		return catalog.Entry{}, false, t.fail(err)
	}
	return e, found, nil
}

func (t *tx) Load(kind catalog.Kind, id catalog.Ident) (catalog.Entry, error) {
	if err := t.check(false); err != nil {
		return catalog.Entry{}, err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return catalog.Entry{}, err
	}
	e, found, err := t.entry(key, id, false)
	if err != nil {
		return catalog.Entry{}, err
	}
	if !found || e.Kind != kind {
		return catalog.Entry{}, catalog.NoSuch(kind, id)
	}
	return e, nil
}

func (t *tx) Create(id catalog.Ident, e catalog.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return err
	}
	if _, err := kindName(e.Kind); err != nil {
		return err
	}
	if err := t.checkUnique(key, id, catalog.Entry{}, e); err != nil {
		return err
	}
	return t.insert(key, id, e)
}

// insert adds the row of id in the namespace with key nsKey, which it
// locks.
func (t *tx) insert(nsKey string, id catalog.Ident, e catalog.Entry) error {
	found, err := t.lockNamespace(nsKey)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(id.Namespace))
	}
	kind, err := kindName(e.Kind)
	if err != nil {
		return err
	}
	n, err := t.exec(`INSERT INTO zombi_tables (namespace, name, kind, metadata_location, location, uuid)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (namespace, name) DO NOTHING`,
		nsKey, id.Name, kind, e.MetadataLocation, e.Location, nullable(e.UUID))
	if err != nil {
		return err
	}
	if n == 0 {
		cur, found, err := t.entry(nsKey, id, false)
		if err != nil {
			return err
		}
		if !found {
			// Dropped between the insert and the read: still a conflict.
			return catalog.Taken(e.Kind, id)
		}
		return catalog.Taken(cur.Kind, id)
	}
	return nil
}

// checkUnique returns ErrLocationInUse if next, replacing cur as id's
// entry, gets a location overlapping another entry's or a UUID another
// entry has. A changed location or UUID is checked under locationLockKey.
func (t *tx) checkUnique(nsKey string, id catalog.Ident, cur, next catalog.Entry) error {
	newLoc := next.Location != "" && next.Location != cur.Location
	newUUID := next.UUID != "" && next.UUID != cur.UUID
	if !newLoc && !newUUID {
		return nil
	}
	if _, err := t.exec(`SELECT pg_advisory_xact_lock($1)`, int64(locationLockKey)); err != nil {
		return err
	}
	if newLoc {
		owners, err := t.overlapping(next.Location, 2)
		if err != nil {
			return err
		}
		for _, o := range owners {
			if o.Ident.Name != id.Name || o.Ident.Namespace.String() != nsKey {
				return fmt.Errorf("%w: %s %s is at %s, which overlaps %s", catalog.ErrLocationInUse, o.Entry.Kind, o.Ident, o.Entry.Location, next.Location)
			}
		}
	}
	if newUUID {
		var levels []string
		var name string
		found, err := t.queryRow(`SELECT n.levels, t.name FROM zombi_tables t JOIN zombi_namespaces n ON n.key = t.namespace
WHERE t.uuid = $1 AND NOT (t.namespace = $2 AND t.name = $3)`, []any{next.UUID, nsKey, id.Name}, &levels, &name)
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: %s has UUID %s", catalog.ErrLocationInUse, catalog.Ident{Namespace: levels, Name: name}, next.UUID)
		}
	}
	return nil
}

func (t *tx) Swap(id catalog.Ident, expected string, next catalog.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return err
	}
	kind, err := kindName(next.Kind)
	if err != nil {
		return err
	}
	// The common commit keeps location and UUID: one conditional UPDATE,
	// which under READ COMMITTED re-evaluates its condition on the row a
	// concurrent writer committed.
	n, err := t.exec(`UPDATE zombi_tables SET metadata_location = $5
WHERE namespace = $1 AND name = $2 AND kind = $3 AND metadata_location = $4
  AND location = $6 AND coalesce(uuid, '') = $7`,
		key, id.Name, kind, expected, next.MetadataLocation, next.Location, next.UUID)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	cur, found, err := t.entry(key, id, true)
	if err != nil {
		return err
	}
	if !found || cur.Kind != next.Kind {
		return catalog.NoSuch(next.Kind, id)
	}
	if cur.MetadataLocation != expected {
		return fmt.Errorf("%w: %s: metadata location is %s, not %s", catalog.ErrCommitFailed, id, cur.MetadataLocation, expected)
	}
	// The location or UUID changes.
	if err := t.checkUnique(key, id, cur, next); err != nil {
		return err
	}
	_, err = t.exec(`UPDATE zombi_tables SET metadata_location = $3, location = $4, uuid = $5
WHERE namespace = $1 AND name = $2`, key, id.Name, next.MetadataLocation, next.Location, nullable(next.UUID))
	return err
}

func (t *tx) Drop(kind catalog.Kind, id catalog.Ident) (catalog.Entry, error) {
	if err := t.check(true); err != nil {
		return catalog.Entry{}, err
	}
	key, err := nsKey(id.Namespace)
	if err != nil {
		return catalog.Entry{}, err
	}
	k, err := kindName(kind)
	if err != nil {
		return catalog.Entry{}, err
	}
	e := catalog.Entry{Kind: kind}
	found, err := t.queryRow(`DELETE FROM zombi_tables WHERE namespace = $1 AND name = $2 AND kind = $3
RETURNING metadata_location, location, coalesce(uuid, '')`,
		[]any{key, id.Name, k}, &e.MetadataLocation, &e.Location, &e.UUID)
	if err != nil {
		return catalog.Entry{}, err
	}
	if !found {
		return catalog.Entry{}, catalog.NoSuch(kind, id)
	}
	return e, nil
}

func (t *tx) Rename(kind catalog.Kind, from, to catalog.Ident) error {
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
	e, found, err := t.entry(fromKey, from, true)
	if err != nil {
		return err
	}
	if !found || e.Kind != kind {
		return catalog.NoSuch(kind, from)
	}
	if fromKey == toKey && from.Name == to.Name {
		return catalog.Taken(e.Kind, to)
	}
	// Delete first: the UUID index is unique.
	if _, err := t.exec(`DELETE FROM zombi_tables WHERE namespace = $1 AND name = $2`, fromKey, from.Name); err != nil {
		return err
	}
	return t.insert(toKey, to, e)
}

func (t *tx) List(kind catalog.Kind, ns catalog.Namespace, after string, limit int) ([]catalog.Ident, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	key, err := nsKey(ns)
	if err != nil {
		return nil, err
	}
	k, err := kindName(kind)
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
WHERE namespace = $1 AND kind = $2 AND ($3::text IS NULL OR name > $3) ORDER BY name LIMIT $4`,
		key, k, afterArg(after), limitArg(limit))
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

func (t *tx) Overlapping(loc string, limit int) ([]catalog.Owner, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return t.overlapping(loc, limit)
}

// overlapping finds the entries at loc, at a location containing it (an
// equality on each ancestor) or below it (a range over the strings that
// start with loc's ChildPrefix, which ends with '/': up to the same string
// ending with '0', the byte after '/').
func (t *tx) overlapping(loc string, limit int) ([]catalog.Owner, error) {
	l, err := location.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	c := l.String()
	rows, err := t.pgtx.Query(t.ctx, `SELECT n.levels, t.name, t.kind, t.metadata_location, t.location, coalesce(t.uuid, '')
FROM zombi_tables t JOIN zombi_namespaces n ON n.key = t.namespace
WHERE t.location <> '' AND (t.location = ANY($1) OR (t.location >= $2 AND t.location < $3))
ORDER BY t.location LIMIT $4`,
		append(l.Ancestors(), c), l.ChildPrefix(), strings.TrimSuffix(l.ChildPrefix(), "/")+"0", limitArg(limit))
	if err != nil {
		return nil, t.fail(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Owner, error) {
		var o catalog.Owner
		var levels []string
		var kind string
		if err := row.Scan(&levels, &o.Ident.Name, &kind, &o.Entry.MetadataLocation, &o.Entry.Location, &o.Entry.UUID); err != nil {
			return o, err
		}
		o.Ident.Namespace = levels
		k, err := kindOf(kind)
		o.Entry.Kind = k
		return o, err
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
