package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/server/codecserver/testidp"
)

const codecToken = "codec-token-0123456789abcdef0123456789"

var (
	codecKey = codec.Key{ID: "k2", Secret: [32]byte{2, 2, 2}}
	oldKey   = codec.Key{ID: "k1", Secret: [32]byte{1, 1, 1}}
)

// codecHarness is the harness's server with payload encryption and the codec endpoint on.
func codecHarness(t testing.TB) *harness {
	return newHarness(t, withConfig(func(cfg *config.Config) {
		cfg.PayloadKey, cfg.PayloadKeysPrevious = &codecKey, []codec.Key{oldKey}
		cfg.CodecAuthToken = codecToken
		cfg.CodecCORSOrigins = []string{"http://localhost:8233"}
	}))
}

func sealedBody(t testing.TB, key codec.Key, values ...any) (string, []*commonpb.Payload) {
	t.Helper()
	var plain []*commonpb.Payload
	for _, v := range values {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, p)
	}
	sealed, err := codec.New(key).Encode(plain)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	return string(body), plain
}

func TestCodecDecode(t *testing.T) {
	t.Parallel()
	h := codecHarness(t)
	body, plain := sealedBody(t, codecKey, map[string]string{"email": "jane@acme.test"}, "x")
	oldBody, oldPlain := sealedBody(t, oldKey, "sealed before the rotation")
	if strings.Contains(body, "jane") {
		t.Fatal("the sealed body shows the address")
	}
	auth := []string{"Authorization", "Bearer " + codecToken, "Content-Type", "application/json"}
	for _, tc := range []struct {
		body string
		want []*commonpb.Payload
	}{{body, plain}, {oldBody, oldPlain}} {
		w := h.do("POST", "/codec/decode", tc.body, auth...)
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("decode: %d %s", w.Code, w.Body)
		}
		var out commonpb.Payloads
		if err := protojson.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Payloads) != len(tc.want) {
			t.Fatalf("%d payloads back", len(out.Payloads))
		}
		for i := range tc.want {
			if string(out.Payloads[i].Data) != string(tc.want[i].Data) {
				t.Fatalf("payload %d = %s, want %s", i, out.Payloads[i].Data, tc.want[i].Data)
			}
		}
	}
	// The JSON is Temporal's: {"payloads":[{"metadata":{...},"data":"<base64>"}]}.
	var generic map[string][]map[string]any
	w := h.do("POST", "/codec/decode", body, auth...)
	if err := json.Unmarshal(w.Body.Bytes(), &generic); err != nil || len(generic["payloads"]) != 2 || generic["payloads"][0]["data"] == nil {
		t.Fatalf("shape %s: %v", w.Body, err)
	}

	// Encode seals with the current key, and decode opens it again.
	plainBody, _ := protojson.Marshal(&commonpb.Payloads{Payloads: plain})
	w = h.do("POST", "/codec/encode", string(plainBody), auth...)
	var enc commonpb.Payloads
	if w.Code != 200 || protojson.Unmarshal(w.Body.Bytes(), &enc) != nil || !codec.Encrypted(enc.Payloads[0]) ||
		string(enc.Payloads[0].Metadata[codec.MetadataKeyID]) != "k2" || strings.Contains(w.Body.String(), "jane") {
		t.Fatalf("encode: %d %s", w.Code, w.Body)
	}
}

