// Package oidctest is an OpenID Connect issuer for tests: an HTTP server
// on 127.0.0.1 with a discovery document and a JWKS, whose keys a test
// publishes, rotates and retires, and which signs tokens with them.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the issuer: its tokens' iss and the base of its discovery
	// document.
	URL string

	srv        *httptest.Server
	mu         sync.Mutex
	keys       []*Key
	nextID     int
	keyFetches atomic.Int64
}

// Key is a signing key of the issuer.
type Key struct {
	ID  string
	Alg string // ES256 or RS256
	key crypto.Signer
}

// New starts an issuer with one published ES256 key; it stops when the
// test ends.
func New(tb testing.TB) *Issuer {
	tb.Helper()
	i := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"ES256", "RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		i.keyFetches.Add(1)
		i.mu.Lock()
		var set jwkset.JWKSMarshal
		for _, k := range i.keys {
			jwk, err := jwkset.NewJWKFromKey(k.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
				ALG: jwkset.ALG(k.Alg), KID: k.ID, USE: jwkset.UseSig}})
			if err != nil {
				i.mu.Unlock()
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			set.Keys = append(set.Keys, jwk.Marshal())
		}
		i.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	i.srv = httptest.NewServer(mux)
	tb.Cleanup(i.srv.Close)
	i.URL = i.srv.URL
	i.Publish(i.NewKey(tb, "ES256"))
	return i
}

// NewKey makes a key (ES256 or RS256) the issuer does not publish yet.
func (i *Issuer) NewKey(tb testing.TB, alg string) *Key {
	tb.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("oidctest: algorithm %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.nextID++
	return &Key{ID: "key-" + strconv.Itoa(i.nextID), Alg: alg, key: k}
}

// Publish makes keys the issuer's JWKS, in place of the ones before.
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = keys
}

// Key is the first published key.
func (i *Issuer) Key() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0]
}

// KeyFetches is how often the JWKS was fetched.
func (i *Issuer) KeyFetches() int64 { return i.keyFetches.Load() }

// Claims are the claims of a token for audience with the role claim
// zombi_role: issued now, valid for an hour.
func (i *Issuer) Claims(audience, role string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":        i.URL,
		"sub":        "alice",
		"aud":        audience,
		"iat":        now.Unix(),
		"nbf":        now.Unix(),
		"exp":        now.Add(time.Hour).Unix(),
		"zombi_role": role,
	}
}

// Sign signs claims with k, with k's kid in the header.
func (i *Issuer) Sign(tb testing.TB, k *Key, claims jwt.MapClaims) string {
	tb.Helper()
	m := jwt.GetSigningMethod(k.Alg)
	t := jwt.NewWithClaims(m, claims)
	t.Header["kid"] = k.ID
	s, err := t.SignedString(k.key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Unsigned is claims as a token with alg none.
func Unsigned(tb testing.TB, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
