package security

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zombi-db/zombi/internal/oidctest"
	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestOIDC: a real server accepts JWTs of its OIDC issuer with its
// audience, current, and signed with a key the issuer publishes; it
// refuses expired, not yet valid, wrongly signed, unsigned, wrong
// audience and wrong issuer tokens with 401. After a key rotation the
// new key's tokens are accepted once the keys are fetched again, and the
// old key's for as long as the issuer still publishes it.
func TestOIDC(t *testing.T) {
	iss := oidctest.New(t)
	inst := zombitest.Start(t, "--oidc-issuer", iss.URL, "--oidc-audience", "zombi-test", "--oidc-key-refresh", "100ms")
	k1 := iss.Key()
	claims := iss.Claims("zombi-test", "writer@sales")
	status := func(tok string) int {
		s, hdr, b := zombitest.Call(t, "GET", inst.URL+"/v1/namespaces/sales", "", "Authorization", "Bearer "+tok)
		if s == 401 && (hdr.Get("WWW-Authenticate") == "" || !strings.Contains(string(b), "NotAuthorizedException")) {
			t.Errorf("401 without WWW-Authenticate or the Iceberg error: %s", b)
		}
		return s
	}
	if s := status(iss.Sign(t, k1, claims)); s != 404 {
		t.Fatalf("a valid token: %d, want 404 (allowed; no such namespace)", s)
	}
	admin := iss.Sign(t, k1, iss.Claims("zombi-test", "admin"))
	zombitest.MustCall(t, 200, "POST", inst.URL+"/v1/namespaces", `{"namespace":["sales"]}`, "Authorization", "Bearer "+admin)
	zombitest.MustCall(t, 202, "POST", inst.URL+"/tables/sales.clicks", `{"payload":1}`, "Authorization", "Bearer "+iss.Sign(t, k1, claims))
	zombitest.MustCall(t, 403, "POST", inst.URL+"/tables/ops.clicks", `{"payload":1}`, "Authorization", "Bearer "+iss.Sign(t, k1, claims))
	zombitest.MustCall(t, 403, "GET", inst.URL+"/v1/config", "", "Authorization", "Bearer "+iss.Sign(t, k1, iss.Claims("zombi-test", "")))

	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		edit(c)
		return c
	}
	now := time.Now()
	impostor := iss.NewKey(t, "ES256")
	impostor.ID = k1.ID
	for _, tc := range []struct{ name, tok string }{
		{"expired", iss.Sign(t, k1, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }))},
		{"not yet valid", iss.Sign(t, k1, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() }))},
		{"wrongly signed", iss.Sign(t, impostor, claims)},
		{"wrong audience", iss.Sign(t, k1, with(func(c jwt.MapClaims) { c["aud"] = "another-service" }))},
		{"wrong issuer", iss.Sign(t, k1, with(func(c jwt.MapClaims) { c["iss"] = "https://idp.example" }))},
		{"alg none", oidctest.Unsigned(t, k1.ID, claims)},
	} {
		if s := status(tc.tok); s != 401 {
			t.Errorf("%s: %d, want 401", tc.name, s)
		}
	}

	k2 := iss.NewKey(t, "RS256")
	if s := status(iss.Sign(t, k2, claims)); s != 401 {
		t.Errorf("a key the issuer does not publish: %d, want 401", s)
	}
	iss.Publish(k1, k2)
	if s := status(iss.Sign(t, k2, claims)); s != 200 {
		t.Errorf("the issuer's new key: %d, want 200", s)
	}
	if s := status(iss.Sign(t, k1, claims)); s != 200 {
		t.Errorf("the old key, still published: %d, want 200", s)
	}
	k3 := iss.NewKey(t, "ES256")
	iss.Publish(k2, k3)
	if s := status(iss.Sign(t, k3, claims)); s != 200 {
		t.Errorf("the issuer's third key: %d, want 200", s)
	}
	if s := status(iss.Sign(t, k1, claims)); s != 401 {
		t.Errorf("the old key, retired: %d, want 401", s)
	}
}

// TestOIDCKeyFetchesBounded: tokens signed with unknown keys, as many as
// an attacker likes, make the server fetch the issuer's keys at most once
// per --oidc-key-refresh (default a minute).
func TestOIDCKeyFetchesBounded(t *testing.T) {
	iss := oidctest.New(t)
	inst := zombitest.Start(t, "--oidc-issuer", iss.URL, "--oidc-audience", "zombi-test")
	before := iss.KeyFetches()
	claims := iss.Claims("zombi-test", "admin")
	for i := 0; i < 40; i++ {
		k := iss.NewKey(t, "ES256")
		zombitest.MustCall(t, 401, "GET", inst.URL+"/v1/config", "", "Authorization", "Bearer "+iss.Sign(t, k, claims))
	}
	if n := iss.KeyFetches() - before; n > 1 {
		t.Errorf("40 tokens signed with unknown keys fetched the keys %d times, want at most 1", n)
	}
	zombitest.MustCall(t, 200, "GET", inst.URL+"/v1/config", "", "Authorization", "Bearer "+iss.Sign(t, iss.Key(), claims))
}
