//go:build !linux

package testenv

import "os/exec"

// setS3ProcAttr does nothing where the kernel cannot tie the server's
// lifetime to the test binary's; StopS3 stops it.
func setS3ProcAttr(*exec.Cmd) {}
