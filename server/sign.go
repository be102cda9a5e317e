package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/zombi-db/zombi/auth"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/openapi"
	"github.com/zombi-db/zombi/warehouse"
)

// Signer signs S3 requests for clients that hold no S3 keys (remote
// signing): the warehouse.
type Signer interface {
	// CanSign reports whether the warehouse signs at all.
	CanSign() bool
	// SignConfig is the FileIO config of a table whose requests are
	// signed: the warehouse's, without keys.
	SignConfig() map[string]string
	// Sign signs req if it is for a file of the table at tableLocation,
	// an error wrapping warehouse.ErrNotSignable otherwise.
	Sign(tableLocation string, req warehouse.SignRequest) (warehouse.Signed, error)
}

// remoteSigning is the X-Iceberg-Access-Delegation mode of remote signing.
const remoteSigning = "remote-signing"

type signingKey struct{}

// withDelegation marks ctx for remote signing or vended credentials:
// the first of the modes header (the request's
// X-Iceberg-Access-Delegation, a comma-separated list) names that the
// warehouse offers.
func (s *Server) withDelegation(ctx context.Context, header *string) context.Context {
	if header == nil {
		return ctx
	}
	for mode := range strings.SplitSeq(*header, ",") {
		switch strings.TrimSpace(mode) {
		case remoteSigning:
			if s.signer != nil && s.signer.CanSign() {
				return context.WithValue(ctx, signingKey{}, true)
			}
		case vendedCredentials:
			if s.canVend() {
				return context.WithValue(ctx, vendingKey{}, true)
			}
		}
	}
	return ctx
}

// signingOnly is a context marked for remote signing as ctx is, and
// nothing else of it.
func signingOnly(ctx context.Context) context.Context {
	return context.WithValue(context.Background(), signingKey{}, isSigning(ctx))
}

func isSigning(ctx context.Context) bool {
	v, _ := ctx.Value(signingKey{}).(bool)
	return v
}

// signingConfig is the config of table id for a client whose S3 requests
// Zombi signs: the warehouse's endpoint, region and addressing style,
// never keys, and the keys that turn remote signing on in Iceberg Java
// (which signs at the spec's …/tables/{table}/sign by itself) and
// PyIceberg (which needs its fsspec FileIO and the endpoint's path).
func (s *Server) signingConfig(ctx context.Context, id catalog.Ident) map[string]string {
	cfg := s.signer.SignConfig()
	cfg["s3.remote-signing-enabled"] = "true"
	cfg["s3.signer"] = "S3V4RestSigner"
	cfg["s3.signer.endpoint"] = tableEndpoint(ctx, id, "sign")
	cfg["py-io-impl"] = "pyiceberg.io.fsspec.FsspecFileIO"
	return cfg
}

// tableEndpoint is the path of one of table id's endpoints relative to
// the catalog's URI, in the view ctx is in: "v1/namespaces/NS/tables/T/"
// followed by name.
func tableEndpoint(ctx context.Context, id catalog.Ident, name string) string {
	prefix := "v1/"
	if isLive(ctx) {
		prefix = strings.TrimPrefix(livePrefix, "/")
	}
	return prefix + "namespaces/" + url.PathEscape(strings.Join(id.Namespace, "\x1f")) +
		"/tables/" + url.PathEscape(id.Name) + "/" + name
}

var errNoSigning = &apiError{status: http.StatusBadRequest, typ: "BadRequestException",
	msg: "this server does not sign S3 requests (it needs an S3 warehouse with static keys)"}

// SignS3Request signs an S3 request for one of a table's files.
func (s *Server) SignS3Request(c echo.Context, namespace, name string) error {
	id, err := ident(namespace, name)
	if err != nil {
		return err
	}
	var req openapi.S3SignRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if s.signer == nil || !s.signer.CanSign() {
		return errNoSigning
	}
	ctx := c.Request().Context()
	if warehouse.Writes(req.Method) {
		if err := s.allowedIn(ctx, auth.RoleWriter, id.Namespace); err != nil {
			return err
		}
	}
	loc, err := s.cat.TableRoot(ctx, id)
	if err != nil {
		return err
	}
	signed, err := s.signer.Sign(loc, warehouse.SignRequest{Method: req.Method, URI: req.Uri, Headers: req.Headers, Body: req.Body})
	if errors.Is(err, warehouse.ErrNotSignable) {
		return &apiError{status: http.StatusForbidden, typ: "ForbiddenException", msg: err.Error()}
	}
	if err != nil {
		return err
	}
	// A signature is for one request: clients must not cache it.
	c.Response().Header().Set("Cache-Control", "private")
	return c.JSON(http.StatusOK, openapi.S3SignResponse{Uri: signed.URI, Headers: signed.Headers})
}
