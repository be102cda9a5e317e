package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/ingest"
	"github.com/zombi-db/zombi/openapi"
)

// mediaArrowStream is the Arrow IPC stream format.
const mediaArrowStream = "application/vnd.apache.arrow.stream"

// WriteEvent writes one event or row. ServeHTTP serves this route itself
// (serveWriteEvent); echo gets only the requests whose path needs
// unescaping.
func (s *Server) WriteEvent(c echo.Context, table string, p openapi.WriteEventParams) error {
	committed, err := ackCommitted((*string)(p.Ack))
	if err != nil {
		return err
	}
	res, err := s.writeOne(c.Request(), table, deref(p.IdempotencyKey), deref(p.XPartition), committed)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusAccepted, echo.MIMEApplicationJSON, appendWriteResult(make([]byte, 0, 96), res))
}

// writeOne reads the body of a single write and writes it; with committed
// it answers once the event is in an Iceberg snapshot.
func (s *Server) writeOne(r *http.Request, table, idempotencyKey, partition string, committed bool) (ingest.WriteResult, error) {
	ch := ingest.NewCharge(s.inflight)
	defer ch.Release()
	body, err := s.readBody(r, s.maxEventBytes, &ch)
	if err != nil {
		return ingest.WriteResult{}, err
	}
	res, err := s.ingest.WriteOne(r.Context(), table, ingest.Request{
		MediaType:      ingest.MediaType(r.Header.Get(echo.HeaderContentType)),
		Body:           body,
		IdempotencyKey: idempotencyKey,
		Partition:      partition,
		WaitCommitted:  committed,
	})
	if err != nil {
		return ingest.WriteResult{}, s.ingestError(err)
	}
	return res, nil
}

// writeEventRoute is the route of single writes, as echo names it in the
// HTTP metrics.
const writeEventRoute = "/tables/:table"

// writeEventNeed is what serveWriteEvent's callers need, as for echo's
// route.
var writeEventNeed = access[http.MethodPost+" "+writeEventRoute]

// writeEventTable reports whether echo would route r to WriteEvent, and
// the {table} it would bind. A path that needed escaping (RawPath set) is
// left to echo, which unescapes it, and so is a request with a query
// (?ack=committed), which echo binds.
func writeEventTable(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost || r.URL.RawPath != "" || r.URL.RawQuery != "" {
		return "", false
	}
	table, ok := strings.CutPrefix(r.URL.Path, "/tables/")
	if !ok || table == "" || strings.IndexByte(table, '/') >= 0 {
		return "", false
	}
	return table, true
}

// serveWriteEvent serves POST /tables/{table}, the route producers call
// once per event, without echo: echo's context, per-request middleware
// chain and parameter binding cost more than the rest of the handler. It
// does what the echo route does — HTTP metrics, panic recovery,
// authentication, header parameters — and leaves every error to the echo
// error handler, so the answers are the same.
func (s *Server) serveWriteEvent(w http.ResponseWriter, r *http.Request, table string) {
	start := time.Now()
	status := s.writeEvent(w, r, table)
	s.metrics.observe(http.MethodPost, writeEventRoute, status, time.Since(start))
}

func (s *Server) writeEvent(w http.ResponseWriter, r *http.Request, table string) (status int) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			if status != 0 {
				return // the answer is written
			}
			err, ok := p.(error)
			if !ok {
				err = fmt.Errorf("%v", p)
			}
			stack := make([]byte, 4<<10)
			stack = stack[:runtime.Stack(stack, true)]
			s.log.Error("panic serving a request", "err", err, "stack", string(stack))
			status = s.writeError(w, r, err)
		}
	}()
	p, err := s.authorize(r, writeEventNeed, true, func() (catalog.Namespace, error) { return s.ingestNamespace(table) })
	if err != nil {
		if errors.Is(err, errUnauthorized) || errors.Is(err, errBadToken) {
			w.Header().Set("WWW-Authenticate", authChallenge)
		}
		return s.writeError(w, r, err)
	}
	if p != auth.Everyone {
		r = r.WithContext(auth.NewContext(r.Context(), p))
	}
	key, err := headerParam(r.Header, "Idempotency-Key")
	if err != nil {
		return s.writeError(w, r, err)
	}
	partition, err := headerParam(r.Header, "X-Partition")
	if err != nil {
		return s.writeError(w, r, err)
	}
	res, err := s.writeOne(r, table, key, partition, false)
	if err != nil {
		return s.writeError(w, r, err)
	}
	var buf [128]byte
	b := appendWriteResult(buf[:0], res)
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	status = http.StatusAccepted
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return status
}

// headerParam is an optional header parameter bound as the generated echo
// wrapper binds it: more than one value is a 400.
func headerParam(h http.Header, name string) (string, error) {
	vs, ok := h[name]
	if !ok {
		return "", nil
	}
	if len(vs) != 1 {
		return "", echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Expected one value for %s, got %d", name, len(vs)))
	}
	return vs[0], nil
}

