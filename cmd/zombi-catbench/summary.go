package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// printSummary prints, per operation and server, the median and range of
// ops/s over the runs, the medians of p50 and p99, and the ratio of each
// server's median ops/s to the best median of the reference servers (refs,
// comma-separated), as a Markdown table.
func printSummary(w io.Writer, p, refs string) error {
	isRef := func(s string) bool { return slices.Contains(strings.Split(refs, ","), s) }
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s is empty", p)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range csvHeader {
		if _, ok := col[h]; !ok {
			return fmt.Errorf("%s has no column %s", p, h)
		}
	}
	type key struct{ op, server string }
	type series struct {
		rate, p50, p99    []float64
		conflicts, errors int
		ops               int
		note              string
	}
	var ops, servers []string
	data := map[key]*series{}
	for _, r := range rows[1:] {
		k := key{r[col["op"]], r[col["server"]]}
		if !slices.Contains(ops, k.op) {
			ops = append(ops, k.op)
		}
		if !slices.Contains(servers, k.server) {
			servers = append(servers, k.server)
		}
		s := data[k]
		if s == nil {
			s = &series{}
			data[k] = s
		}
		if n := r[col["note"]]; n != "" {
			s.note = n
			continue
		}
		for _, x := range []struct {
			dst *[]float64
			c   string
		}{{&s.rate, "ops_per_s"}, {&s.p50, "p50_ms"}, {&s.p99, "p99_ms"}} {
			v, err := strconv.ParseFloat(r[col[x.c]], 64)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", p, x.c, err)
			}
			*x.dst = append(*x.dst, v)
		}
		c, _ := strconv.Atoi(r[col["conflicts"]])
		e, _ := strconv.Atoi(r[col["errors"]])
		n, _ := strconv.Atoi(r[col["ops"]])
		s.ops += n
		s.conflicts += c
		s.errors += e
	}
	fmt.Fprintln(w, "| operation | server | runs | ops/s median (range) | p50 ms | p99 ms | vs best reference | 409s per op | errors |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, op := range ops {
		refRate := 0.0
		for _, sv := range servers {
			if s := data[key{op, sv}]; isRef(sv) && s != nil && len(s.rate) > 0 {
				refRate = max(refRate, median(s.rate))
			}
		}
		for _, sv := range servers {
			s := data[key{op, sv}]
			if s == nil {
				continue
			}
			if len(s.rate) == 0 {
				fmt.Fprintf(w, "| %s | %s | – | %s | – | – | – | – | – |\n", op, sv, s.note)
				continue
			}
			ratio := "–"
			if !isRef(sv) && refRate > 0 {
				ratio = fmt.Sprintf("%.2f×", median(s.rate)/refRate)
			}
			perOp := 0.0
			if s.ops > 0 {
				perOp = float64(s.conflicts) / float64(s.ops)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s (%s–%s) | %.2f | %.2f | %s | %.1f | %d |\n",
				op, sv, len(s.rate), thousands(median(s.rate)), thousands(slices.Min(s.rate)), thousands(slices.Max(s.rate)),
				median(s.p50), median(s.p99), ratio, perOp, s.errors)
		}
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// thousands formats a rate rounded to a whole number with thousands
// separators: 12,345.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
