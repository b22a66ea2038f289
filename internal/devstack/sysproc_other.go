//go:build unix && !linux

package devstack

import "syscall"

// childSysProcAttr puts a child in its own process group (see Process).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
