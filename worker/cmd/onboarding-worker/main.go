// Command onboarding-worker runs the Temporal worker of the onboarding service.
//
//	onboarding-worker            run the worker
//	onboarding-worker migrate    create the database if missing and apply the migrations
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/logging"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/worker"
)

func main() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "onboarding-worker: bad settings:\n%v\n", err)
		os.Exit(2)
	}
	logger := logging.New(cfg, "worker")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd := firstArg(); cmd {
	case "", "run":
		if cfg.TokenSecretIsRandom {
			logger.Warn("TOKEN_SECRET is not set: using a random one, so links this worker emails verify only with an API started with the same secret")
		}
		err = worker.Run(ctx, cfg, logger)
	case "migrate":
		if err = store.EnsureDatabase(ctx, cfg.DatabaseURL); err == nil {
			err = store.Migrate(ctx, cfg.DatabaseURL)
		}
		if err == nil {
			logger.Info("migrations applied")
		}
	default:
		err = fmt.Errorf("unknown command %q (want run or migrate)", cmd)
	}
	if err != nil {
		logger.Error("onboarding-worker failed", "error", err)
		os.Exit(1)
	}
}

func firstArg() string {
	if len(os.Args) > 1 {
		return os.Args[1]
	}
	return ""
}
