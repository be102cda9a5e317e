package security

import (
	"strconv"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// metric returns the value of an unlabelled series on base's /metrics.
func metric(t *testing.T, base, name string, headers ...string) float64 {
	t.Helper()
	b := zombitest.MustCall(t, 200, "GET", base+"/metrics", "", headers...)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
