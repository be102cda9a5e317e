package planning

import (
	"errors"
	"fmt"
)

// Errors of the planner. The HTTP layer maps each to its status and Iceberg
// error type; callers test them with errors.Is. Errors of the catalog
// (catalog.ErrNoSuchTable, ...) pass through unchanged.
var (
	// ErrInvalid: the request can never be planned as sent (a filter that
	// does not parse or bind, an unknown column, contradictory snapshot
	// fields). HTTP 400.
	ErrInvalid = errors.New("invalid scan request")
	// ErrNoSuchPlan: the plan ID is unknown here: never issued by this
	// node, expired, or for another table. HTTP 404 NoSuchPlanIdException.
	ErrNoSuchPlan = errors.New("no such plan")
	// ErrNoSuchPlanTask: the plan task is unknown here, or its plan was
	// cancelled or has expired. HTTP 404 NoSuchPlanTaskException.
	ErrNoSuchPlanTask = errors.New("no such plan task")
	// ErrBusy: the planner is at its limits (live plans, plan memory or
	// planning workers); retry later. HTTP 503 with Retry-After.
	ErrBusy = errors.New("scan planning is busy")
	// ErrUnsupported: the scan cannot be planned on this server (a single
	// manifest too large to plan in bounded memory, extra files on a
	// format v1 table); plan it on the client. HTTP 406
	// UnsupportedOperationException.
	ErrUnsupported = errors.New("scan cannot be planned on the server")
	// ErrIdempotencyKeyReused: an Idempotency-Key already names a plan
	// made from another request. HTTP 422.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused")
)

// invalidf is an ErrInvalid whose message is the formatted text.
func invalidf(format string, args ...any) error {
	return &worded{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

// worded is an error whose message is exactly msg and that is kind.
type worded struct {
	kind error
	msg  string
}

func (e *worded) Error() string { return e.msg }
func (e *worded) Unwrap() error { return e.kind }
