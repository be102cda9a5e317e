package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zombi-db/zombi/flusher"
	"github.com/zombi-db/zombi/live"
	"github.com/zombi-db/zombi/planning"
	"github.com/zombi-db/zombi/server"
	"github.com/zombi-db/zombi/tail"
)

// config is everything serve and migrate need, from flags and ZOMBI_* env.
type config struct {
	Listen      string
	DataDir     string
	PostgresURL string
	Warehouse   string
	S3Endpoint  string
	S3Region    string
	S3AccessKey string
	S3SecretKey string
	S3PathStyle bool
	S3VendKeys  bool
	S3STS       bool
	S3STSURL    string
	S3STSRole   string
	S3STSTTL    time.Duration
	// AllowedLocations are where tables and views may live besides the
	// warehouse.
	AllowedLocations []string
	LogLevel         string
	LogFormat        string
	IdempotencyTTL   time.Duration
	MetadataCheck    time.Duration
	ShutdownTimeout  time.Duration
	PprofListen      string

	// How table changes other nodes commit to Postgres reach this one.
	PostgresListen     bool
	ChangePollInterval time.Duration

	// Ingest and the hot tier.
	Durability        string
	SyncInterval      time.Duration
	AutoCreate        bool
	InferSchemas      bool
	InferTimestamps   bool
	InferTimeField    string
	DefaultNamespace  string
	IdempotencyWindow time.Duration
	MaxBacklog        byteSize
	MaxEventBytes     byteSize
	MaxBulkBytes      byteSize
	MaxInFlight       byteSize

	// HTTP limits.
	BodyTimeout    time.Duration
	MinBodyRate    byteSize
	MaxConnections int

	// The live tail (GET /tables/{table}/stream).
	MaxStreamSubscribers int

	// Flusher, and the node's part in a cluster.
	Cluster       bool
	AdvertiseURL  string
	NodeID        string
	FlushInterval time.Duration
	HotRetention  time.Duration
	CommitWait    time.Duration

	// Auth: static tokens (TOKEN[:ROLE[@NAMESPACE]]), OAuth2 clients
	// (ID:ROLE[@NAMESPACE]:BCRYPT-HASH) and the keys of their tokens, an
	// OIDC issuer.
	AuthTokens     []string
	AdminTokens    []string
	MetricsTokens  []string
	OAuthClients   []string
	SigningKeys    []string
	TokenLifetime  time.Duration
	TokenClockSkew time.Duration
	OIDCIssuer     string
	OIDCAudience   string
	OIDCRoleClaim  string
	OIDCKeyRefresh time.Duration

	// Compaction and maintenance.
	MaintenanceInterval time.Duration
	MinOrphanAge        time.Duration
	MinSnapshotAge      time.Duration

	// Server-side scan planning.
	ScanPlanning  string
	PlanLifetime  time.Duration
	MaxPlans      int
	PlanPageFiles int

	// The live catalog view.
	Live          bool
	LivePinWindow time.Duration
	LiveTailReuse time.Duration
}

