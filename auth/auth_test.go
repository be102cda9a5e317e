package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zombi-db/zombi/catalog"
	"golang.org/x/crypto/bcrypt"
)

// clock is a settable time for tokens.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func hashOf(t *testing.T, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func mustNew(t *testing.T, c Config) *Authenticator {
	t.Helper()
	a, err := New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/config", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestStaticTokens(t *testing.T) {
	a := mustNew(t, Config{
		Tokens: []Token{
			{Secret: "plain", Plain: true},
			{Secret: "both", Plain: true}, {Secret: "both", Grant: Grant{Role: RoleAdmin}},
			{Secret: "two", Grant: Grant{Role: RoleReader}}, {Secret: "two", Grant: Grant{Role: RoleWriter, Namespace: catalog.Namespace{"ops"}}},
		},
		MetricsTokens: []string{"scrape", "two"},
	})
	for _, tc := range []struct {
		token         string
		err           error
		top, ops      Role
		metrics, noMt bool
	}{
		{token: "", err: ErrNoCredentials},
		{token: "nope", err: ErrInvalidToken},
		{token: "plain", top: RoleAdmin, ops: RoleAdmin, noMt: true},
		{token: "both", top: RoleAdmin, ops: RoleAdmin},
		{token: "two", top: RoleReader, ops: RoleWriter, metrics: true},
		{token: "scrape", metrics: true},
	} {
		p, err := a.Authenticate(context.Background(), request(tc.token))
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: %v, want %v", tc.token, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if p.Role(nil) != tc.top || p.Role(catalog.Namespace{"ops"}) != tc.ops || p.Metrics != tc.metrics || p.NoMaintenance != tc.noMt {
			t.Errorf("%q: %+v", tc.token, p)
		}
		if strings.Contains(p.Name, tc.token) {
			t.Errorf("%q: the principal's name %q shows the token", tc.token, p.Name)
		}
	}
	if !a.On() || !a.GuardsMetrics() || a.Issues() {
		t.Errorf("On %v, GuardsMetrics %v, Issues %v", a.On(), a.GuardsMetrics(), a.Issues())
	}
	monitorOnly := mustNew(t, Config{MetricsTokens: []string{"scrape"}})
	if monitorOnly.On() || !monitorOnly.GuardsMetrics() {
		t.Errorf("metrics tokens alone: On %v, GuardsMetrics %v", monitorOnly.On(), monitorOnly.GuardsMetrics())
	}
	var off *Authenticator
	if off.On() || off.GuardsMetrics() || off.Issues() {
		t.Errorf("a nil Authenticator is not off")
	}
}

// oauthEnv is an Authenticator with two clients and a settable clock.
type oauthEnv struct {
	a    *Authenticator
	clk  *clock
	key  *SigningKey
	hash string
	conf Config
	ctx  context.Context
	tb   *testing.T
}

