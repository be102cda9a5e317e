package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// lockName is the file in the data dir that a running zombi holds locked;
// pidName holds its process ID. They are two files because a POSIX lock,
// which Pebble's vfs takes, goes away when the process closes any
// descriptor of the locked file, also one it opened to write.
const (
	lockName = "zombi.lock"
	pidName  = "zombi.pid"
)

// lockDataDir locks dir for this process until the returned closer is
// closed (or the process exits), creating dir if need be. When another
// process holds it, the error says so, naming the directory and, as far
// as it wrote it, that process's ID: two servers on one hot tier and
// embedded store would corrupt both, and Pebble's own lock only said
// "resource temporarily unavailable".
func lockDataDir(dir string) (io.Closer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("creating the data dir: %w", err)
	}
	l, err := vfs.Default.Lock(filepath.Join(abs, lockName))
	if err != nil {
		holder := "another zombi"
		if b, rErr := os.ReadFile(filepath.Join(abs, pidName)); rErr == nil {
			if pid, pErr := strconv.Atoi(strings.TrimSpace(string(b))); pErr == nil {
				holder = fmt.Sprintf("another zombi (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("%s is using the data dir %s: stop it, or give this one another --data-dir (locking %s: %w)",
			holder, abs, lockName, err)
	}
	if err := os.WriteFile(filepath.Join(abs, pidName), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		l.Close()
		return nil, fmt.Errorf("writing %s: %w", pidName, err)
	}
	return l, nil
}
