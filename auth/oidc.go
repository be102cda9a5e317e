package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// OIDCConfig configures the acceptance of an OpenID Connect issuer's
// JWTs.
type OIDCConfig struct {
	// Issuer is the issuer's URL, the iss of its tokens; its discovery
	// document is at Issuer/.well-known/openid-configuration.
	Issuer string
	// Audience must be among a token's aud; required.
	Audience string
	// RoleClaim names the claim holding the caller's grants (see
	// ParseGrant): a string of grants separated by spaces or commas, or
	// an array of them; values that are no grant are ignored. A name with
	// dots that is not a claim is a path into nested objects
	// (realm_access.roles). Default DefaultRoleClaim.
	RoleClaim string
	// KeyRefresh is the least time between two fetches of the issuer's
	// keys that tokens signed with an unknown key cause; default 1m.
	KeyRefresh time.Duration
	// KeysInterval is how often the keys are fetched anyway; default 15m.
	KeysInterval time.Duration
	// HTTPClient fetches the discovery document and the keys; default a
	// client with a 10 s timeout.
	HTTPClient *http.Client
}

// DefaultRoleClaim is the claim OIDC tokens carry their grants in.
const DefaultRoleClaim = "zombi_role"

// asymmetric are the signature algorithms accepted from an OIDC issuer.
// HMAC is not among them: its key would be public, and "none" is no
// signature.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// keyFetchTimeout bounds a fetch of the discovery document or the keys,
// and how long a request may wait for a fetch its unknown key causes.
const keyFetchTimeout = 10 * time.Second

type oidcVerifier struct {
	issuer, audience, claim string
	skew                    time.Duration
	now                     func() time.Time
	log                     *slog.Logger
	// keys is nil until the discovery document was read.
	keys atomic.Pointer[keyfunc.Keyfunc]
}

func newOIDC(ctx context.Context, c OIDCConfig, skew time.Duration, now func() time.Time, log *slog.Logger, m *metrics) (*oidcVerifier, error) {
	if c.Audience == "" {
		return nil, errors.New("an OIDC issuer needs an audience (--oidc-audience): tokens it issued for other services must not be accepted")
	}
	if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
		return nil, fmt.Errorf("OIDC issuer %q is not an http(s) URL", c.Issuer)
	}
	if c.RoleClaim == "" {
		c.RoleClaim = DefaultRoleClaim
	}
	if c.KeyRefresh <= 0 {
		c.KeyRefresh = time.Minute
	}
	if c.KeysInterval <= 0 {
		c.KeysInterval = 15 * time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: keyFetchTimeout}
	}
	v := &oidcVerifier{issuer: c.Issuer, audience: c.Audience, claim: c.RoleClaim, skew: skew, now: now,
		log: log.With("oidc_issuer", c.Issuer)}
	// The first attempt runs now, so that a server that starts with its
	// issuer up accepts its tokens at once; later ones in the background.
	first := make(chan struct{})
	go func() {
		wait, tried := time.Second, false
		for {
			err := v.discover(ctx, c, m)
			if !tried {
				close(first)
				tried = true
			}
			if err == nil {
				return
			}
			v.log.Warn("OIDC discovery failed; its tokens are refused until it succeeds", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Minute)
		}
	}()
	select {
	case <-first:
	case <-ctx.Done():
	}
	return v, nil
}

// discover reads the discovery document and starts following the keys.
func (v *oidcVerifier) discover(ctx context.Context, c OIDCConfig, m *metrics) error {
	client := &http.Client{Timeout: c.HTTPClient.Timeout, Transport: countingTransport{c.HTTPClient.Transport, m, "discovery"}}
	fctx, cancel := context.WithTimeout(ctx, keyFetchTimeout)
	defer cancel()
	u := strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	if doc.Issuer != c.Issuer {
		return fmt.Errorf("%s names the issuer %q, not %q", u, doc.Issuer, c.Issuer)
	}
	if doc.JWKSURI == "" {
		return fmt.Errorf("%s has no jwks_uri", u)
	}
	keysClient := &http.Client{Timeout: c.HTTPClient.Timeout, Transport: countingTransport{c.HTTPClient.Transport, m, "keys"}}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{doc.JWKSURI}, keyfunc.Override{
		Client:      keysClient,
		HTTPTimeout: keyFetchTimeout,
		// A token signed with a key not in the set fetches the set again,
		// at most once per KeyRefresh whoever sends such tokens; a request
		// waits for that fetch only if it can start within the timeout.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(c.KeyRefresh), 1),
		RateLimitWaitMax:  keyFetchTimeout,
		RefreshInterval:   c.KeysInterval,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				v.log.Warn("fetching the OIDC issuer's keys", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	v.keys.Store(&kf)
	v.log.Info("OIDC issuer discovered", "jwks_uri", doc.JWKSURI)
	return nil
}

// verify checks an OIDC token and returns its caller.
func (v *oidcVerifier) verify(ctx context.Context, tok string) (*Principal, error) {
	kf := v.keys.Load()
	if kf == nil {
		return nil, errors.New("the OIDC issuer has not been discovered yet")
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(asymmetric),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.skew),
		jwt.WithTimeFunc(v.now),
	)
	claims := jwt.MapClaims{}
	if _, err := p.ParseWithClaims(tok, claims, (*kf).KeyfuncCtx(ctx)); err != nil {
		return nil, err
	}
	sub, _ := claims["sub"].(string)
	return &Principal{Name: "oidc " + sub, Method: "oidc", Grants: grantsOf(claimAt(claims, v.claim))}, nil
}

// claimAt returns the claim name, or the value at the path its dots
// separate when no claim has the name.
func claimAt(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// grantsOf reads grants from a claim's value: a string of grants
// separated by spaces or commas, or an array of strings. Values that are
// no grant are skipped: identity providers put other roles there too.
func grantsOf(v any) []Grant {
	var words []string
	switch v := v.(type) {
	case string:
		words = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				words = append(words, s)
			}
		}
	}
	var grants []Grant
	for _, w := range words {
		if g, err := ParseGrant(w); err == nil {
			grants = append(grants, g)
		}
	}
	return grants
}

// countingTransport counts the fetches of the issuer's documents.
type countingTransport struct {
	next http.RoundTripper
	m    *metrics
	what string
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	result := "ok"
	if err != nil || resp.StatusCode != http.StatusOK {
		result = "error"
	}
	t.m.oidcFetches.WithLabelValues(t.what, result).Inc()
	return resp, err
}
