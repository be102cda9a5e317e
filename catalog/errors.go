package catalog

import (
	"errors"
	"fmt"
)

// Domain errors. The HTTP layer maps each to an Iceberg error type and status
// exactly once; callers test them with errors.Is.
//
// The texts of the not-found and already-exists errors are the reference
// catalog's words, capitalised as it writes them: Iceberg's clients show
// them to every Spark and Trino user, and the REST conformance kit checks
// them. Wrap them as "%w: <name>" so the message reads as the reference's
// ("Table does not exist: ns.t").
var (
	// ErrInvalid is a request that can never succeed as sent (bad name,
	// malformed schema, unknown update type). HTTP 400.
	ErrInvalid = errors.New("invalid request")
	// ErrIllegalArgument is a change the metadata rules refuse (a schema,
	// spec, sort order or view version that cannot be), worded by the
	// library that checked it. It is also ErrInvalid. HTTP 400 with type
	// IllegalArgumentException, which Iceberg's Java client raises as
	// such.
	ErrIllegalArgument = fmt.Errorf("%w: illegal argument", ErrInvalid)
	// ErrUnprocessable is a well-formed request whose parts contradict each
	// other (a property both set and removed, an idempotency key reused for
	// another request). HTTP 422.
	ErrUnprocessable = errors.New("unprocessable request")
	// ErrNoSuchNamespace: the namespace does not exist. HTTP 404.
	ErrNoSuchNamespace = errors.New("Namespace does not exist")
	// ErrNoSuchTable: the table does not exist. HTTP 404.
	ErrNoSuchTable = errors.New("Table does not exist")
	// ErrNoSuchView: the view does not exist. HTTP 404.
	ErrNoSuchView = errors.New("View does not exist")
	// ErrViewExists: a view with that name already exists. HTTP 409.
	ErrViewExists = errors.New("View already exists")
	// ErrLocationInUse: a table or view location overlaps another table's
	// or view's, or a UUID is already another's. HTTP 400.
	ErrLocationInUse = errors.New("location in use")
	// ErrNotFound: a file the catalog must read is gone (a table whose
	// current metadata file was deleted). HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrNamespaceExists: a namespace with that name already exists. HTTP 409.
	ErrNamespaceExists = errors.New("Namespace already exists")
	// ErrTableExists: a table with that name already exists. HTTP 409.
	ErrTableExists = errors.New("Table already exists")
	// ErrNamespaceNotEmpty: the namespace still holds tables or namespaces. HTTP 409.
	ErrNamespaceNotEmpty = errors.New("Namespace is not empty")
	// ErrCommitFailed: a requirement did not hold or the pointer moved under
	// the commit. Nothing changed; rebase and retry. HTTP 409.
	ErrCommitFailed = errors.New("commit failed")
	// ErrCommitStateUnknown: the commit may or may not have been applied
	// (the store did not answer the swap). HTTP 500; the client must reload.
	ErrCommitStateUnknown = errors.New("commit state unknown")
	// ErrUnavailable: a dependency (store, warehouse) cannot be reached and
	// nothing changed. HTTP 503.
	ErrUnavailable = errors.New("service unavailable")
)

// worded is a domain error whose message is exactly the text given, with
// no sentinel text before it: for messages the reference catalog words in
// full ("Requirement failed: current schema changed"), which clients match
// on from their start. errors.Is(err, kind) holds.
type worded struct {
	kind error
	msg  string
}

func (e *worded) Error() string { return e.msg }
func (e *worded) Unwrap() error { return e.kind }

// errorf returns a kind error whose message is the formatted text alone.
func errorf(kind error, format string, args ...any) error {
	return &worded{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// NoSuch is the error for no entry of kind named id: ErrNoSuchTable or
// ErrNoSuchView. Stores return it.
func NoSuch(kind Kind, id Ident) error {
	if kind == KindView {
		return fmt.Errorf("%w: %s", ErrNoSuchView, id)
	}
	return fmt.Errorf("%w: %s", ErrNoSuchTable, id)
}

// Taken is the error for creating id where an entry of kind is:
// ErrTableExists or ErrViewExists. Stores return it.
func Taken(kind Kind, id Ident) error {
	if kind == KindView {
		return fmt.Errorf("%w: %s", ErrViewExists, id)
	}
	return fmt.Errorf("%w: %s", ErrTableExists, id)
}