func TestCodecRefusals(t *testing.T) {
	t.Parallel()
	h := codecHarness(t)
	body, _ := sealedBody(t, codecKey, "secret")
	for name, header := range map[string]string{
		"no token": "", "wrong token": "Bearer " + strings.Repeat("x", len(codecToken)),
		"API token": "Bearer " + portalToken, "prefix of the token": "Bearer " + codecToken[:20],
		"basic": "Basic " + codecToken,
	} {
		for _, path := range []string{"/codec/decode", "/codec/encode"} {
			w := h.do("POST", path, body, "Authorization", header, "Content-Type", "application/json")
			decodeProblem(t, w, 401, contract.CodeUnauthorized)
			if strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("%s: the refusal leaks the payload", name)
			}
		}
	}
	auth := []string{"Authorization", "Bearer " + codecToken, "Content-Type", "application/json"}
	unknown, _ := sealedBody(t, codec.Key{ID: "retired", Secret: [32]byte{9}}, "x")
	for _, bad := range []string{"", "{}x", `{"payloads":[{"data":1}]}`, `{"payloads":[],"extra":true}`, `[]`, unknown,
		strings.Replace(body, `"data":"`, `"data":"AAAA`, 1)} {
		w := h.do("POST", "/codec/decode", bad, auth...)
		if w.Code != 422 {
			t.Errorf("decode %q: %d %s", bad, w.Code, w.Body)
		}
	}
	// A plain payload passes through decode unchanged (written before encryption was on).
	if w := h.do("POST", "/codec/decode", `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}]}`, auth...); w.Code != 200 {
		t.Errorf("plain payload: %d %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/codec/decode", "", auth...); w.Code != 405 {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestCodecCORS(t *testing.T) {
	t.Parallel()
	h := codecHarness(t)
	pre := h.do("OPTIONS", "/codec/decode", "", "Origin", "http://localhost:8233",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	if pre.Code != 204 || pre.Header().Get("Access-Control-Allow-Origin") != "http://localhost:8233" ||
		!strings.Contains(pre.Header().Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(pre.Header().Get("Access-Control-Allow-Headers"), "X-Namespace") ||
		!strings.Contains(pre.Header().Get("Access-Control-Allow-Methods"), "POST") ||
		pre.Header().Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", pre.Code, pre.Header())
	}
	body, _ := sealedBody(t, codecKey, "x")
	w := h.do("POST", "/codec/decode", body, "Origin", "http://localhost:8233", "Authorization", "Bearer "+codecToken, "Content-Type", "application/json")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "http://localhost:8233" {
		t.Fatalf("decode from the UI: %d %v", w.Code, w.Header())
	}
	// Even a refusal carries the CORS headers, so the UI can show it.
	w = h.do("POST", "/codec/decode", body, "Origin", "http://localhost:8233")
	if w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("refusal from the UI: %d %v", w.Code, w.Header())
	}
	for _, path := range []string{"/codec/decode", "/codec/encode"} {
		evil := h.do("OPTIONS", path, "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
		if evil.Code != 403 || evil.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from another origin: %d %v", evil.Code, evil.Header())
		}
		evil = h.do("POST", path, body, "Origin", "https://evil.example", "Authorization", "Bearer "+codecToken, "Content-Type", "application/json")
		if evil.Code != 403 {
			t.Fatalf("POST from another origin: %d", evil.Code)
		}
	}
}

func TestCodecRoutesOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // no key, no token
	decodeProblem(t, h.do("POST", "/codec/decode", "{}", "Authorization", "Bearer "+codecToken), 404, contract.CodeNotFound)
	keyOnly := h.serverWith(func(d *Deps) { d.Config.PayloadKey = &codecKey }) // a key but no codec token: not served
	decodeProblem(t, serve(t, keyOnly, "POST", "/codec/decode", "{}", "Authorization", "Bearer "+codecToken), 404, contract.CodeNotFound)
	// A key and an identity provider, no static token: served, behind the provider's tokens.
	oidcOnly := h.serverWith(func(d *Deps) {
		d.Config.PayloadKey = &codecKey
		d.Config.CodecOIDCIssuer, d.Config.CodecOIDCAudience = "https://idp.invalid", "temporal-ui"
	})
	decodeProblem(t, serve(t, oidcOnly, "POST", "/codec/decode", "{}", "Authorization", "Bearer "+codecToken), 401, contract.CodeUnauthorized)
}

// The Temporal UI's forwarded access token (passAccessToken), on the API's router: a token of
// the identity provider decodes, one signed by a key it never published does not, and an
// identity provider that does not answer is a 503, never a 500.
func TestCodecOIDCAccessToken(t *testing.T) {
	t.Parallel()
	idp := testidp.New(t)
	h := newHarness(t, withConfig(func(cfg *config.Config) {
		cfg.PayloadKey = &codecKey
		cfg.CodecAuthToken = codecToken
		cfg.CodecCORSOrigins = []string{"https://temporal.example.com"}
		cfg.CodecOIDCIssuer, cfg.CodecOIDCAudience = idp.Issuer(), "temporal-ui"
	}))
	body, plain := sealedBody(t, codecKey, map[string]string{"email": "jane@acme.test"})
	decodeWith := func(token string) *httptest.ResponseRecorder {
		return h.do("POST", "/codec/decode", body, "Authorization", "Bearer "+token, "Content-Type", "application/json",
			"Origin", "https://temporal.example.com")
	}
	w := decodeWith(idp.Token(t, "temporal-ui", nil))
	var out commonpb.Payloads
	if w.Code != 200 || protojson.Unmarshal(w.Body.Bytes(), &out) != nil || len(out.Payloads) != 1 || string(out.Payloads[0].Data) != string(plain[0].Data) {
		t.Fatalf("decode with the provider's token: %d %s", w.Code, w.Body)
	}
	for name, token := range map[string]string{
		"unknown key":    idp.SignWith(t, testidp.NewKey(t), idp.KeyID, "temporal-ui", nil),
		"wrong audience": idp.Token(t, "another-app", nil),
		"expired":        idp.Token(t, "temporal-ui", testidp.Claims{"exp": time.Now().Add(-time.Minute).Unix()}),
	} {
		w := decodeWith(token)
		decodeProblem(t, w, 401, contract.CodeUnauthorized)
		if strings.Contains(w.Body.String(), "jane") || w.Header().Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("%s: %v %s", name, w.Header(), w.Body)
		}
	}
	// The static token keeps working beside the provider's.
	if w := decodeWith(codecToken); w.Code != 200 {
		t.Fatalf("static token: %d %s", w.Code, w.Body)
	}

	down := testidp.New(t)
	down.SetDown(true)
	h2 := newHarness(t, withConfig(func(cfg *config.Config) {
		cfg.PayloadKey = &codecKey
		cfg.CodecOIDCIssuer, cfg.CodecOIDCAudience = down.Issuer(), "temporal-ui"
	}))
	w = h2.do("POST", "/codec/decode", body, "Authorization", "Bearer "+down.Token(t, "temporal-ui", nil), "Content-Type", "application/json")
	decodeProblem(t, w, 503, contract.CodeUnavailable)
	if w.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

// CODEC_ALLOW_LOCAL_UI (make run): the dev server's UI, in a browser on this machine, decodes
// without a token; a caller from another address still needs one.
func TestCodecLocalUI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withConfig(func(cfg *config.Config) {
		cfg.PayloadKey = &codecKey
		cfg.CodecAuthToken = codecToken
		cfg.CodecCORSOrigins = []string{"http://127.0.0.1:8233"}
		cfg.CodecAllowLocalUI = true
	}))
	body, _ := sealedBody(t, codecKey, "x")
	for remote, want := range map[string]int{"127.0.0.1:41000": 200, "192.0.2.7:41000": 401} {
		req := httptest.NewRequest("POST", "/codec/decode", strings.NewReader(body))
		req.RemoteAddr = remote
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://127.0.0.1:8233")
		// A proxy's header does not make a remote caller local.
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		w := h.with(t).send(h.srv, req)
		if w.Code != want {
			t.Errorf("from %s: %d %s, want %d", remote, w.Code, w.Body, want)
		}
	}
}

