package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testSeries() runSeries {
	t0 := time.Unix(1000, 0)
	pt := func(sec int, acked int64, rows float64, high, committed uint64, held int64, backlog, disk, rss float64) point {
		return point{at: t0.Add(time.Duration(sec) * time.Second), acked: acked, rows: rows, high: high, committed: committed,
			held: held, backlog: backlog, disk: disk, rss: rss, heap: rss / 2, compacted: 7 + float64(sec/3)*5e8, load1: 1.5}
	}
	return runSeries{
		run:     2,
		loadEnd: t0.Add(2500 * time.Millisecond),
		points: []point{
			pt(0, 0, 500, 0, 0, -1, 0, 1000, 100<<20), // watermarks not seen yet
			pt(1, 1000, 500, 1000, 0, 1000, 100_000, 400_000, 300<<20),
			pt(2, 3000, 2500, 3000, 2000, 1000, 120_000, 400_000, 200<<20),
			pt(3, 3000, 3500, 3000, 3000, 0, 0, 200_000, 900<<20), // drain: left out of memory()
		},
	}
}

func TestMemory(t *testing.T) {
	m := testSeries().memory()
	if m.samples != 3 || m.heldSamples != 2 {
		t.Fatalf("samples %d, held samples %d; want 3 and 2", m.samples, m.heldSamples)
	}
	if m.rssMedian != 200<<20 || m.rssMin != 100<<20 || m.rssMax != 300<<20 {
		t.Errorf("RSS median/min/max %v/%v/%v", m.rssMedian, m.rssMin, m.rssMax)
	}
	// Ratio of sums over the points where the events held are known.
	if m.held != 1000 || m.backlogPerEvent != 110 || m.diskPerEvent != 400 {
		t.Errorf("held %v, backlog/event %v, disk/event %v; want 1000, 110, 400", m.held, m.backlogPerEvent, m.diskPerEvent)
	}
	if got := memoryOverRuns([]memory{m, {}}); !strings.Contains(got, "RSS median 200 MiB") || !strings.Contains(got, "backlog 110 B") {
		t.Errorf("memoryOverRuns: %s", got)
	}
	if got := (memory{}).String(); got != "no samples" {
		t.Errorf("empty memory: %q", got)
	}
}

func TestAppendSeries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.csv")
	for range 2 {
		if err := appendSeries(path, testSeries()); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+2*4 || strings.Join(rows[0], ",") != strings.Join(seriesHeader, ",") {
		t.Fatalf("%d rows, header %v: want one header and 8 points", len(rows), rows[0])
	}
	col := func(row []string, name string) string {
		for i, h := range seriesHeader {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	want := []map[string]string{
		{"run": "2", "t_s": "0.000", "phase": "load", "acked_per_s": "", "held_events": "", "committed_rows": "0"},
		{"t_s": "1.000", "acked_per_s": "1000", "committed_per_s": "0", "held_events": "1000", "rss_bytes": "314572800", "heap_inuse_bytes": "157286400"},
		{"acked_events": "3000", "acked_per_s": "2000", "committed_rows": "2000", "committed_per_s": "2000", "load1": "1.50"},
		{"phase": "drain", "acked_per_s": "0", "committed_per_s": "1000", "held_events": "0", "compacted_bytes": "500000000"},
	}
	for i, w := range want {
		for k, v := range w {
			if got := col(rows[1+i], k); got != v {
				t.Errorf("point %d: %s = %q, want %q", i, k, got, v)
			}
		}
	}
}

func TestAcks(t *testing.T) {
	a := newAcks(3)
	a.add(0, 1000)
	a.add(2, 5)
	a.add(2, 5)
	if got := a.total(); got != 1010 {
		t.Errorf("total %d, want 1010", got)
	}
}
