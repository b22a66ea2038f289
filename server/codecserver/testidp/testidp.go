// Package testidp is an OpenID Connect identity provider for tests: an httptest server with a
// discovery document and a JWKS of an RSA key generated at start, which signs access tokens.
// It can be taken down (discovery and keys, or the keys alone) to test what a verifier does
// when the provider does not answer.
package testidp

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// IdP is a running test identity provider.
type IdP struct {
	srv *httptest.Server
	// Key signs the tokens of Token; its public half is in the JWKS under KeyID.
	Key   *rsa.PrivateKey
	KeyID string

	mu          sync.Mutex
	down        bool // every request answers 503
	keysDown    bool // the JWKS answers 503
	issuer      string
	published   []jose.JSONWebKey
	discoveries int
	keyFetches  int
}

// New starts an identity provider, stopped when the test ends.
func New(t testing.TB) *IdP {
	t.Helper()
	p := &IdP{Key: NewKey(t), KeyID: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /keys", p.keys)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.published = []jose.JSONWebKey{{Key: &p.Key.PublicKey, KeyID: p.KeyID, Algorithm: string(jose.RS256), Use: "sig"}}
	return p
}

// NewKey generates an RSA key, for the provider or for a token no provider knows.
func NewKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Issuer is the provider's issuer URL (its discovery document is under it).
func (p *IdP) Issuer() string { return p.srv.URL }

// SetDown makes every request to the provider answer 503 (down=true) or be served again.
func (p *IdP) SetDown(down bool) { p.mu.Lock(); p.down = down; p.mu.Unlock() }

// SetKeysDown makes the JWKS alone answer 503.
func (p *IdP) SetKeysDown(down bool) { p.mu.Lock(); p.keysDown = down; p.mu.Unlock() }

// SetIssuer changes the issuer the discovery document names (to test a mismatch).
func (p *IdP) SetIssuer(issuer string) { p.mu.Lock(); p.issuer = issuer; p.mu.Unlock() }

// Publish adds a public key to the JWKS, as a provider does when it rotates.
func (p *IdP) Publish(key *rsa.PrivateKey, kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"})
}

// Discoveries and KeyFetches count the requests that were served.
func (p *IdP) Discoveries() int { p.mu.Lock(); defer p.mu.Unlock(); return p.discoveries }

// KeyFetches counts the JWKS requests that were served.
func (p *IdP) KeyFetches() int { p.mu.Lock(); defer p.mu.Unlock(); return p.keyFetches }

func (p *IdP) discovery(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	down, issuer := p.down, p.issuer
	if !down {
		p.discoveries++
	}
	p.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                p.srv.URL + "/authorize",
		"token_endpoint":                        p.srv.URL + "/token",
		"jwks_uri":                              p.srv.URL + "/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (p *IdP) keys(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	down := p.down || p.keysDown
	keys := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), p.published...)}
	if !down {
		p.keyFetches++
	}
	p.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, keys)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Claims are a token's claims; Token fills iss, exp and iat when they are empty.
type Claims map[string]any

// Token signs claims with the provider's key: an access token for audience, valid for an hour,
// unless claims say otherwise.
func (p *IdP) Token(t testing.TB, audience string, claims Claims) string {
	t.Helper()
	return p.SignWith(t, p.Key, p.KeyID, audience, claims)
}

// SignWith signs a token as Token does, with any key and key id.
func (p *IdP) SignWith(t testing.TB, key *rsa.PrivateKey, kid, audience string, claims Claims) string {
	t.Helper()
	now := time.Now()
	c := Claims{"iss": p.srv.URL, "sub": "support@example.com", "aud": audience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
