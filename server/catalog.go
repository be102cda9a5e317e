package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/live"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/planning"
)

// endpoints are the catalog routes this server implements, in the form the
// REST spec's config response uses.
var endpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"POST /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"DELETE /v1/{prefix}/namespaces/{namespace}",
	"POST /v1/{prefix}/namespaces/{namespace}/properties",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"POST /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/register",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
	"POST /v1/{prefix}/tables/rename",
	"POST /v1/{prefix}/transactions/commit",
	"GET /v1/{prefix}/namespaces/{namespace}/views",
	"POST /v1/{prefix}/namespaces/{namespace}/views",
	"GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
	"POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
	"POST /v1/{prefix}/namespaces/{namespace}/register-view",
	"POST /v1/{prefix}/views/rename",
}

// GetConfig answers the client's first call. A client that asks for the
// warehouse "live" gets the live view's prefix, and server planning as
// the default of every table (PyIceberg decides by the catalog's word
// alone; Spark by the table's, which loadTable gives ingest tables).
func (s *Server) GetConfig(c echo.Context, p openapi.GetConfigParams) error {
	eps := append([]string(nil), endpoints...)
	defaults := openapi.Properties{}
	overrides := openapi.Properties{"namespace-separator": "%1F"}
	if s.planner != nil {
		eps = append(eps, planEndpoints...)
		if s.planningDefault == planning.ModeServer {
			defaults[planning.ConfigKey] = string(planning.ModeServer)
		}
	}
	if s.signer != nil && s.signer.CanSign() {
		eps = append(eps, "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/sign")
	}
	if s.canVend() {
		eps = append(eps, "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials")
	}
	if s.live != nil && p.Warehouse != nil && *p.Warehouse == live.Prefix {
		overrides["prefix"] = live.Prefix
		defaults[planning.ConfigKey] = string(planning.ModeServer)
	}
	lifetime := isoDuration(s.cat.ReceiptLifetime().Seconds())
	return c.JSON(http.StatusOK, openapi.CatalogConfig{
		Defaults:               defaults,
		Overrides:              overrides,
		Endpoints:              &eps,
		IdempotencyKeyLifetime: &lifetime,
	})
}

func isoDuration(seconds float64) string { return fmt.Sprintf("PT%dS", int64(seconds)) }

// maxTokenRequest bounds the body of a token request.
const maxTokenRequest = 64 << 10

