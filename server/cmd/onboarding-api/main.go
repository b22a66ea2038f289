// Command onboarding-api serves the onboarding service's HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/logging"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/server"
)

// shutdownTimeout bounds the wait for in-flight requests at shutdown; it exceeds the longest
// request (a Temporal update, 20 s) only slightly, and stays under Kubernetes' default 30 s grace.
const shutdownTimeout = 20 * time.Second

// maxConcurrentHashes bounds the memory argon2id takes (19 MiB each) during a burst of accepts.
const maxConcurrentHashes = 4

func main() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "onboarding-api: bad settings:\n%v\n", err)
		os.Exit(2)
	}
	logger := logging.New(cfg, "api")
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("onboarding-api failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if cfg.TokenSecretIsRandom {
		logger.Warn("TOKEN_SECRET is not set: using a random one, so invite links stop working when the API restarts and differ from the worker's")
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.BootstrapAPIToken != "" {
		if err := st.EnsureAPIToken(ctx, "bootstrap", cfg.BootstrapAPIToken, nil); err != nil {
			return fmt.Errorf("BOOTSTRAP_API_TOKEN: %w", err)
		}
	}

	host, _ := os.Hostname()
	tc, err := dialTemporal(ctx, cfg, logger, temporalclient.WithIdentity(fmt.Sprintf("onboarding-api@%s:%d", host, os.Getpid())))
	if err != nil && ctx.Err() != nil {
		logger.Info("stopped while waiting for Temporal")
		return nil
	}
	if err != nil {
		return err
	}
	defer tc.Close()

	handler := server.New(server.Deps{
		Config:   cfg,
		Store:    st,
		Temporal: tc,
		Signer:   invitetoken.NewSigner(cfg.TokenSecret),
		Hasher:   password.NewHasher(maxConcurrentHashes),
		Logger:   logger,
		Registry: prometheus.NewRegistry(),
	})
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // above the 20 s bound on Temporal calls
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() {
		logger.Info("listening", "addr", cfg.HTTPAddr)
		serveErr <- srv.ListenAndServe()
	}()

	select {
	case err := <-serveErr:
		return fmt.Errorf("HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// dialTemporal retries until Temporal answers or the process is asked to stop: in a fresh
// stack the API may start before Temporal does, and it should then wait, not crash-loop.
func dialTemporal(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...temporalclient.Option) (client.Client, error) {
	// Bad TLS files are a setting to fix, not something waiting helps with.
	if _, err := temporalclient.Options(cfg, logger, opts...); err != nil {
		return nil, err
	}
	backoff := time.Second
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := temporalclient.Dial(attemptCtx, cfg, logger, opts...)
		cancel()
		if err == nil {
			return c, nil
		}
		logger.Warn("temporal not reachable yet", "address", cfg.TemporalAddress, "error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("temporal: %w (gave up: %w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}
