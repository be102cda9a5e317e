package auth

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Token is a static bearer token and what it may do. The same token given
// several times has all its grants.
type Token struct {
	Secret string
	// Grant is the token's role; without one (Plain) the token is an
	// admin in every namespace that may not compact or maintain tables
	// on request: what a plain --auth-token meant before roles.
	Grant Grant
	Plain bool
}

// ParseToken parses an --auth-token value, TOKEN or TOKEN:GRANT (see
// ParseGrant). The grant is what follows the last colon when that parses
// as one; otherwise the whole value is a plain token.
func ParseToken(s string) (Token, error) {
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if g, err := ParseGrant(s[i+1:]); err == nil {
			return Token{Secret: s[:i], Grant: g}, nil
		}
	}
	if s == "" {
		return Token{}, fmt.Errorf("empty token")
	}
	return Token{Secret: s, Plain: true}, nil
}

// Client is an OAuth2 client that may take tokens from /v1/oauth/tokens
// with its ID and secret. The same client given several times has all its
// grants, and must have the same hash each time.
type Client struct {
	ID    string
	Grant Grant
	// Hash is the bcrypt hash of the client's secret.
	Hash string
}

// MinBcryptCost is the least bcrypt cost a client secret's hash should
// have; cheaper hashes are accepted with a warning (tests use them).
const MinBcryptCost = 10

// maxSecret is the longest client secret: bcrypt reads only the first 72
// bytes, and a longer secret would match any with the same prefix.
const maxSecret = 72

// ParseClient parses an --oauth-client value, ID:GRANT:HASH: the client
// ID, its grant (see ParseGrant) and the bcrypt hash of its secret.
func ParseClient(s string) (Client, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Client{}, fmt.Errorf("oauth client %q: want ID:ROLE[@NAMESPACE]:BCRYPT-HASH", redactHash(s))
	}
	id, grant, hash := parts[0], parts[1], parts[2]
	if err := checkClientID(id); err != nil {
		return Client{}, err
	}
	g, err := ParseGrant(grant)
	if err != nil {
		return Client{}, fmt.Errorf("oauth client %q: %w", id, err)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return Client{}, fmt.Errorf("oauth client %q: the secret's hash is not a bcrypt hash (make one with `zombi oauth-client`): %w", id, err)
	}
	return Client{ID: id, Grant: g, Hash: hash}, nil
}

// checkClientID allows printable ASCII without spaces and colons, which
// separate the ID from the secret in Basic credentials and in clients'
// credential=ID:SECRET.
func checkClientID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("oauth client ID %q: want 1 to 128 characters", id)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' || id[i] == ':' {
			return fmt.Errorf("oauth client ID %q: want printable ASCII without spaces or colons", id)
		}
	}
	return nil
}

// redactHash drops what follows the last colon of an --oauth-client value
// from error messages.
func redactHash(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i] + ":…"
	}
	return s
}

// BcryptCost is the cost of a bcrypt hash.
func BcryptCost(hash string) (int, error) { return bcrypt.Cost([]byte(hash)) }
