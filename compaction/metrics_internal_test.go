package compaction

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRunsExported: every kind and outcome of a run is a series from the
// start, so that the first failed run is an increase.
func TestRunsExported(t *testing.T) {
	m := newMetrics()
	if n := testutil.CollectAndCount(m.runs); n != 2*4 {
		t.Errorf("%d run series, want 8", n)
	}
	if v := testutil.ToFloat64(m.runs.WithLabelValues("compact", "failed")); v != 0 {
		t.Errorf("failed compactions %v before any run", v)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}
