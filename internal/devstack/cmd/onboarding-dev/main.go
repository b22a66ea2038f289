// Command onboarding-dev is what `make run` runs: the whole service on one machine, on the
// settings' defaults. It prepares the Postgres database, starts a Temporal dev server (state in
// .data/temporal.db, Web UI on :8233), builds and starts the worker and the API, creates demo
// data once, and prints where everything is. Ctrl-C stops the API, the worker and Temporal, in
// that order, so no request or activity is cut off by a dependency vanishing under it.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

const (
	defaultTemporalUIPort = 8233
	// readyTimeout bounds the wait for the API and the worker to answer after they start.
	readyTimeout = 60 * time.Second
	// Each grace exceeds the child's own drain limit (20 s for in-flight requests in the API, 20 s
	// for running activities in the worker), so a child that shuts down properly is never killed.
	apiStopGrace    = 25 * time.Second
	workerStopGrace = 25 * time.Second
)

// terminal serialises whole lines from the children and onboarding-dev itself, so output from
// different processes never interleaves mid-line.
var terminal = &lockedWriter{w: os.Stdout}

func main() {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	err := run(ctx, stopSignals)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "onboarding-dev: %v\n", err)
		os.Exit(1)
	}
	// Stopped by Ctrl-C or SIGTERM: that is the normal end, even if it interrupted the start.
}

func say(format string, args ...any) {
	fmt.Fprintf(terminal, "onboarding-dev: "+format+"\n", args...)
}

func run(ctx context.Context, stopSignals func()) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	binDir, dataDir := filepath.Join(root, ".bin"), filepath.Join(root, ".data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	set, err := loadSettings(dataDir)
	if err != nil {
		return err
	}
	cfg := set.cfg

	say("preparing database %s", redactedURL(cfg.DatabaseURL))
	if err := migrations.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("%w (is Postgres running? `make postgres` starts it)", err)
	}
	if err := migrations.Apply(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cli, err := devstack.EnsureTemporalCLI(ctx, binDir)
	if err != nil {
		return err
	}

	sup := newSupervisor()
	defer sup.stopAll()

	// Compile the API and the worker while Temporal boots: the two overlap well on two cores.
	built := make(chan error, 1)
	go func() { built <- buildBinaries(ctx, root, binDir) }()
	temporalLog := filepath.Join(dataDir, "temporal.log")
	say("starting Temporal dev server on %s (log: %s)", net.JoinHostPort(set.temporalHost, strconv.Itoa(set.temporalPort)), temporalLog)
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary:    cli,
		DBFile:    filepath.Join(dataDir, "temporal.db"),
		Host:      set.temporalHost,
		Port:      set.temporalPort,
		UIPort:    set.uiPort,
		Namespace: cfg.TemporalNamespace,
		LogFile:   temporalLog,
	})
	buildErr := <-built
	if err != nil {
		return err
	}
	sup.add(child{name: "temporal", done: temporal.Done(), wait: temporal.Wait, stop: temporal.Stop})
	if buildErr != nil {
		return buildErr
	}

	set.extraEnv["TEMPORAL_ADDRESS"] = temporal.Address()
	env := set.childEnv()
	// The worker first, so invitations created as soon as the API answers find it polling.
	if err := sup.startBinary(root, binDir, "worker", "onboarding-worker", env, workerStopGrace); err != nil {
		return err
	}
	if err := sup.startBinary(root, binDir, "api", "onboarding-api", env, apiStopGrace); err != nil {
		return err
	}
	for _, u := range []string{set.apiURL + "/readyz", set.workerMetricsURL} {
		if err := sup.waitHTTP(ctx, u); err != nil {
			return err
		}
	}

	api := apiClient{base: set.apiURL, token: set.apiToken, http: &http.Client{Timeout: 10 * time.Second}}
	demo, err := ensureDemoData(ctx, api, filepath.Join(dataDir, "demo.json"))
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	printBanner(bannerInfo{
		apiURL:            set.apiURL,
		uiURL:             temporal.UIURL(),
		workerMetricsURL:  set.workerMetricsURL,
		temporal:          temporal,
		temporalLog:       temporalLog,
		apiToken:          set.apiToken,
		apiTokenSource:    set.apiTokenSource,
		tokenSecretRandom: set.tokenSecretRandom,
		resend:            cfg.ResendAPIKey != "",
		demo:              demo,
	})

	select {
	case <-ctx.Done():
		// From here a second Ctrl-C ends onboarding-dev at once; the kernel then stops the
		// children (see devstack.StartProcess), so nothing keeps holding the ports.
		stopSignals()
		fmt.Fprintln(terminal)
		return nil
	case c := <-sup.exits:
		return fmt.Errorf("%s exited unexpectedly (%v)", c.name, c.wait())
	}
}
