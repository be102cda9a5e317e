package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/hot"
)

// fakeClaims answers claims from a script: per key, the claims of
// successive calls (the last one repeats); keys without a script are
// Claimed. It records what is recorded and released.
type fakeClaims struct {
	mu       sync.Mutex
	script   map[string][]cluster.Claim
	err      error
	calls    int
	recorded map[string]uint64
	released []string
}

func (f *fakeClaims) Claim(_ context.Context, _ string, keys []string) ([]cluster.Claim, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := make([]cluster.Claim, len(keys))
	for i, k := range keys {
		if s := f.script[k]; len(s) > 0 {
			out[i] = s[0]
			if len(s) > 1 {
				f.script[k] = s[1:]
			}
		}
	}
	return out, nil
}

func (f *fakeClaims) Record(_ context.Context, _ string, keys []string, offsets []uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range keys {
		f.recorded[k] = offsets[i]
	}
	return nil
}

func (f *fakeClaims) Release(_ context.Context, _ string, keys []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, keys...)
	return nil
}

func TestAppendRecordsClaims(t *testing.T) {
	stored := func(off uint64) cluster.Claim { return cluster.Claim{State: cluster.Stored, Offset: off} }
	pending := func(alive bool) cluster.Claim {
		return cluster.Claim{State: cluster.Pending, Node: "b", NodeAlive: alive}
	}
	const other = 1<<44 + 7 // an offset of node b's stream
	tests := []struct {
		name       string
		script     map[string][]cluster.Claim
		claimErr   error
		maxBacklog int64
		keys       []string // one record per key; "" has none
		want       []hot.Result
		wantErr    error
		errHas     string
		recorded   map[string]uint64
		released   []string
		minCalls   int
	}{
		{name: "no keys, no round trip", keys: []string{"", ""},
			want: []hot.Result{{Seq: 1}, {Seq: 2}}, recorded: map[string]uint64{}},
		{name: "claimed and recorded", keys: []string{"a"},
			want: []hot.Result{{Seq: 1}}, recorded: map[string]uint64{"a": 1}, minCalls: 1},
		{name: "stored by another node", script: map[string][]cluster.Claim{"a": {stored(other)}}, keys: []string{"a"},
			want: []hot.Result{{Seq: other, Duplicate: true}}, recorded: map[string]uint64{}},
		{name: "bulk of stored, claimed, repeated and unkeyed records",
			script: map[string][]cluster.Claim{"a": {stored(other)}},
			keys:   []string{"a", "b", "", "b", "a"},
			want: []hot.Result{{Seq: other, Duplicate: true}, {Seq: 1}, {Seq: 2}, {Seq: 1, Duplicate: true},
				{Seq: other, Duplicate: true}},
			recorded: map[string]uint64{"b": 1}},
		{name: "pending on a live node, then stored",
			script: map[string][]cluster.Claim{"a": {pending(true), pending(true), stored(other)}},
			keys:   []string{"a"}, want: []hot.Result{{Seq: other, Duplicate: true}}, recorded: map[string]uint64{}, minCalls: 3},
		{name: "pending on a live node, then free",
			script: map[string][]cluster.Claim{"a": {pending(true), {State: cluster.Claimed}}},
			keys:   []string{"a"}, want: []hot.Result{{Seq: 1}}, recorded: map[string]uint64{"a": 1}},
		{name: "pending on a live node for too long",
			script: map[string][]cluster.Claim{"a": {pending(true)}},
			keys:   []string{"b", "a"}, wantErr: ErrKeyBusy, errHas: "node b is storing", released: []string{"b"}, minCalls: 3},
		{name: "pending on a dead node",
			script: map[string][]cluster.Claim{"a": {pending(false)}},
			keys:   []string{"a", "b"}, wantErr: ErrKeyBusy, errHas: "not alive", released: []string{"b"}, minCalls: 1},
		{name: "database down", claimErr: errors.New("connection refused"), keys: []string{"a"},
			wantErr: catalog.ErrUnavailable},
		{name: "hot tier full", maxBacklog: 1, keys: []string{"a", "b"},
			wantErr: hot.ErrBacklogFull, released: []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := hot.Open(t.TempDir(), hot.Options{MaxBacklogBytes: tc.maxBacklog, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f := &fakeClaims{script: tc.script, err: tc.claimErr, recorded: map[string]uint64{}}
			if f.script == nil {
				f.script = map[string][]cluster.Claim{}
			}
			s := &Service{hot: db, claims: f, log: slog.New(slog.DiscardHandler)}
			recs := make([]hot.Record, len(tc.keys))
			for i, k := range tc.keys {
				recs[i] = hot.Record{Key: k, Value: []byte(fmt.Sprint("v", i))}
			}
			start := time.Now()
			got, err := s.appendRecords(context.Background(), &tableState{hotKey: "t", name: "default.t"}, recs)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(fmt.Sprint(err), tc.errHas) {
					t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
				if errors.Is(err, ErrKeyBusy) && tc.errHas == "not alive" && time.Since(start) > claimWait/2 {
					t.Errorf("a dead node's claim was waited for (%s)", time.Since(start))
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("results %+v, want %+v", got, tc.want)
			}
			if tc.recorded != nil && fmt.Sprint(f.recorded) != fmt.Sprint(tc.recorded) {
				t.Errorf("recorded %v, want %v", f.recorded, tc.recorded)
			}
			if !slices.Equal(f.released, tc.released) {
				t.Errorf("released %v, want %v", f.released, tc.released)
			}
			if f.calls < tc.minCalls {
				t.Errorf("%d claim round trips, want at least %d", f.calls, tc.minCalls)
			}
			if tc.name == "no keys, no round trip" && f.calls != 0 {
				t.Errorf("%d claim round trips for records without keys", f.calls)
			}
			// Only what was claimed here is in the hot tier.
			for k, off := range f.recorded {
				if seq, ok, err := db.LookupKey("t", k); err != nil || !ok || seq != off {
					t.Errorf("hot tier has key %s at %d, %v, %v; recorded %d", k, seq, ok, err, off)
				}
			}
			if seq, ok, _ := db.LookupKey("t", "a"); ok && tc.script["a"] != nil && tc.script["a"][len(tc.script["a"])-1].State == cluster.Stored {
				t.Errorf("key a, stored by another node, is in this hot tier at %d", seq)
			}
		})
	}
}
