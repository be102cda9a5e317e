package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/auth"
)

// authCredentials parses the static tokens and OAuth clients.
func (c *config) authCredentials() (auth.Config, error) {
	var ac auth.Config
	for _, t := range c.AuthTokens {
		tok, err := auth.ParseToken(t)
		if err != nil {
			return ac, fmt.Errorf("--auth-token: %w", err)
		}
		ac.Tokens = append(ac.Tokens, tok)
	}
	for _, t := range c.AdminTokens {
		ac.Tokens = append(ac.Tokens, auth.Token{Secret: t, Grant: auth.Grant{Role: auth.RoleAdmin}})
	}
	ac.MetricsTokens = c.MetricsTokens
	for _, s := range c.OAuthClients {
		cl, err := auth.ParseClient(s)
		if err != nil {
			return ac, fmt.Errorf("--oauth-client: %w", err)
		}
		ac.Clients = append(ac.Clients, cl)
	}
	return ac, nil
}

// signingKeyName is where the token signing key is made when no
// --token-signing-key is given.
var signingKeyName = filepath.Join("auth", "token-signing-key.pem")

// authenticator builds the server's Authenticator from the config; nil
// when nothing is configured (auth off).
func (c *config) authenticator(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) (*auth.Authenticator, error) {
	ac, err := c.authCredentials()
	if err != nil {
		return nil, err
	}
	ac.TokenLifetime, ac.ClockSkew = c.TokenLifetime, c.TokenClockSkew
	if ac.ClockSkew == 0 {
		ac.ClockSkew = -1 // none; 0 is the default in auth.Config
	}
	ac.Logger, ac.Registerer = log, reg
	if c.OIDCIssuer != "" {
		ac.OIDC = auth.OIDCConfig{Issuer: c.OIDCIssuer, Audience: c.OIDCAudience, RoleClaim: c.OIDCRoleClaim, KeyRefresh: c.OIDCKeyRefresh}
	}
	if len(ac.Clients) > 0 {
		paths := c.SigningKeys
		if len(paths) == 0 {
			paths = []string{filepath.Join(c.DataDir, signingKeyName)}
		}
		for i, p := range paths {
			k, created, err := auth.LoadSigningKey(p, len(c.SigningKeys) == 0)
			if err != nil {
				return nil, fmt.Errorf("token signing key: %w", err)
			}
			if created {
				log.Info("made a token signing key; nodes that share OAuth clients need the same key (--token-signing-key)", "path", p, "kid", k.ID)
			}
			if auth.ReadableByOthers(p) {
				log.Warn("the token signing key can be read by other users than its owner: anyone who reads it can make tokens", "path", p)
			}
			if i == 0 {
				log.Info("signing OAuth tokens", "kid", k.ID)
			}
			ac.SigningKeys = append(ac.SigningKeys, k)
		}
		for _, cl := range ac.Clients {
			if cost, _ := auth.BcryptCost(cl.Hash); cost < auth.MinBcryptCost {
				log.Warn("an OAuth client's secret hash is cheap to guess from", "client", cl.ID, "bcrypt_cost", cost, "want_at_least", auth.MinBcryptCost)
			}
		}
	} else if len(c.SigningKeys) > 0 {
		log.Warn("--token-signing-key without --oauth-client: no tokens are issued or accepted")
	}
	if len(ac.Tokens) == 0 && len(ac.MetricsTokens) == 0 && len(ac.Clients) == 0 && ac.OIDC.Issuer == "" {
		return nil, nil
	}
	return auth.New(ctx, ac)
}
