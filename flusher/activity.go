package flusher

import (
	"math"
	"slices"
	"time"
)

// RecentCommits is how many commits of each table Activity remembers.
const RecentCommits = 64

// Commit is one commit of a table's events, as Activity reports it.
type Commit struct {
	At         time.Time
	SnapshotID int64
	Rows       int64
	Files      int
	Bytes      int64
	// Lag is from the acknowledgement of the commit's oldest event to the
	// commit: the longest any of its events waited.
	Lag time.Duration
	// Shared: the commit took staged batches of several nodes (a cluster
	// on a shared database); Rows counts them all.
	Shared bool
}

// TableActivity is what the flusher knows of one table's recent work.
type TableActivity struct {
	// Commits are the table's last commits on this node, oldest first, at
	// most RecentCommits.
	Commits []Commit
	// Committed is this node's highest sequence in the table.
	Committed uint64
	// Failures is how many cycles in a row failed, LastError the last
	// one's error (nil after a success).
	Failures  int
	LastError error
	// Oldest is when the oldest event not yet committed was acknowledged;
	// zero when none or not known.
	Oldest time.Time
}

// commitRing holds a table's last RecentCommits commits.
type commitRing struct {
	buf  [RecentCommits]Commit
	next int
	n    int
}

func (r *commitRing) add(c Commit) {
	r.buf[r.next] = c
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// list returns the commits oldest first.
func (r *commitRing) list() []Commit {
	out := make([]Commit, 0, r.n)
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

// Activity reports the recent work of the hot-tier table key (the table's
// UUID): its last commits on this node, the watermark and failures. ok is
// false when this flusher has not seen the table.
func (f *Flusher) Activity(key string) (a TableActivity, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.tables[key]
	if st == nil {
		return TableActivity{}, false
	}
	a = TableActivity{Committed: st.committed, Failures: st.failures, LastError: st.lastErr, Oldest: st.oldest}
	if st.recent != nil {
		a.Commits = st.recent.list()
	}
	return a, true
}

// noteCommit records a commit in st's recent commits. f.mu must be held.
func (st *tableState) noteCommit(c Commit) {
	if st.recent == nil {
		st.recent = new(commitRing)
	}
	st.recent.add(c)
}

// LagQuantiles are the q-quantiles (0..1) of the commits' lags, in q's
// order, by the nearest rank; nil when there are no commits.
func LagQuantiles(commits []Commit, q ...float64) []time.Duration {
	if len(commits) == 0 {
		return nil
	}
	lags := make([]time.Duration, len(commits))
	for i, c := range commits {
		lags[i] = c.Lag
	}
	slices.Sort(lags)
	out := make([]time.Duration, len(q))
	for i, p := range q {
		k := int(math.Ceil(p*float64(len(lags)))) - 1
		out[i] = lags[min(max(k, 0), len(lags)-1)]
	}
	return out
}
