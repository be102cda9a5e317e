package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// HAProxy is a load balancer in front of some servers: HAProxy from
// Debian's package (scripts/test.sh installs it), round robin, checking
// each server's /health/ready.
type HAProxy struct {
	// URL is the balancer's address, http://127.0.0.1:port.
	URL string
	cmd *exec.Cmd
	log *LogBuffer
}

// StartHAProxy starts HAProxy on a free 127.0.0.1 port in front of
// backends (host:port each), and stops it when the test ends. A backend
// is taken out after two failed checks 200 ms apart and back in after
// one good one; a request is retried on another backend only when it
// could not be sent (a refused connection), never after it was.
func StartHAProxy(t testing.TB, backends ...string) *HAProxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("testenv: haproxy is not installed (scripts/test.sh installs Debian's package): %v", err)
		}
		bin = "/usr/sbin/haproxy"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
	maxconn 4096

defaults
	mode http
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	retries 3
	retry-on conn-failure
	option redispatch
	option http-keep-alive

frontend zombi
	bind %s
	default_backend nodes

backend nodes
	balance roundrobin
	option httpchk GET /health/ready
	default-server inter 200ms fall 2 rise 1
`, addr)
	for i, b := range backends {
		fmt.Fprintf(&cfg, "\tserver n%d %s check\n", i+1, b)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &HAProxy{URL: "http://" + addr, log: &LogBuffer{}}
	// -db: stay in the foreground, so that the test owns the process.
	h.cmd = exec.Command(bin, "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("testenv: starting haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = h.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", h.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(h.URL + "/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h
			}
		}
		select {
		case <-done:
			t.Fatalf("testenv: haproxy exited:\n%s", h.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: haproxy not answering at %s after 10s: %v\n%s", h.URL, err, h.log.String())
		}
	}
}

// LogBuffer collects a process's output for a test: safe for the
// process's writers and the test's readers at once.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
