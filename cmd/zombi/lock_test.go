package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestLockDataDir: a second lock on a data dir fails, naming the dir and
// the holder's process ID; after the first is released it succeeds.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir() + "/data"
	l, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	if err == nil {
		t.Fatal("a second lock on the data dir succeeded")
	}
	for _, want := range []string{"another zombi", fmt.Sprintf("pid %d", os.Getpid()), dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("locking a released data dir: %v", err)
	}
	l.Close()
}
