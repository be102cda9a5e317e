package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zombi-db/zombi/ingest"
)

// Defaults of the body limits.
const (
	DefaultBodyTimeout = 10 * time.Second
	DefaultMinBodyRate = 16 << 10
)

// body is a request body under the server's limits. It must arrive at
// the minimum rate: by timeout after the handler starts, plus a second
// for every rate bytes read. Reading past the deadline fails with
// errSlowBody, reading past limit (when not zero) with a 413; both errors
// stick, so that the answer names them whatever the handler made of them
// (see Server.handleError).
type body struct {
	rc      io.ReadCloser
	conn    readDeadliner // nil: deadlines not supported
	start   time.Time
	timeout time.Duration
	rate    int64 // bytes a second
	limit   int64
	n       int64 // bytes read
	eof     bool
	err     error
}

// readDeadliner is what http.ResponseController.SetReadDeadline calls on
// net/http's ResponseWriter; asking for it directly saves the controller's
// allocation on every request.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

var errSlowBody = &apiError{status: http.StatusRequestTimeout, typ: "RequestTimeoutException",
	msg: "the request body arrived too slowly (see --body-timeout and --min-body-rate)"}

// watchBody puts r's body, if it has one, under the limits. The caller
// calls done once the handler returns.
func (s *Server) watchBody(w http.ResponseWriter, r *http.Request) *body {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := &body{rc: r.Body, start: time.Now(), timeout: s.bodyTimeout, rate: s.minBodyRate}
	if d, ok := w.(readDeadliner); ok && s.minBodyRate > 0 {
		b.conn = d
	}
	if !strings.HasPrefix(r.URL.Path, "/tables/") {
		// Ingest handlers bound their bodies themselves (readBody).
		b.limit = s.maxBodyBytes
	}
	r.Body = b
	return b
}

func (b *body) deadline() time.Time {
	return b.start.Add(b.timeout + time.Duration(b.n)*time.Second/time.Duration(b.rate))
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.conn != nil {
		_ = b.conn.SetReadDeadline(b.deadline())
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		if b.conn != nil {
			_ = b.conn.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.err = errSlowBody
		err = b.err
	}
	if b.limit > 0 && b.n > b.limit {
		b.err = tooLarge(b.limit)
		err = b.err
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// done runs after the handler: the rest of a body the handler did not
// read, which net/http reads and discards, must arrive by the same
// deadline, or the connection is closed.
func (b *body) done() {
	if b != nil && !b.eof && b.conn != nil {
		_ = b.conn.SetReadDeadline(b.deadline())
	}
}

// bodyError is the error that ended the reading of r's body, if the
// server's limits did.
func bodyError(r *http.Request) error {
	if b, ok := r.Body.(*body); ok {
		return b.err
	}
	return nil
}

// bodyCharge is what a write is charged for each byte of its body: the
// body, and the values the hot tier stores, which the records decoded from
// it take at most (ingest.RecordCost covers the rest).
const bodyCharge = 2

// firstRead is the most a body's buffer holds before its first bytes have
// arrived, so that connections that stall hold little of the in-flight
// budget.
const firstRead = 4 << 10

var errOverloaded = &apiError{status: http.StatusTooManyRequests, typ: "TooManyRequestsException",
	msg: "too many bytes of write requests in flight; retry after the Retry-After delay"}

// readBody reads a write request's body of at most limit bytes, charging ch
// bodyCharge bytes for each byte as the body arrives: its buffer starts
// small and doubles, and each growth is charged before it is made. When a
// charge does not fit, the request is refused with 429 at once; so is a
// body whose declared length does not fit now. The caller releases ch.
func (s *Server) readBody(r *http.Request, limit int64, ch *ingest.Charge) ([]byte, error) {
	size := r.ContentLength
	if size > limit {
		s.ingestMetrics.Rejected("too_large")
		return nil, tooLarge(limit)
	}
	if size > 0 && !s.inflight.Fits(bodyCharge*size) {
		s.ingestMetrics.Rejected("overloaded")
		return nil, errOverloaded
	}
	if size < 0 {
		size = limit + 1 // chunked: read one byte more than may come
	}
	var buf []byte
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			c := min(max(2*cap(buf), firstRead), int(size))
			if !ch.Grow(bodyCharge * int64(c-cap(buf))) {
				s.ingestMetrics.Rejected("overloaded")
				return nil, errOverloaded
			}
			buf = append(make([]byte, 0, c), buf...)
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if bErr := bodyError(r); bErr != nil {
				return nil, bErr
			}
			return nil, &apiError{status: http.StatusBadRequest, typ: "BadRequestException", msg: "reading the request body: " + err.Error()}
		}
	}
	if int64(len(buf)) > limit {
		s.ingestMetrics.Rejected("too_large")
		return nil, tooLarge(limit)
	}
	if len(buf) == 0 {
		return nil, &apiError{status: http.StatusBadRequest, typ: "BadRequestException", msg: "the request body is empty"}
	}
	return buf, nil
}

func tooLarge(max int64) error {
	return &apiError{status: http.StatusRequestEntityTooLarge, typ: "RequestEntityTooLargeException",
		msg: fmt.Sprintf("the request body is larger than %d bytes", max)}
}
