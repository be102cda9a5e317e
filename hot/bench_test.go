package hot

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// BenchmarkAppendSingleParallel appends one event per call from 64
// goroutines to one table, with Sync durability on the real file system,
// with the default SyncInterval and without one. With it, 64 goroutines
// that only append are all queued when a group's wait ends, so the
// interval bounds them to 64 appends per interval and a sync.
func BenchmarkAppendSingleParallel(b *testing.B) {
	for _, bc := range []struct {
		keyed    bool
		interval time.Duration
	}{{false, 0}, {false, -1}, {true, 0}, {true, -1}} {
		keyed := bc.keyed
		b.Run(fmt.Sprintf("keyed=%t/paced=%t", keyed, bc.interval >= 0), func(b *testing.B) {
			db := openBench(b, Options{SyncInterval: bc.interval})
			value := make([]byte, 100)
			var id atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			parallel(b, 64, func(next func() bool) {
				ctx := context.Background()
				recs := []Record{{Value: value}}
				for next() {
					if keyed {
						recs[0].Key = fmt.Sprintf("k-%d", id.Add(1))
					}
					if _, err := db.Append(ctx, "events", recs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			reportFsyncs(b, db, b.N)
		})
	}
}

// reportFsyncs reports how many events shared a WAL sync and how long the
// syncs took.
func reportFsyncs(b *testing.B, db *DB, events int) {
	var m dto.Metric
	if err := db.pdb.Metrics().LogWriter.FsyncLatency.Write(&m); err != nil {
		b.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(float64(events)/float64(n), "events/fsync")
		b.ReportMetric(m.GetHistogram().GetSampleSum()/float64(n)/1e3, "µs/fsync")
	}
}

// BenchmarkAppendBatch1000 appends batches of 1,000 events of 100 bytes,
// with Sync durability; each op is one batch.
func BenchmarkAppendBatch1000(b *testing.B) {
	for _, bc := range []struct {
		writers int
		keyed   bool
	}{{1, false}, {4, false}, {1, true}} {
		writers := bc.writers
		b.Run(fmt.Sprintf("writers=%d/keyed=%t", writers, bc.keyed), func(b *testing.B) {
			db := openBench(b, Options{})
			var id atomic.Int64
			b.SetBytes(100 * 1000)
			b.ReportAllocs()
			b.ResetTimer()
			parallel(b, writers, func(next func() bool) {
				ctx := context.Background()
				recs := make([]Record, 1000)
				for i := range recs {
					recs[i].Value = make([]byte, 100)
				}
				for next() {
					if bc.keyed {
						for i := range recs {
							recs[i].Key = strconv.FormatInt(id.Add(1), 10)
						}
					}
					if _, err := db.Append(ctx, "events", recs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
			reportFsyncs(b, db, b.N*1000)
		})
	}
}

// parallel runs b.N iterations of fn's loop over exactly g goroutines.
func parallel(b *testing.B, g int, fn func(next func() bool)) {
	var n atomic.Int64
	next := func() bool { return n.Add(1) <= int64(b.N) }
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() { fn(next) })
	}
	wg.Wait()
}

func openBench(b *testing.B, opts Options) *DB {
	b.Helper()
	opts.MaxBacklogBytes, opts.Logger = 1<<40, discardLogger()
	db, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	return db
}