func newOAuthEnv(t *testing.T) *oauthEnv {
	key, _, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &oauthEnv{clk: &clock{time.Unix(1_800_000_000, 0)}, key: key, hash: hashOf(t, "s3cret"), ctx: t.Context(), tb: t}
	e.conf = Config{
		Clients: []Client{
			{ID: "spark", Grant: Grant{Role: RoleWriter}, Hash: e.hash},
			{ID: "spark", Grant: Grant{Role: RoleAdmin, Namespace: catalog.Namespace{"ops"}}, Hash: e.hash},
			{ID: "bi", Grant: Grant{Role: RoleReader, Namespace: catalog.Namespace{"sales"}}, Hash: hashOf(t, "other")},
		},
		SigningKeys:   []*SigningKey{key},
		TokenLifetime: time.Hour,
		Now:           e.clk.now,
	}
	e.a = mustNew(t, e.conf)
	return e
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func (e *oauthEnv) token(req TokenRequest) (TokenResponse, *OAuthError) {
	resp, err := e.a.IssueToken(e.ctx, req)
	if err != nil {
		oe, ok := err.(*OAuthError)
		if !ok {
			e.tb.Fatalf("IssueToken: %v is no *OAuthError", err)
		}
		return resp, oe
	}
	return resp, nil
}

func (e *oauthEnv) clientCredentials(id, secret string) string {
	e.tb.Helper()
	resp, oe := e.token(TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", id, "client_secret", secret, "scope", "catalog")})
	if oe != nil {
		e.tb.Fatalf("client credentials of %s: %v", id, oe)
	}
	return resp.AccessToken
}

func TestClientCredentials(t *testing.T) {
	e := newOAuthEnv(t)
	resp, oe := e.token(TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "spark", "client_secret", "s3cret", "scope", "catalog")})
	if oe != nil {
		t.Fatal(oe)
	}
	if resp.TokenType != "bearer" || resp.ExpiresIn != 3600 || resp.IssuedTokenType != TokenTypeAccess || strings.Count(resp.AccessToken, ".") != 2 {
		t.Fatalf("response %+v", resp)
	}
	p, err := e.a.Authenticate(e.ctx, request(resp.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "client spark" || p.Method != "zombi" || p.Role(nil) != RoleWriter || p.Role(catalog.Namespace{"ops", "x"}) != RoleAdmin {
		t.Fatalf("principal %+v", p)
	}
	// The token's claims: what the Java client reads (exp), and no grants.
	var claims tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(resp.AccessToken, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.ExpiresAt.Time != e.clk.t.Add(time.Hour) || claims.Subject != "spark" || claims.Issuer != tokenIssuer {
		t.Errorf("claims %+v", claims)
	}

	basic, oe := e.token(TokenRequest{Form: form("grant_type", GrantClientCredentials), Basic: true, BasicID: "bi", BasicSecret: "other"})
	if oe != nil {
		t.Fatalf("Basic client credentials: %v", oe)
	}
	if p, err := e.a.Authenticate(e.ctx, request(basic.AccessToken)); err != nil || p.Role(catalog.Namespace{"sales"}) != RoleReader || p.Role(nil) != RoleNone {
		t.Fatalf("bi: %+v %v", p, err)
	}

	for _, tc := range []struct {
		name   string
		req    TokenRequest
		status int
		code   string
	}{
		{"wrong secret", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "spark", "client_secret", "nope")}, 401, "invalid_client"},
		{"another client's secret", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "bi", "client_secret", "s3cret")}, 401, "invalid_client"},
		{"unknown client", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "nobody", "client_secret", "s3cret")}, 401, "invalid_client"},
		{"secret only", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_secret", "s3cret")}, 400, "invalid_request"},
		{"long secret", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "spark", "client_secret", "s3cret"+strings.Repeat("x", 80))}, 401, "invalid_client"},
		{"no grant type", TokenRequest{Form: form("client_id", "spark", "client_secret", "s3cret")}, 400, "invalid_request"},
		{"password grant", TokenRequest{Form: form("grant_type", "password", "username", "spark", "password", "s3cret")}, 400, "unsupported_grant_type"},
		{"refresh grant", TokenRequest{Form: form("grant_type", "refresh_token", "refresh_token", "x")}, 400, "unsupported_grant_type"},
		{"repeated parameter", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "bi", "client_id", "spark", "client_secret", "s3cret")}, 400, "invalid_request"},
		{"two kinds of client credentials", TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "spark", "client_secret", "s3cret"),
			Basic: true, BasicID: "spark", BasicSecret: "s3cret"}, 400, "invalid_request"},
	} {
		_, oe := e.token(tc.req)
		if oe == nil || oe.Status != tc.status || oe.Code != tc.code {
			t.Errorf("%s: %+v, want %d %s", tc.name, oe, tc.status, tc.code)
		}
	}

	// The token expires, within the clock skew.
	e.clk.t = e.clk.t.Add(time.Hour + DefaultClockSkew - time.Second)
	if _, err := e.a.Authenticate(e.ctx, request(resp.AccessToken)); err != nil {
		t.Errorf("within the skew: %v", err)
	}
	e.clk.t = e.clk.t.Add(2 * time.Second)
	if _, err := e.a.Authenticate(e.ctx, request(resp.AccessToken)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired: %v", err)
	}
}

