package testenv

import "syscall"

// pgProcAttr runs a cluster command as cred (if not nil) and makes the
// kernel send the postmaster SIGQUIT (immediate shutdown) if the test binary
// dies without stopping it.
func pgProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
