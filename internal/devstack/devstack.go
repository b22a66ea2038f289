// Package devstack runs the service's local dependencies for development and end-to-end tests:
// the Temporal CLI dev server (built at a pinned version), child processes in their own process
// groups, and small helpers for ports and paths. `make run` and the end-to-end tests' TestMain
// both use it, so the two always run Temporal the same way.
package devstack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// RepoRoot returns the nearest directory at or above the working directory that holds a go.mod.
// Tests run in their package's directory and `make` in the root, so both find the same root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devstack: no go.mod found in the working directory or above it")
		}
		dir = parent
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may take
// it before the caller binds it; the window is short enough for development and tests.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("devstack: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
