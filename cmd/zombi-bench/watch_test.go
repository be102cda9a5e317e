package main

import (
	"testing"
	"time"
)

func TestCommitRates(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	pts := func(rows ...float64) []point {
		var ps []point
		for i, r := range rows {
			ps = append(ps, point{at: at(float64(i)), rows: r, held: int64(1000 * i)})
		}
		return ps
	}
	for _, tc := range []struct {
		name    string
		points  []point
		loadEnd time.Time
		want    string
	}{
		{"too few points", pts(0), at(1), ""},
		{
			// Four seconds of load at 400k/s, then a drain of two that
			// commits nothing more: the drain halves nothing under load.
			"drain not counted under load", pts(0, 400e3, 800e3, 1200e3, 1600e3, 1600e3, 1600e3), at(4.5),
			"committed 400000 rows/s under load (266667 with the drain of 2s); 4000 events not committed at the load's end",
		},
		{"no point after the load's start", pts(0, 100), at(-1), "committed 100 rows/s"},
		{
			"held unknown", []point{{at: at(0), held: -1}, {at: at(2), rows: 10, held: -1}}, at(5),
			"committed 5 rows/s under load (5 with the drain of 0s)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commitRates(tc.points, tc.loadEnd); got != tc.want {
				t.Errorf("commitRates = %q, want %q", got, tc.want)
			}
		})
	}
}
