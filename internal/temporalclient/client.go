// Package temporalclient builds the Temporal client both processes use, from the service's
// settings: address and namespace, Temporal Cloud API keys, mTLS, and the SDK's log bridged to
// slog.
package temporalclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
)

// Option adjusts the client options after the settings are applied.
type Option func(*client.Options)

// WithMetricsHandler reports the SDK's metrics through h (the worker passes a Prometheus one).
func WithMetricsHandler(h client.MetricsHandler) Option {
	return func(o *client.Options) { o.MetricsHandler = h }
}

// WithIdentity names this process in Temporal (the worker list, the history's identity fields).
func WithIdentity(identity string) Option {
	return func(o *client.Options) { o.Identity = identity }
}

// WithPayloadEncryption seals every payload this client (and a worker built on it) writes to
// Temporal with AES-256-GCM under cfg's PAYLOAD_ENCRYPTION_KEY, and opens payloads sealed under
// it or a previous key. Failure messages and stack traces are moved into the sealed payloads too.
// Without a key it changes nothing. The API and the worker must agree: pass it to both.
func WithPayloadEncryption(cfg config.Config) Option {
	return func(o *client.Options) {
		if cfg.PayloadKey == nil {
			return
		}
		dc := codec.DataConverter(codec.New(*cfg.PayloadKey, cfg.PayloadKeysPrevious...))
		o.DataConverter = dc
		o.FailureConverter = codec.FailureConverter(dc)
	}
}

// Options returns the client options for cfg without connecting: Dial uses it, and the API
// checks its Temporal settings with it before it can reach the server.
func Options(cfg config.Config, logger *slog.Logger, opts ...Option) (client.Options, error) {
	o := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
	}
	var tlsConfig *tls.Config
	if cfg.TemporalTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TemporalTLSCert, cfg.TemporalTLSKey)
		if err != nil {
			return o, fmt.Errorf("TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.TemporalAPIKey != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
		// The SDK would enable TLS on its own for an API key; saying so keeps the minimum
		// version explicit and lets an API key and a client certificate be combined.
		if tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	o.ConnectionOptions.TLS = tlsConfig
	for _, opt := range opts {
		opt(&o)
	}
	return o, nil
}

// Dial connects to Temporal and checks the connection (the SDK asks the server for its
// capabilities), honouring ctx's deadline.
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (client.Client, error) {
	o, err := Options(cfg, logger, opts...)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}