// TestTokenAcrossNodes: a token is valid on every node with the same key
// and clients, and on no other: a node with another key, without the
// client, or with the client's secret changed refuses it.
func TestTokenAcrossNodes(t *testing.T) {
	e := newOAuthEnv(t)
	tok := e.clientCredentials("spark", "s3cret")
	other, _, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	conf := func(edit func(*Config)) *Authenticator {
		c := e.conf
		c.Clients = append([]Client(nil), c.Clients...)
		edit(&c)
		return mustNew(t, c)
	}
	for _, tc := range []struct {
		name  string
		a     *Authenticator
		valid bool
	}{
		{"same key and clients", conf(func(*Config) {}), true},
		{"the key among others", conf(func(c *Config) { c.SigningKeys = []*SigningKey{other, e.key} }), true},
		{"another key", conf(func(c *Config) { c.SigningKeys = []*SigningKey{other} }), false},
		{"the client removed", conf(func(c *Config) { c.Clients = c.Clients[2:] }), false},
		{"a new secret", conf(func(c *Config) {
			h := hashOf(t, "new")
			c.Clients[0].Hash, c.Clients[1].Hash = h, h
		}), false},
		{"no clients", conf(func(c *Config) { c.Clients, c.Tokens = nil, []Token{{Secret: "x", Plain: true}} }), false},
	} {
		_, err := tc.a.Authenticate(e.ctx, request(tok))
		if (err == nil) != tc.valid {
			t.Errorf("%s: %v, want valid %v", tc.name, err, tc.valid)
		}
	}
	// A token with Zombi's issuer signed by a key not Zombi's.
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: "spark", Audience: jwt.ClaimStrings{tokenAudience},
		ExpiresAt: jwt.NewNumericDate(e.clk.t.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(e.clk.t)},
		SecretVersion: secretVersion(e.hash)})
	forged.Header["kid"], forged.Header["typ"] = e.key.ID, tokenType
	s, err := forged.SignedString(other.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Authenticate(e.ctx, request(s)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a token signed by another key under our kid: %v", err)
	}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, forged.Claims)
	none.Header["kid"], none.Header["typ"] = e.key.ID, tokenType
	s, err = none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Authenticate(e.ctx, request(s)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("alg none: %v", err)
	}
}

// TestTokenExchange: the refreshes the Java client sends. With the
// current token as subject, and after expiry with client credentials in
// a Basic header.
func TestTokenExchange(t *testing.T) {
	e := newOAuthEnv(t)
	first := e.clientCredentials("spark", "s3cret")
	e.clk.t = e.clk.t.Add(50 * time.Minute)
	exchange := func(subject string) TokenRequest {
		return TokenRequest{Form: form("grant_type", GrantTokenExchange, "scope", "catalog",
			"subject_token", subject, "subject_token_type", TokenTypeAccess)}
	}
	resp, oe := e.token(exchange(first))
	if oe != nil {
		t.Fatalf("refresh: %v", oe)
	}
	var claims tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(resp.AccessToken, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "spark" || claims.ExpiresAt.Time != e.clk.t.Add(time.Hour) || claims.AuthTime != e.clk.t.Add(-50*time.Minute).Unix() {
		t.Errorf("refreshed claims %+v", claims)
	}
	if _, err := e.a.Authenticate(e.ctx, request(resp.AccessToken)); err != nil {
		t.Fatal(err)
	}

	e.clk.t = e.clk.t.Add(2 * time.Hour) // both expired
	if _, oe := e.token(exchange(resp.AccessToken)); oe == nil || oe.Code != "invalid_grant" {
		t.Errorf("refreshing an expired token: %+v", oe)
	}
	expired := exchange(resp.AccessToken)
	expired.Basic, expired.BasicID, expired.BasicSecret = true, "spark", "s3cret"
	if _, oe := e.token(expired); oe != nil {
		t.Errorf("refreshing an expired token with client credentials: %v", oe)
	}
	expired.BasicSecret = "nope"
	if _, oe := e.token(expired); oe == nil || oe.Code != "invalid_client" {
		t.Errorf("with a wrong secret: %+v", oe)
	}

	current := e.clientCredentials("spark", "s3cret")
	for _, tc := range []struct {
		name string
		req  TokenRequest
		code string
	}{
		{"no subject", TokenRequest{Form: form("grant_type", GrantTokenExchange, "subject_token_type", TokenTypeAccess)}, "invalid_request"},
		{"subject type", TokenRequest{Form: form("grant_type", GrantTokenExchange, "subject_token", current, "subject_token_type", "urn:ietf:params:oauth:token-type:saml2")}, "invalid_request"},
		{"actor", TokenRequest{Form: form("grant_type", GrantTokenExchange, "subject_token", current, "subject_token_type", TokenTypeAccess,
			"actor_token", current, "actor_token_type", TokenTypeAccess)}, "invalid_request"},
		{"a static token", TokenRequest{Form: form("grant_type", GrantTokenExchange, "subject_token", "static", "subject_token_type", TokenTypeAccess)}, "invalid_grant"},
	} {
		if _, oe := e.token(tc.req); oe == nil || oe.Code != tc.code {
			t.Errorf("%s: %+v, want %s", tc.name, oe, tc.code)
		}
	}
}

// TestExpiresIn: expires_in never says a token lives longer than its exp
// claim, whose times are whole seconds, whatever the fraction of a second
// the token is issued at.
func TestExpiresIn(t *testing.T) {
	e := newOAuthEnv(t)
	for _, frac := range []time.Duration{0, time.Millisecond, 400 * time.Millisecond, 999 * time.Millisecond} {
		e.clk.t = time.Unix(1_800_000_000, 0).Add(frac)
		resp, oe := e.token(TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "spark", "client_secret", "s3cret")})
		if oe != nil {
			t.Fatal(oe)
		}
		var claims tokenClaims
		if _, _, err := jwt.NewParser().ParseUnverified(resp.AccessToken, &claims); err != nil {
			t.Fatal(err)
		}
		want := int64(3600)
		if frac > 0 {
			want = 3599
		}
		if resp.ExpiresIn != want || e.clk.t.Add(time.Duration(resp.ExpiresIn)*time.Second).After(claims.ExpiresAt.Time) {
			t.Errorf("issued at +%v: expires_in %d, exp %v; want %d, at or after now+expires_in", frac, resp.ExpiresIn, claims.ExpiresAt.Time, want)
		}
	}
}