// GetToken issues tokens to the configured OAuth2 clients (see
// auth.IssueToken). Its answers, refusals too, are in OAuth's form, not
// Iceberg's error JSON.
func (s *Server) GetToken(c echo.Context) error {
	r := c.Request()
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if !s.auth.Issues() {
		return c.JSON(http.StatusBadRequest, auth.OAuthError{Code: "unsupported_grant_type",
			Description: "zombi issues no tokens: no OAuth clients are configured (--oauth-client); configure the client with a bearer token"})
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		return c.JSON(http.StatusBadRequest, auth.OAuthError{Code: "invalid_request", Description: "unreadable form: " + err.Error()})
	}
	req := auth.TokenRequest{Form: r.PostForm}
	req.BasicID, req.BasicSecret, req.Basic = r.BasicAuth()
	s.logTokenRequest(r)
	resp, err := s.auth.IssueToken(r.Context(), req)
	var oe *auth.OAuthError
	switch {
	case errors.As(err, &oe):
		if oe.Status == http.StatusServiceUnavailable {
			h.Set("Retry-After", retryAfterSeconds)
		}
		if oe.Status == http.StatusUnauthorized && req.Basic {
			h.Set("WWW-Authenticate", `Basic realm="zombi"`)
		}
		return c.JSON(oe.Status, oe)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// oauthParams are the token request parameters of RFC 6749 and RFC 8693:
// the debug log of a token request shows which of them it has.
var oauthParams = []string{"grant_type", "client_id", "client_secret", "scope", "username", "password", "code", "redirect_uri",
	"refresh_token", "subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type",
	"audience", "resource"}

// logTokenRequest logs at debug level what a client sent to
// /v1/oauth/tokens, to see how an engine authenticates: its grant type,
// scope and subject token type, the names of its parameters and the
// scheme of its Authorization header. Nothing else of the request is
// logged: other names count as "other" (a body that is just a secret
// would be one), and a header without a known scheme is "malformed".
func (s *Server) logTokenRequest(r *http.Request) {
	if !s.log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	var names []string
	other := 0
	for k := range r.PostForm {
		if slices.Contains(oauthParams, k) {
			names = append(names, k)
		} else {
			other++
		}
	}
	slices.Sort(names)
	if other > 0 {
		names = append(names, fmt.Sprintf("other(%d)", other))
	}
	scheme := "none"
	if h := r.Header.Get("Authorization"); h != "" {
		scheme = "malformed"
		if sc, _, ok := strings.Cut(h, " "); ok && (strings.EqualFold(sc, "Basic") || strings.EqualFold(sc, "Bearer")) {
			scheme = sc
		}
	}
	f := r.PostForm
	s.log.Debug("token request", "grant_type", f.Get("grant_type"), "scope", f.Get("scope"),
		"subject_token_type", f.Get("subject_token_type"), "fields", names, "authorization", scheme)
}

// parseNamespace splits a path namespace on the unit separator.
func parseNamespace(raw string) (catalog.Namespace, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: namespace is empty", catalog.ErrInvalid)
	}
	ns := catalog.Namespace(strings.Split(raw, "\x1f"))
	return ns, catalog.ValidateNamespace(ns)
}

func ident(ns, name string) (catalog.Ident, error) {
	n, err := parseNamespace(ns)
	if err != nil {
		return catalog.Ident{}, err
	}
	id := catalog.Ident{Namespace: n, Name: name}
	return id, catalog.ValidateIdent(id)
}

func wireIdent(id catalog.Ident) openapi.TableIdentifier {
	return openapi.TableIdentifier{Namespace: openapi.Namespace(id.Namespace), Name: id.Name}
}

func fromWire(id openapi.TableIdentifier) (catalog.Ident, error) {
	out := catalog.Ident{Namespace: catalog.Namespace(id.Namespace), Name: id.Name}
	return out, catalog.ValidateIdent(out)
}

// maxIdempotencyKey bounds an Idempotency-Key's length.
const maxIdempotencyKey = 128

// idempotency prepares the receipt of a mutating request carrying key.
// render turns the operation's result into the response body; status is
// the success status.
func (s *Server) idempotency(c echo.Context, key *string, status int, render func(any) any) (*catalog.Idempotency, error) {
	if key == nil {
		return nil, nil
	}
	k := *key
	if err := checkIdempotencyKey(k); err != nil {
		return nil, err
	}
	idem := &catalog.Idempotency{
		Key: k,
		Op:  c.Request().Method + " " + c.Request().URL.EscapedPath(),
		Render: func(result any) (int, []byte, error) {
			if render == nil {
				return status, nil, nil
			}
			b, err := marshal(render(result))
			return status, b, err
		},
	}
	c.Set(ctxIdempotency, idem)
	return idem, nil
}

// checkIdempotencyKey checks an Idempotency-Key's length and characters.
func checkIdempotencyKey(k string) error {
	if k == "" || len(k) > maxIdempotencyKey {
		return fmt.Errorf("%w: Idempotency-Key must be 1 to %d characters", catalog.ErrInvalid, maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return fmt.Errorf("%w: Idempotency-Key must be printable ASCII without spaces", catalog.ErrInvalid)
		}
	}
	return nil
}

// reply writes a replayed receipt, or err through the error handler.
func reply(c echo.Context, err error) error {
	var replay *catalog.ReplayError
	if errors.As(err, &replay) {
		c.Response().Header().Set("Idempotency-Replayed", "true")
		if len(replay.Receipt.Body) == 0 {
			return c.NoContent(replay.Receipt.Status)
		}
		return c.Blob(replay.Receipt.Status, echo.MIMEApplicationJSON, replay.Receipt.Body)
	}
	return err
}

// ListNamespaces lists the children of parent.
func (s *Server) ListNamespaces(c echo.Context, p openapi.ListNamespacesParams) error {
	var parent catalog.Namespace
	if p.Parent != nil && *p.Parent != "" {
		var err error
		if parent, err = parseNamespace(*p.Parent); err != nil {
			return err
		}
	}
	page, err := s.cat.ListNamespaces(c.Request().Context(), parent, deref(p.PageToken), deref(p.PageSize))
	if err != nil {
		return err
	}
	out := openapi.ListNamespacesResponse{Namespaces: make([]openapi.Namespace, len(page.Items))}
	for i, ns := range page.Items {
		out.Namespaces[i] = openapi.Namespace(ns)
	}
	if page.Next != "" {
		out.NextPageToken = &page.Next
	}
	return c.JSON(http.StatusOK, out)
}

// CreateNamespace creates a namespace.
func (s *Server) CreateNamespace(c echo.Context, p openapi.CreateNamespaceParams) error {
	var req openapi.CreateNamespaceRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	render := func(r any) any {
		props := openapi.Properties(r.(map[string]string))
		return openapi.CreateNamespaceResponse{Namespace: req.Namespace, Properties: &props}
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, render)
	if err != nil {
		return err
	}
	if err := s.allowedIn(c.Request().Context(), auth.RoleAdmin, catalog.Namespace(req.Namespace)); err != nil {
		return err
	}
	props := map[string]string{}
	if req.Properties != nil {
		props = *req.Properties
	}
	if _, err := s.cat.CreateNamespace(c.Request().Context(), catalog.Namespace(req.Namespace), props, idem); err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, render(props))
}