// byteSize is a flag holding a number of bytes, written as a plain number
// or with a KiB, MiB or GiB suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a byte size (e.g. 1048576, 64KiB, 32MiB, 1GiB)", v)
	}
	*b = byteSize(n * mult)
	return nil
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
	var tokens, admins, metricsTokens, allowed, clients, keys tokenList
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8181", "address to serve HTTP on")
	fs.StringVar(&c.DataDir, "data-dir", "./zombi-data", "directory for local state (embedded store, default warehouse)")
	fs.StringVar(&c.PostgresURL, "postgres-url", "", "Postgres URL for table pointers; empty uses the embedded store under --data-dir")
	fs.BoolVar(&c.PostgresListen, "postgres-listen", true, "learn of table changes other nodes commit by LISTEN/NOTIFY; turn off behind a transaction-pooling proxy (PgBouncer), which loses notifications, to rely on --change-poll-interval alone")
	fs.DurationVar(&c.ChangePollInterval, "change-poll-interval", 500*time.Millisecond, "with --postgres-url, how often to read the log of table changes when no notification came: the bound on how late a node sees another's change if notifications are lost")
	fs.StringVar(&c.Warehouse, "warehouse", "", "where table files live: a directory or s3://bucket/prefix (default <data-dir>/warehouse)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL (MinIO, R2, ...); empty means AWS")
	fs.StringVar(&c.S3Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", "", "S3 access key (default: AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", "", "S3 secret key (default: AWS_SECRET_ACCESS_KEY)")
	fs.BoolVar(&c.S3PathStyle, "s3-path-style", true, "use path-style S3 requests (needed by MinIO and most self-hosted servers)")
	fs.BoolVar(&c.S3VendKeys, "s3-vend-static-keys", false, "hand the static S3 keys to catalog clients in loadTable config")
	fs.BoolVar(&c.S3STS, "s3-sts", false, "vend temporary S3 credentials limited to one table, from the object store's STS (AssumeRole with the S3 keys), to clients that ask for vended credentials")
	fs.StringVar(&c.S3STSURL, "s3-sts-endpoint", "", "STS endpoint URL for --s3-sts (default: --s3-endpoint)")
	fs.StringVar(&c.S3STSRole, "s3-sts-role-arn", "", "role to assume for --s3-sts (AWS; MinIO needs none)")
	fs.DurationVar(&c.S3STSTTL, "s3-sts-duration", time.Hour, "lifetime of credentials vended with --s3-sts (15m to 12h)")
	fs.Var(&allowed, "allowed-locations", "a location besides the warehouse where tables and views may live: a directory for a local warehouse, s3://<warehouse bucket>/<prefix> for S3 (repeatable; env: comma-separated); none: the warehouse only")
	fs.Var(&tokens, "auth-token", "bearer token clients may send, TOKEN or TOKEN:ROLE[@NAMESPACE] with ROLE reader, writer or admin (repeatable, a token given again gets each role; env: comma-separated); TOKEN alone may do everything but /compact and /maintenance. No token, client or OIDC issuer: auth is off")
	fs.Var(&metricsTokens, "metrics-token", "bearer token that may read /metrics and the details of /health/ready, and nothing else (repeatable; env: comma-separated); with any token set, /metrics needs one")
	fs.Var(&clients, "oauth-client", "OAuth2 client that may take tokens at /v1/oauth/tokens with credential=ID:SECRET: ID:ROLE[@NAMESPACE]:BCRYPT-HASH-OF-SECRET, the value the command zombi oauth-client prints (repeatable; env: comma-separated)")
	fs.Var(&keys, "token-signing-key", "Ed25519 private key (PKCS #8 PEM) that signs and verifies the tokens of /v1/oauth/tokens; repeated, the first signs and all verify. Default: <data-dir>/auth/token-signing-key.pem, made at the first start with clients (env: comma-separated)")
	fs.DurationVar(&c.TokenLifetime, "token-lifetime", time.Hour, "how long a token from /v1/oauth/tokens is valid")
	fs.DurationVar(&c.TokenClockSkew, "token-clock-skew", 30*time.Second, "how far the times in a JWT (issued here or by the OIDC issuer) may be off (0: not at all)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", "", "URL of an OpenID Connect issuer whose JWTs are accepted as bearer tokens (its discovery document and keys are fetched from it)")
	fs.StringVar(&c.OIDCAudience, "oidc-audience", "", "audience an OIDC token must name (aud); required with --oidc-issuer")
	fs.StringVar(&c.OIDCRoleClaim, "oidc-role-claim", "zombi_role", "claim of an OIDC token holding its roles, ROLE[@NAMESPACE] each (a string or an array; a dotted name that is no claim is a path into nested claims)")
	fs.DurationVar(&c.OIDCKeyRefresh, "oidc-key-refresh", time.Minute, "least time between two fetches of the OIDC issuer's keys caused by tokens signed with an unknown key")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-lifetime", 30*time.Minute, "how long Idempotency-Key receipts are kept")
	fs.DurationVar(&c.MetadataCheck, "metadata-check-interval", time.Second, "with an S3 warehouse, how long a table's current metadata file, once seen, is trusted to exist before loadTable asks S3 again (0: on every load; local files are checked on every load)")
	fs.StringVar(&c.PprofListen, "pprof-listen", "", "serve Go's /debug/pprof on this address (off when empty; keep it on loopback)")
	fs.StringVar(&c.Durability, "durability", "sync", "when ingest acknowledges: sync (after the hot tier's WAL is synced) or async (may lose the last moments of acknowledged events on a crash)")
	fs.DurationVar(&c.SyncInterval, "sync-interval", 500*time.Microsecond, "with --durability=sync, the least time between two WAL syncs under load: writes wait up to this long to share a sync (0: sync as soon as the previous one is done)")
	fs.BoolVar(&c.AutoCreate, "auto-create", true, "create an unknown ingest table on its first write: an event table for event envelopes, a typed table for plain JSON objects (--infer-schemas)")
	fs.BoolVar(&c.InferSchemas, "infer-schemas", true, "a first write of plain JSON objects (not event envelopes) creates a typed table with columns from the data, which new fields then extend (docs/ingest.md)")
	fs.BoolVar(&c.InferTimestamps, "infer-timestamps", false, "tables inferred from data type RFC 3339 date-time strings as timestamptz (table property zombi.ingest.infer.timestamps)")
	fs.StringVar(&c.InferTimeField, "infer-time-field", "", "the top-level field of RFC 3339 date-times that partitions tables inferred from data by its hour; without it they are partitioned by the hour Zombi accepted each row (table property zombi.ingest.infer.time-field)")
	fs.StringVar(&c.DefaultNamespace, "default-namespace", "default", "namespace of ingest tables named without one")
	fs.DurationVar(&c.IdempotencyWindow, "idempotency-window", 24*time.Hour, "how long ingest idempotency keys are remembered (across restarts)")
	c.MaxBacklog, c.MaxEventBytes, c.MaxBulkBytes, c.MaxInFlight = 1<<30, 1<<20, 32<<20, 256<<20
	fs.Var(&c.MaxBacklog, "max-backlog", "cap on unflushed hot-tier bytes; beyond it writes get 503")
	fs.Var(&c.MaxEventBytes, "max-event-bytes", "largest single-event request body")
	fs.Var(&c.MaxBulkBytes, "max-bulk-bytes", "largest bulk request body")
	fs.Var(&c.MaxInFlight, "max-inflight-bytes", "cap on write request bytes being handled at once; beyond it writes get 429")
	c.MinBodyRate = server.DefaultMinBodyRate
	fs.DurationVar(&c.BodyTimeout, "body-timeout", server.DefaultBodyTimeout, "how long a request body may take to arrive beyond what --min-body-rate allows; slower bodies get 408")
	fs.IntVar(&c.MaxConnections, "max-connections", server.DefaultMaxConnections, "open HTTP connections served at once (at most half the open-file limit); past it /health/* keeps a small reserve and everything else gets 503 at once")
	fs.IntVar(&c.MaxStreamSubscribers, "max-stream-subscribers", tail.DefaultMaxSubscribers, "live-tail streams (GET /tables/{table}/stream) open at once; past it a stream gets 503 with Retry-After")
	fs.Var(&c.MinBodyRate, "min-body-rate", "least rate, in bytes a second, at which a request body must arrive after --body-timeout (0: no deadline for bodies)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long graceful shutdown waits for requests in flight, then for the final flush")
	fs.BoolVar(&c.Cluster, "cluster", false, "run as one of several nodes on one Postgres and one warehouse: offsets and idempotency keys are unique across the nodes, nodes stage their data files and the holder of a table's commit lease commits all of them, once per flush interval (needs --postgres-url)")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", "", "the URL other nodes and operators reach this node at, shown in GET /v1/zombi/nodes")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's ID in flush watermarks ([a-z0-9-]); fixed when the data directory is created, random if not given")
	fs.DurationVar(&c.FlushInterval, "flush-interval", time.Second, "how long acknowledged events may wait for their Iceberg commit (table property zombi.flush.interval-ms overrides)")
	fs.DurationVar(&c.HotRetention, "hot-retention", 0, "how long committed events stay readable in the hot tier")
	fs.Var(&admins, "admin-token", "bearer token with the admin role on every namespace, the same as --auth-token TOKEN:admin (repeatable; env: comma-separated)")
	fs.DurationVar(&c.MaintenanceInterval, "maintenance-interval", time.Minute, "how often the maintenance scheduler looks at the tables (0: only on request)")
	fs.DurationVar(&c.MinOrphanAge, "min-orphan-age", time.Hour, "orphan cleanup never deletes a file younger than this, whatever a table's zombi.maintenance.orphan-age-ms says (0: no floor)")
	fs.DurationVar(&c.MinSnapshotAge, "min-snapshot-age", 15*time.Minute, "snapshot expiry keeps every snapshot that was current or a branch head less than this long ago, whatever the table's retention says (0: no floor)")
	fs.StringVar(&c.ScanPlanning, "scan-planning", "client", "who plans scans of tables without a zombi.read.planning property: client (engines read the manifests) or server (loadTable tells engines to ask /plan)")
	fs.DurationVar(&c.PlanLifetime, "plan-lifetime", 10*time.Minute, "how long a server-side scan plan is kept after its last use")
	fs.IntVar(&c.MaxPlans, "max-plans", 128, "server-side scan plans with plan tasks not fetched yet; beyond it planning gets 503")
	fs.IntVar(&c.PlanPageFiles, "plan-page-files", 2000, "data files a page of a server-side scan plan aims at (whole manifests; the first page is answered inline, the others as plan tasks)")
	fs.BoolVar(&c.Live, "live", true, "serve the live catalog view (clients with warehouse=live): plans of ingest tables also list the events not yet committed")
	fs.DurationVar(&c.LivePinWindow, "live-pin-window", live.DefaultPinWindow, "a live plan naming a snapshot that stopped being current less than this long ago reads the latest state (snapshot and hot tail), like one naming the current snapshot")
	fs.DurationVar(&c.LiveTailReuse, "live-tail-reuse", flusher.DefaultTailReuse, "how long the data files written for a table's hot tail are handed to later live plans and may be committed by the flusher; with --plan-lifetime it must stay below --min-orphan-age")
	fs.DurationVar(&c.CommitWait, "commit-wait", 30*time.Second, "how long an ?ack=committed write waits for its commit before answering 504")

	// Environment first, flags override. An empty variable counts as unset.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := os.Getenv(envName(f.Name))
		if v == "" || envErr != nil {
			return
		}
		if list, ok := map[string]*tokenList{"auth-token": &tokens, "admin-token": &admins, "metrics-token": &metricsTokens,
			"allowed-locations": &allowed, "oauth-client": &clients, "token-signing-key": &keys}[f.Name]; ok {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					*list = append(*list, t)
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
	c.AuthTokens, c.AdminTokens, c.MetricsTokens, c.AllowedLocations = tokens, admins, metricsTokens, allowed
	if c.Cluster && c.PostgresURL == "" {
		return nil, fmt.Errorf("--cluster needs --postgres-url: the nodes share their tables, staged files and idempotency keys through Postgres")
	}
	c.OAuthClients, c.SigningKeys = clients, keys
	if _, err := c.authCredentials(); err != nil {
		return nil, err
	}
	if c.TokenLifetime <= 0 || c.TokenClockSkew < 0 || c.OIDCKeyRefresh <= 0 {
		return nil, fmt.Errorf("--token-lifetime and --oidc-key-refresh must be positive, --token-clock-skew not negative")
	}
	if (c.OIDCIssuer == "") != (c.OIDCAudience == "") {
		return nil, fmt.Errorf("--oidc-issuer and --oidc-audience go together")
	}
	if c.Durability != "sync" && c.Durability != "async" {
		return nil, fmt.Errorf("--durability must be sync or async, not %q", c.Durability)
	}
	if c.MinOrphanAge < 0 || c.MinSnapshotAge < 0 {
		return nil, fmt.Errorf("--min-orphan-age and --min-snapshot-age cannot be negative")
	}
	if _, err := planning.ParseMode(c.ScanPlanning); err != nil {
		return nil, fmt.Errorf("--scan-planning: %w", err)
	}
	if c.PlanLifetime <= 0 || c.MaxPlans <= 0 || c.PlanPageFiles <= 0 {
		return nil, fmt.Errorf("--plan-lifetime, --max-plans and --plan-page-files must be positive")
	}
	if c.LivePinWindow <= 0 || c.LiveTailReuse <= 0 {
		return nil, fmt.Errorf("--live-pin-window and --live-tail-reuse must be positive")
	}
	if c.Live && c.MinOrphanAge > 0 && c.PlanLifetime+c.LiveTailReuse >= c.MinOrphanAge {
		// A hot tail's files are orphans until a commit takes them: handed
		// out for up to --live-tail-reuse, read by plans kept up to
		// --plan-lifetime after that, they must not be old enough for
		// orphan cleanup meanwhile.
		return nil, fmt.Errorf("--plan-lifetime (%s) plus --live-tail-reuse (%s) must be less than --min-orphan-age (%s): orphan cleanup would delete hot-tail files live plans still list",
			c.PlanLifetime, c.LiveTailReuse, c.MinOrphanAge)
	}
	if c.SyncInterval < 0 || c.SyncInterval > time.Second {
		return nil, fmt.Errorf("--sync-interval must be between 0 and 1s, not %s", c.SyncInterval)
	}
	if c.ChangePollInterval <= 0 {
		return nil, fmt.Errorf("--change-poll-interval must be positive, not %s", c.ChangePollInterval)
	}
	if c.MaxConnections <= 0 {
		return nil, fmt.Errorf("--max-connections must be positive, not %d", c.MaxConnections)
	}
	if c.BodyTimeout <= 0 {
		return nil, fmt.Errorf("--body-timeout must be positive, not %s", c.BodyTimeout)
	}
	if c.MaxStreamSubscribers <= 0 {
		return nil, fmt.Errorf("--max-stream-subscribers must be positive, not %d", c.MaxStreamSubscribers)
	}
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