// TestNoClockSkew: a negative ClockSkew (--token-clock-skew 0) refuses a
// token from its exp on.
func TestNoClockSkew(t *testing.T) {
	e := newOAuthEnv(t)
	e.conf.ClockSkew = -1
	e.a = mustNew(t, e.conf)
	tok := e.clientCredentials("spark", "s3cret")
	e.clk.t = e.clk.t.Add(time.Hour - time.Millisecond)
	if _, err := e.a.Authenticate(e.ctx, request(tok)); err != nil {
		t.Errorf("just before exp: %v", err)
	}
	e.clk.t = e.clk.t.Add(time.Millisecond)
	if _, err := e.a.Authenticate(e.ctx, request(tok)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("at exp: %v", err)
	}
}

// TestSecretChecks: a secret verified once is recognised without bcrypt;
// when every bcrypt slot is taken a request is refused with 503, not
// queued.
func TestSecretChecks(t *testing.T) {
	e := newOAuthEnv(t)
	e.clientCredentials("spark", "s3cret")
	for i := 0; i < cap(e.a.slots); i++ {
		e.a.slots <- struct{}{}
	}
	// Known: no slot needed.
	e.clientCredentials("spark", "s3cret")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, secret := range []string{"wrong", "other"} {
		id := "spark"
		if secret == "other" {
			id = "bi" // right, but never verified
		}
		_, err := e.a.IssueToken(ctx, TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", id, "client_secret", secret)})
		if oe, ok := err.(*OAuthError); !ok || oe.Status != http.StatusServiceUnavailable {
			t.Errorf("%s with no free slot: %v", id, err)
		}
	}
}

func TestNoClients(t *testing.T) {
	a := mustNew(t, Config{Tokens: []Token{{Secret: "x", Plain: true}}})
	_, err := a.IssueToken(t.Context(), TokenRequest{Form: form("grant_type", GrantClientCredentials, "client_id", "a", "client_secret", "b")})
	if oe, ok := err.(*OAuthError); !ok || oe.Code != "unsupported_grant_type" {
		t.Errorf("without clients: %v", err)
	}
	if _, err := New(t.Context(), Config{Clients: []Client{{ID: "a", Grant: Grant{Role: RoleReader}, Hash: hashOf(t, "x")}}}); err == nil {
		t.Errorf("clients without a signing key")
	}
	h1, h2 := hashOf(t, "x"), hashOf(t, "y")
	key, _, _ := GenerateSigningKey()
	if _, err := New(t.Context(), Config{SigningKeys: []*SigningKey{key}, Clients: []Client{
		{ID: "a", Grant: Grant{Role: RoleReader}, Hash: h1}, {ID: "a", Grant: Grant{Role: RoleWriter}, Hash: h2}}}); err == nil {
		t.Errorf("a client with two secrets")
	}
}

func TestSigningKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "key.pem")
	if _, _, err := LoadSigningKey(path, false); err == nil {
		t.Fatal("a missing key loaded")
	}
	k1, created, err := LoadSigningKey(path, true)
	if err != nil || !created {
		t.Fatalf("creating: %v %v", created, err)
	}
	if ReadableByOthers(path) {
		t.Errorf("a new key is readable by others")
	}
	k2, created, err := LoadSigningKey(path, true)
	if err != nil || created || k2.ID != k1.ID {
		t.Fatalf("loading again: %v %v %v", k2, created, err)
	}
	if _, err := ParseSigningKey([]byte("-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString([]byte("x")) + "\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Errorf("garbage parsed as a key")
	}
}
