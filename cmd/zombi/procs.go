package main

import (
	"os"
	"runtime"
)

// extraProcs is how many Ps zombi serve runs beyond the runtime's default
// (the CPUs it may use).
//
// The server's background work runs in long CPU-bound stretches: a flush
// cycle encodes Parquet for tens of milliseconds, Pebble flushes memtables
// and compacts, compaction rewrites files. Go preempts a running goroutine
// only after 10ms, so on a 2-CPU machine one such stretch holds half of
// the Ps, and the network, WAL and ack goroutines queue behind it: at
// 15,000 single-event writes/s p99 ack latency was 10-15ms with the
// flusher on and 4-5ms with it off (BENCHMARKS.md). With more Ps than
// CPUs the kernel schedules those threads instead, and it runs a thread
// that wakes from network or disk I/O ahead of one that has used its
// slice, which is what acks need; p99 went to 5ms.
//
// The number of such stretches at once is bounded by the flusher's and
// Pebble's concurrency, not by the CPU count, hence a constant. More Ps
// also give the garbage collector's background workers (a quarter of
// the Ps) more threads; with the heap headroom tuneGC sets they run
// about once a second.
const extraProcs = 2

// tuneProcs raises GOMAXPROCS by extraProcs unless GOMAXPROCS is set in
// the environment, which stays the operator's control. Setting it stops
// the runtime from following later changes of a container's CPU limit.
func tuneProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + extraProcs)
}
