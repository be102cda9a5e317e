// Package embedded is the zero-dependency catalog.Store: the catalog's
// pointers kept in a Pebble database in a local directory. It is the default
// for a single Zombi process; several processes need the postgres store.
//
// Writers are serialised: Update holds a lock for the whole of fn, reads and
// writes through an indexed batch (so fn sees its own writes) and commits it
// with a synced WAL write. View reads a Pebble snapshot, so it sees one
// consistent state and never blocks or is blocked by Update.
//
// # Key layout
//
// Strings inside keys are encoded order-preservingly and self-delimited:
// 0x00 becomes 0x00 0xFF and the string ends with 0x00 0x01 (written str(s)
// below). A namespace is encoded as its depth followed by its levels,
// ns(a.b) = uvarint(2) str(a) str(b).
//
//	0x00 "format"                     layout version ("1")
//	'n' ns(levels)                    namespace properties
//	't' ns(namespace) str(name)       table metadata location
//	'r' key                           receipt: status, created, op, body
//	'c' time(created) key             empty; index of receipts by creation
//
// time(t) is the Unix seconds with the sign bit flipped followed by the
// nanoseconds, both big-endian. Because the depth leads, the keys with prefix
// 'n' uvarint(d+1) str(l1)…str(ld) are exactly the direct children of the
// namespace l1…ld, and 't' ns(n) prefixes exactly the tables of n: a and ab,
// or a and a.b, never share a prefix. Direct children and tables come out of
// a prefix scan in byte-wise order of their last level or name.
package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zombi-db/zombi/internal/location"
	"github.com/zombi-db/zombi/internal/pebblefmt"

	"github.com/zombi-db/zombi/catalog"
)

// Store is a catalog.Store on a Pebble database. It is safe for concurrent
// use.
type Store struct {
	// closeMu is held shared by every View, Update and Ping, and exclusively
	// by Close, so the database is never closed under a transaction.
	closeMu sync.RWMutex
	closed  bool
	db      *pebble.DB
	// writer is a one-slot semaphore that serialises Update; a channel
	// rather than a mutex so that waiting honours the context.
	writer chan struct{}
}

var _ catalog.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	fs     vfs.FS
	logger pebble.Logger
}

// WithFS makes the store use fs instead of the operating system's file
// system; vfs.NewMem() gives an in-memory store.
func WithFS(fs vfs.FS) Option {
	return func(o *options) { o.fs = fs }
}

// WithLogger sends Pebble's log messages to l.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = slogLogger{l} }
}

// Open opens the store in dir, creating it if needed.
func Open(dir string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	logger := o.logger
	if logger == nil {
		logger = slogLogger{slog.New(slog.DiscardHandler)}
	}
	popts := &pebble.Options{
		FS:                 o.fs,
		Logger:             logger,
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			// Pebble's default ends the process (Logger.Fatalf). A
			// corrupt file is reported instead, and the reads that meet
			// it fail: the store answers errors, and a store that cannot
			// be opened makes `zombi serve` exit with one.
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				logger.Errorf("catalog store data corruption in %s: %v", info.Path, info.Details)
			},
			BackgroundError: func(err error) {
				logger.Errorf("catalog store background error: %v", err)
			},
		},
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if err := upgrade(db); err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: %s: %w", dir, err), db.Close())
	}
	if err := pebblefmt.Check(db, formatKey, formatVersion, "catalog store"); err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: %s: %w", dir, err), db.Close())
	}
	return &Store{db: db, writer: make(chan struct{}, 1)}, nil
}

