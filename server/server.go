package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/compaction"
	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/live"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/planning"
	"github.com/zombi-db/zombi/tail"
)

// Options configure a Server.
type Options struct {
	Catalog *catalog.Service
	Ingest  *ingest.Service
	// InFlight bounds the bytes of ingest request bodies being handled;
	// nil: unbounded.
	InFlight      *ingest.InFlight
	IngestMetrics *ingest.Metrics
	// Flusher serves POST /tables/{table}/flush; nil answers 503.
	Flusher Flusher
	// Compactor serves POST /tables/{table}/compact and /maintenance;
	// nil answers 503.
	Compactor Compactor
	// Nodes serves GET /v1/zombi/nodes; nil (the embedded store) answers
	// 404.
	Nodes Nodes
	// MaxEventBytes and MaxBulkBytes bound single and bulk ingest bodies;
	// defaults 1 MiB and 32 MiB.
	MaxEventBytes int64
	MaxBulkBytes  int64
	Logger        *slog.Logger
	// Auth authenticates callers; the role each route needs is declared
	// in access (access.go). Nil: auth is off, everyone may do everything.
	Auth *auth.Authenticator
	// Registry receives the HTTP metrics and serves /metrics. Required.
	Registry *prometheus.Registry
	// MaxBodyBytes bounds a catalog request body; default 16 MiB.
	MaxBodyBytes int64
	// BodyTimeout and MinBodyRate bound how slowly a request body may
	// arrive: all of it by BodyTimeout after the request's headers, plus a
	// second for every MinBodyRate bytes; a slower one fails with 408 and
	// its connection is closed. Defaults DefaultBodyTimeout and
	// DefaultMinBodyRate; a negative MinBodyRate sets no deadline.
	BodyTimeout time.Duration
	MinBodyRate int64
	// ReadyChecks are further dependencies /health/ready checks, by name,
	// beside the catalog's store and warehouse.
	ReadyChecks map[string]func(context.Context) error
	// Planner serves server-side scan planning; nil: the plan endpoints
	// are not advertised and answer 406.
	Planner *planning.Planner
	// ScanPlanning is who plans tables without a zombi.read.planning
	// property: planning.ModeServer announces server planning in loadTable
	// and /v1/config; client (the default) says nothing.
	ScanPlanning planning.Mode
	// Live serves the live catalog view (warehouse=live, paths under
	// /v1/live/); nil: there is none, and warehouse=live is ignored like
	// any other value. Needs Planner.
	Live *live.Source
	// Signer signs S3 requests for clients that ask for remote signing;
	// nil: no remote signing.
	Signer Signer
	// Vendor vends temporary storage credentials to clients that ask for
	// vended credentials; nil: none are vended.
	Vendor Vendor
	// Tail serves GET /tables/{table}/stream; nil answers 503.
	Tail *tail.Hub
	// StreamHeartbeat is how long a stream may be idle before the server
	// sends a comment line; default tail.DefaultHeartbeat.
	StreamHeartbeat time.Duration
}

// Compactor is what the server needs from compaction.
type Compactor interface {
	Compact(ctx context.Context, id catalog.Ident) (compaction.Result, error)
	Maintain(ctx context.Context, id catalog.Ident) (compaction.MaintenanceResult, error)
}

// Flusher is what the server needs from the flusher.
type Flusher interface {
	Flush(ctx context.Context, id catalog.Ident) (flusher.Result, error)
	// Activity and NodeID serve GET /tables/{table}/activity.
	Activity(key string) (flusher.TableActivity, bool)
	NodeID() string
}

// Server serves the catalog and operational endpoints over HTTP.
type Server struct {
	cat    *catalog.Service
	ingest *ingest.Service
	flush  Flusher
	comp   Compactor
	nodes  Nodes

	inflight                    *ingest.InFlight
	ingestMetrics               *ingest.Metrics
	maxEventBytes, maxBulkBytes int64
	maxBodyBytes                int64
	bodyTimeout                 time.Duration
	minBodyRate                 int64

	log     *slog.Logger
	auth    *auth.Authenticator
	routes  map[string]bool // "METHOD /route/template" of every echo route
	metrics *httpMetrics
	prom    http.Handler
	echo    *echo.Echo
	checks  map[string]func(context.Context) error

	readyMu     sync.Mutex
	readyFailed string // the checks the last /health/ready found failing

	planner         *planning.Planner
	planSource      planning.Source
	planningDefault planning.Mode
	live            *live.Source
	signer          Signer
	vendor          Vendor
	tail            *tail.Hub
	heartbeat       time.Duration
}

const ctxIdempotency = "zombi.idempotency"

