package codecserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/server/codecserver/testidp"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

const (
	staticToken = "static-codec-token-0123456789abcdef0123"
	audience    = "temporal-ui-codec"
	uiOrigin    = "http://127.0.0.1:8233"
)

var key = codec.Key{ID: "k1", Secret: [32]byte{7, 7, 7}}

func init() { gin.SetMode(gin.ReleaseMode) }

// router mounts the endpoint as server/api does, errors answered as problems.
func router(e *Endpoint) *gin.Engine {
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Next()
		if len(c.Errors) > 0 && !c.Writer.Written() {
			problem.Write(c, problem.Classify(c.Errors.Last().Err))
		}
	})
	handle := func(h func(*gin.Context) error) gin.HandlerFunc {
		return func(c *gin.Context) {
			if err := h(c); err != nil {
				_ = c.Error(err)
				c.Abort()
			}
		}
	}
	g := r.Group("/codec", e.CORS)
	g.OPTIONS("/decode", e.Preflight)
	g.POST("/decode", e.Auth, handle(e.Decode))
	return r
}

func cfg(mod func(*config.Config)) config.Config {
	c := config.Config{Env: "development"}
	c.PayloadKey = &key
	c.CodecCORSOrigins = []string{uiOrigin}
	mod(&c)
	return c
}

// sealed is a decode request body holding one encrypted payload, and its plain JSON data.
func sealed(t *testing.T) (string, string) {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"email": "jane@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := codec.New(key).Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	return string(body), string(p.Data)
}

type call struct {
	auth, origin, remote string
}