// upgrade moves a format-1 store to format 2. Format 2 reads format-1
// entries as they are (see decodeEntry), so only the stamp changes; the
// catalog backfills locations and UUIDs.
func upgrade(db *pebble.DB) error {
	v, closer, err := db.Get(formatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	old := bytes.Equal(v, formatVersion1)
	closer.Close()
	if !old {
		return nil
	}
	return db.Set(formatKey, formatVersion, pebble.Sync)
}

// View runs fn in a read-only transaction on a snapshot of the store.
func (s *Store) View(ctx context.Context, fn func(catalog.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	t := &tx{r: snap}
	defer t.done.Store(true)
	return fn(t)
}

// Update runs fn in a read-write transaction and commits its writes with a
// synced WAL write if fn returns nil. Updates run one at a time.
func (s *Store) Update(ctx context.Context, fn func(catalog.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()

	b := s.db.NewIndexedBatch()
	defer b.Close()
	t := &tx{r: b, w: b}
	err := func() error {
		defer t.done.Store(true)
		return fn(t)
	}()
	if err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("embedded: commit: %w", err)
	}
	return nil
}

// Ping reports ErrUnavailable once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	return ctx.Err()
}

// Close waits for running transactions and closes the database. Later calls
// return nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

var (
	errClosed   = fmt.Errorf("%w: embedded store is closed", catalog.ErrUnavailable)
	errReadOnly = errors.New("embedded: write in a read-only transaction")
)

// reader is what a transaction reads from: an indexed batch or a snapshot.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// tx is a catalog.Tx. w is nil in a View.
type tx struct {
	r    reader
	w    *pebble.Batch
	done atomic.Bool
}

var _ catalog.Tx = (*tx)(nil)

func (t *tx) check(write bool) error {
	if t.done.Load() {
		return catalog.ErrTxDone
	}
	if write && t.w == nil {
		return errReadOnly
	}
	return nil
}

// get returns a copy of the value at key, or ok false if there is none.
func (t *tx) get(key []byte) (v []byte, ok bool, err error) {
	v, closer, err := t.r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v = bytes.Clone(v)
	return v, true, closer.Close()
}

func (t *tx) has(key []byte) (bool, error) {
	_, ok, err := t.get(key)
	return ok, err
}

// scan calls fn for each key in [lower, upper) in order until fn returns
// false. The slices are valid only during the call.
func (t *tx) scan(lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := t.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return errors.Join(err, it.Close())
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if !more {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// hasPrefix reports whether any key starts with prefix.
func (t *tx) hasPrefix(prefix []byte) (bool, error) {
	found := false
	err := t.scan(prefix, successor(prefix), func(_, _ []byte) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}

func (t *tx) LoadNamespace(ns catalog.Namespace) (map[string]string, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if err := validNamespace(ns); err != nil {
		return nil, err
	}
	v, ok, err := t.get(namespaceKey(ns))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	props, err := decodeProps(v)
	if err != nil {
		return nil, fmt.Errorf("embedded: namespace %s: %w", display(ns), err)
	}
	return props, nil
}

func (t *tx) CreateNamespace(ns catalog.Namespace, props map[string]string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validNamespace(ns); err != nil {
		return err
	}
	key := namespaceKey(ns)
	exists, err := t.has(key)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("%w: %s", catalog.ErrNamespaceExists, display(ns))
	}
	if len(ns) > 1 {
		parent := ns[:len(ns)-1]
		exists, err := t.has(namespaceKey(parent))
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(parent))
		}
	}
	return t.w.Set(key, encodeProps(props), nil)
}

func (t *tx) SetNamespaceProperties(ns catalog.Namespace, props map[string]string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validNamespace(ns); err != nil {
		return err
	}
	key := namespaceKey(ns)
	exists, err := t.has(key)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	return t.w.Set(key, encodeProps(props), nil)
}

func (t *tx) DropNamespace(ns catalog.Namespace) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validNamespace(ns); err != nil {
		return err
	}
	key := namespaceKey(ns)
	exists, err := t.has(key)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	for _, prefix := range [][]byte{childrenPrefix(ns), tablesPrefix(ns)} {
		found, err := t.hasPrefix(prefix)
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: %s", catalog.ErrNamespaceNotEmpty, display(ns))
		}
	}
	return t.w.Delete(key, nil)
}

