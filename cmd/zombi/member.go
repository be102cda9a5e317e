package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/ingest"
)

// member is this process's cluster membership, on a pool of its own so
// that heartbeats do not queue behind catalog work.
type member struct {
	*cluster.Member
	pool  *pgxpool.Pool
	log   *slog.Logger
	dir   string // the data dir
	token string

	stopRun context.CancelFunc // set by run
	runDone chan struct{}
}

// openMember returns the membership of a node on Postgres, nil on the
// embedded store. The node joins when the hot tier asks for its stream.
func openMember(ctx context.Context, c *config, log *slog.Logger, reg prometheus.Registerer) (*member, error) {
	if c.PostgresURL == "" {
		return nil, nil
	}
	cfg, err := pgxpool.ParseConfig(c.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("--postgres-url: %w", err)
	}
	cfg.MaxConns = cluster.PoolConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster membership: %w", err)
	}
	log = log.With("component", "cluster")
	token, err := processToken(c.DataDir)
	if err != nil {
		pool.Close()
		return nil, err
	}
	m, err := cluster.New(cluster.Options{
		Pool:       pool,
		Cluster:    c.Cluster,
		URL:        c.AdvertiseURL,
		Window:     c.IdempotencyWindow,
		Token:      token,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &member{Member: m, pool: pool, log: log, dir: c.DataDir, token: token}, nil
}

// tokenName is the file in the data dir holding the token of the last
// process that joined the cluster from it.
const tokenName = "cluster-token"

// processToken is a new token for this process that says where it runs:
// host, data dir, and a random part.
func processToken(dataDir string) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return host + ":" + abs + ":" + hex.EncodeToString(b[:]), nil
}

// previousToken is the token of the last process that joined from this
// data dir, if it says it ran here: this process holds the dir's lock,
// so that process is gone and its lease is this node's to take over.
func (m *member) previousToken() string {
	b, err := os.ReadFile(filepath.Join(m.dir, tokenName))
	if err != nil {
		return ""
	}
	prev := strings.TrimSpace(string(b))
	here := m.token[:strings.LastIndexByte(m.token, ':')+1]
	if !strings.HasPrefix(prev, here) {
		return ""
	}
	return prev
}

// saveToken records this process's token in the data dir.
func (m *member) saveToken() error {
	f, err := os.Create(filepath.Join(m.dir, tokenName))
	if err == nil {
		_, err = f.WriteString(m.token + "\n")
		err = errors.Join(err, f.Sync(), f.Close())
	}
	if err != nil {
		return fmt.Errorf("recording the process token: %w", err)
	}
	return nil
}

// stream is the hot tier's Options.Stream: joining the cluster. Nil for
// no member.
func (m *member) stream(ctx context.Context) func(hot.StreamRequest) (uint32, error) {
	if m == nil {
		return nil
	}
	return func(r hot.StreamRequest) (uint32, error) {
		s, err := m.Join(ctx, cluster.JoinRequest{NodeID: r.NodeID, Stream: r.Recorded, HasStream: r.HasRecorded,
			Legacy: r.Legacy, PreviousToken: m.previousToken()})
		if err != nil {
			return 0, err
		}
		return s, m.saveToken()
	}
}

// claims are the cluster-wide idempotency claims of a --cluster node;
// nil otherwise, when a node is alone and its hot tier is enough.
func (m *member) claims(clusterMode bool) ingest.Claims {
	if m == nil || !clusterMode {
		return nil
	}
	return m.Member
}

// err is the readiness check of the node's lease.
func (m *member) err() error {
	if m == nil {
		return nil
	}
	return m.Err()
}

// run renews the node's lease until close; the channel receives
// cluster.ErrLeaseLost if another process takes the node's ID.
func (m *member) run(stats func() cluster.Stats, lookup cluster.KeyLookup) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	m.stopRun, m.runDone = cancel, make(chan struct{})
	lost := make(chan error, 1)
	go func() {
		defer close(m.runDone)
		if err := m.Run(ctx, stats, lookup); err != nil {
			lost <- err
		}
	}()
	return lost
}

// close stops the heartbeats, leaves the cluster if the node joined, and
// closes the pool.
func (m *member) close(timeout time.Duration) {
	if m.stopRun != nil {
		m.stopRun()
		<-m.runDone
	}
	if m.NodeID() != "" && m.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), min(timeout, 10*time.Second))
		if err := m.Leave(ctx); err != nil {
			m.log.Warn("leaving; the node goes stale instead", "err", err)
		}
		cancel()
	}
	m.pool.Close()
}
