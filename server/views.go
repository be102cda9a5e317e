package server

import (
	"fmt"
	"net/http"

	"github.com/apache/iceberg-go/view"
	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/openapi"
)

func loadViewResult(v *catalog.View) openapi.LoadViewResult {
	out := openapi.LoadViewResult{MetadataLocation: v.MetadataLocation, Metadata: openapi.RawJSON(v.RawMetadata)}
	if len(v.Config) > 0 {
		cfg := openapi.Properties(v.Config)
		out.Config = &cfg
	}
	return out
}

func renderView(r any) any { return loadViewResult(r.(*catalog.View)) }

// ListViews lists a namespace's views.
func (s *Server) ListViews(c echo.Context, namespace string, p openapi.ListViewsParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	page, err := s.cat.ListViews(c.Request().Context(), ns, deref(p.PageToken), deref(p.PageSize))
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

// CreateView creates a view.
func (s *Server) CreateView(c echo.Context, namespace string, p openapi.CreateViewParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, renderView)
	if err != nil {
		return err
	}
	var req openapi.CreateViewRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if len(req.Schema.Fields()) == 0 {
		return fmt.Errorf("%w: schema is required and must have at least one field", catalog.ErrInvalid)
	}
	version := view.Version(req.ViewVersion)
	v, err := s.cat.CreateView(c.Request().Context(), catalog.CreateViewRequest{
		Ident:      catalog.Ident{Namespace: ns, Name: req.Name},
		Location:   deref(req.Location),
		Schema:     &req.Schema,
		Version:    &version,
		Properties: derefMap(req.Properties),
	}, idem)
	if err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, loadViewResult(v))
}

// RegisterView points a new view at an existing view metadata file.
func (s *Server) RegisterView(c echo.Context, namespace string, p openapi.RegisterViewParams) error {
	ns, err := parseNamespace(namespace)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, renderView)
	if err != nil {
		return err
	}
	var req openapi.RegisterViewRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.MetadataLocation == "" {
		return fmt.Errorf("%w: metadata-location is required", catalog.ErrInvalid)
	}
	v, err := s.cat.RegisterView(c.Request().Context(), catalog.Ident{Namespace: ns, Name: req.Name}, req.MetadataLocation, idem)
	if err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, loadViewResult(v))
}

// LoadView returns a view's metadata.
func (s *Server) LoadView(c echo.Context, namespace, name string) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	v, err := s.cat.LoadView(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, loadViewResult(v))
}

// ViewExists answers 204 or 404.
func (s *Server) ViewExists(c echo.Context, namespace, name string) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	if err := s.cat.ViewExists(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ReplaceView commits a view's change.
func (s *Server) ReplaceView(c echo.Context, namespace, name string, p openapi.ReplaceViewParams) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusOK, renderView)
	if err != nil {
		return err
	}
	var req openapi.CommitViewRequest
	if err := bindCommit(c, &req); err != nil {
		return err
	}
	if req.Identifier != nil {
		if body, err := fromWire(*req.Identifier); err != nil || body.String() != id.String() {
			return fmt.Errorf("%w: identifier in the body does not match the path", catalog.ErrInvalid)
		}
	}
	v, err := s.cat.ReplaceView(c.Request().Context(), catalog.ViewChange{
		Ident:        id,
		Requirements: []view.Requirement(req.Requirements),
		Updates:      []view.Update(req.Updates),
	}, idem)
	if err != nil {
		return reply(c, err)
	}
	return c.JSON(http.StatusOK, loadViewResult(v))
}

// DropView drops a view.
func (s *Server) DropView(c echo.Context, namespace, name string, p openapi.DropViewParams) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	idem, err := s.idempotency(c, p.IdempotencyKey, http.StatusNoContent, nil)
	if err != nil {
		return err
	}
	if err := s.cat.DropView(c.Request().Context(), id, idem); err != nil {
		return reply(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// RenameView renames a view.
func (s *Server) RenameView(c echo.Context, p openapi.RenameViewParams) error {
	return s.rename(c, p.IdempotencyKey, s.cat.RenameView)
}
