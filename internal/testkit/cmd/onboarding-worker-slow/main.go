// Command onboarding-worker-slow is the fault-injection suite's worker (internal/testkit/faults):
// the real worker, run as onboarding-worker runs it, with every attempt of the ProvisionUser
// activity held for TESTKIT_PROVISION_DELAY (a Go duration such as 5s) before it runs, so a test
// can kill or stop the worker while an accept's provisioning is on it; with
// TESTKIT_PROVISION_HOLD=after, each attempt runs at once and its result is held for that long,
// so a test can kill the worker after the provisioning committed and before Temporal hears of
// it. It takes the service's settings from the environment as onboarding-worker does and has no
// subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/logging"
	"github.com/onboarding-service/onboarding/internal/testkit/slowactivity"
	"github.com/onboarding-service/onboarding/worker"
)

// delayEnv names the variable that sets how long each provisioning attempt is held; holdEnv,
// set to "after", holds each attempt's result after it ran (committed) instead.
const (
	delayEnv = "TESTKIT_PROVISION_DELAY"
	holdEnv  = "TESTKIT_PROVISION_HOLD"
)

func main() {
	delay, err := time.ParseDuration(os.Getenv(delayEnv))
	if err != nil || delay < 0 {
		fmt.Fprintf(os.Stderr, "onboarding-worker-slow: %s=%q: want a duration such as 5s\n", delayEnv, os.Getenv(delayEnv))
		os.Exit(2)
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "onboarding-worker-slow: bad settings:\n%v\n", err)
		os.Exit(2)
	}
	logger := logging.New(cfg, "worker")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	held := slowactivity.Interceptor("ProvisionUser", delay)
	switch os.Getenv(holdEnv) {
	case "", "before":
	case "after":
		held = slowactivity.After("ProvisionUser", delay)
	default:
		fmt.Fprintf(os.Stderr, "onboarding-worker-slow: %s=%q: want before or after\n", holdEnv, os.Getenv(holdEnv))
		os.Exit(2)
	}
	logger.Info("provisioning held back for the tests", "activity", "ProvisionUser", "delay", delay.String(), "hold", os.Getenv(holdEnv))
	if err := worker.Run(ctx, cfg, logger, worker.WithInterceptors(held)); err != nil {
		logger.Error("onboarding-worker-slow failed", "error", err)
		os.Exit(1)
	}
}
