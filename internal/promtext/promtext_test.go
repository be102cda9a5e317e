package promtext

import (
	"reflect"
	"strings"
	"testing"
)

func TestSums(t *testing.T) {
	const page = `# HELP zombi_flush_rows_total Rows committed.
# TYPE zombi_flush_rows_total counter
zombi_flush_rows_total 1500
zombi_flush_failures_total{reason="catalog"} 2
zombi_flush_failures_total{reason="storage"} 3
zombi_odd{path="a b} c"} 7 1700000000000
zombi_flush_tail_write_seconds_sum 4.5
zombi_flush_tail_write_seconds_count 9
process_cpu_seconds_total 2.71e+00
zombi_flush_rows_total_extra 99
broken{reason="x" 1
`
	for _, tc := range []struct {
		name  string
		names []string
		want  map[string]float64
	}{
		{"plain", []string{"zombi_flush_rows_total"}, map[string]float64{"zombi_flush_rows_total": 1500}},
		{"labels summed", []string{"zombi_flush_failures_total"}, map[string]float64{"zombi_flush_failures_total": 5}},
		{"a label value with a space and a brace, and a timestamp", []string{"zombi_odd"}, map[string]float64{"zombi_odd": 7}},
		{"histogram parts and exponents", []string{"zombi_flush_tail_write_seconds_sum", "process_cpu_seconds_total"},
			map[string]float64{"zombi_flush_tail_write_seconds_sum": 4.5, "process_cpu_seconds_total": 2.71}},
		{"absent and malformed", []string{"nothing", "broken"}, map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sums(strings.NewReader(page), tc.names...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Sums(%v) = %v, want %v", tc.names, got, tc.want)
			}
		})
	}
}
