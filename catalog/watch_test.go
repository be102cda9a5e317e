package catalog_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zombi-db/zombi/catalog"
)

// feedStore is a store shared with other processes, whose changes it
// reports from a channel.
type feedStore struct {
	catalog.Store
	changes chan catalog.Changes
}

func (f feedStore) FollowChanges(ctx context.Context, fn func(catalog.Changes)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-f.changes:
			fn(c)
		}
	}
}

func TestFollow(t *testing.T) {
	t1 := catalog.Ident{Namespace: catalog.Namespace{"ns"}, Name: "t1"}
	t2 := catalog.Ident{Namespace: catalog.Namespace{"ns", "inner"}, Name: "t2"}
	for _, tc := range []struct {
		name   string
		report catalog.Changes
		want   []catalog.Ident
	}{
		{"One", catalog.Changes{Idents: []catalog.Ident{t1}}, []catalog.Ident{t1}},
		{"Two", catalog.Changes{Idents: []catalog.Ident{t1, t2}}, []catalog.Ident{t1, t2}},
		{"All", catalog.Changes{All: true}, []catalog.Ident{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed := feedStore{changes: make(chan catalog.Changes)}
			svc, _ := newService(t, func(o *catalog.Options) {
				feed.Store = o.Store
				o.Store = feed
			})
			got := make(chan catalog.Ident, 10)
			stop := svc.Watch(func(id catalog.Ident) { got <- id })
			defer stop()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { done <- svc.Follow(ctx) }()
			feed.changes <- tc.report
			var ids []catalog.Ident
			for range tc.want {
				select {
				case id := <-got:
					ids = append(ids, id)
				case <-time.After(5 * time.Second):
					t.Fatalf("watchers got %v, want %v", ids, tc.want)
				}
			}
			if !slices.EqualFunc(ids, tc.want, func(a, b catalog.Ident) bool { return a.String() == b.String() && len(a.Namespace) == len(b.Namespace) }) {
				t.Fatalf("watchers got %v, want %v", ids, tc.want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Follow: %v", err)
			}
		})
	}
}

// TestFollowUnshared: a store no other process uses has nothing to follow.
func TestFollowUnshared(t *testing.T) {
	svc, _ := newService(t)
	if err := svc.Follow(t.Context()); err != nil {
		t.Fatalf("Follow: %v", err)
	}
}
