package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/zombi-db/zombi/internal/testenv"
	"github.com/zombi-db/zombi/internal/zombitest"
)

// TestCommand covers the zombi subcommands other than serve.
func TestCommand(t *testing.T) {
	bin := zombitest.Binary(t)
	run := func(t *testing.T, env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Run("version", func(t *testing.T) {
		out, err := run(t, nil, "version")
		if err != nil || !strings.HasPrefix(out, "zombi ") {
			t.Fatalf("version: %v %q", err, out)
		}
	})
	t.Run("migrate", func(t *testing.T) {
		url := testenv.Postgres(t)
		for i := 0; i < 2; i++ { // the second run finds nothing to do
			out, err := run(t, []string{"ZOMBI_POSTGRES_URL=" + url}, "migrate")
			if err != nil || !strings.Contains(out, "migrations applied") {
				t.Fatalf("migrate run %d: %v %q", i+1, err, out)
			}
		}
		// A server on the migrated database starts and serves.
		inst := zombitest.Start(t, "--postgres-url", url)
		mustCall(t, 200, "GET", inst.URL+"/v1/config", "")
	})
	t.Run("migrate without postgres", func(t *testing.T) {
		out, err := run(t, nil, "migrate")
		if err == nil || !strings.Contains(out, "--postgres-url") {
			t.Fatalf("migrate without url: %v %q", err, out)
		}
	})
	t.Run("bad configuration", func(t *testing.T) {
		for _, args := range [][]string{{"serve", "--log-level", "loud"}, {"serve", "--nope"}, {"frobnicate"}, {}} {
			if out, err := run(t, nil, args...); err == nil {
				t.Errorf("zombi %v succeeded: %q", args, out)
			}
		}
	})
	t.Run("unreachable postgres", func(t *testing.T) {
		out, err := run(t, nil, "serve", "--listen", zombitest.FreeAddr(t), "--data-dir", t.TempDir(),
			"--postgres-url", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		if err == nil || !strings.Contains(out, "pointer store") {
			t.Fatalf("serve with an unreachable Postgres: %v %q", err, out)
		}
	})
}
