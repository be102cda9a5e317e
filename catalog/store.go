package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Namespace is a namespace's levels, outermost first: {"a", "b"} is a.b.
type Namespace []string

// String joins the levels with the unit separator (0x1F), the REST spec's
// encoding, which no level may contain.
func (n Namespace) String() string { return strings.Join(n, "\x1f") }

// Ident names a table: its namespace and its name.
type Ident struct {
	Namespace Namespace
	Name      string
}

func (id Ident) String() string {
	return strings.Join(append(append([]string{}, id.Namespace...), id.Name), ".")
}

// Receipt is the stored outcome of a mutating request made with an
// Idempotency-Key. A retry with the same key replays it instead of running
// the request again.
type Receipt struct {
	Key string
	// Op identifies the request the key was first used with (method and
	// route); a key reused for another operation is a client error.
	Op     string
	Status int
	Body   []byte
	// Created is kept to the microsecond and returned in UTC.
	Created time.Time
}

// Kind is what an entry names. Tables and views share one namespace of
// names: a name is either a table or a view.
type Kind uint8

// Entry kinds.
const (
	KindTable Kind = iota + 1
	KindView
)

func (k Kind) String() string {
	switch k {
	case KindTable:
		return "table"
	case KindView:
		return "view"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Entry is what the store keeps for a table or a view.
type Entry struct {
	Kind Kind
	// MetadataLocation is the current metadata file: the pointer that
	// commits compare and swap.
	MetadataLocation string
	// Location is the table's or view's location in canonical form
	// (internal/location): every file it owns lies below it, and no two
	// entries' locations overlap. Empty for an entry written before
	// stores kept it, until the catalog backfills it.
	Location string
	// UUID is the table or view UUID of the metadata; no two entries share
	// one. Empty as for Location.
	UUID string
}

// Owner is an entry with its name.
type Owner struct {
	Ident Ident
	Entry Entry
}

// Store keeps the catalog's pointers. Every read and write happens inside a
// transaction: Update runs fn in a read-write transaction that commits
// atomically and durably when fn returns nil and rolls back otherwise; View
// runs fn in a read-only one. Implementations may run fn more than once
// (retrying on serialization failures), so fn must have no side effects
// outside the Tx.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	Close() error
}

// EntryLoader is implemented by stores that can read one entry in one
// request, outside a transaction: a single read is consistent on its own.
// LoadEntry answers exactly as Tx.Load does. The catalog uses it for the
// hottest read, loadTable; on Postgres it is one round trip instead of
// three (BEGIN, SELECT, ROLLBACK).
type EntryLoader interface {
	LoadEntry(ctx context.Context, kind Kind, id Ident) (Entry, error)
}

// EntryLister is implemented by stores that can list a namespace's
// entries of one kind in one request, outside a transaction: a single read
// is consistent on its own. ListEntries answers exactly as Tx.List does.
// The catalog uses it for listTables and listViews; on Postgres it is one
// round trip instead of four (BEGIN, the namespace check, SELECT,
// ROLLBACK).
type EntryLister interface {
	ListEntries(ctx context.Context, kind Kind, ns Namespace, after string, limit int) ([]Ident, error)
}

// Tx is one store transaction. Namespace and table names are compared
// byte-wise. An empty namespace or a level containing 0x1F is ErrInvalid in
// every method; stores may refuse other strings they cannot hold (Postgres:
// NUL bytes, invalid UTF-8) with ErrInvalid. Writes inside View fail and
// change nothing. A Tx must not be used after its View/Update returns.
type Tx interface {
	// LoadNamespace returns the namespace's properties (never nil) or
	// ErrNoSuchNamespace.
	LoadNamespace(ns Namespace) (map[string]string, error)
	// CreateNamespace creates ns with props; ErrNamespaceExists if present,
	// ErrNoSuchNamespace if its parent is absent (checked in the store so a
	// concurrent drop of the parent cannot orphan it).
	CreateNamespace(ns Namespace, props map[string]string) error
	// SetNamespaceProperties replaces ns's properties with props;
	// ErrNoSuchNamespace if absent.
	SetNamespaceProperties(ns Namespace, props map[string]string) error
	// DropNamespace removes ns; ErrNoSuchNamespace if absent,
	// ErrNamespaceNotEmpty if it has tables or child namespaces.
	DropNamespace(ns Namespace) error
	// ListNamespaces returns the direct children of parent (all top-level
	// namespaces for an empty parent) in ascending order of String(),
	// starting strictly after the child after ("" for the start; either its
	// last level or its full String()), at most limit of them (limit <= 0:
	// all).
	ListNamespaces(parent Namespace, after string, limit int) ([]Namespace, error)

	// Load returns the entry of kind named id: ErrNoSuchTable (kind
	// KindTable) or ErrNoSuchView (KindView) if there is none, also when id
	// names an entry of the other kind.
	Load(kind Kind, id Ident) (Entry, error)
	// Create makes id name e. ErrTableExists or ErrViewExists (after the
	// kind of the entry present) if id names an entry of either kind;
	// ErrNoSuchNamespace if the namespace is absent; ErrLocationInUse if
	// e.Location overlaps another entry's location or e.UUID is another
	// entry's.
	Create(id Ident, e Entry) error
	// Swap replaces the entry of kind next.Kind named id with next if its
	// metadata location is expected: ErrCommitFailed when it is not,
	// ErrNoSuchTable/ErrNoSuchView when there is no such entry, and
	// ErrLocationInUse as for Create (id's own entry excepted).
	Swap(id Ident, expected string, next Entry) error
	// Drop removes the entry of kind named id and returns it;
	// ErrNoSuchTable/ErrNoSuchView if absent.
	Drop(kind Kind, id Ident) (Entry, error)
	// Rename moves the entry of kind from one name to another:
	// ErrNoSuchTable/ErrNoSuchView if from names no such entry,
	// ErrTableExists/ErrViewExists if to names an entry of either kind,
	// ErrNoSuchNamespace if to's namespace is absent.
	Rename(kind Kind, from, to Ident) error
	// List returns the entries of kind in ns ordered by name, starting
	// strictly after the name after, at most limit (limit <= 0: all);
	// ErrNoSuchNamespace if ns is absent.
	List(kind Kind, ns Namespace, after string, limit int) ([]Ident, error)
	// Overlapping returns up to limit (<= 0: all) entries, of either kind,
	// whose location equals loc, contains it or lies inside it. loc is
	// canonical (see Entry.Location); entries without a location are
	// never returned.
	Overlapping(loc string, limit int) ([]Owner, error)

	// LoadReceipt returns the receipt stored under key, or nil if none.
	LoadReceipt(key string) (*Receipt, error)
	// PutReceipt stores r under r.Key, replacing any receipt there.
	PutReceipt(r Receipt) error
	// DeleteReceiptsBefore removes receipts created before t.
	DeleteReceiptsBefore(t time.Time) error

	// AcquireLease makes holder the holder of the lease name until until,
	// and reports true, when the lease is free, expired at now, or already
	// held by holder; otherwise it changes nothing and reports false. It
	// is atomic against concurrent calls on other nodes.
	AcquireLease(name, holder string, now, until time.Time) (bool, error)
	// ReleaseLease frees the lease name if holder holds it.
	ReleaseLease(name, holder string) error
}

// ErrTxDone is returned by Tx methods used after their transaction ended.
var ErrTxDone = errors.New("store transaction already finished")
