package devstack

import "syscall"

// childSysProcAttr puts a child in its own process group (see Process) and, on Linux, has the
// kernel send it SIGTERM if the supervisor dies without stopping it (a test binary killed by
// -timeout, a second Ctrl-C), so no orphaned dev server keeps holding its ports.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
