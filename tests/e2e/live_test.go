package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// bulk posts n events to ingest table name, event times from at (zero:
// none) a minute apart, and returns the highest offset acknowledged.
func bulk(t testing.TB, base, name string, n int, at time.Time) int64 {
	t.Helper()
	recs := make([]string, n)
	for i := range recs {
		if at.IsZero() {
			recs[i] = fmt.Sprintf(`{"payload":"e%d"}`, i)
		} else {
			recs[i] = fmt.Sprintf(`{"payload":"e%d","timestamp_ms":%d}`, i, at.Add(time.Duration(i)*time.Minute).UnixMilli())
		}
	}
	b := mustCall(t, 202, "POST", base+"/tables/"+name+"/bulk", `{"records":[`+strings.Join(recs, ",")+`]}`)
	var r struct {
		Offsets []int64 `json:"offsets"`
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Offsets) != n {
		t.Fatalf("bulk answer %s: %v", b, err)
	}
	return slices.Max(r.Offsets)
}

// sequences scans tbl and returns the sequence column, sorted.
func sequences(t testing.TB, tbl *table.Table, opts ...table.ScanOption) []int64 {
	t.Helper()
	scan := tbl.Scan(append(opts, table.WithSelectedFields("sequence"))...)
	defer scan.Close()
	at, err := scan.ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scanning %v: %v", tbl.Identifier(), err)
	}
	defer at.Release()
	var out []int64
	for _, c := range at.Column(0).Data().Chunks() {
		out = append(out, c.(*array.Int64).Int64Values()...)
	}
	slices.Sort(out)
	return out
}

func liveLoad(t testing.TB, cat catalog.Catalog, name string) *table.Table {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), table.Identifier{"default", name})
	if err != nil {
		t.Fatalf("loading default.%s: %v", name, err)
	}
	return tbl
}

var remote = table.WithScanPlanningMode(table.ScanPlanningRemote)

// distinct reports whether sorted seqs has no duplicate.
func distinct(seqs []int64) bool {
	for i := 1; i < len(seqs); i++ {
		if seqs[i] == seqs[i-1] {
			return false
		}
	}
	return true
}

// TestLiveReads is iceberg-go on the live catalog view, on both shapes:
// with nothing committed (flush interval 1 h), a live query reads every
// event acknowledged and the default catalog none; time travel and
// incremental plans read exactly their snapshots; an event_time filter
// prunes tail files as it prunes committed ones.
func TestLiveReads(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			// A pin window of 1 ms: a snapshot replaced before the plan is
			// old, whatever the machine's speed.
			inst := sh.start(t, "--flush-interval", "1h", "--live-pin-window", "1ms")
			base := inst.URL
			liveCat := restCatalog(t, inst, "warehouse", "live")
			defCat := restCatalog(t, inst)

			const n = 500
			last := bulk(t, base, "lv", n, time.Time{})
			got := sequences(t, liveLoad(t, liveCat, "lv"), remote)
			if len(got) != n || !distinct(got) || got[len(got)-1] != last {
				t.Fatalf("live query read %d rows (distinct %v, last %v), want the %d acknowledged through %d", len(got), distinct(got), got[len(got)-1:], n, last)
			}
			if got := sequences(t, liveLoad(t, defCat, "lv")); len(got) != 0 {
				t.Errorf("the default catalog read %d rows, want 0: nothing is committed", len(got))
			}
			if got := sequences(t, liveLoad(t, defCat, "lv"), remote); len(got) != 0 {
				t.Errorf("the default catalog, planned on the server, read %d rows, want 0", len(got))
			}
			if v := metric(t, base, `zombi_live_plans_total{read="latest"}`); v < 1 {
				t.Errorf("zombi_live_plans_total{read=latest} = %v", v)
			}

			// Two snapshots, then a tail.
			mustCall(t, 200, "POST", base+"/tables/lv/flush", "")
			first := liveLoad(t, defCat, "lv").CurrentSnapshot().SnapshotID
			bulk(t, base, "lv", 100, time.Time{})
			mustCall(t, 200, "POST", base+"/tables/lv/flush", "")
			second := liveLoad(t, defCat, "lv").CurrentSnapshot().SnapshotID
			last = bulk(t, base, "lv", 50, time.Time{})
			tbl := liveLoad(t, liveCat, "lv")
			if got := sequences(t, tbl, remote); len(got) != n+150 || !distinct(got) || got[len(got)-1] != last {
				t.Errorf("latest: %d rows, want %d", len(got), n+150)
			}
			if got := sequences(t, tbl, remote, table.WithSnapshotID(first)); len(got) != n {
				t.Errorf("time travel to the first snapshot on the live catalog: %d rows, want %d", len(got), n)
			}
			if got := sequences(t, tbl, remote, table.WithSnapshotID(second)); len(got) != n+150 {
				t.Errorf("the current snapshot named on the live catalog: %d rows, want the latest state's %d", len(got), n+150)
			}
			var plan struct {
				Files []struct {
					DataFile struct {
						Records int64 `json:"record-count"`
					} `json:"data-file"`
				} `json:"file-scan-tasks"`
				PlanTasks []string `json:"plan-tasks"`
			}
			body := fmt.Sprintf(`{"start-snapshot-id":%d,"end-snapshot-id":%d}`, first, second)
			if err := json.Unmarshal(mustCall(t, 200, "POST", base+"/v1/live/namespaces/default/tables/lv/plan", body), &plan); err != nil {
				t.Fatal(err)
			}
			var records int64
			for _, f := range plan.Files {
				records += f.DataFile.Records
			}
			if records != 100 || len(plan.PlanTasks) != 0 {
				t.Errorf("incremental plan on the live catalog: %d records (%d plan tasks), want the second snapshot's 100", records, len(plan.PlanTasks))
			}

			// A schema change through the live catalog: the default one
			// sees it, and the tail is written again in the new schema.
			tx := liveLoad(t, liveCat, "lv").NewTransaction()
			if err := tx.UpdateSchema(true, false).AddColumn([]string{"note"}, iceberg.PrimitiveTypes.String, "", false, nil).Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Commit(context.Background()); err != nil {
				t.Fatalf("schema change through the live catalog: %v", err)
			}
			if _, ok := liveLoad(t, defCat, "lv").Schema().FindFieldByName("note"); !ok {
				t.Errorf("the default catalog does not see the column added through the live one")
			}
			last = bulk(t, base, "lv", 10, time.Time{})
			if got := sequences(t, liveLoad(t, liveCat, "lv"), remote); len(got) != n+160 || !distinct(got) || got[len(got)-1] != last {
				t.Errorf("latest after the schema change: %d rows, want %d", len(got), n+160)
			}

			// Hours 10 to 12 in the tail: a filter on the last hour plans
			// its file only.
			start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			bulk(t, base, "hours", 180, start)
			hours := liveLoad(t, liveCat, "hours")
			all, err := hours.Scan(remote).PlanFiles(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			filter := iceberg.GreaterThanEqual(iceberg.Reference("event_time"), start.Add(2*time.Hour).Format(time.RFC3339))
			some, err := hours.Scan(remote, table.WithRowFilter(filter)).PlanFiles(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 3 || len(some) != 1 {
				t.Errorf("the tail of 3 hours planned %d files, %d for its last hour; want 3 and 1", len(all), len(some))
			}
			if got := sequences(t, hours, remote, table.WithRowFilter(filter)); len(got) != 60 {
				t.Errorf("the last hour read %d rows, want 60", len(got))
			}
		})
	}
}

