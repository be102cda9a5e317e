package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/oapi-codegen/runtime"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
)

// need is what a route asks of its caller: a role, in the namespace that
// where names.
type need struct {
	role  auth.Role
	where where
	// maintenance: a plain --auth-token, admin otherwise, may not call
	// the route (compaction and maintenance on request).
	maintenance bool
	// also is what the handler asks beyond role, in words.
	also string
}

// where says in which namespace a route needs its role.
type where int8

const (
	// public routes take no credentials.
	public where = iota
	// monitoring (/metrics) takes a metrics token or any role on every
	// namespace; open when no credentials are configured at all.
	monitoring
	// anyNamespace: the role in some namespace.
	anyNamespace
	// pathNamespace: the role in the path's {namespace}.
	pathNamespace
	// parentNamespace: the role in the ?parent= namespace; without one,
	// on the top level, which takes the role on every namespace.
	parentNamespace
	// ingestTable: the role in the namespace of the ingest path's
	// {table}, "ns.name" or a name in the default namespace.
	ingestTable
	// inBody: the role in every namespace the request body names; the
	// handler checks them (allowedIn) once it has read the body, and the
	// middleware only that the caller has the role somewhere.
	inBody
	// everyNamespace: the role on every namespace (the cluster's nodes).
	everyNamespace
)

