package main

import "testing"

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 3200},
		{1 << 20, 3200},             // capped: the minimum heap goal stays at 128 MiB
		{4 << 20, 3200},             // 4 MiB + 128 MiB
		{10 << 20, 1280},            // 10 MiB + 128 MiB
		{64 << 20, 200},             // 64 MiB + 128 MiB
		{128 << 20, 100},            // doubling from here on
		{1 << 30, 100},              //
		{gcHeadroom/3 + 1, 299},     // rounded down
		{gcHeadroom / 50 * 49, 102}, //
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}