// writeError answers err as echo's error handler does and returns the
// status it wrote.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	c := s.echo.NewContext(r, w)
	s.handleError(err, c)
	return c.Response().Status
}

// appendWriteResult encodes the answer to a single write (the OpenAPI
// document's WriteResult) by hand: it is the hottest response Zombi sends.
// Table names are restricted to [A-Za-z0-9_.-], which need no escaping.
func appendWriteResult(b []byte, res ingest.WriteResult) []byte {
	b = append(b, `{"offset":`...)
	b = strconv.AppendUint(b, res.Offset, 10)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(res.Partition), 10)
	b = append(b, `,"stream":`...)
	b = strconv.AppendUint(b, uint64(res.Stream), 10)
	b = append(b, `,"table":"`...)
	b = append(b, res.Table...)
	b = append(b, '"')
	if res.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	if res.SnapshotID != 0 {
		b = append(b, `,"snapshot_id":`...)
		b = strconv.AppendInt(b, res.SnapshotID, 10)
	}
	return append(b, "}\n"...)
}

// ackCommitted parses the ack query parameter: whether the answer waits
// for the Iceberg commit.
func ackCommitted(ack *string) (bool, error) {
	switch deref(ack) {
	case "", string(openapi.AckDurable):
		return false, nil
	case string(openapi.AckCommitted):
		return true, nil
	}
	return false, &apiError{status: http.StatusBadRequest, typ: "BadRequestException",
		msg: fmt.Sprintf("ack=%q: want durable or committed", deref(ack))}
}

// WriteBulk writes many events or rows.
func (s *Server) WriteBulk(c echo.Context, table string, p openapi.WriteBulkParams) error {
	committed, err := ackCommitted((*string)(p.Ack))
	if err != nil {
		return err
	}
	ch := ingest.NewCharge(s.inflight)
	defer ch.Release()
	body, err := s.readBody(c.Request(), s.maxBulkBytes, &ch)
	if err != nil {
		return err
	}
	res, err := s.ingest.WriteBulk(c.Request().Context(), table, ingest.Request{
		MediaType:     ingest.MediaType(c.Request().Header.Get(echo.HeaderContentType)),
		Body:          body,
		Partial:       deref(p.Partial),
		WaitCommitted: committed,
		Charge:        &ch,
	})

	if err != nil {
		return s.ingestError(err)
	}
	if res.Results == nil {
		offsets := make([]int64, len(res.Offsets))
		for i, o := range res.Offsets {
			offsets[i] = int64(o)
		}
		out := openapi.BulkResult{Offsets: offsets, Count: len(offsets)}
		if res.Duplicates > 0 {
			out.Duplicates = &res.Duplicates
		}
		if res.SnapshotID != 0 {
			out.SnapshotId = &res.SnapshotID
		}
		return c.JSON(http.StatusAccepted, out)
	}
	type result struct {
		Index     int    `json:"index"`
		Status    int    `json:"status"`
		Offset    *int64 `json:"offset,omitempty"`
		Duplicate bool   `json:"duplicate,omitempty"`
		Error     string `json:"error,omitempty"`
	}
	out := struct {
		Accepted        int      `json:"accepted"`
		Rejected        int      `json:"rejected"`
		DeadLetters     int      `json:"dead_letters,omitempty"`
		DeadLetterTable string   `json:"dead_letter_table,omitempty"`
		Results         []result `json:"results"`
		SnapshotID      int64    `json:"snapshot_id,omitempty"`
	}{Accepted: len(res.Offsets), Rejected: res.Rejected, DeadLetters: res.DeadLetters, DeadLetterTable: res.DeadLetterTable,
		Results: make([]result, len(res.Results)), SnapshotID: res.SnapshotID}
	for i, r := range res.Results {
		if r.Err != "" {
			out.Results[i] = result{Index: r.Index, Status: http.StatusBadRequest, Error: r.Err}
			continue
		}
		off := int64(r.Offset)
		out.Results[i] = result{Index: r.Index, Status: http.StatusAccepted, Offset: &off, Duplicate: r.Duplicate}
	}
	status := http.StatusAccepted
	if res.Rejected > 0 {
		status = http.StatusMultiStatus
	}
	return c.JSON(status, out)
}

// ingestError counts a write refused whole and passes the error on.
func (s *Server) ingestError(err error) error {
	status, _ := classify(err)
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		s.ingestMetrics.Rejected("invalid")
	case http.StatusUnsupportedMediaType:
		s.ingestMetrics.Rejected("invalid")
	case http.StatusNotFound:
		s.ingestMetrics.Rejected("no_table")
	case http.StatusServiceUnavailable:
		s.ingestMetrics.Rejected("backlog_full")
	}
	return err
}

func wantsArrow(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if ingest.MediaType(part) == mediaArrowStream {
			return true
		}
	}
	return false
}

