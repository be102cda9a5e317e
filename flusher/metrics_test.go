package flusher_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/flusher"
)

// TestBacklogMetrics: while commits fail, the events wait past their
// table's interval and the backlog gauges say so; once commits succeed
// again, they fall back to zero.
func TestBacklogMetrics(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	hooked := &hookedCatalog{commit: func(ctx context.Context, ch catalog.TableChange, next func() (*catalog.Table, error)) (*catalog.Table, error) {
		if failing.Load() {
			// Refused, nothing committed: the cycle fails and is retried.
			return nil, fmt.Errorf("%w: the catalog refuses", catalog.ErrUnprocessable)
		}
		return next()
	}}
	e := newEnv(t, func(o *flusher.Options) {
		hooked.Service = o.Catalog.(*catalog.Service)
		o.Catalog = hooked
		o.Interval = 50 * time.Millisecond
	})
	for _, name := range []string{"zombi_flush_backlog_overdue_seconds", "zombi_flush_at_risk_events", "zombi_flush_at_risk_bytes"} {
		if v := counter(t, e.reg, name); v != 0 {
			t.Errorf("before any event %s = %v, want 0", name, v)
		}
	}
	body, _ := events("late", 25, time.Time{}, 0)
	e.writeBulk("late", body)
	if v := counter(t, e.reg, "zombi_flush_at_risk_events"); v != 25 {
		t.Errorf("zombi_flush_at_risk_events = %v, want the 25 events written", v)
	}
	waitFor(t, 20*time.Second, func() bool {
		return counter(t, e.reg, "zombi_flush_backlog_overdue_seconds") > 0.2 &&
			counter(t, e.reg, "zombi_flush_failures_total", "reason", "catalog") > 0
	})
	failing.Store(false)
	waitFor(t, 60*time.Second, func() bool {
		return counter(t, e.reg, "zombi_flush_backlog_overdue_seconds") == 0 &&
			counter(t, e.reg, "zombi_flush_at_risk_events") == 0
	})
	if v := counter(t, e.reg, "zombi_flush_at_risk_bytes"); v != 0 {
		t.Errorf("after the commit zombi_flush_at_risk_bytes = %v, want 0", v)
	}
}
