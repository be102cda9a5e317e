package security

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
	"golang.org/x/crypto/bcrypt"
)

type tokenAnswer struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type"`
	Error           string `json:"error"`
}

func hashOf(t *testing.T, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// fetchToken posts form to /v1/oauth/tokens as a client does.
func fetchToken(t *testing.T, base string, want int, form url.Values, headers ...string) tokenAnswer {
	t.Helper()
	status, hdr, b := zombitest.Call(t, "POST", base+"/v1/oauth/tokens", form.Encode(),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	if status != want {
		t.Fatalf("token request: %d %s, want %d", status, b, want)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("token answer without Cache-Control: no-store")
	}
	var a tokenAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("token answer %s: %v", b, err)
	}
	return a
}

func credentials(id, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {"catalog"}}
}

// TestOAuthClients: clients take tokens with their secrets and act with
// their roles; a token stays valid across a restart (the signing key is
// kept in the data dir) and on another node given the same key and
// clients, and on no node with another key.
func TestOAuthClients(t *testing.T) {
	// A client with two grants is given twice, with the same hash.
	spark := hashOf(t, "s3cret")
	clients := []string{
		"--oauth-client", "spark:writer:" + spark,
		"--oauth-client", "spark:admin@ops:" + spark,
		"--oauth-client", "bi:reader@sales:" + hashOf(t, "bi-secret"),
	}
	a := zombitest.Start(t, clients...)
	keyPath := filepath.Join(a.DataDir, "auth", "token-signing-key.pem")
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the signing key under the data dir: %v %v", fi, err)
	}

	tok := fetchToken(t, a.URL, 200, credentials("spark", "s3cret"))
	// expires_in counts whole seconds to the token's exp, itself a whole
	// second at most an hour after the token was issued.
	if tok.TokenType != "bearer" || (tok.ExpiresIn != 3600 && tok.ExpiresIn != 3599) || tok.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("token answer %+v", tok)
	}
	bearer := []string{"Authorization", "Bearer " + tok.AccessToken}
	zombitest.MustCall(t, 403, "POST", a.URL+"/v1/namespaces", `{"namespace":["sales"]}`, bearer...)
	zombitest.MustCall(t, 200, "POST", a.URL+"/v1/namespaces", `{"namespace":["ops"]}`, bearer...)
	zombitest.MustCall(t, 202, "POST", a.URL+"/tables/ops.clicks", `{"payload":1}`, bearer...)

	bi := fetchToken(t, a.URL, 200, url.Values{"grant_type": {"client_credentials"}}, "Authorization", "Basic "+basic("bi", "bi-secret"))
	zombitest.MustCall(t, 403, "GET", a.URL+"/v1/namespaces/ops/tables", "", "Authorization", "Bearer "+bi.AccessToken)
	zombitest.MustCall(t, 403, "POST", a.URL+"/tables/sales.clicks", `{"payload":1}`, "Authorization", "Bearer "+bi.AccessToken)

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong secret", credentials("spark", "nope"), 401, "invalid_client"},
		{"unknown client", credentials("nobody", "s3cret"), 401, "invalid_client"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"spark"}, "password": {"s3cret"}}, 400, "unsupported_grant_type"},
		{"not a token of ours", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {"x.y.z"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}, 400, "invalid_grant"},
	} {
		if got := fetchToken(t, a.URL, tc.status, tc.form); got.Error != tc.code {
			t.Errorf("%s: error %q, want %q", tc.name, got.Error, tc.code)
		}
	}
	// A refresh as the Java client sends it: token exchange with the
	// current token.
	refreshed := fetchToken(t, a.URL, 200, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {tok.AccessToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "scope": {"catalog"}},
		bearer...)
	zombitest.MustCall(t, 200, "GET", a.URL+"/v1/namespaces/ops", "", "Authorization", "Bearer "+refreshed.AccessToken)

	// Another node with the same key and clients accepts the token; a
	// node with its own key does not.
	same := zombitest.Start(t, append([]string{"--token-signing-key", keyPath}, clients...)...)
	zombitest.MustCall(t, 200, "GET", same.URL+"/v1/config", "", bearer...)
	other := zombitest.Start(t, clients...)
	zombitest.MustCall(t, 401, "GET", other.URL+"/v1/config", "", bearer...)

	// A restart on the same data dir keeps the key.
	a.Stop(t)
	again := zombitest.StartIn(t, a.DataDir, clients...)
	zombitest.MustCall(t, 200, "GET", again.URL+"/v1/namespaces/ops", "", bearer...)
	if !strings.Contains(again.Log(), "signing OAuth tokens") || strings.Contains(again.Log(), "made a token signing key") {
		t.Errorf("the restarted server made a new key")
	}
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}