// TestLiveUnderIngest: while producers write and the flusher commits every
// 200 ms, 50 consecutive live queries each read every event once, at
// least every event acknowledged before they began, never fewer than the
// query before; afterwards the committed table holds exactly what the
// last live query read.
func TestLiveUnderIngest(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			inst := sh.start(t, "--flush-interval", "200ms")
			base := inst.URL
			liveCat := restCatalog(t, inst, "warehouse", "live")
			bulk(t, base, "stream", 1, time.Time{})
			var acked atomic.Int64
			acked.Store(1)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				for ctx.Err() == nil {
					last := bulk(t, base, "stream", 50, time.Time{})
					acked.Store(last)
					time.Sleep(5 * time.Millisecond)
				}
			})
			commits := metric(t, base, `zombi_flush_cycles_total{outcome="committed"}`)
			prev := 0
			for i := range 50 {
				before := acked.Load()
				got := sequences(t, liveLoad(t, liveCat, "stream"), remote)
				if !distinct(got) {
					t.Fatalf("query %d read a sequence twice", i)
				}
				if int64(len(got)) < before || got[len(got)-1] < before {
					t.Fatalf("query %d read %d rows through %v; %d were acknowledged before it", i, len(got), got[len(got)-1:], before)
				}
				if len(got) < prev {
					t.Fatalf("query %d read %d rows, the one before %d", i, len(got), prev)
				}
				prev = len(got)
			}
			cancel()
			wg.Wait()
			if d := metric(t, base, `zombi_flush_cycles_total{outcome="committed"}`) - commits; d < 2 {
				t.Errorf("%v commits during the queries; the test wants the flusher busy", d)
			}
			lastLive := sequences(t, liveLoad(t, liveCat, "stream"), remote)
			if int64(len(lastLive)) != acked.Load() {
				t.Errorf("the last live query read %d rows, %d were acknowledged", len(lastLive), acked.Load())
			}
			mustCall(t, 200, "POST", base+"/tables/stream/flush", "")
			committed := sequences(t, liveLoad(t, restCatalog(t, inst), "stream"))
			if !slices.Equal(committed, lastLive) {
				t.Errorf("the committed table holds %d rows, the last live query read %d", len(committed), len(lastLive))
			}
		})
	}
}
