package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// OAuth2 names of RFC 6749 and RFC 8693 that /v1/oauth/tokens uses.
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccess        = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
)

// TokenRequest is a request to /v1/oauth/tokens.
type TokenRequest struct {
	// Form is the form-encoded body.
	Form url.Values
	// Basic holds client credentials from a Basic Authorization header.
	Basic                bool
	BasicID, BasicSecret string
}

// TokenResponse is the answer to a granted TokenRequest (RFC 6749 5.1,
// RFC 8693 2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type"`
}

// OAuthError is a refused TokenRequest, answered in the OAuth error form
// (RFC 6749 5.2) with Status.
type OAuthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthError(status int, code, desc string) *OAuthError {
	return &OAuthError{Status: status, Code: code, Description: desc}
}

var (
	errInvalidClient = oauthError(http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
	errBusy          = oauthError(http.StatusServiceUnavailable, "temporarily_unavailable",
		"too many client secrets are being checked; retry")
)

// IssueToken answers a token request: the client credentials grant, and
// token exchange to refresh a token this server issued (its subject
// token), or for client credentials in a Basic header — what Iceberg's
// Java client sends to refresh a token before and after it expires. The
// error is an *OAuthError.
func (a *Authenticator) IssueToken(ctx context.Context, req TokenRequest) (TokenResponse, error) {
	resp, err := a.issueToken(ctx, req)
	grant := req.Form.Get("grant_type")
	if grant != GrantClientCredentials && grant != GrantTokenExchange {
		grant = "other"
	}
	if err != nil {
		a.metrics.tokenRefused(err.(*OAuthError).Code)
		a.log.Info("token request refused", "grant_type", grant, "err", err)
		return TokenResponse{}, err
	}
	a.metrics.tokenIssued(grant)
	return resp, nil
}

func (a *Authenticator) issueToken(ctx context.Context, req TokenRequest) (TokenResponse, error) {
	if !a.Issues() {
		return TokenResponse{}, oauthError(http.StatusBadRequest, "unsupported_grant_type",
			"zombi issues no tokens: no OAuth clients are configured (--oauth-client); configure the client with a bearer token")
	}
	f := req.Form
	for k, vs := range f {
		if len(vs) > 1 {
			return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_request", k+" is given more than once")
		}
	}
	formCreds := f.Has("client_id") || f.Has("client_secret")
	if req.Basic && formCreds {
		return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_request",
			"client credentials are given both in the Authorization header and in the body")
	}
	now := a.now()
	switch f.Get("grant_type") {
	case GrantClientCredentials:
		return a.forClient(ctx, req, now)
	case GrantTokenExchange:
		if f.Has("actor_token") {
			return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_request", "actor tokens are not supported")
		}
		if req.Basic || formCreds {
			// Client credentials stand for themselves: the subject token
			// may have expired (the Java client sends it anyway).
			return a.forClient(ctx, req, now)
		}
		subject := f.Get("subject_token")
		if subject == "" {
			return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_request", "subject_token is required")
		}
		if tt := f.Get("subject_token_type"); tt != TokenTypeAccess && tt != TokenTypeJWT {
			return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_request",
				"subject_token_type must be "+TokenTypeAccess+" or "+TokenTypeJWT)
		}
		claims, c, err := a.verifyClientToken(subject)
		if err != nil {
			return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_grant",
				"the subject token is not a current token of this server: "+err.Error())
		}
		return a.respond(c, time.Unix(claims.AuthTime, 0), now)
	case "":
		return TokenResponse{}, oauthError(http.StatusBadRequest, "invalid_request", "grant_type is required")
	}
	return TokenResponse{}, oauthError(http.StatusBadRequest, "unsupported_grant_type",
		"grant_type must be "+GrantClientCredentials+" or "+GrantTokenExchange)
}

// forClient issues a token to the client whose ID and secret req holds,
// in its Basic header or else in its form.
func (a *Authenticator) forClient(ctx context.Context, req TokenRequest, now time.Time) (TokenResponse, error) {
	id, secret := req.Form.Get("client_id"), req.Form.Get("client_secret")
	if req.Basic {
		id, secret = req.BasicID, req.BasicSecret
	}
	c, err := a.checkSecret(ctx, id, secret)
	if err != nil {
		return TokenResponse{}, err
	}
	return a.respond(c, now, now)
}

func (a *Authenticator) respond(c *client, authTime, now time.Time) (TokenResponse, error) {
	tok, exp, err := issue(a.keys[0], c, authTime, now, a.lifetime)
	if err != nil {
		return TokenResponse{}, oauthError(http.StatusInternalServerError, "server_error", err.Error())
	}
	return TokenResponse{
		AccessToken: tok,
		TokenType:   "bearer",
		// Whole seconds down to the token's exp: a client that schedules
		// its refresh by expires_in (Iceberg's Java client does, after
		// the first token) must not find the token expired by then.
		ExpiresIn:       int64(exp.Sub(now) / time.Second),
		IssuedTokenType: TokenTypeAccess,
	}, nil
}

// dummyHash is compared against when the client is unknown, so that an
// unknown client takes as long to refuse as a wrong secret.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("zombi"), MinBcryptCost)
	return h
})

// checkSecret returns the client id whose secret is secret. A secret
// verified before is recognised by its SHA-256; otherwise bcrypt compares
// it, in one of a few slots: with none free within a second the answer is
// errBusy.
func (a *Authenticator) checkSecret(ctx context.Context, id, secret string) (*client, error) {
	if id == "" || secret == "" {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "client_id and client_secret are required")
	}
	if len(secret) > maxSecret {
		return nil, errInvalidClient
	}
	c, known := a.clients[id]
	sum := sha256.Sum256([]byte(secret))
	if known {
		if v, ok := a.verified.Load(id); ok {
			prev := v.([sha256.Size]byte)
			if subtle.ConstantTimeCompare(prev[:], sum[:]) == 1 {
				return c, nil
			}
		}
	}
	wait, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	select {
	case a.slots <- struct{}{}:
	case <-wait.Done():
		return nil, errBusy
	}
	var hash []byte
	if known {
		hash = c.hash
	} else {
		hash = dummyHash()
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(secret))
	<-a.slots
	if err != nil || !known {
		return nil, errInvalidClient
	}
	a.verified.Store(id, sum)
	return c, nil
}
