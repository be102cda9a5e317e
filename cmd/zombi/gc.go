package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcHeadroom is how much the heap may grow between two garbage
// collections when the live heap is small.
//
// Zombi's live Go heap is small when Pebble keeps its block cache and
// memtables outside it (builds with cgo): about 10 MB. With GOGC=100 the
// collector then runs after every ~10 MB of allocation, which at 30,000
// single-event writes per second (~3 KB allocated each, mostly by
// net/http) is nine collections a second and 5-8 % of the server's CPU.
// With at least gcHeadroom between collections they run about once a
// second and cost under 2 %.
const gcHeadroom = 128 << 20

// minHeapBase is the Go runtime's minimum heap goal at GOGC=100; it
// scales with GOGC.
const minHeapBase = 4 << 20

// tuneGC sets the collector to run when the heap has grown by the larger
// of gcHeadroom and the live heap (GOGC=100), after every collection for
// the live heap it measured. The heap therefore stays below about
// max(2 × live, live + gcHeadroom). It does nothing when GOGC is set, so
// GOGC (and GOMEMLIMIT, which the runtime applies either way) remain the
// operator's controls.
func tuneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	t := &gcTuner{live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, percent: 100}
	t.adjust()
	t.arm()
}

type gcTuner struct {
	live    []metrics.Sample
	percent int
}

// sentinel is an object whose finalizer runs after each collection.
type sentinel struct{ _ *byte }

// arm makes adjust run after the next collection (a finalizer runs once
// the collector has found its object unreachable), and again after each
// one.
func (t *gcTuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		t.adjust()
		t.arm()
	})
}

func (t *gcTuner) adjust() {
	metrics.Read(t.live)
	if t.live[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	// Within 10 % of the current setting is close enough: setting it is
	// not free, and the live heap moves a little with every collection.
	p := gcPercent(t.live[0].Value.Uint64())
	if d := p - t.percent; d*10 > t.percent || -d*10 > t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// gcPercent is the GOGC value that lets a heap with live bytes grow by
// gcHeadroom before the next collection, and at least 100. It is capped
// so that the runtime's minimum heap goal (4 MB × GOGC/100) stays within
// gcHeadroom.
func gcPercent(live uint64) int {
	const maxPercent = gcHeadroom / minHeapBase * 100
	if live == 0 {
		return maxPercent
	}
	p := uint64(gcHeadroom) * 100 / live
	return int(min(max(p, 100), maxPercent))
}