// LoadNamespace returns a namespace's properties.
func (s *Server) LoadNamespace(c echo.Context, namespace string) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	props, err := s.cat.LoadNamespace(c.Request().Context(), ns)
	if err != nil {
		return err
	}
	p := openapi.Properties(props)
	return c.JSON(http.StatusOK, openapi.GetNamespaceResponse{Namespace: openapi.Namespace(ns), Properties: &p})
}

// NamespaceExists answers 204 or 404.
func (s *Server) NamespaceExists(c echo.Context, namespace string) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	if _, err := s.cat.LoadNamespace(c.Request().Context(), ns); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DropNamespace drops an empty namespace.
func (s *Server) DropNamespace(c echo.Context, namespace string, p openapi.DropNamespaceParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusNoContent, nil)
	if err != nil {
		return err
	}
	if err := s.cat.DropNamespace(c.Request().Context(), ns, idem); err != nil {
		return reply(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// UpdateNamespaceProperties removes and sets properties.
func (s *Server) UpdateNamespaceProperties(c echo.Context, namespace string, p openapi.UpdateNamespacePropertiesParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	render := func(r any) any {
		u := r.(catalog.PropertiesUpdate)
		return openapi.UpdateNamespacePropertiesResponse{Updated: u.Updated, Removed: u.Removed, Missing: &u.Missing}
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, render)
	if err != nil {
		return err
	}
	var req openapi.UpdateNamespacePropertiesRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	var removals []string
	if req.Removals != nil {
		removals = *req.Removals
	}
	var updates map[string]string
	if req.Updates != nil {
		updates = *req.Updates
	}
	res, err := s.cat.UpdateNamespaceProperties(c.Request().Context(), ns, removals, updates, idem)
	if err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, render(res))
}

// ListTables lists a namespace's tables.
func (s *Server) ListTables(c echo.Context, namespace string, p openapi.ListTablesParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	page, err := s.cat.ListTables(c.Request().Context(), ns, deref(p.PageToken), deref(p.PageSize))
	if err != nil {
		return err
	}
	out := openapi.ListTablesResponse{Identifiers: make([]openapi.TableIdentifier, len(page.Items))}
	for i, id := range page.Items {
		out.Identifiers[i] = wireIdent(id)
	}
	if page.Next != "" {
		out.NextPageToken = &page.Next
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) loadResult(ctx context.Context, t *catalog.Table) openapi.LoadTableResult {
	out := openapi.LoadTableResult{Metadata: openapi.RawJSON(t.RawMetadata)}
	if t.MetadataLocation != "" {
		loc := t.MetadataLocation
		out.MetadataLocation = &loc
	}
	if cfg := s.tableConfig(ctx, t); len(cfg) > 0 {
		cfg := openapi.Properties(cfg)
		out.Config = &cfg
	}
	return out
}

// renderTable renders a table answer for an idempotency receipt: as the
// default view shows it (a replay through either view gets the same body).
func (s *Server) renderTable(r any) any {
	return s.loadResult(context.Background(), r.(*catalog.Table))
}

// CreateTable creates (or stages) a table.
func (s *Server) CreateTable(c echo.Context, namespace string, p openapi.CreateTableParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	ctx := s.withDelegation(c.Request().Context(), p.XIcebergAccessDelegation)
	render := s.renderTable
	if isSigning(ctx) {
		// The receipt of a remote-signing create holds no keys either.
		render = func(r any) any { return s.loadResult(signingOnly(ctx), r.(*catalog.Table)) }
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, render)
	if err != nil {
		return err
	}
	var req openapi.CreateTableRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if len(req.Schema.Fields()) == 0 {
		return fmt.Errorf("%w: schema is required and must have at least one field", catalog.ErrInvalid)
	}
	// The spec and order were decoded unbound: their source IDs refer to
	// req.Schema (Spark's start at 0) until NewMetadata assigns fresh IDs.
	var spec *iceberg.PartitionSpec
	if req.PartitionSpec != nil {
		spec = &req.PartitionSpec.PartitionSpec
	}
	var order *table.SortOrder
	if req.WriteOrder != nil {
		order = &req.WriteOrder.SortOrder
	}
	t, err := s.cat.CreateTable(ctx, catalog.CreateTableRequest{
		Ident:      catalog.Ident{Namespace: ns, Name: req.Name},
		Schema:     &req.Schema,
		Spec:       spec,
		SortOrder:  order,
		Location:   deref(req.Location),
		Properties: derefMap(req.Properties),
		Stage:      deref(req.StageCreate),
	}, idem)
	if err != nil {
		return reply(c, err)
	}
	res := s.loadResult(ctx, t)
	if err := s.withVended(ctx, t, &res); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// RegisterTable points a new table at an existing metadata file.
func (s *Server) RegisterTable(c echo.Context, namespace string, p openapi.RegisterTableParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, s.renderTable)
	if err != nil {
		return err
	}
	var req openapi.RegisterTableRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.MetadataLocation == "" {
		return fmt.Errorf("%w: metadata-location is required", catalog.ErrInvalid)
	}
	t, err := s.cat.RegisterTable(c.Request().Context(), catalog.Ident{Namespace: ns, Name: req.Name}, req.MetadataLocation, deref(req.Overwrite), idem)
	if err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, s.loadResult(c.Request().Context(), t))
}

// etag names one state of a table as one response mode shows it.
func etag(metadataLocation, mode string) string {
	sum := sha256.Sum256([]byte(metadataLocation + "\x00" + mode))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

// LoadTable returns a table's metadata, or 304 when the client's ETag is
// still current.
func (s *Server) LoadTable(c echo.Context, namespace, name string, p openapi.LoadTableParams) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	mode := "all"
	if p.Snapshots != nil {
		mode = string(*p.Snapshots)
		if mode != "all" && mode != "refs" {
			return fmt.Errorf("%w: snapshots must be all or refs", catalog.ErrInvalid)
		}
	}
	ctx := s.withDelegation(c.Request().Context(), p.XIcebergAccessDelegation)
	// The answer's config depends on the view, the server's default and
	// the access delegation.
	view := mode + string(s.planningDefault)
	if isSigning(ctx) {
		view += "\x00" + remoteSigning
	}
	if isVending(ctx) {
		view += "\x00" + vendedCredentials
	}
	if isLive(ctx) {
		view += "\x00" + live.Prefix
	}
	if p.IfNoneMatch != nil {
		loc, err := s.cat.TableLocation(ctx, id)
		if err != nil {
			return err
		}
		if etagMatches(*p.IfNoneMatch, etag(loc, view)) {
			c.Response().Header().Set("ETag", etag(loc, view))
			return c.NoContent(http.StatusNotModified)
		}
	}
	t, err := s.cat.LoadTable(ctx, id)
	if err != nil {
		return err
	}
	if isLive(ctx) {
		t = s.live.Load(ctx, t)
	}
	res := s.loadResult(ctx, t)
	if err := s.withVended(ctx, t, &res); err != nil {
		return err
	}
	if mode == "refs" {
		if res.Metadata, err = onlyReferencedSnapshots(t.RawMetadata); err != nil {
			return err
		}
	}
	c.Response().Header().Set("ETag", etag(t.MetadataLocation, view))
	return c.JSON(http.StatusOK, res)
}

// onlyReferencedSnapshots drops the snapshots no branch or tag points at.
func onlyReferencedSnapshots(raw []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var refs map[string]struct {
		SnapshotID int64 `json:"snapshot-id"`
	}
	if r, ok := doc["refs"]; ok {
		if err := json.Unmarshal(r, &refs); err != nil {
			return nil, err
		}
	}
	keep := map[int64]bool{}
	for _, r := range refs {
		keep[r.SnapshotID] = true
	}
	var snaps []json.RawMessage
	if sn, ok := doc["snapshots"]; ok {
		if err := json.Unmarshal(sn, &snaps); err != nil {
			return nil, err
		}
	}
	kept := make([]json.RawMessage, 0, len(snaps))
	for _, sn := range snaps {
		var head struct {
			SnapshotID int64 `json:"snapshot-id"`
		}
		if err := json.Unmarshal(sn, &head); err != nil {
			return nil, err
		}
		if keep[head.SnapshotID] {
			kept = append(kept, sn)
		}
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	doc["snapshots"] = b
	return json.Marshal(doc)
}

// TableExists answers 204 or 404.
func (s *Server) TableExists(c echo.Context, namespace, name string) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	if err := s.cat.TableExists(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func renderCommit(r any) any {
	t := r.(*catalog.Table)
	return openapi.CommitTableResponse{MetadataLocation: t.MetadataLocation, Metadata: openapi.RawJSON(t.RawMetadata)}
}

func change(id catalog.Ident, req openapi.CommitTableRequest) catalog.TableChange {
	return catalog.TableChange{
		Ident:        id,
		Requirements: []table.Requirement(req.Requirements),
		Updates:      []table.Update(req.Updates),
	}
}

// UpdateTable commits one table's change.
func (s *Server) UpdateTable(c echo.Context, namespace, name string, p openapi.UpdateTableParams) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, renderCommit)
	if err != nil {
		return err
	}
	var req openapi.CommitTableRequest
	if err := bindCommit(c, &req); err != nil {
		return err
	}
	if req.Identifier != nil {
		if body, err := fromWire(*req.Identifier); err != nil || body.String() != id.String() {
			return fmt.Errorf("%w: identifier in the body does not match the path", catalog.ErrInvalid)
		}
	}
	t, err := s.cat.CommitTable(c.Request().Context(), change(id, req), idem)
	if err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, renderCommit(t))
}

