package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The issuer and audience of the tokens Zombi issues. Every node that
// shares a signing key accepts the others' tokens.
const (
	tokenIssuer   = "zombi"
	tokenAudience = "zombi"
	tokenType     = "at+jwt" // RFC 9068
)

// tokenClaims are the claims of a token Zombi issues: the client is the
// subject; its grants are looked up when the token is used, so a client
// removed from the configuration loses its tokens.
type tokenClaims struct {
	jwt.RegisteredClaims
	// AuthTime is when the client last showed its secret: refreshing a
	// token by exchanging it keeps it.
	AuthTime int64 `json:"auth_time"`
	// SecretVersion names the client's secret hash the token was issued
	// under: a client given a new secret loses its old tokens.
	SecretVersion string `json:"zombi_sv"`
}

// secretVersion is a short digest of a client's secret hash.
func secretVersion(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// issue signs a token for client c, valid from now for lifetime, and
// returns it with its expiry. A JWT's times are whole seconds, so the
// token expires at the whole second at or before now+lifetime.
func issue(key *SigningKey, c *client, authTime, now time.Time, lifetime time.Duration) (string, time.Time, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(lifetime).Truncate(time.Second)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   c.id,
			Audience:  jwt.ClaimStrings{tokenAudience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		AuthTime:      authTime.Unix(),
		SecretVersion: c.version,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.ID
	t.Header["typ"] = tokenType
	tok, err := t.SignedString(key.key)
	return tok, exp, err
}

var errNotOurs = errors.New("not a token of this server's keys")

// verifyOwn checks a token Zombi issued: signed by one of keys, of our
// issuer and audience, current within skew. It returns the claims; the
// caller checks the client.
func verifyOwn(raw string, keys []*SigningKey, now func() time.Time, skew time.Duration) (*tokenClaims, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(skew),
		jwt.WithTimeFunc(now),
	)
	var claims tokenClaims
	_, err := p.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != tokenType {
			return nil, fmt.Errorf("token type %q, want %s", typ, tokenType)
		}
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.ID == kid {
				return k.key.Public(), nil
			}
		}
		return nil, errNotOurs
	})
	if err != nil {
		return nil, err
	}
	return &claims, nil
}
