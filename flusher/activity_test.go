package flusher

import (
	"testing"
	"time"
)

func TestCommitRing(t *testing.T) {
	for _, n := range []int{0, 1, RecentCommits - 1, RecentCommits, RecentCommits + 1, 3*RecentCommits + 5} {
		var r commitRing
		for i := range n {
			r.add(Commit{SnapshotID: int64(i)})
		}
		got := r.list()
		want := min(n, RecentCommits)
		if len(got) != want {
			t.Fatalf("%d added: %d listed, want %d", n, len(got), want)
		}
		for i, c := range got {
			// The last RecentCommits, oldest first.
			if c.SnapshotID != int64(n-want+i) {
				t.Fatalf("%d added: commit %d is %d, want %d", n, i, c.SnapshotID, n-want+i)
			}
		}
	}
}

func TestLagQuantiles(t *testing.T) {
	lags := func(secs ...int) []Commit {
		var out []Commit
		for _, s := range secs {
			out = append(out, Commit{Lag: time.Duration(s) * time.Second})
		}
		return out
	}
	for _, c := range []struct {
		name     string
		commits  []Commit
		p50, p99 time.Duration
	}{
		{"one", lags(3), 3 * time.Second, 3 * time.Second},
		{"two", lags(5, 1), 1 * time.Second, 5 * time.Second},
		{"unsorted", lags(9, 1, 5, 3, 7), 5 * time.Second, 9 * time.Second},
		{"hundred", lags(func() []int {
			var s []int
			for i := 100; i >= 1; i-- {
				s = append(s, i)
			}
			return s
		}()...), 50 * time.Second, 99 * time.Second},
	} {
		q := LagQuantiles(c.commits, 0.5, 0.99)
		if q[0] != c.p50 || q[1] != c.p99 {
			t.Errorf("%s: p50 %v p99 %v, want %v %v", c.name, q[0], q[1], c.p50, c.p99)
		}
	}
	if LagQuantiles(nil, 0.5) != nil {
		t.Error("no commits: want nil")
	}
}
