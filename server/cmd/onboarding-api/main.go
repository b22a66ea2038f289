// Command onboarding-api serves the onboarding service's HTTP API.
//
//	onboarding-api                                          serve the API
//	onboarding-api tokens create --name NAME [--account ID] create an API token (printed once)
//	onboarding-api tokens list                              list API tokens (never the tokens)
//	onboarding-api tokens revoke TOKEN_ID                   revoke an API token
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	"github.com/onboarding-service/onboarding/internal/pprofserver"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/server/api"
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
	if len(os.Args) > 1 && os.Args[1] == "tokens" {
		os.Exit(tokensCommand(ctx, cfg, os.Args[2:]))
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "onboarding-api: unknown command %q\n%s\n", os.Args[1], tokensUsage)
		os.Exit(2)
	}
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("onboarding-api failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if cfg.TokenSecretIsRandom {
		logger.Warn("TOKEN_SECRET is not set: using a random one, so invite links stop working when the API restarts and differ from the worker's")
	}
	logSecuritySettings(cfg, logger)
	if cfg.PprofAddr != "" {
		stopPprof, err := pprofserver.Start(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
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
	tc, err := dialTemporal(ctx, cfg, logger, temporalclient.WithIdentity(fmt.Sprintf("onboarding-api@%s:%d", host, os.Getpid())),
		temporalclient.WithPayloadEncryption(cfg))
	if err != nil && ctx.Err() != nil {
		logger.Info("stopped while waiting for Temporal")
		return nil
	}
	if err != nil {
		return err
	}
	defer tc.Close()

	reg := prometheus.NewRegistry()
	handler := api.New(api.Deps{
		Config:   cfg,
		Store:    st,
		Temporal: tc,
		Signer:   invitetoken.NewSigner(cfg.TokenSecret, cfg.TokenSecretPrevious...),
		Hasher:   password.NewHasher(maxConcurrentHashes),
		Logger:   logger,
		Registry: reg,
	})
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", api.MetricsHandler(reg))
		ms := &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		go func() {
			if err := ms.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "error", err)
			}
		}()
		defer ms.Close()
		logger.Info("metrics", "addr", ln.Addr().String())
	}
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

// tokensCommand runs `onboarding-api tokens ...` and returns the exit status.
func tokensCommand(ctx context.Context, cfg config.Config, args []string) int {
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "onboarding-api tokens: %v\n", err)
		return 1
	}
	defer st.Close()
	err = runTokens(ctx, st, args, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "onboarding-api tokens: %v\n", err)
		return 1
	}
	return 0
}

// logSecuritySettings says at start which protections are on, never with a secret's value.
func logSecuritySettings(cfg config.Config, logger *slog.Logger) {
	if cfg.PayloadKey != nil {
		logger.Info("payload encryption on", "key_id", cfg.PayloadKey.ID, "previous_keys", len(cfg.PayloadKeysPrevious),
			"codec_endpoint", cfg.CodecAuthToken != "" || cfg.CodecOIDCIssuer != "",
			"codec_static_token", cfg.CodecAuthToken != "", "codec_oidc_issuer", cfg.CodecOIDCIssuer)
	} else if cfg.Production() {
		logger.Warn("PAYLOAD_ENCRYPTION_KEY is not set: invitation payloads (names, addresses) are stored in Temporal in clear")
	}
	if cfg.PayloadKey != nil && cfg.CodecAuthToken == "" && cfg.CodecOIDCIssuer == "" {
		logger.Info("neither CODEC_AUTH_TOKEN nor CODEC_OIDC_ISSUER is set: /codec/decode and /codec/encode are not served")
	}
	logger.Info("rate limits", "invitee_per_ip", cfg.RateInviteeIP.String(), "invitee_per_token", cfg.RateInviteeToken.String(),
		"invitations_per_account", cfg.RateInvitationCreate.String(), "trusted_proxies", len(cfg.TrustedProxies),
		"token_secrets_previous", len(cfg.TokenSecretPrevious))
}
