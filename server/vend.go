package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/warehouse"
)

// Vendor vends temporary storage credentials for one table's files: the
// warehouse, with an STS.
type Vendor interface {
	// CanVend reports whether the warehouse vends credentials at all.
	CanVend() bool
	// Vend returns credentials for the files of the table at
	// tableLocation, read-only or read-write.
	Vend(ctx context.Context, tableLocation string, write bool) (warehouse.Vended, error)
}

// vendedCredentials is the X-Iceberg-Access-Delegation mode of vended
// credentials.
const vendedCredentials = "vended-credentials"

type vendingKey struct{}

func isVending(ctx context.Context) bool {
	v, _ := ctx.Value(vendingKey{}).(bool)
	return v
}

func (s *Server) canVend() bool { return s.vendor != nil && s.vendor.CanVend() }

// vend returns credentials for the table id at location: read-write if
// the caller is a writer in the table's namespace, read-only otherwise.
func (s *Server) vend(ctx context.Context, id catalog.Ident, location string) (warehouse.Vended, error) {
	return s.vendFor(ctx, id, location, auth.TableRole(ctx, id) >= auth.RoleWriter)
}

// vendFor returns credentials for the table id at location, read-write
// if write is set, with the endpoint that refreshes them in their config.
func (s *Server) vendFor(ctx context.Context, id catalog.Ident, location string, write bool) (warehouse.Vended, error) {
	v, err := s.vendor.Vend(ctx, location, write)
	if errors.Is(err, warehouse.ErrNotVendable) {
		return v, &apiError{status: http.StatusForbidden, typ: "ForbiddenException", msg: err.Error()}
	}
	if err != nil {
		return v, &apiError{status: http.StatusServiceUnavailable, typ: "ServiceUnavailableException",
			msg: "vending credentials: " + err.Error()}
	}
	// Iceberg Java fetches fresh credentials from this endpoint before
	// they expire (with the plan's ID for a plan's credentials).
	v.Config[refreshEndpointKey] = tableEndpoint(ctx, id, "credentials")
	return v, nil
}

// withVended adds credentials for table t to a loadTable or createTable
// answer when the client asked for vended credentials: in
// storage-credentials, and in config for clients that read only config.
func (s *Server) withVended(ctx context.Context, t *catalog.Table, out *openapi.LoadTableResult) error {
	if !isVending(ctx) {
		return nil
	}
	v, err := s.vend(ctx, t.Ident, t.Metadata.Location())
	if err != nil {
		return err
	}
	cfg := openapi.Properties{}
	if out.Config != nil {
		cfg = *out.Config
	}
	for k, val := range v.Config {
		cfg[k] = val
	}
	out.Config = &cfg
	out.StorageCredentials = &[]openapi.StorageCredential{{Prefix: v.Prefix, Config: v.Config}}
	return nil
}

// refreshEndpointKey is the config key of Iceberg Java's (AWS) endpoint
// for fresh credentials, relative to the catalog's URI.
const refreshEndpointKey = "client.refresh-credentials-endpoint"

var errNoVending = &apiError{status: http.StatusBadRequest, typ: "BadRequestException",
	msg: "this server does not vend credentials (it needs an S3 warehouse with --s3-sts)"}

// LoadCredentials vends fresh credentials for a table's files.
func (s *Server) LoadCredentials(c echo.Context, namespace, name string, _ openapi.LoadCredentialsParams) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	if !s.canVend() {
		return errNoVending
	}
	ctx := c.Request().Context()
	loc, err := s.cat.TableRoot(ctx, id)
	if err != nil {
		return err
	}
	v, err := s.vend(ctx, id, loc)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, openapi.LoadCredentialsResponse{
		StorageCredentials: []openapi.StorageCredential{{Prefix: v.Prefix, Config: v.Config}},
	})
}
