package planning

import (
	"context"
	"errors"
	"testing"
)

// TestFileStats: files, bytes and records by partition of the current
// snapshot, identity partitions sorted by value, the totals the sums of
// the partitions; no snapshot, no files; and the planner's slots bound
// it like a plan.
func TestFileStats(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Workers = 1; o.MaxWaiting = 1 })
	ctx := context.Background()
	id := e.create("parts", byCategory, nil)
	tbl, err := e.cat.LoadTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := e.pl.FileStats(ctx, tbl); err != nil || st.SnapshotID != 0 || len(st.Partitions) != 0 {
		t.Fatalf("no snapshot: %+v, %v", st, err)
	}
	e.append(id, append(rows(0, 10, "b"), rows(10, 13, "a")...))
	snap := e.append(id, rows(13, 20, "b"))
	if tbl, err = e.cat.LoadTable(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err := e.pl.FileStats(ctx, tbl)
	if err != nil {
		t.Fatal(err)
	}
	if st.SnapshotID != snap || len(st.Fields) != 1 || st.Fields[0].Name != "category" || st.Fields[0].Transform != "identity" ||
		st.DataFiles != 3 || st.Records != 20 || st.Truncated || len(st.Partitions) != 2 {
		t.Fatalf("stats: %+v", st)
	}
	for i, want := range []struct {
		value   string
		files   int
		records int64
	}{{`"a"`, 1, 3}, {`"b"`, 2, 17}} {
		p := st.Partitions[i]
		if string(p.Values[0]) != want.value || p.DataFiles != want.files || p.Records != want.records || p.DataBytes <= 0 {
			t.Errorf("partition %d: %s %d files %d records %d bytes, want %s %d %d", i, p.Values[0], p.DataFiles, p.Records, p.DataBytes,
				want.value, want.files, want.records)
		}
	}
	if st.Partitions[0].DataBytes+st.Partitions[1].DataBytes != st.DataBytes {
		t.Errorf("partition bytes do not sum to %d", st.DataBytes)
	}

	// With the only slot taken and the waiting room full, it is refused.
	e.pl.slots <- struct{}{}
	e.pl.waiting <- struct{}{}
	if _, err := e.pl.FileStats(ctx, tbl); !errors.Is(err, ErrBusy) {
		t.Errorf("no planning slot: %v, want ErrBusy", err)
	}
	<-e.pl.waiting
	<-e.pl.slots
}

func TestCompareValues(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"-1", "1", -1}, {"1.5", "1.5", 0},
		{`"2026-01-02"`, `"2026-01-10"`, -1}, {"null", "0", -1}, {"", "null", 0}, {"3", "null", 1},
	} {
		if got := compareValues([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("compareValues(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
