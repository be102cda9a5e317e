package catalog

import "errors"

// Domain errors. The HTTP layer maps each to an Iceberg error type and status
// exactly once; callers test them with errors.Is.
var (
	// ErrInvalid is a request that can never succeed as sent (bad name,
	// malformed schema, unknown update type). HTTP 400.
	ErrInvalid = errors.New("invalid request")
	// ErrUnprocessable is a well-formed request whose parts contradict each
	// other (a property both set and removed, an idempotency key reused for
	// another request). HTTP 422.
	ErrUnprocessable = errors.New("unprocessable request")
	// ErrNoSuchNamespace: the namespace does not exist. HTTP 404.
	ErrNoSuchNamespace = errors.New("namespace does not exist")
	// ErrNoSuchTable: the table does not exist. HTTP 404.
	ErrNoSuchTable = errors.New("table does not exist")
	// ErrNamespaceExists: a namespace with that name already exists. HTTP 409.
	ErrNamespaceExists = errors.New("namespace already exists")
	// ErrTableExists: a table with that name already exists. HTTP 409.
	ErrTableExists = errors.New("table already exists")
	// ErrNamespaceNotEmpty: the namespace still holds tables or namespaces. HTTP 409.
	ErrNamespaceNotEmpty = errors.New("namespace is not empty")
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
