package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
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
	// codecEndpoint is the API's codec, which the dev server's UI decodes payloads through;
	// payloadKeySource and codecTokenSource say where the key and the CLI's token come from.
	codecEndpoint                      string
	payloadKeySource, codecTokenSource string
}

// loadSettings reads and checks the environment, so a bad value stops `make run` with its name
// before anything starts.
func loadSettings(dataDir string, cluster bool) (settings, error) {
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
	s.uiPort = defaultTemporalUIPort
	if v := os.Getenv("TEMPORAL_UI_PORT"); v != "" {
		if s.uiPort, err = strconv.Atoi(v); err != nil || s.uiPort <= 0 || s.uiPort > 65535 {
			return s, fmt.Errorf("TEMPORAL_UI_PORT: %q is not a port number", v)
		}
	}
	if err := s.encryptPayloads(dataDir); err != nil {
		return s, err
	}
	// A developer's webhook receiver runs on this machine: loopback endpoints are allowed
	// (private and metadata addresses stay refused). Webhook secrets derive from TOKEN_SECRET,
	// so with a random one they change at every start, as links do.
	if os.Getenv("WEBHOOK_ALLOW_LOCALHOST") == "" {
		s.extraEnv["WEBHOOK_ALLOW_LOCALHOST"] = "true"
	}
	if cluster && os.Getenv("DATABASE_URL") == "" {
		// make cluster keeps its own service database beside make run's: each pairs its rows
		// with its own Temporal's workflows.
		s.extraEnv["DATABASE_URL"] = clusterDatabaseURL
	}
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
	if s.apiURL, err = localURL("HTTP_ADDR", s.cfg.HTTPAddr); err != nil {
		return s, err
	}
	s.codecEndpoint = s.apiURL + "/codec"
	if s.workerMetricsURL, err = localURL("WORKER_METRICS_ADDR", s.cfg.WorkerMetricsAddr); err != nil {
		return s, err
	}
	s.workerMetricsURL += "/metrics"
	return s, nil
}

// clusterDatabaseURL is make cluster's DATABASE_URL default: the settings' default server,
// another database.
const clusterDatabaseURL = "postgres://postgres@127.0.0.1:5432/onboarding_cluster?sslmode=disable"

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
	return keptSecret("BOOTSTRAP_API_TOKEN", path, randomHex)
}

// encryptPayloads makes `make run` write payloads to Temporal as production does: encrypted
// with a key kept in the data directory (so histories of earlier runs still open), the UI
// pointed at the API's codec, and a codec token for the CLI. The dev server's UI cannot send a
// token (its codec settings are the endpoint alone), so CODEC_ALLOW_LOCAL_UI lets a browser on
// this machine decode from the UI's origin: as much as the dev UI already shows anyone who can
// open it, and nothing more.
func (s *settings) encryptPayloads(dataDir string) error {
	var key, token string
	var err error
	if key, s.payloadKeySource, err = keptSecret("PAYLOAD_ENCRYPTION_KEY", filepath.Join(dataDir, "payload-encryption.key"), randomBase64); err != nil {
		return err
	}
	if token, s.codecTokenSource, err = keptSecret("CODEC_AUTH_TOKEN", filepath.Join(dataDir, "codec-auth-token"), randomHex); err != nil {
		return err
	}
	s.extraEnv["PAYLOAD_ENCRYPTION_KEY"], s.extraEnv["CODEC_AUTH_TOKEN"] = key, token
	if os.Getenv("CODEC_ALLOW_LOCAL_UI") == "" {
		s.extraEnv["CODEC_ALLOW_LOCAL_UI"] = "true"
	}
	if os.Getenv("CODEC_CORS_ORIGIN") == "" {
		// The UI is served on 127.0.0.1 and answers on localhost too.
		port := strconv.Itoa(s.uiPort)
		s.extraEnv["CODEC_CORS_ORIGIN"] = "http://127.0.0.1:" + port + ",http://localhost:" + port
	}
	return nil
}

// keptSecret returns the value of the environment variable name if set, else the one kept in
// path (mode 0600), created with generate on first use.
func keptSecret(name, path string, generate func() string) (value, source string, err error) {
	if v := os.Getenv(name); v != "" {
		return v, "from " + name, nil
	}
	source = "kept in " + path
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), source, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	value = generate()
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return value, source, nil
}

// randomHex returns 32 random bytes, hex encoded.
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// randomBase64 returns 32 random bytes in standard base64: a PAYLOAD_ENCRYPTION_KEY.
func randomBase64() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
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
