package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/hot"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// BenchmarkIdempotentWrite is what an idempotent write costs on a single
// node (the hot tier's own key index) and in cluster mode (a claim and a
// record round trip to Postgres around the same append), for single
// writes from one client, single writes from 16 clients at once, and
// bulks of 100 keyed records. The hot tier syncs its WAL as in
// production; Postgres is the test cluster (internal/testenv).
func BenchmarkIdempotentWrite(b *testing.B) {
	for _, mode := range []string{"single-node", "cluster"} {
		for _, shape := range []struct {
			name    string
			records int
			clients int
		}{{"single", 1, 1}, {"single-16-clients", 1, 16}, {"bulk-100", 100, 1}} {
			b.Run(mode+"/"+shape.name, func(b *testing.B) {
				s := benchService(b, mode == "cluster")
				t := &tableState{hotKey: "t", name: "default.t"}
				var n atomic.Int64
				write := func() {
					recs := make([]hot.Record, shape.records)
					for j := range recs {
						recs[j] = hot.Record{Key: fmt.Sprint("key-", n.Add(1)), Value: make([]byte, 100)}
					}
					if _, err := s.appendRecords(context.Background(), t, recs); err != nil {
						b.Error(err)
					}
				}
				b.ResetTimer()
				if shape.clients == 1 {
					for range b.N {
						write()
					}
				} else {
					b.SetParallelism(shape.clients)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							write()
						}
					})
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n.Load())/1e3, "µs/record")
			})
		}
	}
}

func benchService(b *testing.B, clustered bool) *Service {
	b.Helper()
	db, err := hot.Open(b.TempDir(), hot.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := &Service{hot: db, log: slog.New(slog.DiscardHandler)}
	if !clustered {
		return s
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = cluster.PoolConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := migrations.Apply(ctx, pool); err != nil {
		b.Fatal(err)
	}
	m, err := cluster.New(cluster.Options{Pool: pool, Cluster: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Join(ctx, cluster.JoinRequest{NodeID: db.NodeID()}); err != nil {
		b.Fatal(err)
	}
	s.claims = m
	return s
}