// New builds the HTTP handler.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = 1 << 20
	}
	if opts.MaxBulkBytes <= 0 {
		opts.MaxBulkBytes = 32 << 20
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	switch {
	case opts.MinBodyRate == 0:
		opts.MinBodyRate = DefaultMinBodyRate
	case opts.MinBodyRate < 0:
		opts.MinBodyRate = 0
	}
	if opts.InFlight == nil {
		opts.InFlight = ingest.NewInFlight(0)
	}
	if opts.IngestMetrics == nil {
		opts.IngestMetrics = ingest.NewMetrics(nil)
	}
	s := &Server{
		cat:           opts.Catalog,
		ingest:        opts.Ingest,
		flush:         opts.Flusher,
		comp:          opts.Compactor,
		nodes:         opts.Nodes,
		inflight:      opts.InFlight,
		ingestMetrics: opts.IngestMetrics,
		maxEventBytes: opts.MaxEventBytes,
		maxBulkBytes:  opts.MaxBulkBytes,
		maxBodyBytes:  opts.MaxBodyBytes,
		bodyTimeout:   opts.BodyTimeout,
		minBodyRate:   opts.MinBodyRate,
		log:           opts.Logger,
		metrics:       newHTTPMetrics(opts.Registry),
		prom:          promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}),

		planner:         opts.Planner,
		planSource:      planning.CatalogSource{Tables: opts.Catalog},
		planningDefault: opts.ScanPlanning,
		signer:          opts.Signer,
		vendor:          opts.Vendor,
		tail:            opts.Tail,
		heartbeat:       opts.StreamHeartbeat,
	}
	if s.heartbeat <= 0 {
		s.heartbeat = tail.DefaultHeartbeat
	}
	if opts.Planner != nil {
		s.live = opts.Live
	}
	s.auth = opts.Auth
	s.checks = opts.ReadyChecks
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	// Bodies are bounded by ServeHTTP (watchBody), ingest bodies by their
	// handlers, which also charge them against the in-flight limit.
	e.Use(s.observe, middleware.Recover(), s.authenticate, s.limitBody)
	openapi.RegisterHandlers(e, s)
	s.routes = map[string]bool{}
	for _, r := range e.Routes() {
		s.routes[r.Method+" "+r.Path] = true
	}
	s.echo = e
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = s.liveView(r)
	if r.URL.Path == "/ui" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		return
	}
	if r.Method == http.MethodHead && strings.HasPrefix(r.URL.Path, "/ui/") {
		// The console's files answer HEAD as GET: a copy of the request is
		// routed as GET, and net/http, which sees the HEAD, sends no body.
		get := *r
		get.Method = http.MethodGet
		r = &get
	}
	if s.fromReserve(w, r) {
		return
	}
	defer s.watchBody(w, r).done()
	if table, ok := writeEventTable(r); ok {
		s.serveWriteEvent(w, r, table)
		return
	}
	s.echo.ServeHTTP(w, r)
}

// limitBody refuses a catalog request whose declared body is larger than
// the limit before anything reads it; watchBody stops the others.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.maxBodyBytes && !strings.HasPrefix(r.URL.Path, "/tables/") {
			return tooLarge(s.maxBodyBytes)
		}
		return next(c)
	}
}

// observe records request counts and latencies by route template.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the response now so its status is known
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(methodLabel(c.Request().Method), route, c.Response().Status, time.Since(start))
		return nil
	}
}

// methodLabel is a request's method as a metric label: one of the methods
// HTTP defines, or "other". A client may send any token as a method, and
// a label must take few values.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// series caches the children of requests and latency: looking them up
	// by label values hashes the labels on every request.
	series sync.Map // routeKey -> *routeSeries
}

type routeKey struct {
	method, route string
	code          int
}

type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func (m *httpMetrics) observe(method, route string, code int, d time.Duration) {
	k := routeKey{method, route, code}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &routeSeries{
			requests: m.requests.WithLabelValues(method, route, strconv.Itoa(code)),
			latency:  m.latency.WithLabelValues(method, route),
		})
	}
	rs := v.(*routeSeries)
	rs.requests.Inc()
	rs.latency.Observe(d.Seconds())
}

func newHTTPMetrics(r prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zombi", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by method (other: not one HTTP defines), route template (unmatched: none) and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "zombi", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"}),
	}
	if r != nil {
		r.MustRegister(m.requests, m.latency)
	}
	return m
}

// jsonSerializer encodes without HTML escaping and decodes strictly enough
// to turn malformed bodies into 400s.
type jsonSerializer struct{}

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	if raw, rest, ok := splitMetadata(i); ok && indent == "" {
		return writeWithMetadata(c.Response(), raw, rest)
	}
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

