package compaction

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
)

// TestKeepNeeded: whatever expiry proposes, the snapshots the table still
// needs and those the floor protects stay.
func TestKeepNeeded(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) int64 { return now.Add(-ago).UnixMilli() }
	// main: s1 ← s2 ← s3 ← s4 ← s5 (current, 10 minutes old); s4 was
	// current until then. Tag "t" at s1, branch "b" at s3 keeping its
	// last two. s6 (5 minutes old) and s7 (5 hours old, child of s1) are
	// on no ref. s8 was current until s1 replaced it, 10 hours ago.
	type snap struct {
		id, parent int64
		ago        time.Duration
	}
	snaps := []snap{
		{8, 0, 20 * time.Hour},
		{1, 0, 10 * time.Hour}, {2, 1, 9 * time.Hour}, {3, 2, 8 * time.Hour}, {4, 3, 7 * time.Hour},
		{5, 4, 10 * time.Minute}, {6, 0, 5 * time.Minute}, {7, 1, 5 * time.Hour},
	}
	log := []snap{{8, 0, 20 * time.Hour}, {1, 0, 10 * time.Hour}, {2, 0, 9 * time.Hour}, {3, 0, 8 * time.Hour}, {4, 0, 7 * time.Hour}, {5, 0, 10 * time.Minute}}
	meta := func(refs string) table.Metadata {
		var ss, ls []string
		for _, s := range snaps {
			parent := ""
			if s.parent != 0 {
				parent = fmt.Sprintf(`"parent-snapshot-id": %d,`, s.parent)
			}
			ss = append(ss, fmt.Sprintf(`{"snapshot-id": %d, %s "sequence-number": %d, "timestamp-ms": %d,
				"manifest-list": "/w/t/metadata/snap-%d.avro", "summary": {"operation": "append"}, "schema-id": 0}`,
				s.id, parent, s.id, at(s.ago), s.id))
		}
		for _, l := range log {
			ls = append(ls, fmt.Sprintf(`{"snapshot-id": %d, "timestamp-ms": %d}`, l.id, at(l.ago)))
		}
		m, err := table.ParseMetadataBytes([]byte(fmt.Sprintf(`{
			"format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": "/w/t",
			"last-sequence-number": 8, "last-updated-ms": %d, "last-column-id": 1,
			"schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": false, "type": "long"}]}],
			"current-schema-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "default-spec-id": 0,
			"last-partition-id": 999, "sort-orders": [{"order-id": 0, "fields": []}], "default-sort-order-id": 0,
			"properties": {}, "current-snapshot-id": 5,
			"refs": {"main": {"snapshot-id": 5, "type": "branch"}, %s},
			"snapshots": [%s], "snapshot-log": [%s], "metadata-log": []}`,
			at(0), refs, strings.Join(ss, ","), strings.Join(ls, ","))))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	const refs = `"t": {"snapshot-id": 1, "type": "tag"}, "b": {"snapshot-id": 3, "type": "branch", "min-snapshots-to-keep": 2}, "young": {"snapshot-id": 6, "type": "tag"}`
	all := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	p := policy{keepLast: 1, snapshotAge: time.Millisecond}
	for _, tc := range []struct {
		name     string
		refs     string
		floor    time.Duration
		proposed []string
		ids      []int64
		refsOut  []string
	}{
		// s5 current; s1 tag; s3, s2 branch b; s4 replaced 10 minutes
		// ago; s6 made 5 minutes ago.
		{"everything proposed", refs, time.Hour, nil, []int64{7, 8}, nil},
		// Without its tag s1 goes too. The young tag stays: its snapshot
		// is within the floor.
		{"tags removed", refs, time.Hour, []string{"t", "young"}, []int64{1, 7, 8}, []string{"t"}},
		// Without a floor only refs and their retention count.
		{"no floor", refs, 0, nil, []int64{4, 7, 8}, nil},
		{"no floor, no refs", `"x": {"snapshot-id": 5, "type": "tag"}`, 0, []string{"x"}, []int64{1, 2, 3, 4, 6, 7, 8}, []string{"x"}},
		// A branch's own max-snapshot-age-ms keeps its whole history.
		{"branch age", `"b": {"snapshot-id": 3, "type": "branch", "max-snapshot-age-ms": 86400000}`, 0, nil, []int64{4, 6, 7, 8}, nil},
		// main's own min-snapshots-to-keep.
		{"main keeps 3", `"x": {"snapshot-id": 5, "type": "tag"}`, 0, nil, []int64{1, 2, 6, 7, 8}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := meta(tc.refs)
			if tc.name == "main keeps 3" {
				m = metaWithMainKeep(t, m, 3)
			}
			ids, refsOut := keepNeeded(m, p, tc.floor, now, all, tc.proposed)
			slices.Sort(ids)
			if !slices.Equal(ids, tc.ids) || !slices.Equal(refsOut, tc.refsOut) {
				t.Errorf("expirable %v, refs %q; want %v, %q", ids, refsOut, tc.ids, tc.refsOut)
			}
		})
	}
}

// metaWithMainKeep sets main's min-snapshots-to-keep.
func metaWithMainKeep(t *testing.T, m table.Metadata, n int) table.Metadata {
	b, err := table.MetadataBuilderFromBase(m, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetSnapshotRef("main", 5, table.BranchRef, table.WithMinSnapshotsToKeep(n)); err != nil {
		t.Fatal(err)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPolicyFloors: no table property lowers the server's floors.
func TestPolicyFloors(t *testing.T) {
	c := &Compactor{minOrphanAge: time.Hour, minSnapshotAge: 15 * time.Minute}
	p := c.policy(map[string]string{
		PropOrphanAge: "1", "history.expire.max-snapshot-age-ms": "1", PropEnabled: "true",
	})
	if p.orphanAge != time.Hour || p.snapshotAge != 15*time.Minute {
		t.Errorf("orphan age %v, snapshot age %v: below the floors", p.orphanAge, p.snapshotAge)
	}
	p = c.policy(map[string]string{PropOrphanAge: "7200000", "history.expire.max-snapshot-age-ms": "3600000"})
	if p.orphanAge != 2*time.Hour || p.snapshotAge != time.Hour {
		t.Errorf("orphan age %v, snapshot age %v: above the floors, the table's", p.orphanAge, p.snapshotAge)
	}
}
