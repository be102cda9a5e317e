package ingest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTableSeriesBounded: past MaxTableSeries tables, a table's ingest
// series are the shared OtherTables ones.
func TestTableSeriesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.maxTables = 2
	for _, name := range []string{"ns.a", "ns.b", "ns.a", "ns.c", "ns.d"} {
		m.forTable(name).accepted.Inc()
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "zombi_ingest_events_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == "accepted" {
				got[labels["table"]] = s.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{"ns.a": 2, "ns.b": 1, OtherTables: 2}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("series %v, want %v", got, want)
		}
	}
}

// TestRejectedReasonsExported: every reason a request is refused for is
// a series from the start, so that the first refusal is an increase.
func TestRejectedReasonsExported(t *testing.T) {
	m := NewMetrics(nil)
	if n := testutil.CollectAndCount(m.rejected); n != 5 {
		t.Errorf("%d series, want 5", n)
	}
}