// ReadEvents returns events still in the hot tier.
func (s *Server) ReadEvents(c echo.Context, table string, p openapi.ReadEventsParams) error {
	since, err := ingest.ParseSince(deref(p.Since))
	if err != nil {
		return err
	}
	ch := ingest.NewCharge(s.inflight)
	defer ch.Release()
	req := ingest.ReadRequest{Limit: ingest.DefaultReadLimit, Since: since, Charge: &ch}
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > ingest.MaxReadLimit {
			return fmt.Errorf("%w: limit must be between 1 and %d", catalog.ErrInvalid, ingest.MaxReadLimit)
		}
		req.Limit = *p.Limit
	}
	if p.Offset != nil {
		if *p.Offset < 0 {
			return fmt.Errorf("%w: offset must not be negative", catalog.ErrInvalid)
		}
		req.Offset = uint64(*p.Offset)
	}
	ctx := c.Request().Context()
	if wantsArrow(c.Request().Header.Get(echo.HeaderAccept)) {
		b, next, err := s.ingest.ReadArrow(ctx, table, req)
		if err != nil {
			return err
		}
		c.Response().Header().Set("X-Next-Offset", strconv.FormatUint(next, 10))
		return c.Blob(http.StatusOK, mediaArrowStream, b)
	}
	res, err := s.ingest.Read(ctx, table, req)
	if err != nil {
		return err
	}
	events := make([]json.RawMessage, len(res.Events))
	for i, e := range res.Events {
		events[i] = e
	}
	return c.JSON(http.StatusOK, struct {
		Table         string            `json:"table"`
		Events        []json.RawMessage `json:"events"`
		NextOffset    uint64            `json:"next_offset"`
		HighWatermark uint64            `json:"high_watermark"`
	}{res.Table, events, res.NextOffset, res.HighWatermark})
}

// GetWatermark returns a table's committed and high watermarks.
func (s *Server) GetWatermark(c echo.Context, table string) error {
	w, err := s.ingest.Watermark(c.Request().Context(), table)
	if err != nil {
		return err
	}
	out := openapi.Watermark{Table: w.Table, Committed: int64(w.Committed), High: int64(w.High)}
	if w.DeadLetterTable != "" {
		out.DeadLetters, out.DeadLetterTable = &w.DeadLetters, &w.DeadLetterTable
	}
	return c.JSON(http.StatusOK, out)
}

// ReplayDeadLetters writes the table's dead letters to it again.
func (s *Server) ReplayDeadLetters(c echo.Context, table string) error {
	r, err := s.ingest.ReplayDeadLetters(c.Request().Context(), table)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, openapi.ReplayResult{
		Table: r.Table, DeadLetterTable: r.DeadLetterTable, Replayed: r.Replayed, Duplicates: r.Duplicates,
		Failed: r.Failed, Skipped: r.Skipped, Through: int64(r.Through), More: r.More,
	})
}

// FlushTable commits the table's acknowledged events now.
func (s *Server) FlushTable(c echo.Context, table string) error {
	if s.flush == nil {
		return fmt.Errorf("%w: this server does not flush", catalog.ErrUnavailable)
	}
	id, err := s.ingest.Table(table)
	if err != nil {
		return err
	}
	res, err := s.flush.Flush(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, openapi.FlushResult{
		Table: res.Table, SnapshotId: res.SnapshotID, Rows: res.Rows, Files: res.Files,
		Bytes: res.Bytes, Watermark: int64(res.Watermark),
	})
}

// CompactTable rewrites the table's small files now.
func (s *Server) CompactTable(c echo.Context, table string) error {
	if s.comp == nil {
		return fmt.Errorf("%w: this server does not compact", catalog.ErrUnavailable)
	}
	id, err := s.ingest.Table(table)
	if err != nil {
		return err
	}
	r, err := s.comp.Compact(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, openapi.CompactResult{
		Table: r.Table, SnapshotId: r.SnapshotID, FilesBefore: r.FilesBefore, FilesAfter: r.FilesAfter,
		BytesBefore: r.BytesBefore, BytesAfter: r.BytesAfter, Rows: r.Rows, RewrittenFiles: r.RewrittenFiles,
		NewFiles: r.NewFiles, ManifestsBefore: r.ManifestsBefore, ManifestsAfter: r.ManifestsAfter,
	})
}

// MaintainTable expires snapshots and deletes orphan files now.
func (s *Server) MaintainTable(c echo.Context, table string) error {
	if s.comp == nil {
		return fmt.Errorf("%w: this server does not maintain tables", catalog.ErrUnavailable)
	}
	id, err := s.ingest.Table(table)
	if err != nil {
		return err
	}
	r, err := s.comp.Maintain(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, openapi.MaintenanceResult{
		Table: r.Table, SnapshotId: r.SnapshotID, ExpiredSnapshots: r.ExpiredSnapshots,
		OrphanFiles: r.OrphanFiles, OrphanBytes: r.OrphanBytes,
	})
}
