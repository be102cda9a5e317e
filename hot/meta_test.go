package hot

import (
	"context"
	"errors"
	"fmt"
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

func TestStream(t *testing.T) {
	give := func(s uint32, seen *StreamRequest) func(StreamRequest) (uint32, error) {
		return func(r StreamRequest) (uint32, error) {
			*seen = r
			return s, nil
		}
	}
	const table = "t"
	tests := []struct {
		name string
		// first opens with this stream (-1: no Stream func) and writes an
		// event; the reopen asks for second (-1: no Stream func).
		first, second int
		wantReq       StreamRequest // what the reopen's Stream func is told
		wantStream    uint32
		wantNext      uint64 // sequence of the first append after the reopen, 0: any above the first
		wantErr       string
	}{
		{name: "new directory keeps its stream", first: 3, second: 3,
			wantReq: StreamRequest{Recorded: 3, HasRecorded: true}, wantStream: 3},
		{name: "recorded stream without a Stream func", first: 3, second: -1, wantStream: 3},
		{name: "recorded stream cannot change", first: 3, second: 4, wantErr: "holds stream 3"},
		{name: "no stream stays 0", first: -1, second: -1, wantStream: 0},
		{name: "legacy directory keeps stream 0", first: -1, second: 0,
			wantReq: StreamRequest{Legacy: true}, wantStream: 0},
		{name: "legacy directory moves to another stream", first: -1, second: 2,
			wantReq: StreamRequest{Legacy: true}, wantStream: 2, wantNext: 2<<StreamBits + 1},
		{name: "stream out of range", first: -1, second: MaxStreams, wantErr: "streams are below"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var seen StreamRequest
			opts := Options{NodeID: "n1", Logger: discardLogger()}
			if tc.first >= 0 {
				opts.Stream = give(uint32(tc.first), &seen)
			}
			db, err := open(dir, opts, internalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			first := mustAppend(t, db, table, Record{Value: []byte("a")})[0].Seq
			if want := uint64(max(tc.first, 0))<<StreamBits + 1; first != want {
				t.Errorf("first sequence %d, want %d", first, want)
			}
			mustClose(t, db)

			opts.Stream, seen = nil, StreamRequest{}
			if tc.second >= 0 {
				opts.Stream = give(uint32(tc.second), &seen)
			}
			db, err = open(dir, opts, internalOptions{})
			if tc.wantErr != "" {
				if err == nil {
					mustClose(t, db)
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("reopen: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, db)
			if tc.second >= 0 {
				tc.wantReq.NodeID = "n1"
				if seen != tc.wantReq {
					t.Errorf("Stream was asked %+v, want %+v", seen, tc.wantReq)
				}
			}
			if db.Stream() != tc.wantStream {
				t.Errorf("Stream() = %d, want %d", db.Stream(), tc.wantStream)
			}
			next := mustAppend(t, db, table, Record{Value: []byte("b")})[0].Seq
			if next <= first || StreamOf(next) != tc.wantStream || (tc.wantNext != 0 && next != tc.wantNext) {
				t.Errorf("sequence after the reopen %d (stream %d), want above %d in stream %d (exactly %d if set)",
					next, StreamOf(next), first, tc.wantStream, tc.wantNext)
			}
			// Stored events keep their sequences.
			evs, err := db.Read(context.Background(), table, 0, 10)
			if err != nil || len(evs) != 2 || evs[0].Seq != first || evs[1].Seq != next {
				t.Errorf("read %v, %v; want sequences %d and %d", evs, err, first, next)
			}
		})
	}
}

func TestStreamFull(t *testing.T) {
	for _, stream := range []uint32{0, 1, MaxStreams - 1} {
		t.Run(fmt.Sprint(stream), func(t *testing.T) {
			db := openT(t, t.TempDir(), Options{Stream: func(StreamRequest) (uint32, error) { return stream, nil }})
			last := uint64(stream)<<StreamBits + 1<<StreamBits - 1
			if last >= 1<<53 {
				t.Fatalf("last sequence %d of stream %d is not below 2^53", last, stream)
			}
			if err := db.AdvanceTo("t", last-2); err != nil {
				t.Fatal(err)
			}
			_, err := db.Append(context.Background(), "t", []Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}})
			if !errors.Is(err, ErrStreamFull) {
				t.Fatalf("append past the stream: %v, want ErrStreamFull", err)
			}
			res := mustAppend(t, db, "t", Record{Value: []byte("a")}, Record{Value: []byte("b")})
			if res[1].Seq != last {
				t.Errorf("last sequence %d, want %d", res[1].Seq, last)
			}
			if _, err := db.Append(context.Background(), "t", []Record{{Value: []byte("c")}}); !errors.Is(err, ErrStreamFull) {
				t.Fatalf("append past the stream: %v, want ErrStreamFull", err)
			}
			if got := db.HighWatermark("t"); got != last {
				t.Errorf("high watermark %d, want %d", got, last)
			}
		})
	}
}
