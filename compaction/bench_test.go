package compaction_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCompact measures compaction throughput: an event table with
// 100-byte random payloads written by 50 flushes of 20,000 events (all in
// one hour partition) is compacted into files of the default target size.
// It reports input MB per second of wall time and per second of the
// process's CPU time (MB/s per core: the machine's other work does not
// count against it), and the memory the compaction took (see
// compactMeasured).
//
//	go test ./compaction -run '^$' -bench '^BenchmarkCompact$' -benchtime 1x -count 5
func BenchmarkCompact(b *testing.B) {
	for range b.N {
		b.StopTimer()
		e := newEnv(b, nil)
		id := ident("bench")
		at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli()
		raw := make([]byte, 50)
		for range 50 {
			var sb strings.Builder
			for range 20000 {
				rand.Read(raw)
				fmt.Fprintf(&sb, "{\"payload\":%q,\"timestamp_ms\":%d}\n", hex.EncodeToString(raw), at)
			}
			e.writeBulk("bench", sb.String())
			e.flush(id)
		}
		compactMeasured(b, e, id)
	}
}

// profile writes a CPU profile of the compaction alone (not the setup) to
// $ZOMBI_COMPACT_PROFILE when that is set.
func profile(b *testing.B) (stop func()) {
	path := os.Getenv("ZOMBI_COMPACT_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
