package hot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openT opens a DB in dir and closes it when the test ends (unless the test
// closed it itself).
func openT(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	return openInternalT(t, dir, opts, internalOptions{})
}

func openInternalT(t testing.TB, dir string, opts Options, io internalOptions) *DB {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	db, err := open(dir, opts, io)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Error(err)
		}
	})
	return db
}

func mustClose(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustAppend(t testing.TB, db *DB, table string, recs ...Record) []Result {
	t.Helper()
	res, err := db.Append(context.Background(), table, recs)
	if err != nil {
		t.Fatalf("append to %s: %v", table, err)
	}
	if len(res) != len(recs) {
		t.Fatalf("append to %s: %d results for %d records", table, len(res), len(recs))
	}
	return res
}

// readAll reads every visible event of table.
func readAll(t testing.TB, db *DB, table string) []Event {
	t.Helper()
	var all []Event
	var after uint64
	for {
		evs, err := db.Read(context.Background(), table, after, 100)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

func rec(key, value string) Record {
	return Record{Key: key, Value: []byte(value)}
}

func values(n int, prefix string) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i].Value = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return recs
}

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
