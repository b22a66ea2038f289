// Command onboarding-worker runs the Temporal worker of the onboarding service.
//
//	onboarding-worker                             run the worker
//	onboarding-worker migrate                     create the database if missing and apply the migrations
//	onboarding-worker register-search-attributes  register the workflow's search attributes (idempotent)
//	onboarding-worker email-hash ADDRESS          print the InviteeEmailHash of an address, for support
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/emailhash"
	"github.com/onboarding-service/onboarding/internal/logging"
	"github.com/onboarding-service/onboarding/internal/pprofserver"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
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
		err = runWorker(ctx, cfg, logger)
	case "migrate":
		if err = migrations.EnsureDatabase(ctx, cfg.DatabaseURL); err == nil {
			err = migrations.Apply(ctx, cfg.DatabaseURL)
		}
		if err == nil {
			logger.Info("migrations applied")
		}
	case "register-search-attributes":
		err = registerSearchAttributes(ctx, cfg, logger)
	case "email-hash":
		if len(os.Args) != 3 {
			err = fmt.Errorf("usage: onboarding-worker email-hash ADDRESS")
			break
		}
		if cfg.TokenSecretIsRandom && os.Getenv("EMAIL_HASH_KEY") == "" {
			err = fmt.Errorf("set EMAIL_HASH_KEY or TOKEN_SECRET as the service has them: the hash is keyed")
			break
		}
		fmt.Println(emailhash.Hash(cfg.EmailHashKey, os.Args[2]))
	default:
		err = fmt.Errorf("unknown command %q (want run, migrate, register-search-attributes or email-hash)", cmd)
	}
	if err != nil {
		logger.Error("onboarding-worker failed", "error", err)
		os.Exit(1)
	}
}

// runWorker runs the worker, with the pprof endpoints beside it when PPROF_ADDR is set.
func runWorker(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if cfg.PprofAddr != "" {
		stop, err := pprofserver.Start(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	return worker.Run(ctx, cfg, logger)
}

func registerSearchAttributes(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	c, err := temporalclient.Dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	added, err := temporalclient.RegisterSearchAttributes(ctx, c, cfg.TemporalNamespace)
	if err != nil {
		return err
	}
	logger.Info("search attributes registered", "namespace", cfg.TemporalNamespace, "added", added)
	return nil
}

func firstArg() string {
	if len(os.Args) > 1 {
		return os.Args[1]
	}
	return ""
}
