package zombitest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// RSS is the server's resident set size now (VmRSS), in bytes.
func (i *Instance) RSS(t testing.TB) int64 {
	t.Helper()
	return procStatus(t, i.Pid(), "VmRSS")
}

// PeakRSS is the largest resident set size the server has had (VmHWM),
// in bytes: unlike sampling RSS, it misses no short peak.
func (i *Instance) PeakRSS(t testing.TB) int64 {
	t.Helper()
	return procStatus(t, i.Pid(), "VmHWM")
}

// procStatus reads a size field of /proc/<pid>/status in bytes.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
