// Package auth authenticates Zombi's callers and says what they may do.
//
// A caller shows a bearer token: a static token from the configuration
// (--auth-token, --admin-token, --metrics-token), a token Zombi issued at
// /v1/oauth/tokens to a configured OAuth2 client (a JWT signed with
// Zombi's Ed25519 key), or a JWT from an external OpenID Connect issuer.
// Each becomes a Principal with grants: a role (reader, writer, admin),
// on every namespace or on one namespace and those below it. The server
// declares the role each route needs; TableRole tells other components
// the caller's role on a table.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Authenticator.
type Config struct {
	// Tokens are the static bearer tokens.
	Tokens []Token
	// MetricsTokens may read /metrics and the details of /health/ready,
	// and nothing else.
	MetricsTokens []string
	// Clients may take tokens from /v1/oauth/tokens.
	Clients []Client
	// SigningKeys sign (the first) and verify (all) the tokens of
	// /v1/oauth/tokens; required with Clients.
	SigningKeys []*SigningKey
	// TokenLifetime is how long an issued token is valid; default 1h.
	TokenLifetime time.Duration
	// ClockSkew is how far the times in a token may be off, for issued
	// and OIDC tokens; default 30s, negative: none.
	ClockSkew time.Duration
	// OIDC, with an Issuer, accepts that issuer's JWTs.
	OIDC OIDCConfig
	// BcryptSlots bounds the client secrets checked at once; default 2.
	BcryptSlots int
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Default values of Config.
const (
	DefaultTokenLifetime = time.Hour
	DefaultClockSkew     = 30 * time.Second
)

// Authenticator turns bearer tokens into principals and issues tokens to
// OAuth2 clients. A nil *Authenticator has auth off.
type Authenticator struct {
	static   []staticEntry
	clients  map[string]*client
	keys     []*SigningKey
	lifetime time.Duration
	skew     time.Duration
	oidc     *oidcVerifier
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics

	// slots bounds the bcrypt comparisons running at once: each costs
	// tens of milliseconds of CPU, and anyone may ask for one.
	slots chan struct{}
	// verified maps a client ID to the SHA-256 of the secret last
	// verified for it, so a client that asks again costs no bcrypt.
	verified sync.Map
}

type staticEntry struct {
	secret []byte
	p      *Principal
}

type client struct {
	id      string
	grants  []Grant
	hash    []byte
	version string
}

// Errors of Authenticate.
var (
	// ErrNoCredentials: the request has no bearer token.
	ErrNoCredentials = errors.New("no bearer token")
	// ErrInvalidToken: the bearer token is not valid here.
	ErrInvalidToken = errors.New("invalid bearer token")
	// ErrForbidden: the caller's role does not allow what it asked for.
	ErrForbidden = errors.New("forbidden")
)

// New builds an Authenticator. With an OIDC issuer it starts fetching the
// issuer's discovery document and keys until ctx ends.
func New(ctx context.Context, c Config) (*Authenticator, error) {
	a := &Authenticator{
		clients:  map[string]*client{},
		keys:     c.SigningKeys,
		lifetime: c.TokenLifetime,
		skew:     c.ClockSkew,
		now:      c.Now,
		log:      c.Logger,
		metrics:  newMetrics(c.Registerer),
	}
	if a.lifetime <= 0 {
		a.lifetime = DefaultTokenLifetime
	}
	switch {
	case a.skew == 0:
		a.skew = DefaultClockSkew
	case a.skew < 0:
		a.skew = 0
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	slots := c.BcryptSlots
	if slots <= 0 {
		slots = 2
	}
	a.slots = make(chan struct{}, slots)
	if err := a.addStatic(c.Tokens, c.MetricsTokens); err != nil {
		return nil, err
	}
	for _, cl := range c.Clients {
		if err := a.addClient(cl); err != nil {
			return nil, err
		}
	}
	if len(a.clients) > 0 && len(a.keys) == 0 {
		return nil, errors.New("oauth clients need a signing key")
	}
	if c.OIDC.Issuer != "" {
		v, err := newOIDC(ctx, c.OIDC, a.skew, a.now, a.log, a.metrics)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	return a, nil
}

func (a *Authenticator) addStatic(tokens []Token, monitors []string) error {
	bySecret := map[string]*Principal{}
	var order []string
	get := func(secret string) *Principal {
		p, ok := bySecret[secret]
		if !ok {
			p = &Principal{Method: "static"}
			bySecret[secret] = p
			order = append(order, secret)
		}
		return p
	}
	plain := map[string]bool{}
	for _, t := range tokens {
		if t.Secret == "" {
			return errors.New("empty token")
		}
		p := get(t.Secret)
		if t.Plain {
			plain[t.Secret] = true
			p.Grants = append(p.Grants, Grant{Role: RoleAdmin})
		} else {
			p.Grants = append(p.Grants, t.Grant)
		}
	}
	for s := range plain {
		// A plain token may not compact or maintain unless it is also
		// given the admin role on every namespace explicitly.
		explicit := 0
		for _, t := range tokens {
			if t.Secret == s && !t.Plain && t.Grant.Role == RoleAdmin && len(t.Grant.Namespace) == 0 {
				explicit++
			}
		}
		bySecret[s].NoMaintenance = explicit == 0
	}
	for _, m := range monitors {
		if m == "" {
			return errors.New("empty metrics token")
		}
		get(m).Metrics = true
	}
	for i, s := range order {
		p := bySecret[s]
		p.Name = "token " + strconv.Itoa(i+1)
		a.static = append(a.static, staticEntry{secret: []byte(s), p: p})
	}
	return nil
}

func (a *Authenticator) addClient(c Client) error {
	if err := checkClientID(c.ID); err != nil {
		return err
	}
	if cur, ok := a.clients[c.ID]; ok {
		if string(cur.hash) != c.Hash {
			return fmt.Errorf("oauth client %q is given twice with different secret hashes", c.ID)
		}
		cur.grants = append(cur.grants, c.Grant)
		return nil
	}
	a.clients[c.ID] = &client{id: c.ID, grants: []Grant{c.Grant}, hash: []byte(c.Hash), version: secretVersion(c.Hash)}
	return nil
}

// On reports whether catalog and ingest calls need credentials: any
// token, client or issuer other than metrics tokens is configured.
func (a *Authenticator) On() bool {
	if a == nil {
		return false
	}
	if len(a.clients) > 0 || a.oidc != nil {
		return true
	}
	for _, e := range a.static {
		if len(e.p.Grants) > 0 {
			return true
		}
	}
	return false
}

// GuardsMetrics reports whether /metrics needs credentials: anything at
// all is configured.
func (a *Authenticator) GuardsMetrics() bool {
	return a != nil && (len(a.static) > 0 || len(a.clients) > 0 || a.oidc != nil)
}

// Issues reports whether /v1/oauth/tokens issues tokens.
func (a *Authenticator) Issues() bool { return a != nil && len(a.clients) > 0 }

// Bearer returns the token of r's Authorization header, if it has the
// Bearer scheme, whose name is case-insensitive (RFC 9110 11.1).
func Bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Authenticate returns the caller of r: ErrNoCredentials without a
// bearer token, ErrInvalidToken with one that is not valid here.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	tok, ok := Bearer(r)
	if !ok {
		a.metrics.authn("none", "missing")
		return nil, ErrNoCredentials
	}
	if p := a.staticToken(tok); p != nil {
		a.metrics.authn("static", "ok")
		return p, nil
	}
	method := "unknown"
	p, err := func() (*Principal, error) {
		if strings.Count(tok, ".") != 2 {
			return nil, errors.New("not a JWT")
		}
		var claims jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
			return nil, err
		}
		switch {
		case claims.Issuer == tokenIssuer && len(a.keys) > 0:
			method = "zombi"
			return a.ownToken(tok)
		case a.oidc != nil && claims.Issuer == a.oidc.issuer:
			method = "oidc"
			return a.oidc.verify(ctx, tok)
		}
		return nil, fmt.Errorf("issuer %q is not trusted here", claims.Issuer)
	}()
	if err != nil {
		a.metrics.authn(method, "invalid")
		a.log.Debug("bearer token refused", "method", method, "err", err)
		return nil, ErrInvalidToken
	}
	a.metrics.authn(method, "ok")
	return p, nil
}

// staticToken returns the principal of a static token. Every configured
// token is compared in constant time, whichever matches.
func (a *Authenticator) staticToken(tok string) *Principal {
	var found *Principal
	for _, e := range a.static {
		if subtle.ConstantTimeCompare([]byte(tok), e.secret) == 1 {
			found = e.p
		}
	}
	return found
}

// ownToken checks a token Zombi issued and returns its client's principal.
func (a *Authenticator) ownToken(tok string) (*Principal, error) {
	_, c, err := a.verifyClientToken(tok)
	if err != nil {
		return nil, err
	}
	return &Principal{Name: "client " + c.id, Method: "zombi", Grants: c.grants}, nil
}

// verifyClientToken checks a token Zombi issued: valid, and of a client
// configured now with the same secret.
func (a *Authenticator) verifyClientToken(tok string) (*tokenClaims, *client, error) {
	claims, err := verifyOwn(tok, a.keys, a.now, a.skew)
	if err != nil {
		return nil, nil, err
	}
	c, ok := a.clients[claims.Subject]
	if !ok {
		return nil, nil, fmt.Errorf("client %q is not configured", claims.Subject)
	}
	if subtle.ConstantTimeCompare([]byte(claims.SecretVersion), []byte(c.version)) != 1 {
		return nil, nil, fmt.Errorf("client %q has a new secret", claims.Subject)
	}
	return claims, c, nil
}

// Forbidden counts a request refused for its caller's role.
func (a *Authenticator) Forbidden() {
	if a != nil {
		a.metrics.forbidden.Inc()
	}
}
