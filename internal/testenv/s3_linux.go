package testenv

import (
	"errors"
	"os/exec"
	"syscall"
)

// setS3ProcAttr makes the kernel kill the server if the test binary dies
// without calling StopS3 (a panic, a -timeout, a kill).
func setS3ProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processAlive reports whether a process with the given pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
