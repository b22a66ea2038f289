package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/onboarding-service/onboarding/internal/config"
)

// settings are what one `make run` works with: the validated configuration the children will
// see, what the supervisor adds to their environment, and where each part will answer.
type settings struct {
	cfg config.Config
	// extraEnv goes into the children's environment on top of this process's.
	extraEnv                 map[string]string
	temporalHost             string
	temporalPort, uiPort     int
	apiURL, workerMetricsURL string
	apiToken, apiTokenSource string
	tokenSecretRandom        bool
}

// loadSettings reads and checks the environment, so a bad value stops `make run` with its name
// before anything starts.
func loadSettings(dataDir string) (settings, error) {
	// The API and the worker must share one TOKEN_SECRET: the worker signs the links it emails
	// and the API verifies them.
	s := settings{extraEnv: map[string]string{}, tokenSecretRandom: os.Getenv("TOKEN_SECRET") == ""}
	if s.tokenSecretRandom {
		// A new secret per start, as CONTRACT.md says for development: earlier links stop verifying.
		s.extraEnv["TOKEN_SECRET"] = randomHex()
	}
	var err error
	if s.apiToken, s.apiTokenSource, err = devAPIToken(filepath.Join(dataDir, "dev-api-token")); err != nil {
		return s, err
	}
	s.extraEnv["BOOTSTRAP_API_TOKEN"] = s.apiToken
	s.cfg, err = config.LoadFrom(func(name string) string {
		if v, ok := s.extraEnv[name]; ok {
			return v
		}
		return os.Getenv(name)
	})
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	if s.temporalHost, s.temporalPort, err = loopbackHostPort("TEMPORAL_ADDRESS", s.cfg.TemporalAddress); err != nil {
		return s, err
	}
	s.uiPort = defaultTemporalUIPort
	if v := os.Getenv("TEMPORAL_UI_PORT"); v != "" {
		if s.uiPort, err = strconv.Atoi(v); err != nil || s.uiPort <= 0 || s.uiPort > 65535 {
			return s, fmt.Errorf("TEMPORAL_UI_PORT: %q is not a port number", v)
		}
	}
	if s.apiURL, err = localURL("HTTP_ADDR", s.cfg.HTTPAddr); err != nil {
		return s, err
	}
	if s.workerMetricsURL, err = localURL("WORKER_METRICS_ADDR", s.cfg.WorkerMetricsAddr); err != nil {
		return s, err
	}
	s.workerMetricsURL += "/metrics"
	return s, nil
}

// childEnv is the environment of the API and the worker.
func (s settings) childEnv() []string {
	env := os.Environ()
	for k, v := range s.extraEnv {
		env = append(env, k+"="+v) // exec keeps the last value of a duplicated key
	}
	return env
}

// devAPIToken returns BOOTSTRAP_API_TOKEN if set, else the token kept in path, created on first
// use, so the token printed in the banner keeps working across restarts.
func devAPIToken(path string) (token, source string, err error) {
	if v := os.Getenv("BOOTSTRAP_API_TOKEN"); v != "" {
		return v, "from BOOTSTRAP_API_TOKEN", nil
	}
	source = "kept in " + path
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), source, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	token = randomHex()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return token, source, nil
}

// randomHex returns 32 random bytes, hex encoded.
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// loopbackHostPort splits a TEMPORAL_ADDRESS for the dev server, which must listen on this
// machine: `make run` always starts its own.
func loopbackHostPort(name, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %q is not host:port", name, addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s: %q has no valid port", name, addr)
	}
	if host == "localhost" {
		host = "127.0.0.1" // the dev server binds an IP, not a name
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("%s: %q is not a loopback address; make run starts its own Temporal dev server "+
			"(unset %s or use 127.0.0.1:<port>)", name, addr, name)
	}
	return host, port, nil
}

// localURL turns a listen address such as ":8080" into a URL this machine can call.
func localURL(name, listenAddr string) (string, error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not host:port", name, listenAddr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	return u.Redacted()
}