func (t *tx) ListNamespaces(parent catalog.Namespace, after string, limit int) ([]catalog.Namespace, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if len(parent) > 0 {
		if err := validNamespace(parent); err != nil {
			return nil, err
		}
	}
	prefix := childrenPrefix(parent)
	lower := prefix
	last, bounded, none := childAfter(parent, after)
	if none {
		return nil, nil
	}
	if bounded {
		// The successor of the key of the child named last.
		lower = append(appendString(bytes.Clone(prefix), last), 0x00)
	}
	var out []catalog.Namespace
	err := t.scan(lower, successor(prefix), func(k, _ []byte) (bool, error) {
		name, rest, err := decodeString(k[len(prefix):])
		if err != nil || len(rest) != 0 {
			return false, fmt.Errorf("embedded: namespace key %q: %w", k, errCorrupt)
		}
		ns := make(catalog.Namespace, len(parent)+1)
		copy(ns, parent)
		ns[len(parent)] = name
		out = append(out, ns)
		return limit <= 0 || len(out) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// childAfter interprets the after argument of ListNamespaces: either the last
// level of a child of parent or, when it holds the unit separator (which no
// level may), a full Namespace.String(). Listing continues strictly after the
// child named last if bounded, from the first child otherwise, and returns
// nothing if none.
func childAfter(parent catalog.Namespace, after string) (last string, bounded, none bool) {
	if len(parent) == 0 || !containsSep(after) {
		return after, after != "", false
	}
	p := parent.String() + "\x1f"
	switch {
	case strings.HasPrefix(after, p):
		return after[len(p):], true, false
	case after < p:
		return "", false, false
	default:
		return "", false, true
	}
}

func containsSep(s string) bool { return strings.IndexByte(s, 0x1f) >= 0 }

func validKind(k catalog.Kind) error {
	if k != catalog.KindTable && k != catalog.KindView {
		return fmt.Errorf("%w: entry kind %d", catalog.ErrInvalid, k)
	}
	return nil
}

// entry returns the entry named id of any kind, ok false if none.
func (t *tx) entry(id catalog.Ident) (e catalog.Entry, ok bool, err error) {
	v, ok, err := t.get(tableKey(id))
	if err != nil || !ok {
		return catalog.Entry{}, false, err
	}
	e, err = decodeEntry(v)
	if err != nil {
		return catalog.Entry{}, false, fmt.Errorf("embedded: entry %s: %w", id, err)
	}
	return e, true, nil
}

func (t *tx) Load(kind catalog.Kind, id catalog.Ident) (catalog.Entry, error) {
	if err := t.check(false); err != nil {
		return catalog.Entry{}, err
	}
	if err := validNamespace(id.Namespace); err != nil {
		return catalog.Entry{}, err
	}
	e, ok, err := t.entry(id)
	if err != nil {
		return catalog.Entry{}, err
	}
	if !ok || e.Kind != kind {
		return catalog.Entry{}, catalog.NoSuch(kind, id)
	}
	return e, nil
}

func (t *tx) Create(id catalog.Ident, e catalog.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validNamespace(id.Namespace); err != nil {
		return err
	}
	if err := validKind(e.Kind); err != nil {
		return err
	}
	return t.create(id, e)
}

func (t *tx) create(id catalog.Ident, e catalog.Entry) error {
	cur, ok, err := t.entry(id)
	if err != nil {
		return err
	}
	if ok {
		return catalog.Taken(cur.Kind, id)
	}
	ok, err = t.has(namespaceKey(id.Namespace))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(id.Namespace))
	}
	if err := t.checkUnique(id, e); err != nil {
		return err
	}
	return t.put(id, catalog.Entry{}, e)
}

// checkUnique returns ErrLocationInUse if e's location overlaps the
// location of an entry other than id, or e's UUID is another entry's.
func (t *tx) checkUnique(id catalog.Ident, e catalog.Entry) error {
	if e.Location != "" {
		owners, err := t.overlapping(e.Location, 2)
		if err != nil {
			return err
		}
		for _, o := range owners {
			if !sameIdent(o.Ident, id) {
				return fmt.Errorf("%w: %s %s is at %s, which overlaps %s", catalog.ErrLocationInUse, o.Entry.Kind, o.Ident, o.Entry.Location, e.Location)
			}
		}
	}
	if e.UUID != "" {
		v, ok, err := t.get(uuidKey(e.UUID))
		if err != nil {
			return err
		}
		if ok {
			other, err := identOfKey(v)
			if err != nil {
				return fmt.Errorf("embedded: uuid index %q: %w", e.UUID, err)
			}
			if !sameIdent(other, id) {
				return fmt.Errorf("%w: %s has UUID %s", catalog.ErrLocationInUse, other, e.UUID)
			}
		}
	}
	return nil
}

func sameIdent(a, b catalog.Ident) bool {
	return a.Name == b.Name && a.Namespace.String() == b.Namespace.String()
}

// put writes e under id, replacing old (the zero Entry if none), and
// keeps the location and UUID indexes in step.
func (t *tx) put(id catalog.Ident, old, e catalog.Entry) error {
	if err := t.unindex(id, old); err != nil {
		return err
	}
	if e.Location != "" {
		if err := t.w.Set(locationKey(e.Location, id), nil, nil); err != nil {
			return err
		}
	}
	if e.UUID != "" {
		if err := t.w.Set(uuidKey(e.UUID), tableKey(id), nil); err != nil {
			return err
		}
	}
	return t.w.Set(tableKey(id), encodeEntry(e), nil)
}

// unindex removes old's index keys for id.
func (t *tx) unindex(id catalog.Ident, old catalog.Entry) error {
	if old.Location != "" {
		if err := t.w.Delete(locationKey(old.Location, id), nil); err != nil {
			return err
		}
	}
	if old.UUID != "" {
		if err := t.w.Delete(uuidKey(old.UUID), nil); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Swap(id catalog.Ident, expected string, next catalog.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validNamespace(id.Namespace); err != nil {
		return err
	}
	if err := validKind(next.Kind); err != nil {
		return err
	}
	cur, ok, err := t.entry(id)
	if err != nil {
		return err
	}
	if !ok || cur.Kind != next.Kind {
		return catalog.NoSuch(next.Kind, id)
	}
	if cur.MetadataLocation != expected {
		return fmt.Errorf("%w: %s: metadata location is %s, not %s", catalog.ErrCommitFailed, id, cur.MetadataLocation, expected)
	}
	if err := t.checkUnique(id, next); err != nil {
		return err
	}
	return t.put(id, cur, next)
}

func (t *tx) Drop(kind catalog.Kind, id catalog.Ident) (catalog.Entry, error) {
	if err := t.check(true); err != nil {
		return catalog.Entry{}, err
	}
	if err := validNamespace(id.Namespace); err != nil {
		return catalog.Entry{}, err
	}
	e, ok, err := t.entry(id)
	if err != nil {
		return catalog.Entry{}, err
	}
	if !ok || e.Kind != kind {
		return catalog.Entry{}, catalog.NoSuch(kind, id)
	}
	if err := t.unindex(id, e); err != nil {
		return catalog.Entry{}, err
	}
	return e, t.w.Delete(tableKey(id), nil)
}

func (t *tx) Rename(kind catalog.Kind, from, to catalog.Ident) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validNamespace(from.Namespace); err != nil {
		return err
	}
	if err := validNamespace(to.Namespace); err != nil {
		return err
	}
	e, ok, err := t.entry(from)
	if err != nil {
		return err
	}
	if !ok || e.Kind != kind {
		return catalog.NoSuch(kind, from)
	}
	if sameIdent(from, to) {
		return catalog.Taken(e.Kind, to)
	}
	if err := t.unindex(from, e); err != nil {
		return err
	}
	if err := t.w.Delete(tableKey(from), nil); err != nil {
		return err
	}
	return t.create(to, e)
}

func (t *tx) List(kind catalog.Kind, ns catalog.Namespace, after string, limit int) ([]catalog.Ident, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if err := validNamespace(ns); err != nil {
		return nil, err
	}
	exists, err := t.has(namespaceKey(ns))
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, display(ns))
	}
	prefix := tablesPrefix(ns)
	lower := prefix
	if after != "" {
		lower = append(appendString(bytes.Clone(prefix), after), 0x00)
	}
	var out []catalog.Ident
	err = t.scan(lower, successor(prefix), func(k, v []byte) (bool, error) {
		name, rest, err := decodeString(k[len(prefix):])
		if err != nil || len(rest) != 0 {
			return false, fmt.Errorf("embedded: table key %q: %w", k, errCorrupt)
		}
		e, err := decodeEntry(v)
		if err != nil {
			return false, fmt.Errorf("embedded: entry %q: %w", k, err)
		}
		if e.Kind == kind {
			out = append(out, catalog.Ident{Namespace: append(catalog.Namespace(nil), ns...), Name: name})
		}
		return limit <= 0 || len(out) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t *tx) Overlapping(loc string, limit int) ([]catalog.Owner, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return t.overlapping(loc, limit)
}

// overlapping looks up the location index at loc, at each location that
// contains it, and below it.
func (t *tx) overlapping(loc string, limit int) ([]catalog.Owner, error) {
	l, err := location.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	type span struct{ lower, upper []byte }
	var spans []span
	for _, a := range append(l.Ancestors(), l.String()) {
		p := locationPrefix(a)
		spans = append(spans, span{p, successor(p)})
	}
	// Below loc: keys prefixLocation + ChildPrefix + at least one byte.
	below := append([]byte{prefixLocation}, l.ChildPrefix()...)
	spans = append(spans, span{append(bytes.Clone(below), 0x01), successor(below)})
	var out []catalog.Owner
	for _, sp := range spans {
		err := t.scan(sp.lower, sp.upper, func(k, _ []byte) (bool, error) {
			i := bytes.IndexByte(k, 0x00)
			if i < 0 {
				return false, fmt.Errorf("embedded: location key %q: %w", k, errCorrupt)
			}
			id, err := identOfKey(k[i+1:])
			if err != nil {
				return false, fmt.Errorf("embedded: location key %q: %w", k, err)
			}
			e, ok, err := t.entry(id)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("embedded: location key %q names no entry: %w", k, errCorrupt)
			}
			out = append(out, catalog.Owner{Ident: id, Entry: e})
			return limit <= 0 || len(out) < limit, nil
		})
		if err != nil {
			return nil, err
		}
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (t *tx) LoadReceipt(key string) (*catalog.Receipt, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return t.loadReceipt(key)
}

func (t *tx) loadReceipt(key string) (*catalog.Receipt, error) {
	v, ok, err := t.get(receiptKey(key))
	if err != nil || !ok {
		return nil, err
	}
	r, err := decodeReceipt(key, v)
	if err != nil {
		return nil, fmt.Errorf("embedded: receipt %q: %w", key, err)
	}
	return r, nil
}

func (t *tx) PutReceipt(r catalog.Receipt) error {
	if err := t.check(true); err != nil {
		return err
	}
	old, err := t.loadReceipt(r.Key)
	if err != nil {
		return err
	}
	if old != nil {
		if err := t.w.Delete(receiptIndexKey(old.Created, old.Key), nil); err != nil {
			return err
		}
	}
	if err := t.w.Set(receiptIndexKey(r.Created, r.Key), nil, nil); err != nil {
		return err
	}
	return t.w.Set(receiptKey(r.Key), encodeReceipt(r), nil)
}

func (t *tx) DeleteReceiptsBefore(before time.Time) error {
	if err := t.check(true); err != nil {
		return err
	}
	lower := []byte{prefixReceiptIndex}
	upper := receiptIndexPrefix(before)
	var keys [][]byte
	err := t.scan(lower, upper, func(k, _ []byte) (bool, error) {
		keys = append(keys, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.w.Delete(k, nil); err != nil {
			return err
		}
		if err := t.w.Delete(receiptKey(string(k[len(upper):])), nil); err != nil {
			return err
		}
	}
	return nil
}

// validNamespace rejects namespaces the key layout and Namespace.String
// cannot represent unambiguously.
func validNamespace(ns catalog.Namespace) error {
	if len(ns) == 0 {
		return fmt.Errorf("%w: empty namespace", catalog.ErrInvalid)
	}
	for _, level := range ns {
		if containsSep(level) {
			return fmt.Errorf("%w: namespace level %q contains 0x1F", catalog.ErrInvalid, level)
		}
	}
	return nil
}

// display renders ns for error messages, levels joined with dots.
func display(ns catalog.Namespace) string {
	return strings.Join(ns, ".")
}

// slogLogger adapts a *slog.Logger to pebble.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Info(fmt.Sprintf(format, args...), "component", "pebble")
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf logs and panics: Pebble calls it on invariant violations from which
// it cannot continue.
func (s slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}

func (t *tx) AcquireLease(name, holder string, now, until time.Time) (bool, error) {
	if err := t.check(true); err != nil {
		return false, err
	}
	v, ok, err := t.get(leaseKey(name))
	if err != nil {
		return false, err
	}
	if ok {
		have, expires, err := decodeLease(v)
		if err != nil {
			return false, fmt.Errorf("embedded: lease %q: %w", name, err)
		}
		if have != holder && expires.After(now) {
			return false, nil
		}
	}
	return true, t.w.Set(leaseKey(name), encodeLease(holder, until), nil)
}

func (t *tx) ReleaseLease(name, holder string) error {
	if err := t.check(true); err != nil {
		return err
	}
	v, ok, err := t.get(leaseKey(name))
	if err != nil || !ok {
		return err
	}
	have, _, err := decodeLease(v)
	if err != nil {
		return fmt.Errorf("embedded: lease %q: %w", name, err)
	}
	if have != holder {
		return nil
	}
	return t.w.Delete(leaseKey(name), nil)
}