func decode(t *testing.T, r http.Handler, c call) *httptest.ResponseRecorder {
	t.Helper()
	body, _ := sealed(t)
	req := httptest.NewRequest(http.MethodPost, "/codec/decode", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.remote != "" {
		req.RemoteAddr = c.remote
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// wantDecoded fails unless w is a 200 whose payload is the plain one.
func wantDecoded(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	_, plain := sealed(t)
	var out commonpb.Payloads
	if w.Code != http.StatusOK || protojson.Unmarshal(w.Body.Bytes(), &out) != nil || len(out.Payloads) != 1 ||
		string(out.Payloads[0].Data) != plain {
		t.Fatalf("decode: %d %s", w.Code, w.Body)
	}
}

// wantProblem fails unless w is a problem of that status and code, and returns its detail.
func wantProblem(t *testing.T, w *httptest.ResponseRecorder, status int, code contract.Code) string {
	t.Helper()
	var p problem.Problem
	if w.Code != status || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Code != code {
		t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, status, code)
	}
	if strings.Contains(w.Body.String(), "jane") {
		t.Fatal("a refusal shows the payload")
	}
	return p.Detail
}

func TestNewServesOnlyWithKeyAndAuth(t *testing.T) {
	if New(cfg(func(c *config.Config) {})) != nil {
		t.Error("served with a key and no way to authenticate")
	}
	if New(cfg(func(c *config.Config) { c.CodecAllowLocalUI = true })) != nil {
		t.Error("served on CODEC_ALLOW_LOCAL_UI alone")
	}
	if New(cfg(func(c *config.Config) { c.PayloadKey = nil; c.CodecAuthToken = staticToken })) != nil {
		t.Error("served without a payload key")
	}
	if New(cfg(func(c *config.Config) { c.CodecAuthToken = staticToken })) == nil {
		t.Error("not served with a key and CODEC_AUTH_TOKEN")
	}
	// OIDC alone serves it, and New contacts nobody (the issuer does not exist).
	e := New(cfg(func(c *config.Config) { c.CodecOIDCIssuer, c.CodecOIDCAudience = "https://idp.invalid", audience }))
	if e == nil || e.oidc == nil || e.hasToken {
		t.Fatalf("OIDC only: %+v", e)
	}
	// With no static token, its hash of "" must not let an empty bearer in.
	wantProblem(t, decode(t, router(e), call{auth: "Bearer "}), 401, contract.CodeUnauthorized)
	wantProblem(t, decode(t, router(e), call{}), 401, contract.CodeUnauthorized)
}

func TestOIDCAccessTokens(t *testing.T) {
	idp := testidp.New(t)
	e := New(cfg(func(c *config.Config) {
		c.CodecAuthToken = staticToken
		c.CodecOIDCIssuer, c.CodecOIDCAudience = idp.Issuer(), audience
	}))
	r := router(e)
	good := idp.Token(t, audience, nil)
	if len(good) <= 512 {
		t.Fatalf("a %d-character token does not test the long-credential path", len(good))
	}
	wantDecoded(t, decode(t, r, call{auth: "Bearer " + good}))
	// From the UI's origin, as the browser sends it.
	w := decode(t, r, call{auth: "Bearer " + good, origin: uiOrigin})
	wantDecoded(t, w)
	if w.Header().Get("Access-Control-Allow-Origin") != uiOrigin {
		t.Fatalf("CORS headers: %v", w.Header())
	}
	// The static token still works beside OIDC.
	wantDecoded(t, decode(t, r, call{auth: "Bearer " + staticToken}))

	unknown := testidp.NewKey(t)
	for name, token := range map[string]string{
		"unknown key, the provider's key id": idp.SignWith(t, unknown, idp.KeyID, audience, nil),
		"unknown key, an unknown key id":     idp.SignWith(t, unknown, "rotated-away", audience, nil),
		"wrong audience":                     idp.Token(t, "another-app", nil),
		"another issuer":                     idp.Token(t, audience, testidp.Claims{"iss": "https://evil.example"}),
		"not yet valid":                      idp.Token(t, audience, testidp.Claims{"nbf": time.Now().Add(time.Hour).Unix()}),
		"alg none":                           unsigned(good),
		"tampered claims":                    tamper(good),
		"garbage":                            "a.b.c",
	} {
		detail := wantProblem(t, decode(t, r, call{auth: "Bearer " + token}), 401, contract.CodeUnauthorized)
		if !strings.Contains(detail, "CODEC_OIDC_ISSUER") {
			t.Errorf("%s: detail %q", name, detail)
		}
	}
	expired := idp.Token(t, audience, testidp.Claims{"exp": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix()})
	if d := wantProblem(t, decode(t, r, call{auth: "Bearer " + expired}), 401, contract.CodeUnauthorized); !strings.Contains(d, "expired") {
		t.Errorf("expired: detail %q", d)
	}

	// A key the provider rotates in is fetched when a token names it.
	rotated := testidp.NewKey(t)
	idp.Publish(rotated, "test-key-2")
	wantDecoded(t, decode(t, r, call{auth: "Bearer " + idp.SignWith(t, rotated, "test-key-2", audience, nil)}))
	if n := idp.Discoveries(); n != 1 {
		t.Errorf("%d discoveries, want 1 (the verifier is kept)", n)
	}
}

// unsigned turns a token into one with alg "none" and no signature.
func unsigned(token string) string {
	parts := strings.Split(token, ".")
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}

// tamper swaps the claims of a token for others, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	// {"iss":"x","aud":"temporal-ui-codec","exp":9999999999}
	parts[1] = "eyJpc3MiOiJ4IiwiYXVkIjoidGVtcG9yYWwtdWktY29kZWMiLCJleHAiOjk5OTk5OTk5OTl9"
	return strings.Join(parts, ".")
}

func TestOIDCProviderDown(t *testing.T) {
	idp := testidp.New(t)
	idp.SetDown(true)
	e := New(cfg(func(c *config.Config) {
		c.CodecAuthToken = staticToken
		c.CodecOIDCIssuer, c.CodecOIDCAudience = idp.Issuer(), audience
	}))
	e.oidc.retry = time.Hour
	r := router(e)
	token := idp.Token(t, audience, nil)
	w := decode(t, r, call{auth: "Bearer " + token})
	wantProblem(t, w, 503, contract.CodeUnavailable)
	if w.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// The static token does not depend on the provider.
	wantDecoded(t, decode(t, r, call{auth: "Bearer " + staticToken}))

	// Within the retry window the failure is answered without asking the provider again.
	idp.SetDown(false)
	wantProblem(t, decode(t, r, call{auth: "Bearer " + token}), 503, contract.CodeUnavailable)
	if n := idp.Discoveries(); n != 0 {
		t.Fatalf("%d discoveries inside the retry window", n)
	}
	// Past it, the next token completes discovery.
	e.oidc.mu.Lock()
	e.oidc.failedAt = time.Now().Add(-2 * time.Hour)
	e.oidc.mu.Unlock()
	wantDecoded(t, decode(t, r, call{auth: "Bearer " + token}))

	// Keys that cannot be fetched (a token names a new key while the JWKS is down): 503, not
	// 401, for the token may be good.
	idp.SetKeysDown(true)
	newKey := testidp.NewKey(t)
	wantProblem(t, decode(t, r, call{auth: "Bearer " + idp.SignWith(t, newKey, "test-key-3", audience, nil)}), 503, contract.CodeUnavailable)
	// A key already fetched still verifies.
	wantDecoded(t, decode(t, r, call{auth: "Bearer " + token}))
}

func TestOIDCDiscoveryIsBounded(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	e := New(cfg(func(c *config.Config) { c.CodecOIDCIssuer, c.CodecOIDCAudience = slow.URL, audience }))
	e.oidc.timeout = 300 * time.Millisecond
	start := time.Now()
	wantProblem(t, decode(t, router(e), call{auth: "Bearer x.y.z"}), 503, contract.CodeUnavailable)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hanging provider held the request for %s", d)
	}
}

