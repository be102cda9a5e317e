package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SigningKey signs and verifies the tokens /v1/oauth/tokens issues.
type SigningKey struct {
	key ed25519.PrivateKey
	// ID is the key's RFC 7638 thumbprint, the kid of the tokens it signs.
	ID string
}

func newSigningKey(k ed25519.PrivateKey) *SigningKey {
	pub := k.Public().(ed25519.PublicKey)
	// RFC 7638: the SHA-256 of the members crv, kty, x in this order.
	thumb := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return &SigningKey{key: k, ID: base64.RawURLEncoding.EncodeToString(thumb[:])}
}

// ParseSigningKey reads an Ed25519 private key in PKCS #8 PEM, as
// `openssl genpkey -algorithm ed25519` writes it.
func ParseSigningKey(b []byte) (*SigningKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY (PKCS #8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return newSigningKey(ek), nil
}

// GenerateSigningKey makes a new Ed25519 key and its PEM encoding.
func GenerateSigningKey() (*SigningKey, []byte, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return newSigningKey(k), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadSigningKey reads the key at path. With create, a missing file is
// made with a new key (mode 0600, in a directory of mode 0700), atomically:
// a crash leaves the old state or the whole key.
func LoadSigningKey(path string, create bool) (k *SigningKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return createSigningKey(path)
	}
	if err != nil {
		return nil, false, err
	}
	k, err = ParseSigningKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return k, false, nil
}

func createSigningKey(path string) (*SigningKey, bool, error) {
	k, pemBytes, err := GenerateSigningKey()
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.CreateTemp(dir, ".signing-key-*")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	// Another process may have made the key meanwhile: keep the first.
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, _, err := LoadSigningKey(path, false)
			return k, false, err
		}
		return nil, false, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return k, true, nil
}

// ReadableByOthers reports whether others than its owner may read the
// file at path.
func ReadableByOthers(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o077 != 0
}
