package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/compaction"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/planning"
	"github.com/zombi-db/zombi/tail"
	"github.com/zombi-db/zombi/warehouse"
)

// apiError is an error with the HTTP status and Iceberg error type it is
// answered with.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// retryAfterSeconds is sent with 503s: the dependency that failed is
// usually back within seconds.
const retryAfterSeconds = "1"

// classify maps a domain error to its status and Iceberg error type. It is
// the only place that decides what an error means on the wire.
func classify(err error) (status int, typ string) {
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.typ
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden, "ForbiddenException"
	case errors.Is(err, catalog.ErrIllegalArgument):
		return http.StatusBadRequest, "IllegalArgumentException"
	case errors.Is(err, catalog.ErrInvalid):
		return http.StatusBadRequest, "BadRequestException"
	case errors.Is(err, catalog.ErrUnprocessable):
		return http.StatusUnprocessableEntity, "UnprocessableEntityException"
	case errors.Is(err, catalog.ErrNoSuchNamespace):
		return http.StatusNotFound, "NoSuchNamespaceException"
	case errors.Is(err, catalog.ErrNoSuchTable):
		return http.StatusNotFound, "NoSuchTableException"
	case errors.Is(err, catalog.ErrNoSuchView):
		return http.StatusNotFound, "NoSuchViewException"
	case errors.Is(err, catalog.ErrNotFound):
		return http.StatusNotFound, "NotFoundException"
	case errors.Is(err, catalog.ErrLocationInUse):
		return http.StatusBadRequest, "BadRequestException"
	case errors.Is(err, catalog.ErrNamespaceExists), errors.Is(err, catalog.ErrTableExists), errors.Is(err, catalog.ErrViewExists):
		return http.StatusConflict, "AlreadyExistsException"
	case errors.Is(err, catalog.ErrNamespaceNotEmpty):
		return http.StatusConflict, "NamespaceNotEmptyException"
	case errors.Is(err, catalog.ErrCommitFailed):
		return http.StatusConflict, "CommitFailedException"
	case errors.Is(err, catalog.ErrCommitStateUnknown):
		return http.StatusInternalServerError, "CommitStateUnknownException"
	case errors.Is(err, compaction.ErrBusy), errors.Is(err, compaction.ErrAborted):
		return http.StatusConflict, "CommitFailedException"
	case errors.Is(err, warehouse.ErrOutsideTable):
		// Table metadata names a file outside the table: the table's
		// data is at fault, and a retry does not help.
		return http.StatusUnprocessableEntity, "UnprocessableEntityException"
	case errors.Is(err, ingest.ErrTableReplaced):
		return http.StatusNotFound, "NoSuchTableException"
	case errors.Is(err, flusher.ErrSchema):
		return http.StatusUnprocessableEntity, "UnprocessableEntityException"
	case errors.Is(err, ingest.ErrNotCommitted):
		return http.StatusGatewayTimeout, "CommitTimeoutException"
	case errors.Is(err, catalog.ErrUnavailable), errors.Is(err, hot.ErrBacklogFull), errors.Is(err, hot.ErrClosed),
		errors.Is(err, ingest.ErrKeyBusy), errors.Is(err, tail.ErrTooManySubscribers), errors.Is(err, tail.ErrClosed),
		errors.Is(err, flusher.ErrStorage), errors.Is(err, flusher.ErrClosed), errors.Is(err, flusher.ErrBusy):
		return http.StatusServiceUnavailable, "ServiceUnavailableException"
	case errors.Is(err, ingest.ErrOverloaded):
		return http.StatusTooManyRequests, "TooManyRequestsException"
	case errors.Is(err, planning.ErrInvalid):
		return http.StatusBadRequest, "BadRequestException"
	case errors.Is(err, planning.ErrNoSuchPlan):
		return http.StatusNotFound, "NoSuchPlanIdException"
	case errors.Is(err, planning.ErrNoSuchPlanTask):
		return http.StatusNotFound, "NoSuchPlanTaskException"
	case errors.Is(err, planning.ErrBusy):
		return http.StatusServiceUnavailable, "ServiceUnavailableException"
	case errors.Is(err, planning.ErrUnsupported):
		return http.StatusNotAcceptable, "UnsupportedOperationException"
	case errors.Is(err, planning.ErrIdempotencyKeyReused):
		return http.StatusUnprocessableEntity, "UnprocessableEntityException"
	case errors.Is(err, ingest.ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType, "UnsupportedMediaTypeException"
	case errors.As(err, &he):
		return he.Code, echoErrorType(he.Code)
	}
	return http.StatusInternalServerError, "InternalServerError"
}

func echoErrorType(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "BadRequestException"
	case http.StatusUnauthorized:
		return "NotAuthorizedException"
	case http.StatusForbidden:
		return "ForbiddenException"
	case http.StatusNotFound:
		return "NoSuchEndpointException"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowedException"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLargeException"
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaTypeException"
	case http.StatusTooManyRequests:
		return "TooManyRequestsException"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableException"
	}
	if code >= 500 {
		return "InternalServerError"
	}
	return "BadRequestException"
}

func errorMessage(err error) string {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if m, ok := he.Message.(string); ok {
			return m
		}
		return http.StatusText(he.Code)
	}
	return err.Error()
}

// errorBody is the Iceberg error JSON for err. A rejected bulk write also
// lists every bad record.
func errorBody(err error) (int, openapi.ErrorResponse) {
	status, typ := classify(err)
	body := openapi.ErrorResponse{Error: openapi.ErrorModel{Code: status, Type: typ, Message: errorMessage(err)}}
	var re *ingest.RecordsError
	if errors.As(err, &re) {
		recs := make([]openapi.RecordError, len(re.Records))
		for i, r := range re.Records {
			recs[i] = openapi.RecordError{Index: r.Index, Reason: r.Reason}
			if r.Field != "" {
				f := r.Field
				recs[i].Field = &f
			}
		}
		body.Error.Records = &recs
	}
	return status, body
}

// handleError is echo's error handler: every error leaves as Iceberg error
// JSON, and a deterministic client error under an Idempotency-Key is
// recorded so a retry gets the same answer.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if bErr := bodyError(c.Request()); bErr != nil {
		// The body was too slow or too large, whatever the handler
		// made of the read error.
		err = bErr
	}
	status, body := errorBody(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
	} else {
		s.log.Debug("request rejected", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
	}
	if k, ok := c.Get(ctxIdempotency).(*catalog.Idempotency); ok && deterministic(status) {
		if b, mErr := marshal(body); mErr == nil {
			if rErr := s.cat.RecordFailure(c.Request().Context(), k.Key, k.Op, status, b); rErr != nil {
				s.log.Warn("could not record idempotent failure", "key", k.Key, "err", rErr)
			}
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if wErr := c.JSON(status, body); wErr != nil {
		s.log.Debug("writing error response", "err", wErr)
	}
}

// deterministic reports whether a client error would be the same on a
// retry of the same request, and so may be replayed from a receipt.
func deterministic(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
		return true
	}
	return false
}
