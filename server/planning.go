package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/planning"
)

// planEndpoints are the scan-planning routes, advertised in /v1/config
// when a planner is configured.
var planEndpoints = []string{
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks",
}

var errNoPlanner = &apiError{status: http.StatusNotAcceptable, typ: "UnsupportedOperationException",
	msg: "this server does not plan scans; plan on the client"}

// tableConfig is the loadTable config of t: what clients need for its
// files, and who plans its scans when the table or the server says. In the
// live view an ingest table always plans on the server, whatever it or
// the server says: that is how its hot tail is read.
func (s *Server) tableConfig(ctx context.Context, t *catalog.Table) map[string]string {
	if isSigning(ctx) {
		signed := *t
		signed.Config = s.signingConfig(ctx, t.Ident)
		t = &signed
	}
	if s.planner == nil {
		return t.Config
	}
	m := planning.TableMode(t.Metadata.Properties(), s.planningDefault)
	if isLive(ctx) && s.live.Ingest(t) {
		m = planning.ModeServer
	}
	if m == "" {
		return t.Config
	}
	cfg := make(map[string]string, len(t.Config)+1)
	for k, v := range t.Config {
		cfg[k] = v
	}
	cfg[planning.ConfigKey] = string(m)
	return cfg
}

// PlanTableScan plans a scan of a table on the server.
func (s *Server) PlanTableScan(c echo.Context, namespace, name string, p openapi.PlanTableScanParams) error {
	if s.planner == nil {
		return errNoPlanner
	}
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	key, err := planKey(p.IdempotencyKey)
	if err != nil {
		return err
	}
	var body openapi.PlanTableScanRequest
	if err := bindJSON(c, &body); err != nil {
		return err
	}
	req := planning.Request{
		SnapshotID:        body.SnapshotId,
		StartSnapshotID:   body.StartSnapshotId,
		EndSnapshotID:     body.EndSnapshotId,
		CaseSensitive:     body.CaseSensitive == nil || *body.CaseSensitive,
		UseSnapshotSchema: deref(body.UseSnapshotSchema),
		MinRowsRequested:  body.MinRowsRequested,
	}
	if body.Select != nil {
		req.Select = *body.Select
	}
	if body.StatsFields != nil {
		req.StatsFields = *body.StatsFields
	}
	if body.Filter != nil {
		req.Filter = *body.Filter
	}
	src := s.planSource
	if isLive(c.Request().Context()) {
		src = s.live
	}
	ctx := s.withDelegation(c.Request().Context(), p.XIcebergAccessDelegation)
	resp, err := s.planner.Plan(ctx, src, id, &req, key)
	if err != nil {
		return err
	}
	out := openapi.PlanTableScanResult{Status: "completed", PlanId: resp.PlanID}
	out.PlanTasks, out.FileScanTasks, out.DeleteFiles = nonEmpty(resp.PlanTasks), always(resp.FileScanTasks), nonEmpty(resp.DeleteFiles)
	if out.StorageCredentials, err = s.planCredentials(ctx, id, resp); err != nil {
		return err
	}
	if out.StorageCredentials != nil {
		c.Response().Header().Set("Cache-Control", "private, no-store")
	}
	return c.JSON(http.StatusOK, out)
}

// planCredentials are the storage credentials of a completed plan's answer
// when the client asked for vended credentials: read-only, whatever the
// caller's role, since a scan only reads; nil otherwise.
func (s *Server) planCredentials(ctx context.Context, id catalog.Ident, resp *planning.Response) (*[]openapi.StorageCredential, error) {
	if !isVending(ctx) || resp.Status != planning.Completed {
		return nil, nil
	}
	v, err := s.vendFor(ctx, id, resp.Location, false)
	if err != nil {
		return nil, err
	}
	return &[]openapi.StorageCredential{{Prefix: v.Prefix, Config: v.Config}}, nil
}

// FetchPlanningResult answers a plan's state.
func (s *Server) FetchPlanningResult(c echo.Context, namespace, name, planID string, p openapi.FetchPlanningResultParams) error {
	if s.planner == nil {
		return errNoPlanner
	}
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	resp, err := s.planner.Result(id, planID)
	if err != nil {
		return err
	}
	out := openapi.FetchPlanningResult{Status: openapi.FetchPlanningResultStatus(resp.Status)}
	out.PlanTasks = nonEmpty(resp.PlanTasks)
	ctx := s.withDelegation(c.Request().Context(), p.XIcebergAccessDelegation)
	if out.StorageCredentials, err = s.planCredentials(ctx, id, resp); err != nil {
		return err
	}
	if out.StorageCredentials != nil {
		c.Response().Header().Set("Cache-Control", "private, no-store")
	}
	return c.JSON(http.StatusOK, out)
}

// CancelPlanning cancels a plan.
func (s *Server) CancelPlanning(c echo.Context, namespace, name, planID string, p openapi.CancelPlanningParams) error {
	if s.planner == nil {
		return errNoPlanner
	}
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	// Cancelling is idempotent by itself: the key is checked, not stored.
	if _, err := planKey(p.IdempotencyKey); err != nil {
		return err
	}
	if err := s.planner.Cancel(id, planID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// FetchScanTasks plans one page of a plan.
func (s *Server) FetchScanTasks(c echo.Context, namespace, name string, p openapi.FetchScanTasksParams) error {
	if s.planner == nil {
		return errNoPlanner
	}
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	// A page is the same whenever it is fetched: the key is checked, not
	// stored.
	if _, err := planKey(p.IdempotencyKey); err != nil {
		return err
	}
	var body openapi.FetchScanTasksRequest
	if err := bindJSON(c, &body); err != nil {
		return err
	}
	if body.PlanTask == "" {
		return fmt.Errorf("%w: plan-task is required", catalog.ErrInvalid)
	}
	tasks, err := s.planner.Tasks(c.Request().Context(), id, body.PlanTask)
	if err != nil {
		return err
	}
	// Iceberg's Java client refuses an answer with neither plan-tasks nor
	// file-scan-tasks: an empty page says file-scan-tasks [].
	out := openapi.ScanTasks{PlanTasks: nonEmpty(tasks.PlanTasks), FileScanTasks: always(tasks.FileScanTasks), DeleteFiles: nonEmpty(tasks.DeleteFiles)}
	return c.JSON(http.StatusOK, out)
}

// planKey checks an Idempotency-Key of a planning request.
func planKey(key *string) (string, error) {
	if key == nil {
		return "", nil
	}
	return *key, checkIdempotencyKey(*key)
}

// always is s, an empty list when nil.
func always[T any](s []T) *[]T {
	if s == nil {
		s = []T{}
	}
	return &s
}

func nonEmpty[T any](s []T) *[]T {
	if len(s) == 0 {
		return nil
	}
	return &s
}
