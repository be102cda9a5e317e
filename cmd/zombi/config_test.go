package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/auth"
	"golang.org/x/crypto/bcrypt"
)

func TestParseConfig(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c *config)
		err   bool
	}{
		{name: "defaults", check: func(t *testing.T, c *config) {
			if c.Listen != "127.0.0.1:8181" || c.DataDir != "./zombi-data" || c.PostgresURL != "" ||
				c.Warehouse != abs("zombi-data/warehouse") || c.S3Region != "us-east-1" || !c.S3PathStyle ||
				c.IdempotencyTTL != 30*time.Minute || len(c.AuthTokens) != 0 || c.SyncInterval != 500*time.Microsecond {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "env", env: map[string]string{
			"ZOMBI_LISTEN": "0.0.0.0:9000", "ZOMBI_POSTGRES_URL": "postgres://x", "ZOMBI_WAREHOUSE": "s3://b/p",
			"ZOMBI_S3_PATH_STYLE": "false", "ZOMBI_AUTH_TOKEN": "a, b", "ZOMBI_IDEMPOTENCY_LIFETIME": "5m",
		}, check: func(t *testing.T, c *config) {
			if c.Listen != "0.0.0.0:9000" || c.PostgresURL != "postgres://x" || c.Warehouse != "s3://b/p" ||
				c.S3PathStyle || !reflect.DeepEqual(c.AuthTokens, []string{"a", "b"}) || c.IdempotencyTTL != 5*time.Minute {
				t.Errorf("env: %+v", c)
			}
		}},
		{name: "flags override env", env: map[string]string{"ZOMBI_LISTEN": "0.0.0.0:9000"},
			args: []string{"--listen", "127.0.0.1:1", "--auth-token", "x", "--auth-token", "y", "--data-dir", "d"},
			check: func(t *testing.T, c *config) {
				if c.Listen != "127.0.0.1:1" || !reflect.DeepEqual(c.AuthTokens, []string{"x", "y"}) || c.Warehouse != abs("d/warehouse") {
					t.Errorf("flags: %+v", c)
				}
			}},
		{name: "AWS keys as fallback", env: map[string]string{"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"},
			check: func(t *testing.T, c *config) {
				if c.S3AccessKey != "ak" || c.S3SecretKey != "sk" {
					t.Errorf("aws: %+v", c)
				}
			}},
		{name: "bad env value", env: map[string]string{"ZOMBI_S3_PATH_STYLE": "maybe"}, err: true},
		{name: "bad flag", args: []string{"--no-such-flag"}, err: true},
		{name: "stray argument", args: []string{"extra"}, err: true},
		{name: "empty token", args: []string{"--auth-token", ""}, err: true},
		{name: "sync interval", env: map[string]string{"ZOMBI_SYNC_INTERVAL": "2ms"}, check: func(t *testing.T, c *config) {
			if c.SyncInterval != 2*time.Millisecond {
				t.Errorf("sync interval %v", c.SyncInterval)
			}
		}},
		{name: "resource bounds", check: func(t *testing.T, c *config) {
			if c.MaxConnections != 4096 || c.BodyTimeout != 10*time.Second || c.MinBodyRate != 16<<10 || len(c.MetricsTokens) != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "resource bounds from env", env: map[string]string{
			"ZOMBI_MAX_CONNECTIONS": "100", "ZOMBI_BODY_TIMEOUT": "3s", "ZOMBI_MIN_BODY_RATE": "1MiB", "ZOMBI_METRICS_TOKEN": "m1, m2",
		}, check: func(t *testing.T, c *config) {
			if c.MaxConnections != 100 || c.BodyTimeout != 3*time.Second || c.MinBodyRate != 1<<20 ||
				!reflect.DeepEqual(c.MetricsTokens, []string{"m1", "m2"}) {
				t.Errorf("env: %+v", c)
			}
		}},
		{name: "no connections", args: []string{"--max-connections", "0"}, err: true},
		{name: "cluster without postgres", args: []string{"--cluster"}, err: true},
		{name: "cluster", args: []string{"--cluster", "--postgres-url", "postgres://x", "--advertise-url", "http://10.0.0.1:8181"},
			check: func(t *testing.T, c *config) {
				if !c.Cluster || c.AdvertiseURL != "http://10.0.0.1:8181" {
					t.Errorf("cluster: %+v", c)
				}
			}},
		{name: "no body timeout", args: []string{"--body-timeout", "0s"}, err: true},
		{name: "negative sync interval", args: []string{"--sync-interval", "-1ms"}, err: true},
		{name: "sync interval over 1s", args: []string{"--sync-interval", "2s"}, err: true},
		{name: "maintenance floors", check: func(t *testing.T, c *config) {
			if c.MinOrphanAge != time.Hour || c.MinSnapshotAge != 15*time.Minute {
				t.Errorf("floors %v, %v", c.MinOrphanAge, c.MinSnapshotAge)
			}
		}},
		{name: "maintenance floors from env", env: map[string]string{"ZOMBI_MIN_ORPHAN_AGE": "2h", "ZOMBI_MIN_SNAPSHOT_AGE": "0"},
			check: func(t *testing.T, c *config) {
				if c.MinOrphanAge != 2*time.Hour || c.MinSnapshotAge != 0 {
					t.Errorf("floors %v, %v", c.MinOrphanAge, c.MinSnapshotAge)
				}
			}},
		{name: "negative floor", args: []string{"--min-orphan-age", "-1s"}, err: true},
		{name: "live view", check: func(t *testing.T, c *config) {
			if !c.Live || c.LivePinWindow != time.Minute || c.LiveTailReuse != 20*time.Minute {
				t.Errorf("live %v, pin window %v, tail reuse %v", c.Live, c.LivePinWindow, c.LiveTailReuse)
			}
		}},
		// Hot-tail files must outlive the plans listing them: reuse plus
		// plan lifetime below the orphan floor.
		{name: "tail reuse and plan lifetime reach the orphan floor", args: []string{"--live-tail-reuse", "50m"}, err: true},
		{name: "cluster without postgres", args: []string{"--cluster"}, err: true},
		{name: "cluster", args: []string{"--cluster", "--postgres-url", "postgres://db/zombi"}, check: func(t *testing.T, c *config) {
			if !c.Cluster {
				t.Error("--cluster not set")
			}
		}},
		{name: "plan lifetime reaches the orphan floor", args: []string{"--plan-lifetime", "45m", "--min-orphan-age", "1h5m"}, err: true},
		{name: "below the orphan floor", args: []string{"--live-tail-reuse", "30m", "--plan-lifetime", "29m"}, check: func(t *testing.T, c *config) {}},
		{name: "no live view, no check", args: []string{"--live=false", "--live-tail-reuse", "2h"}, check: func(t *testing.T, c *config) {}},
		{name: "no orphan floor", args: []string{"--min-orphan-age", "0"}, check: func(t *testing.T, c *config) {}},
		{name: "zero pin window", args: []string{"--live-pin-window", "0s"}, err: true},
		{name: "change feed", check: func(t *testing.T, c *config) {
			if !c.PostgresListen || c.ChangePollInterval != 500*time.Millisecond {
				t.Errorf("listen %v, poll %v", c.PostgresListen, c.ChangePollInterval)
			}
		}},
		{name: "change feed polling only", args: []string{"--postgres-listen=false", "--change-poll-interval", "200ms"},
			check: func(t *testing.T, c *config) {
				if c.PostgresListen || c.ChangePollInterval != 200*time.Millisecond {
					t.Errorf("listen %v, poll %v", c.PostgresListen, c.ChangePollInterval)
				}
			}},
		{name: "no change poll", args: []string{"--change-poll-interval", "0s"}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"ZOMBI_LISTEN", "ZOMBI_POSTGRES_URL", "ZOMBI_WAREHOUSE", "ZOMBI_S3_PATH_STYLE", "ZOMBI_AUTH_TOKEN", "ZOMBI_IDEMPOTENCY_LIFETIME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ZOMBI_DATA_DIR", "ZOMBI_MIN_ORPHAN_AGE", "ZOMBI_MIN_SNAPSHOT_AGE",
				"ZOMBI_MAX_CONNECTIONS", "ZOMBI_BODY_TIMEOUT", "ZOMBI_MIN_BODY_RATE", "ZOMBI_METRICS_TOKEN",
				"ZOMBI_LIVE", "ZOMBI_LIVE_PIN_WINDOW", "ZOMBI_LIVE_TAIL_REUSE", "ZOMBI_PLAN_LIFETIME"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := parseConfig("serve", tc.args)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestMinBodyRate(t *testing.T) {
	for _, c := range []struct {
		flag byteSize
		want int64
	}{
		{0, -1}, // no deadline; server.Options takes 0 as its default
		{16 << 10, 16 << 10},
	} {
		if got := minBodyRate(c.flag); got != c.want {
			t.Errorf("minBodyRate(%v) = %v, want %v", c.flag, got, c.want)
		}
	}
}

func TestSyncInterval(t *testing.T) {
	for _, c := range []struct{ flag, want time.Duration }{
		{0, -1}, // no pacing; hot.Options takes 0 as its default
		{time.Millisecond, time.Millisecond},
	} {
		if got := syncInterval(c.flag); got != c.want {
			t.Errorf("syncInterval(%v) = %v, want %v", c.flag, got, c.want)
		}
	}
}

func TestNoFloorIfZero(t *testing.T) {
	for _, c := range []struct{ flag, want time.Duration }{
		{0, -1}, // no floor; compaction.Options takes 0 as its default
		{time.Hour, time.Hour},
	} {
		if got := noFloorIfZero(c.flag); got != c.want {
			t.Errorf("noFloorIfZero(%v) = %v, want %v", c.flag, got, c.want)
		}
	}
}

func TestAuthFlags(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	client := "spark:writer@sales:" + string(hash)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		err  bool
	}{
		{name: "token with a role", args: []string{"--auth-token", "t:reader@sales.eu"}},
		{name: "client", args: []string{"--oauth-client", client}},
		{name: "clients from env", env: map[string]string{"ZOMBI_OAUTH_CLIENT": client + "," + client}},
		{name: "client without a hash", args: []string{"--oauth-client", "spark:writer:secret"}, err: true},
		{name: "client with a bad role", args: []string{"--oauth-client", "spark:owner:" + string(hash)}, err: true},
		{name: "issuer without audience", args: []string{"--oidc-issuer", "https://idp.example"}, err: true},
		{name: "issuer", args: []string{"--oidc-issuer", "https://idp.example", "--oidc-audience", "zombi"}},
		{name: "no token lifetime", args: []string{"--token-lifetime", "0s"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := parseConfig("serve", tc.args)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want one: %v", err, tc.err)
			}
		})
	}
}

func TestOAuthClientCommand(t *testing.T) {
	var out strings.Builder
	if err := oauthClient([]string{"-cost", "10", "spark", "writer@sales"}, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	var secret, value string
	for _, line := range strings.Split(out.String(), "\n") {
		if s, ok := strings.CutPrefix(line, "client secret (shown once): "); ok {
			secret = s
		}
		if v, ok := strings.CutPrefix(line, "server flag:                --oauth-client '"); ok {
			value = strings.TrimSuffix(v, "'")
		}
	}
	c, err := auth.ParseClient(value)
	if err != nil || c.ID != "spark" || c.Grant.String() != "writer@sales" {
		t.Fatalf("%q: %+v %v", value, c, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(c.Hash), []byte(secret)) != nil {
		t.Errorf("the hash is not of the secret %q", secret)
	}
	out.Reset()
	if err := oauthClient([]string{"-secret-stdin", "-cost", "10", "bi", "reader"}, strings.NewReader("hunter2\n"), &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("a secret from stdin is printed: %s", out.String())
	}
	if err := oauthClient([]string{"bi", "boss"}, strings.NewReader(""), &out); err == nil {
		t.Errorf("a bad role was accepted")
	}
}
