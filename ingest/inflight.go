package ingest

import "sync/atomic"

// InFlight bounds the bytes of request bodies being handled at once. A
// request reserves its size before its body is read; when the reservation
// would pass the limit the request is refused (429) instead of buffered.
type InFlight struct {
	max int64
	cur atomic.Int64
}

// NewInFlight returns a limiter of max bytes (<= 0: unlimited).
func NewInFlight(max int64) *InFlight { return &InFlight{max: max} }

// Acquire reserves n bytes, or reports false and reserves nothing.
func (l *InFlight) Acquire(n int64) bool {
	if l.max <= 0 {
		l.cur.Add(n)
		return true
	}
	for {
		cur := l.cur.Load()
		if cur+n > l.max && cur > 0 {
			return false
		}
		if l.cur.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// Release returns n reserved bytes.
func (l *InFlight) Release(n int64) { l.cur.Add(-n) }

// Bytes is the number of bytes reserved now.
func (l *InFlight) Bytes() int64 { return l.cur.Load() }
