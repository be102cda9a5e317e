// Package promtext reads the Prometheus text exposition format as the
// load tools and benchmarks need it: the sum of every series of a few
// metrics, whatever their labels.
package promtext

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Sums reads r (a /metrics answer) and returns, for each of names, the
// sum of the values of its series; a name with no series is absent. A
// histogram's or summary's series are the metric's own name plus _sum,
// _count or _bucket, so ask for those.
func Sums(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// name{labels} value [timestamp]; label values may hold spaces.
		end := strings.IndexAny(line, "{ ")
		if end < 0 || !want[line[:end]] {
			continue
		}
		rest := line[end:]
		if rest[0] == '{' {
			brace := strings.LastIndexByte(rest, '}')
			if brace < 0 {
				continue
			}
			rest = rest[brace+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[line[:end]] += v
	}
	return out, sc.Err()
}
