//go:build !linux

package testenv

import "os/exec"

// setS3ProcAttr does nothing where the kernel cannot tie the server's
// lifetime to the test binary's; StopS3 stops it.
func setS3ProcAttr(*exec.Cmd) {}

// processAlive conservatively reports every process as alive, so no
// directory of a running server is ever removed.
func processAlive(int) bool { return true }
