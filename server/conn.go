package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connection limits.
const (
	// DefaultMaxConnections is the default of --max-connections.
	DefaultMaxConnections = 4096
	// HealthReserve is how many connections past the limit are still
	// accepted, for /health/* only: a probe gets its answer while clients
	// hold every connection, and anything else gets 503 at once.
	HealthReserve = 32
	// reserveTimeout is how long a connection of the reserve may take to
	// send its request and read the answer.
	reserveTimeout = 2 * time.Second
	// MaxHeaderBytes bounds a request's line and headers, which net/http
	// holds in memory while they arrive (its default is 1 MiB): every
	// connection may be sending them at once. Clients of a catalog send a
	// few hundred bytes; past it net/http answers 431.
	MaxHeaderBytes = 64 << 10
)

// refusal is what a connection past the limit and the reserve is sent
// before it is closed, without reading its request.
var refusal = func() []byte {
	body := `{"error":{"message":"the server has too many connections; retry after the Retry-After delay","type":"ServiceUnavailableException","code":503}}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: " + retryAfterSeconds +
		"\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// Listener limits the open connections of a listener to max. Past it, the
// next HealthReserve connections are served for /health/* only (see
// ConnContext), each for at most reserveTimeout; past those, a connection
// is sent a 503 and closed as soon as it is accepted. Nothing waits in the
// kernel's backlog for a connection to close, as with
// golang.org/x/net/netutil.LimitListener, where clients hang instead.
type Listener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused prometheus.Counter
}

// LimitListener returns ln limited to max open connections (<= 0:
// DefaultMaxConnections), with its metrics registered with r (nil: none).
func LimitListener(ln net.Listener, max int, r prometheus.Registerer) *Listener {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	l := &Listener{Listener: ln, max: int64(max)}
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "zombi", Subsystem: "http", Name: "connections_refused_total",
		Help: "Connections refused at once because --max-connections and the health reserve were open.",
	})
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "zombi", Subsystem: "http", Name: "connections",
		Help: "Open HTTP connections, the health reserve's included.",
	}, func() float64 { return float64(l.open.Load()) })
	if r != nil {
		r.MustRegister(l.refused, open)
	}
	return l
}

// Accept accepts the next connection the limit lets in.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		switch n := l.open.Add(1); {
		case n <= l.max:
			return &conn{Conn: c, l: l}, nil
		case n <= l.max+HealthReserve:
			rc := &conn{Conn: c, l: l, until: time.Now().Add(reserveTimeout)}
			_ = c.SetDeadline(rc.until)
			return rc, nil
		}
		l.open.Add(-1)
		l.refused.Inc()
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(refusal)
		_ = c.Close()
	}
}

// Open is the number of open connections.
func (l *Listener) Open() int { return int(l.open.Load()) }

// conn is an accepted connection; one of the health reserve has a
// deadline (until) that the HTTP server's own deadlines cannot extend.
type conn struct {
	net.Conn
	l      *Listener
	until  time.Time
	closed sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.l.open.Add(-1) })
	return err
}

func (c *conn) clamp(t time.Time) time.Time {
	if !c.until.IsZero() && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

func (c *conn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

type reserveKey struct{}

// ConnContext is the http.Server ConnContext that marks the requests of a
// connection of the health reserve, for ServeHTTP.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*conn); ok && !lc.until.IsZero() {
		return context.WithValue(ctx, reserveKey{}, true)
	}
	return ctx
}

var errTooManyConnections = &apiError{status: http.StatusServiceUnavailable, typ: "ServiceUnavailableException",
	msg: "the server has too many connections; retry after the Retry-After delay"}

// fromReserve answers a request on a connection of the health reserve
// that is not for /health/* with 503, and reports whether it did. Either
// way the connection closes after the answer.
func (s *Server) fromReserve(w http.ResponseWriter, r *http.Request) bool {
	if reserved, _ := r.Context().Value(reserveKey{}).(bool); !reserved {
		return false
	}
	w.Header().Set("Connection", "close")
	if strings.HasPrefix(r.URL.Path, "/health/") {
		return false
	}
	s.writeError(w, r, errTooManyConnections)
	return true
}