// bindJSON decodes a JSON request body. A body without a Content-Type is
// taken as JSON; any other declared type is 415.
func bindJSON(c echo.Context, v any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return &apiError{status: http.StatusUnsupportedMediaType, typ: "UnsupportedMediaTypeException",
				msg: fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)}
		}
	}
	return c.Echo().JSONSerializer.Deserialize(c, v)
}

// bindCommit decodes a commit body; iceberg-go's decoders reject unknown
// requirement and update types, which are client errors.
func bindCommit(c echo.Context, v any) error {
	if err := bindJSON(c, v); err != nil {
		var ae *apiError
		var he *echo.HTTPError
		if errors.As(err, &ae) || errors.As(err, &he) {
			return err
		}
		return fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	return nil
}

// DropTable drops a table, purging its files when asked.
func (s *Server) DropTable(c echo.Context, namespace, name string, p openapi.DropTableParams) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusNoContent, nil)
	if err != nil {
		return err
	}
	if err := s.cat.DropTable(c.Request().Context(), id, deref(p.PurgeRequested), idem); err != nil {
		return reply(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// ReportMetrics logs a client's metrics report. The snapshot id is logged
// as the client wrote it: decoded as a float64 it would lose digits.
func (s *Server) ReportMetrics(c echo.Context, namespace, name string) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	var report map[string]json.RawMessage
	if err := bindJSON(c, &report); err != nil {
		return err
	}
	var reportType string
	_ = json.Unmarshal(report["report-type"], &reportType) // absent or not a string: logged empty
	s.log.Info("client metrics report", "table", id.String(), "report_type", reportType, "snapshot_id", string(report["snapshot-id"]))
	return c.NoContent(http.StatusNoContent)
}

// RenameTable renames a table.
func (s *Server) RenameTable(c echo.Context, p openapi.RenameTableParams) error {
	return s.rename(c, p.IdempotencyKey, s.cat.RenameTable)
}

// rename serves a rename request (tables' or views') with do.
func (s *Server) rename(c echo.Context, key *string, do func(ctx context.Context, from, to catalog.Ident, idem *catalog.Idempotency) error) error {
	idem, err := s.idempotency(c, key, http.StatusNoContent, nil)
	if err != nil {
		return err
	}
	var req openapi.RenameTableRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	from, err := fromWire(req.Source)
	if err != nil {
		return err
	}
	to, err := fromWire(req.Destination)
	if err != nil {
		return err
	}
	// Moving a table or view out of a namespace is dropping it there,
	// moving it into one is creating it there: both take an admin.
	if err := s.allowedIn(c.Request().Context(), auth.RoleAdmin, from.Namespace, to.Namespace); err != nil {
		return err
	}
	if err := do(c.Request().Context(), from, to, idem); err != nil {
		return reply(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// CommitTransaction commits several tables atomically.
func (s *Server) CommitTransaction(c echo.Context, p openapi.CommitTransactionParams) error {
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusNoContent, nil)
	if err != nil {
		return err
	}
	var req openapi.CommitTransactionRequest
	if err := bindCommit(c, &req); err != nil {
		return err
	}
	changes := make([]catalog.TableChange, len(req.TableChanges))
	for i, tc := range req.TableChanges {
		if tc.Identifier == nil {
			return fmt.Errorf("%w: table-changes[%d] has no identifier", catalog.ErrInvalid, i)
		}
		id, err := fromWire(*tc.Identifier)
		if err != nil {
			return err
		}
		if err := s.allowedIn(c.Request().Context(), auth.RoleWriter, id.Namespace); err != nil {
			return err
		}
		changes[i] = change(id, tc)
	}
	if err := s.cat.CommitTransaction(c.Request().Context(), changes, idem); err != nil {
		return reply(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefMap(p *openapi.Properties) map[string]string {
	if p == nil {
		return nil
	}
	return *p
}