func TestOIDCIssuerMismatch(t *testing.T) {
	idp := testidp.New(t)
	idp.SetIssuer("https://somebody-else.example")
	e := New(cfg(func(c *config.Config) { c.CodecOIDCIssuer, c.CodecOIDCAudience = idp.Issuer(), audience }))
	// go-oidc refuses a discovery document naming another issuer: nothing is trusted, and the
	// refusal is the operator's to fix (503, logged), never a token let in.
	wantProblem(t, decode(t, router(e), call{auth: "Bearer " + idp.Token(t, audience, nil)}), 503, contract.CodeUnavailable)
}

func TestLocalUIWithoutToken(t *testing.T) {
	on := cfg(func(c *config.Config) { c.CodecAuthToken = staticToken; c.CodecAllowLocalUI = true })
	r := router(New(on))
	wantDecoded(t, decode(t, r, call{origin: uiOrigin, remote: "127.0.0.1:50000"}))
	wantDecoded(t, decode(t, r, call{origin: uiOrigin, remote: "[::1]:50000"}))
	for name, c := range map[string]call{
		"another machine":           {origin: uiOrigin, remote: "192.0.2.10:50000"},
		"no origin (not a browser)": {remote: "127.0.0.1:50000"},
		"a wrong token is checked":  {origin: uiOrigin, remote: "127.0.0.1:50000", auth: "Bearer " + strings.Repeat("x", 40)},
	} {
		if w := decode(t, r, c); w.Code != 401 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	if w := decode(t, r, call{origin: "https://evil.example", remote: "127.0.0.1:50000"}); w.Code != 403 {
		t.Errorf("another origin: %d", w.Code)
	}
	// Off, or in production whatever the struct says, a token is needed.
	off := on
	off.CodecAllowLocalUI = false
	prod := on
	prod.Env = "production"
	for name, c := range map[string]config.Config{"off": off, "production": prod} {
		if w := decode(t, router(New(c)), call{origin: uiOrigin, remote: "127.0.0.1:50000"}); w.Code != 401 {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
}

func TestPreflightAllowsTheUIHeaders(t *testing.T) {
	r := router(New(cfg(func(c *config.Config) { c.CodecAuthToken = staticToken })))
	req := httptest.NewRequest(http.MethodOptions, "/codec/decode", nil)
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	allowed := w.Header().Get("Access-Control-Allow-Headers")
	// With passAccessToken the UI sends its ID token in Authorization-Extras: a preflight that
	// does not allow it fails every decode.
	for _, h := range []string{"Authorization", "Authorization-Extras", "Content-Type", "X-Namespace"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("preflight allows %q, not %s", allowed, h)
		}
	}
}

func TestCredential(t *testing.T) {
	long := strings.Repeat("a", 600) + "." + strings.Repeat("b", 600) + ".c"
	for header, want := range map[string]string{
		"Bearer abc": "abc", "bearer  abc": "abc", "Bearer " + long: long,
		"Basic abc": "", "Bearer": "", "Bearer ": "", "Bearer a b": "", "Bearer a\"b": "",
		"Bearer " + strings.Repeat("a", maxCredential+1): "",
	} {
		got, ok := credential(header)
		if got != want || ok != (want != "") {
			t.Errorf("credential(%.40q) = %.40q, %v", header, got, ok)
		}
	}
}
