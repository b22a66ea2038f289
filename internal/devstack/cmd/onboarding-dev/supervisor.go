package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// child is a supervised process: Temporal, the worker or the API.
type child struct {
	name string
	done <-chan struct{}
	wait func() error
	stop func() error
}

// supervisor keeps the children `make run` started. Any child's exit is reported on exits;
// stopAll stops them in the reverse order of their start (API, worker, Temporal), so no request
// or activity is cut off by a dependency vanishing under it.
type supervisor struct {
	started []child
	exits   chan child
}

func newSupervisor() *supervisor { return &supervisor{exits: make(chan child, 3)} }

func (s *supervisor) add(c child) {
	s.started = append(s.started, c)
	go func() {
		<-c.done
		s.exits <- c
	}()
}

func (s *supervisor) stopAll() {
	for i := len(s.started) - 1; i >= 0; i-- {
		c := s.started[i]
		select {
		case <-c.done:
			continue // already exited, and that was reported
		default:
		}
		say("stopping %s", c.name)
		if err := c.stop(); err != nil {
			say("%v", err)
		}
	}
}

// startBinary starts .bin/<bin> with env, its output prefixed with [name] on the terminal.
func (s *supervisor) startBinary(root, binDir, name, bin string, env []string, grace time.Duration) error {
	out := &prefixWriter{dst: terminal, prefix: "[" + name + "] "}
	cmd := exec.Command(filepath.Join(binDir, bin))
	cmd.Dir, cmd.Env = root, env
	cmd.Stdout, cmd.Stderr = out, out // one writer for both: exec then writes from one goroutine
	p, err := devstack.StartProcess(name, cmd)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		<-p.Done()
		out.Flush()
		close(done)
	}()
	s.add(child{name: name, done: done, wait: p.Wait, stop: func() error { return p.Stop(grace) }})
	return nil
}

func buildBinaries(ctx context.Context, root, binDir string) error {
	say("building .bin/onboarding-api and .bin/onboarding-worker")
	// A trailing separator makes go build write each main package under its own name.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator),
		"./server/cmd/onboarding-api", "./worker/cmd/onboarding-worker")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// waitHTTP polls u until it answers 200. It gives up when a supervised child exits, so a crash
// at start is reported at once, with the child's own output above it.
func (s *supervisor) waitHTTP(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ticker.C:
		case c := <-s.exits:
			return fmt.Errorf("%s exited during start (%v)", c.name, c.wait())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 within %s (last: %s)", u, readyTimeout, last)
		}
	}
}
