package auth

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/internal/oidctest"
)

func newOIDCAuth(t *testing.T, iss *oidctest.Issuer, keyRefresh time.Duration) *Authenticator {
	t.Helper()
	return mustNew(t, Config{OIDC: OIDCConfig{Issuer: iss.URL, Audience: "zombi-test", KeyRefresh: keyRefresh}})
}

// TestOIDCTokens: what an OIDC token must be to be accepted.
func TestOIDCTokens(t *testing.T) {
	iss := oidctest.New(t)
	a := newOIDCAuth(t, iss, time.Hour)
	k := iss.Key()
	valid := iss.Claims("zombi-test", "writer@sales")
	tok := iss.Sign(t, k, valid)
	p, err := a.Authenticate(t.Context(), request(tok))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "oidc alice" || p.Method != "oidc" || p.Role(catalog.Namespace{"sales"}) != RoleWriter || p.Role(nil) != RoleNone {
		t.Fatalf("principal %+v", p)
	}

	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range valid {
			c[k] = v
		}
		edit(c)
		return c
	}
	now := time.Now()
	stranger := iss.NewKey(t, "ES256")
	stranger.ID = k.ID // a key the issuer never published, under its key's ID
	hmac := jwt.NewWithClaims(jwt.SigningMethodHS256, valid)
	hmac.Header["kid"] = k.ID
	hmacTok, err := hmac.SignedString([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"expired", iss.Sign(t, k, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))},
		{"no expiry", iss.Sign(t, k, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"not yet valid", iss.Sign(t, k, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }))},
		{"issued in the future", iss.Sign(t, k, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }))},
		{"wrong audience", iss.Sign(t, k, with(func(c jwt.MapClaims) { c["aud"] = "other-service" }))},
		{"no audience", iss.Sign(t, k, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"wrong issuer", iss.Sign(t, k, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"issuer with a trailing slash", iss.Sign(t, k, with(func(c jwt.MapClaims) { c["iss"] = iss.URL + "/" }))},
		{"wrongly signed", iss.Sign(t, stranger, valid)},
		{"alg none", oidctest.Unsigned(t, k.ID, valid)},
		{"alg HS256", hmacTok},
		{"tampered", tok[:len(tok)-4] + "AAAA"},
	} {
		if _, err := a.Authenticate(t.Context(), request(tc.tok)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", tc.name, err)
		}
	}
	// Within the clock skew.
	if _, err := a.Authenticate(t.Context(), request(iss.Sign(t, k, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })))); err != nil {
		t.Errorf("expired within the skew: %v", err)
	}
}

// TestOIDCKeyRotation: a token signed with a key the issuer added is
// accepted once the keys are fetched again; a key the issuer dropped is
// refused once they are.
func TestOIDCKeyRotation(t *testing.T) {
	iss := oidctest.New(t)
	a := newOIDCAuth(t, iss, time.Millisecond)
	k1 := iss.Key()
	claims := iss.Claims("zombi-test", "reader")
	accepted := func(k *oidctest.Key) bool {
		_, err := a.Authenticate(t.Context(), request(iss.Sign(t, k, claims)))
		return err == nil
	}
	if !accepted(k1) {
		t.Fatal("the first key")
	}
	k2 := iss.NewKey(t, "RS256")
	if accepted(k2) {
		t.Fatal("a key the issuer does not publish")
	}
	iss.Publish(k1, k2)
	if !accepted(k2) || !accepted(k1) {
		t.Fatalf("after publishing a second key: k2 %v, k1 %v", accepted(k2), accepted(k1))
	}
	k3 := iss.NewKey(t, "ES256")
	iss.Publish(k2, k3)
	if !accepted(k3) {
		t.Fatal("a third key")
	}
	if accepted(k1) {
		t.Fatal("a key the issuer dropped")
	}
	if !accepted(k2) {
		t.Fatal("a key the issuer kept")
	}
}

// TestOIDCRefreshBounded: tokens signed with unknown keys cannot make
// Zombi fetch the issuer's keys more than once per KeyRefresh.
func TestOIDCRefreshBounded(t *testing.T) {
	iss := oidctest.New(t)
	a := newOIDCAuth(t, iss, time.Hour)
	before := iss.KeyFetches()
	claims := iss.Claims("zombi-test", "admin")
	for i := 0; i < 50; i++ {
		k := iss.NewKey(t, "ES256")
		if _, err := a.Authenticate(t.Context(), request(iss.Sign(t, k, claims))); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown key %d: %v", i, err)
		}
	}
	if n := iss.KeyFetches() - before; n > 1 {
		t.Errorf("50 tokens with unknown keys fetched the keys %d times, want at most 1", n)
	}
	// The one refresh the limiter allowed is spent: a rotation now waits
	// for the next, which is an hour away.
	k := iss.NewKey(t, "ES256")
	iss.Publish(iss.Key(), k)
	if _, err := a.Authenticate(t.Context(), request(iss.Sign(t, k, claims))); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a new key within the refresh limit: %v", err)
	}
}

func TestOIDCRoleClaim(t *testing.T) {
	for _, tc := range []struct {
		claim  string
		claims map[string]any
		want   []Grant
	}{
		{"zombi_role", map[string]any{"zombi_role": "writer"}, []Grant{{Role: RoleWriter}}},
		{"zombi_role", map[string]any{"zombi_role": "reader writer@sales,admin@ops.x"}, []Grant{{Role: RoleReader},
			{Role: RoleWriter, Namespace: catalog.Namespace{"sales"}}, {Role: RoleAdmin, Namespace: catalog.Namespace{"ops", "x"}}}},
		{"zombi_role", map[string]any{"zombi_role": []any{"offline_access", "reader@sales", 7, "uma_authorization"}},
			[]Grant{{Role: RoleReader, Namespace: catalog.Namespace{"sales"}}}},
		{"zombi_role", map[string]any{"zombi_role": map[string]any{"role": "admin"}}, nil},
		{"zombi_role", map[string]any{"role": "admin"}, nil},
		{"realm_access.roles", map[string]any{"realm_access": map[string]any{"roles": []any{"writer"}}}, []Grant{{Role: RoleWriter}}},
		{"https://zombi.example/roles", map[string]any{"https://zombi.example/roles": []any{"admin"}}, []Grant{{Role: RoleAdmin}}},
	} {
		if got := grantsOf(claimAt(tc.claims, tc.claim)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s of %v: grants %v, want %v", tc.claim, tc.claims, got, tc.want)
		}
	}
}

// TestOIDCConfig: an issuer needs an audience; an unreachable issuer
// does not stop the server, its tokens are refused.
func TestOIDCConfig(t *testing.T) {
	if _, err := New(t.Context(), Config{OIDC: OIDCConfig{Issuer: "https://idp.example"}}); err == nil {
		t.Error("an issuer without an audience")
	}
	if _, err := New(t.Context(), Config{OIDC: OIDCConfig{Issuer: "idp.example", Audience: "a"}}); err == nil {
		t.Error("an issuer that is no URL")
	}
	iss := oidctest.New(t)
	claims := iss.Claims("zombi-test", "reader")
	tok := iss.Sign(t, iss.Key(), claims)
	down := mustNew(t, Config{OIDC: OIDCConfig{Issuer: "http://127.0.0.1:1", Audience: "zombi-test"}})
	if _, err := down.Authenticate(t.Context(), request(tok)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("an undiscovered issuer: %v", err)
	}
}