// access declares what every route needs, by method and echo's route
// template. A route missing here is refused with 500, and
// TestAccessDeclared fails for it.
var access = map[string]need{
	"GET /health/live":      {where: public},
	"GET /health/ready":     {where: public},
	"POST /v1/oauth/tokens": {where: public},
	"GET /metrics":          {where: monitoring},
	"GET /ui/":              {where: public},
	"GET /ui/:asset":        {where: public},
	"GET /v1/config":        {role: auth.RoleReader, where: anyNamespace},

	"GET /v1/namespaces":                           {role: auth.RoleReader, where: parentNamespace},
	"POST /v1/namespaces":                          {role: auth.RoleAdmin, where: inBody},
	"GET /v1/namespaces/:namespace":                {role: auth.RoleReader, where: pathNamespace},
	"HEAD /v1/namespaces/:namespace":               {role: auth.RoleReader, where: pathNamespace},
	"DELETE /v1/namespaces/:namespace":             {role: auth.RoleAdmin, where: pathNamespace},
	"POST /v1/namespaces/:namespace/properties":    {role: auth.RoleAdmin, where: pathNamespace},
	"GET /v1/namespaces/:namespace/tables":         {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/tables":        {role: auth.RoleWriter, where: pathNamespace},
	"POST /v1/namespaces/:namespace/register":      {role: auth.RoleAdmin, where: pathNamespace},
	"GET /v1/namespaces/:namespace/views":          {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/views":         {role: auth.RoleWriter, where: pathNamespace},
	"POST /v1/namespaces/:namespace/register-view": {role: auth.RoleAdmin, where: pathNamespace},

	"GET /v1/namespaces/:namespace/tables/:table":    {role: auth.RoleReader, where: pathNamespace},
	"HEAD /v1/namespaces/:namespace/tables/:table":   {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/tables/:table":   {role: auth.RoleWriter, where: pathNamespace},
	"DELETE /v1/namespaces/:namespace/tables/:table": {role: auth.RoleAdmin, where: pathNamespace},

	"POST /v1/namespaces/:namespace/tables/:table/metrics":         {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/tables/:table/plan":            {role: auth.RoleReader, where: pathNamespace},
	"GET /v1/namespaces/:namespace/tables/:table/plan/:plan-id":    {role: auth.RoleReader, where: pathNamespace},
	"DELETE /v1/namespaces/:namespace/tables/:table/plan/:plan-id": {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/tables/:table/tasks":           {role: auth.RoleReader, where: pathNamespace},
	"GET /v1/namespaces/:namespace/tables/:table/credentials":      {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/tables/:table/sign": {role: auth.RoleReader, where: pathNamespace,
		also: "writer to sign PUT, POST and DELETE"},
	"GET /v1/namespaces/:namespace/views/:view":    {role: auth.RoleReader, where: pathNamespace},
	"HEAD /v1/namespaces/:namespace/views/:view":   {role: auth.RoleReader, where: pathNamespace},
	"POST /v1/namespaces/:namespace/views/:view":   {role: auth.RoleWriter, where: pathNamespace},
	"DELETE /v1/namespaces/:namespace/views/:view": {role: auth.RoleAdmin, where: pathNamespace},
	"POST /v1/tables/rename":                       {role: auth.RoleAdmin, where: inBody},
	"POST /v1/views/rename":                        {role: auth.RoleAdmin, where: inBody},
	"POST /v1/transactions/commit":                 {role: auth.RoleWriter, where: inBody},

	"POST /tables/:table":             {role: auth.RoleWriter, where: ingestTable},
	"GET /tables/:table":              {role: auth.RoleReader, where: ingestTable},
	"POST /tables/:table/bulk":        {role: auth.RoleWriter, where: ingestTable},
	"GET /tables/:table/watermark":    {role: auth.RoleReader, where: ingestTable},
	"GET /tables/:table/activity":     {role: auth.RoleReader, where: ingestTable},
	"POST /tables/:table/dlq/replay":  {role: auth.RoleWriter, where: ingestTable},
	"GET /tables/:table/stream":       {role: auth.RoleReader, where: ingestTable},
	"POST /tables/:table/flush":       {role: auth.RoleAdmin, where: ingestTable},
	"POST /tables/:table/compact":     {role: auth.RoleAdmin, where: ingestTable, maintenance: true},
	"POST /tables/:table/maintenance": {role: auth.RoleAdmin, where: ingestTable, maintenance: true},
	"GET /v1/zombi/nodes":             {role: auth.RoleAdmin, where: everyNamespace, maintenance: true},
	"GET /v1/zombi/whoami":            {role: auth.RoleReader, where: anyNamespace},

	"GET /v1/zombi/namespaces/:namespace/tables/:table/files": {role: auth.RoleReader, where: pathNamespace},
}

const authChallenge = `Bearer realm="zombi"`

var (
	errUnauthorized = &apiError{status: http.StatusUnauthorized, typ: "NotAuthorizedException", msg: "a valid bearer token is required"}
	errBadToken     = &apiError{status: http.StatusUnauthorized, typ: "NotAuthorizedException",
		msg: "the bearer token is not valid here (unknown, expired, or not for this server)"}
	errUndeclared = &apiError{status: http.StatusInternalServerError, typ: "InternalServerError",
		msg: "this route declares no role (server/access.go)"}
)

// forbidden is the 403 of a caller whose role does not allow a call; the
// call takes what.
func forbidden(p *auth.Principal, what string) error {
	return &apiError{status: http.StatusForbidden, typ: "ForbiddenException",
		msg: fmt.Sprintf("%s may not do this: it takes %s", p.Name, what)}
}

// takes says what a call of a route that needs n takes, acting in ns.
func (n need) takes(ns catalog.Namespace) string {
	switch n.where {
	case monitoring:
		return "a metrics token or a role on every namespace"
	case anyNamespace:
		return fmt.Sprintf("the %s role in some namespace", n.role)
	case inBody:
		return fmt.Sprintf("the %s role in each namespace the request names", n.role)
	}
	return roleIn(n.role, ns)
}

// roleIn says what a call that needs role in ns takes. The top level (no
// namespace) takes the role on every namespace.
func roleIn(role auth.Role, ns catalog.Namespace) string {
	if len(ns) == 0 {
		return fmt.Sprintf("the %s role on every namespace", role)
	}
	return fmt.Sprintf("the %s role in namespace %s", role, strings.Join(ns, "."))
}

var errNoMaintenance = &apiError{status: http.StatusForbidden, typ: "ForbiddenException",
	msg: "compaction and maintenance take an admin token (--admin-token, or --auth-token TOKEN:admin)"}

// authenticate checks every echo route's caller against the route's
// declaration in access, and puts the caller into the request's context
// (auth.FromContext).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		route := c.Path()
		n, declared := access[r.Method+" "+route]
		if !declared && s.routes[r.Method+" "+route] {
			return errUndeclared
		}
		p, err := s.authorize(r, n, declared, func() (catalog.Namespace, error) { return s.routeNamespace(c, n.where) })
		if err != nil {
			if errors.Is(err, errUnauthorized) || errors.Is(err, errBadToken) {
				c.Response().Header().Set("WWW-Authenticate", authChallenge)
			}
			return err
		}
		if p != nil {
			c.SetRequest(r.WithContext(auth.NewContext(r.Context(), p)))
		}
		return next(c)
	}
}

// authorize returns the caller of r if it may call a route that needs n,
// nil for public routes; declared is false for a request no route serves
// (echo answers 404 or 405 to an authenticated caller). ns finds the
// namespace of the request.
func (s *Server) authorize(r *http.Request, n need, declared bool, ns func() (catalog.Namespace, error)) (*auth.Principal, error) {
	switch {
	case declared && n.where == public:
		return nil, nil
	case declared && n.where == monitoring:
		if !s.auth.GuardsMetrics() {
			return auth.Everyone, nil
		}
	case !s.auth.On():
		return auth.Everyone, nil
	}
	p, err := s.auth.Authenticate(r.Context(), r)
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		return nil, errUnauthorized
	case err != nil:
		return nil, errBadToken
	case !declared:
		return p, nil
	}
	var space catalog.Namespace // the top level: every namespace
	ok := false
	switch n.where {
	case monitoring:
		ok = p.Metrics || p.Role(nil) > auth.RoleNone
	case anyNamespace, inBody:
		ok = p.Anywhere() >= n.role
	default:
		if space, err = ns(); err != nil {
			return nil, err
		}
		ok = p.Role(space) >= n.role
	}
	if !ok {
		s.auth.Forbidden()
		return nil, forbidden(p, n.takes(space))
	}
	if n.maintenance && p.NoMaintenance {
		s.auth.Forbidden()
		return nil, errNoMaintenance
	}
	return p, nil
}

// routeNamespace finds the namespace a request acts in, binding the
// parameter exactly as the generated wrapper binds it for the handler.
func (s *Server) routeNamespace(c echo.Context, w where) (catalog.Namespace, error) {
	unescaped := c.Request().URL.RawPath == ""
	switch w {
	case pathNamespace:
		var raw string
		if err := runtime.BindStyledParameterWithOptions("simple", "namespace", c.Param("namespace"), &raw,
			runtime.BindStyledParameterOptions{ParamLocation: runtime.ParamLocationPath, Required: true, Type: "string", ValueIsUnescaped: unescaped}); err != nil {
			return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid format for parameter namespace: %s", err))
		}
		return parseNamespace(raw)
	case parentNamespace:
		var parent *string
		if err := runtime.BindQueryParameterWithOptions("form", true, false, "parent", c.QueryParams(), &parent,
			runtime.BindQueryParameterOptions{Type: "string"}); err != nil {
			return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid format for parameter parent: %s", err))
		}
		if parent == nil || *parent == "" {
			return nil, nil
		}
		return parseNamespace(*parent)
	case everyNamespace:
		return nil, nil
	case ingestTable:
		var table string
		if err := runtime.BindStyledParameterWithOptions("simple", "table", c.Param("table"), &table,
			runtime.BindStyledParameterOptions{ParamLocation: runtime.ParamLocationPath, Required: true, Type: "string", ValueIsUnescaped: unescaped}); err != nil {
			return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid format for parameter table: %s", err))
		}
		return s.ingestNamespace(table)
	}
	return nil, fmt.Errorf("no namespace for %v", w)
}

// ingestNamespace is the namespace of an ingest table reference.
func (s *Server) ingestNamespace(ref string) (catalog.Namespace, error) {
	if s.ingest == nil {
		return nil, fmt.Errorf("%w: this server does not ingest", catalog.ErrUnavailable)
	}
	id, err := s.ingest.Table(ref)
	if err != nil {
		return nil, err
	}
	return id.Namespace, nil
}

// allowedIn checks that the request's caller has role in every one of
// namespaces: for the routes whose namespaces are in the body (inBody).
func (s *Server) allowedIn(ctx context.Context, role auth.Role, namespaces ...catalog.Namespace) error {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return errUndeclared
	}
	for _, ns := range namespaces {
		if p.Role(ns) < role {
			s.auth.Forbidden()
			return forbidden(p, roleIn(role, ns))
		}
	}
	return nil
}

// monitoring reports whether r's caller may read /metrics and the
// details of /health/ready.
func (s *Server) monitoring(r *http.Request) bool {
	_, err := s.authorize(r, access["GET /metrics"], true, nil)
	return err == nil
}

// String says what n takes, as the OpenAPI document's x-zombi-role does.
func (n need) String() string {
	var s string
	switch n.where {
	case public:
		return "none"
	case monitoring:
		return "a --metrics-token, or any role on every namespace"
	case anyNamespace:
		s = n.role.String() + " in any namespace"
	case pathNamespace:
		s = n.role.String() + " in the path's namespace"
	case parentNamespace:
		s = n.role.String() + " in the parent namespace (on every namespace without one)"
	case ingestTable:
		s = n.role.String() + " in the table's namespace"
	case inBody:
		s = n.role.String() + " in every namespace the body names"
	case everyNamespace:
		s = n.role.String() + " on every namespace"
	}
	if n.maintenance {
		s += ", not a plain --auth-token"
	}
	if n.also != "" {
		s += "; " + n.also
	}
	return s
}
