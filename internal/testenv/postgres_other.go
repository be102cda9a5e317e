//go:build !linux

package testenv

import "syscall"

// pgProcAttr runs a cluster command as cred (if not nil). Where the kernel
// cannot tie the server's lifetime to the test binary's, StopPostgres stops
// it.
func pgProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	if cred == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: cred}
}
