package main

import (
	"runtime"
	"testing"
)

func TestTuneProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)

	t.Setenv("GOMAXPROCS", "1")
	tuneProcs()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("with GOMAXPROCS set: %d Ps, want them left at %d", got, before)
	}
	t.Setenv("GOMAXPROCS", "")
	tuneProcs()
	if got := runtime.GOMAXPROCS(0); got != before+extraProcs {
		t.Errorf("%d Ps, want %d", got, before+extraProcs)
	}
}
