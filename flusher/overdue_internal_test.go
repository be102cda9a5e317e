package flusher

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBacklogOverdue: the gauge is the worst lateness over all tables,
// each measured against its own interval, and zero while none is late.
func TestBacklogOverdue(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	st := func(age, interval time.Duration) *tableState {
		s := &tableState{interval: interval}
		if age >= 0 {
			s.oldest = now.Add(-age)
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		tables []*tableState
		want   time.Duration
	}{
		{"no tables", nil, 0},
		{"nothing pending", []*tableState{st(-1, time.Second)}, 0},
		{"within its interval", []*tableState{st(500*time.Millisecond, time.Second)}, 0},
		{"exactly at its interval", []*tableState{st(time.Second, time.Second)}, 0},
		{"past its interval", []*tableState{st(3*time.Second, time.Second)}, 2 * time.Second},
		// The oldest backlog is not the most overdue one: a table with a
		// long interval may hold old events on time.
		{"each table against its own interval", []*tableState{
			st(50*time.Second, time.Minute),
			st(4*time.Second, time.Second),
			st(-1, time.Second),
		}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Flusher{tables: map[string]*tableState{}}
			for i, s := range tc.tables {
				f.tables[string(rune('a'+i))] = s
			}
			if got := f.backlogOverdue(now); got != tc.want {
				t.Errorf("backlogOverdue = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOutcomesExported: every cycle outcome and failure reason is a
// series from the start, so that the first failure is an increase.
func TestOutcomesExported(t *testing.T) {
	m := newMetrics(&Flusher{})
	for _, tc := range []struct {
		vec  *prometheus.CounterVec
		want int
	}{
		{m.cycles, 3},
		{m.failures, 5},
	} {
		if n := testutil.CollectAndCount(tc.vec); n != tc.want {
			t.Errorf("%d series, want %d", n, tc.want)
		}
	}
}
