package hot

import (
	"strings"
	"testing"
	"time"
)

func TestNodeID(t *testing.T) {
	tests := []struct {
		name    string
		first   string // NodeID at creation
		second  string // NodeID at the reopen
		want    string // "" = the generated one
		wantErr string
	}{
		{name: "generated and kept", first: "", second: ""},
		{name: "explicit and kept", first: "node-a", second: "", want: "node-a"},
		{name: "explicit twice", first: "node-a", second: "node-a", want: "node-a"},
		{name: "changed", first: "node-a", second: "node-b", wantErr: `belongs to node "node-a"`},
		{name: "generated then explicit", first: "", second: "node-b", wantErr: "belongs to node"},
		{name: "bad", first: "Node_A", wantErr: "must match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := open(dir, Options{NodeID: tc.first, Logger: discardLogger()}, internalOptions{})
			if err != nil {
				if tc.wantErr == "" || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("first open: %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			id := db.NodeID()
			if !nodeIDPattern.MatchString(id) {
				t.Fatalf("node ID %q does not match %s", id, nodeIDPattern)
			}
			mustClose(t, db)
			db, err = open(dir, Options{NodeID: tc.second, Logger: discardLogger()}, internalOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("reopen: %v, want error containing %q", err, tc.wantErr)
				}
				if err == nil {
					mustClose(t, db)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, db)
			if db.NodeID() != id {
				t.Errorf("node ID after reopen = %q, want %q", db.NodeID(), id)
			}
			if tc.want != "" && id != tc.want {
				t.Errorf("node ID = %q, want %q", id, tc.want)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	if l, err := db.Label("t1"); err != nil || l != "" {
		t.Fatalf("label of unknown table = %q, %v", l, err)
	}
	for _, l := range []string{"ns\x1ft1", "ns\x1ft1", "other\x1ft1"} {
		if err := db.SetLabel("t1", l); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, db)
	db = openT(t, dir, Options{})
	if l, err := db.Label("t1"); err != nil || l != "other\x1ft1" {
		t.Fatalf("label after reopen = %q, %v", l, err)
	}
	if l, _ := db.Label("t2"); l != "" {
		t.Fatalf("label of t2 = %q", l)
	}
}

func TestAdvanceTo(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	res := mustAppend(t, db, "t", rec("", "a"))
	if res[0].Seq != 1 {
		t.Fatalf("first seq = %d", res[0].Seq)
	}
	// Within the lease, beyond it, and backwards (a no-op).
	for _, step := range []struct{ to, want uint64 }{
		{to: 100, want: 101},
		{to: 5 * leaseBlock, want: 5*leaseBlock + 1},
		{to: 7, want: 5*leaseBlock + 2},
	} {
		if err := db.AdvanceTo("t", step.to); err != nil {
			t.Fatal(err)
		}
		res := mustAppend(t, db, "t", rec("", "x"))
		if res[0].Seq != step.want {
			t.Fatalf("after AdvanceTo(%d): seq %d, want %d", step.to, res[0].Seq, step.want)
		}
	}
	// A table that never had events, and the lease surviving a restart.
	if err := db.AdvanceTo("fresh", 3*leaseBlock); err != nil {
		t.Fatal(err)
	}
	mustClose(t, db)
	db = openT(t, dir, Options{})
	for table, above := range map[string]uint64{"t": 5*leaseBlock + 2, "fresh": 3 * leaseBlock} {
		res := mustAppend(t, db, table, rec("", "y"))
		if res[0].Seq <= above {
			t.Errorf("%s after restart: seq %d, want > %d", table, res[0].Seq, above)
		}
	}
	evs := readAll(t, db, "t")
	if len(evs) != 5 {
		t.Fatalf("t has %d events, want 5", len(evs))
	}
}

func TestOldestAfter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	db := openT(t, t.TempDir(), Options{Now: clock})
	if at, err := db.OldestAfter("t", 0); err != nil || !at.IsZero() {
		t.Fatalf("unknown table: %v, %v", at, err)
	}
	var seqs []uint64
	for i := range 3 {
		now = time.Unix(1_700_000_000+int64(i)*10, 0)
		seqs = append(seqs, mustAppend(t, db, "t", rec("", "v"))[0].Seq)
	}
	for i, seq := range append([]uint64{0}, seqs...) {
		at, err := db.OldestAfter("t", seq)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(seqs) {
			if !at.IsZero() {
				t.Errorf("after the last event: %v, want zero", at)
			}
			continue
		}
		if want := time.Unix(1_700_000_000+int64(i)*10, 0); !at.Equal(want) {
			t.Errorf("OldestAfter(%d) = %v, want %v", seq, at, want)
		}
	}
}