// FuzzCodecBody: any body to /codec/decode answers 200, 401 or 422, never a 500 or a panic.
func FuzzCodecBody(f *testing.F) {
	body, _ := sealedBody(f, codecKey, map[string]string{"email": "jane@acme.test"})
	for _, s := range []string{body, "", "{}", `{"payloads":null}`, `{"payloads":[{}]}`, `{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA=="},"data":""}]}`} {
		f.Add(s)
	}
	shared := codecHarness(f)
	f.Fuzz(func(t *testing.T, body string) {
		h := shared.with(t)
		h.responsesOnly = true // random requests: only the answers are held to the document
		for _, path := range []string{"/codec/decode", "/codec/encode"} {
			w := h.do("POST", path, body, "Authorization", "Bearer "+codecToken, "Content-Type", "application/json")
			if w.Code != 200 && w.Code != 422 && w.Code != 413 {
				t.Fatalf("%s %q: %d %s", path, body, w.Code, w.Body)
			}
		}
	})
}

func TestCodecRoutesDocumented(t *testing.T) {
	t.Parallel()
	h := codecHarness(t)
	doc := h.do("GET", "/openapi.yaml", "").Body.String()
	for _, r := range h.srv.engine.Routes() {
		if strings.HasPrefix(r.Path, "/codec/") && !strings.Contains(doc, "operationId: codec"+strings.ToUpper(r.Path[7:8])+r.Path[8:]) {
			t.Errorf("openapi.yaml lacks %s %s", r.Method, r.Path)
		}
	}
	if !strings.Contains(doc, "  /codec/decode:") || !strings.Contains(doc, "codecDecodePreflight") || !strings.Contains(doc, "codecEncodePreflight") {
		t.Error("openapi.yaml lacks the codec paths")
	}
}
