package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zombi-db/zombi/hot"
)

type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

const benchEvent = `{"payload":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}`

// BenchmarkWriteEvent measures one single-event write: Handler calls
// ServeHTTP directly (the handler's own cost), HTTP goes through net/http
// over loopback with keep-alive raw clients (what a producer costs the
// server). Both acknowledge after the WAL write without waiting for the
// sync (hot.Async), so that they measure CPU, not the disk; allocs/op is
// the figure to watch.
func BenchmarkWriteEvent(b *testing.B) {
	b.Run("Handler", func(b *testing.B) {
		ts := newTestServer(b, testOptions{durability: hot.Async})
		body := []byte(benchEvent)
		warm := httptest.NewRequest(http.MethodPost, "/tables/bench", bytes.NewReader(body))
		ts.ServeHTTP(httptest.NewRecorder(), warm)
		// One request, its body rewound each time: the allocations are
		// the handler's.
		rb := &rewindBody{}
		r, _ := http.NewRequest(http.MethodPost, "/tables/bench", rb)
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = int64(len(body))
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rb.Reset(body)
			r.Body = rb // ServeHTTP replaced it with its wrapper
			clear(w.h)
			w.status = 0
			ts.ServeHTTP(w, r)
			if w.status != http.StatusAccepted {
				b.Fatalf("status %d", w.status)
			}
		}
	})
	b.Run("HTTP", func(b *testing.B) {
		ts := newTestServer(b, testOptions{durability: hot.Async})
		hs := httptest.NewServer(ts)
		defer hs.Close()
		req := rawRequest("/tables/bench", []byte(benchEvent))
		warm := dialRaw(b, hs.Listener.Addr().String())
		if status, err := warm.do(req); err != nil || status != http.StatusAccepted {
			b.Fatalf("warm-up: %d %v", status, err)
		}
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			c := dialRaw(b, hs.Listener.Addr().String())
			defer c.c.Close()
			for pb.Next() {
				status, err := c.do(req)
				if err != nil || status != http.StatusAccepted {
					b.Errorf("status %d, err %v", status, err)
					return
				}
			}
		})
	})
}
