package temporalclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
)

func TestOptions(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	base := config.Config{TemporalAddress: "temporal.example:7233", TemporalNamespace: "onboarding.abc12"}

	o, err := Options(base, logger, WithIdentity("api@host"), WithMetricsHandler(client.MetricsNopHandler))
	if err != nil {
		t.Fatal(err)
	}
	if o.HostPort != base.TemporalAddress || o.Namespace != base.TemporalNamespace || o.Identity != "api@host" {
		t.Fatalf("options = %+v", o)
	}
	if o.Credentials != nil || o.ConnectionOptions.TLS != nil || o.Logger == nil || o.MetricsHandler == nil {
		t.Fatalf("plain options = %+v", o)
	}

	withKey := base
	withKey.TemporalAPIKey = "key"
	if o, err = Options(withKey, logger); err != nil || o.Credentials == nil || o.ConnectionOptions.TLS == nil {
		t.Fatalf("API key: %+v %v", o, err)
	}

	certFile, keyFile := writeKeyPair(t)
	mtls := withKey
	mtls.TemporalTLSCert, mtls.TemporalTLSKey = certFile, keyFile
	o, err = Options(mtls, logger)
	if err != nil || len(o.ConnectionOptions.TLS.Certificates) != 1 || o.Credentials == nil {
		t.Fatalf("mTLS with API key: %+v %v", o, err)
	}

	missing := base
	missing.TemporalTLSCert, missing.TemporalTLSKey = filepath.Join(t.TempDir(), "none.pem"), keyFile
	if _, err := Options(missing, logger); err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS_CERT") {
		t.Fatalf("missing certificate: %v", err)
	}
}

func writeKeyPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "onboarding"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
