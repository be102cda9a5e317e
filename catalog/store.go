package catalog

import (
	"context"
	"errors"
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

	// LoadTable returns the table's current metadata location or
	// ErrNoSuchTable.
	LoadTable(id Ident) (string, error)
	// CreateTable points id at metadataLocation; ErrTableExists if present,
	// ErrNoSuchNamespace if the namespace is absent.
	CreateTable(id Ident, metadataLocation string) error
	// SwapTable moves id's pointer from expected to next, or returns
	// ErrCommitFailed when the pointer is not at expected and
	// ErrNoSuchTable when the table is absent.
	SwapTable(id Ident, expected, next string) error
	// DropTable removes the pointer and returns the location it held;
	// ErrNoSuchTable if absent.
	DropTable(id Ident) (string, error)
	// RenameTable moves the pointer from one name to another:
	// ErrNoSuchTable if from is absent, ErrTableExists if to is present,
	// ErrNoSuchNamespace if to's namespace is absent.
	RenameTable(from, to Ident) error
	// ListTables returns the tables in ns ordered by name, starting strictly
	// after the name after, at most limit (limit <= 0: all);
	// ErrNoSuchNamespace if ns is absent.
	ListTables(ns Namespace, after string, limit int) ([]Ident, error)

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
