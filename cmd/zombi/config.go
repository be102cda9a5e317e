package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// config is everything serve and migrate need, from flags and ZOMBI_* env.
type config struct {
	Listen          string
	DataDir         string
	PostgresURL     string
	Warehouse       string
	S3Endpoint      string
	S3Region        string
	S3AccessKey     string
	S3SecretKey     string
	S3PathStyle     bool
	S3VendKeys      bool
	AuthTokens      []string
	LogLevel        string
	LogFormat       string
	IdempotencyTTL  time.Duration
	ShutdownTimeout time.Duration
	PprofListen     string
}

// tokenList is a repeatable flag.
type tokenList []string

func (t *tokenList) String() string { return strings.Join(*t, ",") }
func (t *tokenList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty token")
	}
	*t = append(*t, v)
	return nil
}

// envName is the environment variable of a flag: --s3-endpoint is
// ZOMBI_S3_ENDPOINT.
func envName(flagName string) string {
	return "ZOMBI_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseConfig(cmd string, args []string) (*config, error) {
	fs := flag.NewFlagSet("zombi "+cmd, flag.ContinueOnError)
	c := &config{}
	var tokens tokenList
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8181", "address to serve HTTP on")
	fs.StringVar(&c.DataDir, "data-dir", "./zombi-data", "directory for local state (embedded store, default warehouse)")
	fs.StringVar(&c.PostgresURL, "postgres-url", "", "Postgres URL for table pointers; empty uses the embedded store under --data-dir")
	fs.StringVar(&c.Warehouse, "warehouse", "", "where table files live: a directory or s3://bucket/prefix (default <data-dir>/warehouse)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL (MinIO, R2, ...); empty means AWS")
	fs.StringVar(&c.S3Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", "", "S3 access key (default: AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", "", "S3 secret key (default: AWS_SECRET_ACCESS_KEY)")
	fs.BoolVar(&c.S3PathStyle, "s3-path-style", true, "use path-style S3 requests (needed by MinIO and most self-hosted servers)")
	fs.BoolVar(&c.S3VendKeys, "s3-vend-static-keys", false, "hand the static S3 keys to catalog clients in loadTable config")
	fs.Var(&tokens, "auth-token", "bearer token clients must send (repeatable; env: comma-separated); none disables auth")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-lifetime", 30*time.Minute, "how long Idempotency-Key receipts are kept")
	fs.StringVar(&c.PprofListen, "pprof-listen", "", "serve Go's /debug/pprof on this address (off when empty; keep it on loopback)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long graceful shutdown waits for requests in flight")

	// Environment first, flags override. An empty variable counts as unset.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := os.Getenv(envName(f.Name))
		if v == "" || envErr != nil {
			return
		}
		if f.Name == "auth-token" {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					tokens = append(tokens, t)
				}
			}
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	c.AuthTokens = tokens
	if c.S3AccessKey == "" {
		c.S3AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if c.S3SecretKey == "" {
		c.S3SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if c.Warehouse == "" {
		c.Warehouse = filepath.Join(c.DataDir, "warehouse")
	}
	if !strings.Contains(c.Warehouse, "://") {
		abs, err := filepath.Abs(c.Warehouse)
		if err != nil {
			return nil, err
		}
		c.Warehouse = abs
	}
	return c, nil
}

func (c *config) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
}
