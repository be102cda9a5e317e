package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zombi-db/zombi/cluster"
	"github.com/zombi-db/zombi/hot"
)

func TestStreamLimitsAgree(t *testing.T) {
	if hot.MaxStreams != cluster.MaxStreams {
		t.Fatalf("hot.MaxStreams %d, cluster.MaxStreams %d", hot.MaxStreams, cluster.MaxStreams)
	}
}

// TestPreviousToken: a process takes over the lease of the last process
// on its data dir only when that process's token says it ran there.
func TestPreviousToken(t *testing.T) {
	dir := t.TempDir()
	here, err := processToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := processToken(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := processToken(dir)
	if err != nil || earlier == here {
		t.Fatalf("two tokens for one dir: %q, %q, %v", here, earlier, err)
	}
	tests := []struct {
		name, file, want string
	}{
		{"no file", "", ""},
		{"last process here", earlier + "\n", earlier},
		{"a copy of another dir", elsewhere + "\n", ""},
		{"garbage", "x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tokenName)
			_ = os.Remove(path)
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m := &member{dir: dir, token: here}
			if got := m.previousToken(); got != tc.want {
				t.Errorf("previousToken() = %q, want %q", got, tc.want)
			}
		})
	}
	m := &member{dir: dir, token: here}
	if err := m.saveToken(); err != nil {
		t.Fatal(err)
	}
	next, _ := processToken(dir)
	if got := (&member{dir: dir, token: next}).previousToken(); got != here {
		t.Errorf("after saveToken, the next process finds %q, want %q", got, here)
	}
}
