package cluster

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/zombi-db/zombi/internal/promtext"
	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/internal/zombitest"
)

// BenchmarkCluster measures ingest through HAProxy into one table with
// one node and with three (BENCHMARKS.md): events acknowledged and
// committed per second, appends per second on the table, and the 409s
// the flushers' commits met. Each sub-benchmark runs the load once, for
// 20 s, whatever b.N:
//
//	go test -run '^$' -bench BenchmarkCluster -benchtime 1x ./tests/cluster
//
// All nodes share one machine here, so the sum of their throughput is
// bounded by its cores, not by Zombi.
func BenchmarkCluster(b *testing.B) {
	for _, tc := range []struct {
		name    string
		nodes   int
		cluster bool
	}{
		{"nodes=1/single", 1, false},
		{"nodes=1/cluster", 1, true},
		{"nodes=3/cluster", 3, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				runLoad(b, tc.nodes, tc.cluster)
			}
		})
	}
}

func runLoad(b *testing.B, n int, cluster bool) {
	b.Helper()
	b.StopTimer()
	pg, s3 := testenv.Postgres(b), testenv.S3(b)
	args := []string{
		"--postgres-url", pg,
		"--warehouse", "s3://" + s3.Bucket + "/warehouse",
		"--s3-endpoint", s3.Endpoint,
		"--s3-region", s3.Region,
		"--s3-access-key", s3.AccessKey,
		"--s3-secret-key", s3.SecretKey,
		"--log-level", "warn",
	}
	if cluster {
		args = append(args, "--cluster")
	}
	var nodes []*zombitest.Instance
	var addrs []string
	for i := range n {
		inst := zombitest.Start(b, append([]string{"--node-id", fmt.Sprintf("n%d", i+1)}, args...)...)
		nodes = append(nodes, inst)
		addrs = append(addrs, inst.Addr)
	}
	lb := testenv.StartHAProxy(b, addrs...)

	const (
		clients  = 8
		batch    = 1000
		duration = 20 * time.Second
		name     = "bench"
	)
	var body bytes.Buffer
	body.WriteString(`{"records":[`)
	for i := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"payload":"%090d"}`, i)
	}
	body.WriteString(`]}`)
	post := func(c *http.Client) bool {
		resp, err := c.Post(lb.URL+"/tables/"+name+"/bulk", "application/json", bytes.NewReader(body.Bytes()))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}
	warm := &http.Client{Timeout: time.Minute}
	if !post(warm) { // creates the table
		b.Fatal("the first bulk was refused")
	}
	before := scrapeAll(b, nodes)
	var acked, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if post(c) {
					acked.Add(batch)
				} else {
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(duration)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	after := scrapeAll(b, nodes)

	// Appends the table got while the load ran.
	cat := restCatalog(b, lb.URL)
	tbl, err := cat.LoadTable(b.Context(), table.Identifier{"default", name})
	if err != nil {
		b.Fatal(err)
	}
	appends := 0
	for _, s := range tbl.Metadata().Snapshots() {
		at := time.UnixMilli(s.TimestampMs)
		if s.Summary != nil && s.Summary.Operation == table.OpAppend && !at.Before(start) && !at.After(start.Add(elapsed)) {
			appends++
		}
	}
	secs := elapsed.Seconds()
	b.ReportMetric(float64(acked.Load())/secs, "acked/s")
	b.ReportMetric((after["zombi_flush_rows_total"]-before["zombi_flush_rows_total"])/secs, "committed/s")
	b.ReportMetric(float64(appends)/secs, "appends/s")
	b.ReportMetric(after["zombi_flush_conflicts_total"]-before["zombi_flush_conflicts_total"], "409s")
	b.ReportMetric(float64(refused.Load()), "refused")
	b.Logf("%d nodes (cluster %v): %d events acknowledged in %.1fs, %d refused bulks, %d appends",
		n, cluster, acked.Load(), secs, refused.Load(), appends)
}

// scrapeAll sums a few counters over the nodes' /metrics.
func scrapeAll(b *testing.B, nodes []*zombitest.Instance) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	for _, n := range nodes {
		resp, err := http.Get(n.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		sums, err := promtext.Sums(resp.Body, "zombi_flush_rows_total", "zombi_flush_conflicts_total")
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range sums {
			out[k] += v
		}
	}
	return out
}