func (jsonSerializer) Deserialize(c echo.Context, i any) error {
	if err := json.NewDecoder(c.Request().Body).Decode(i); err != nil {
		return &apiError{status: http.StatusBadRequest, typ: "BadRequestException", msg: "malformed JSON body: " + err.Error()}
	}
	return nil
}

// The answers that carry a metadata document, without it: the fields of
// openapi's LoadTableResult, CommitTableResponse and LoadViewResult but
// Metadata (TestSplitMetadataFields keeps them in step).
type (
	loadTableRest struct {
		Config             *openapi.Properties          `json:"config,omitempty"`
		MetadataLocation   *string                      `json:"metadata-location,omitempty"`
		StorageCredentials *[]openapi.StorageCredential `json:"storage-credentials,omitempty"`
	}
	commitTableRest struct {
		MetadataLocation string `json:"metadata-location"`
	}
	loadViewRest struct {
		Config           *openapi.Properties `json:"config,omitempty"`
		MetadataLocation string              `json:"metadata-location"`
	}
)

// splitMetadata separates the metadata document from the rest of a table
// or view answer. Encoding the answer whole, encoding/json would scan and
// compact the document (already JSON) again, which for a table with some
// history costs more than everything else a loadTable or commit does.
func splitMetadata(i any) (raw []byte, rest any, ok bool) {
	switch v := i.(type) {
	case openapi.LoadTableResult:
		return v.Metadata, loadTableRest{v.Config, v.MetadataLocation, v.StorageCredentials}, true
	case openapi.CommitTableResponse:
		return v.Metadata, commitTableRest{v.MetadataLocation}, true
	case openapi.LoadViewResult:
		return v.Metadata, loadViewRest{v.Config, v.MetadataLocation}, true
	}
	return nil, nil, false
}

// writeWithMetadata writes {"metadata":<raw>, <rest's fields>} and a
// newline, as an encoder would (raw is parsed metadata: valid JSON).
func writeWithMetadata(w http.ResponseWriter, raw []byte, rest any) error {
	tail, err := marshal(rest)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		raw = []byte("null")
	}
	if len(tail) > 2 { // not {}
		tail[0] = ','
	} else {
		tail = tail[1:]
	}
	for _, b := range [][]byte{[]byte(`{"metadata":`), raw, tail, []byte("\n")} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// joinMetadata is what writeWithMetadata writes, without the newline.
func joinMetadata(raw []byte, rest any) ([]byte, error) {
	tail, err := marshal(rest)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		raw = []byte("null")
	}
	b := make([]byte, 0, len(raw)+len(tail)+16)
	b = append(b, `{"metadata":`...)
	b = append(b, raw...)
	if len(tail) > 2 { // not {}
		b = append(b, ',')
		b = append(b, tail[1:]...)
	} else {
		b = append(b, '}')
	}
	return b, nil
}

// marshal encodes v without HTML escaping, for idempotency receipts.
func marshal(v any) ([]byte, error) {
	if raw, rest, ok := splitMetadata(v); ok {
		return joinMetadata(raw, rest)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(b.String(), "\n")), nil
}

// HealthLive answers while the process serves HTTP.
func (s *Server) HealthLive(c echo.Context) error {
	return c.JSON(http.StatusOK, openapi.HealthStatus{Status: "ok"})
}

// HealthReady checks the pointer store, the warehouse and ReadyChecks.
// Failures name what failed, which can name tables and paths: with auth
// on only a caller who may read /metrics (see monitoring) gets them; the
// log has them whenever the answer changes.
func (s *Server) HealthReady(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	failed := map[string]string{}
	if err := s.cat.Ready(ctx); err != nil {
		failed["catalog"] = err.Error()
	}
	for name, check := range s.checks {
		if err := check(ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	s.logReadiness(failed)
	if len(failed) > 0 {
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
		out := openapi.HealthStatus{Status: "unavailable"}
		if s.monitoring(c.Request()) {
			out.Checks = &failed
		}
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, openapi.HealthStatus{Status: "ok"})
}

// logReadiness logs the failed checks when they differ from the last
// answer's.
func (s *Server) logReadiness(failed map[string]string) {
	names := slices.Sorted(maps.Keys(failed))
	key := strings.Join(names, ",")
	s.readyMu.Lock()
	changed := key != s.readyFailed
	s.readyFailed = key
	s.readyMu.Unlock()
	switch {
	case !changed:
	case len(failed) == 0:
		s.log.Info("ready")
	default:
		args := make([]any, 0, 2*len(names))
		for _, n := range names {
			args = append(args, n, failed[n])
		}
		s.log.Warn("not ready", args...)
	}
}

// Metrics serves the Prometheus registry.
func (s *Server) Metrics(c echo.Context) error {
	s.prom.ServeHTTP(c.Response(), c.Request())
	return nil
}
