package security

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestDataDirInUse: a second server on a data dir in use exits at once,
// saying another zombi holds it and which.
func TestDataDirInUse(t *testing.T) {
	inst := zombitest.Start(t)
	cmd := exec.Command(zombitest.Binary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", inst.DataDir)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("a second zombi on a data dir in use was still running after a minute:\n%s", out)
	}
	if err == nil {
		t.Fatalf("a second zombi on a data dir in use exited 0:\n%s", out)
	}
	for _, want := range []string{"another zombi", inst.DataDir} {
		if !strings.Contains(string(out), want) {
			t.Errorf("its error does not say %q:\n%s", want, out)
		}
	}
}
