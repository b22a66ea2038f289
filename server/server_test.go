package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

func TestProblemRendering(t *testing.T) {
	gin.SetMode(gin.TestMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	p := newProblem(codeRateLimited, "Wait %d seconds.", 3)
	p.retryAfter = 2500 * time.Millisecond
	writeProblem(c, p)
	if w.Code != 429 || w.Header().Get("Retry-After") != "3" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	var got map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	want := map[string]any{"type": "urn:onboarding:problem:rate_limited", "title": "Too many requests", "status": 429.0,
		"detail": "Wait 3 seconds.", "code": "rate_limited"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("body = %v", got)
	}

	w = httptest.NewRecorder()
	c, _ = gin.CreateTestContext(w)
	writeProblem(c, invalid(fieldError{"email", "is required"}, fieldError{"group_ids[1]", "must be a UUID"}))
	if !strings.Contains(w.Body.String(), `"errors":[{"field":"email","message":"is required"},{"field":"group_ids[1]"`) {
		t.Fatalf("body = %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), "email, group_ids[1]") {
		t.Fatalf("detail does not name the fields: %s", w.Body)
	}
	// Every code has a kind, and only validation problems carry errors by default.
	for code, kind := range problemKinds {
		if p := newProblem(code, "x"); p.Status != kind.status || p.Errors != nil {
			t.Errorf("%s: %+v", code, p)
		}
	}
	if retryAfterSeconds(0) != 1 || retryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Error("Retry-After rounding")
	}
}

func TestRoutingProblems(t *testing.T) {
	h := newHarness(t)
	decodeProblem(t, h.do("GET", "/nope", ""), 404, codeNotFound)
	decodeProblem(t, h.api("GET", "/v1/accounts/", ""), 404, codeNotFound) // no redirect on trailing slash

	w := h.do("DELETE", "/v1/accounts", "")
	decodeProblem(t, w, 405, codeMethodNotAllowed)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow = %q", w.Header().Get("Allow"))
	}
	w = h.do("GET", "/v1/invitations/accept", "")
	decodeProblem(t, w, 405, codeMethodNotAllowed)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow = %q", w.Header().Get("Allow"))
	}
	if w.Header().Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID")
	}
	if got := h.do("GET", "/healthz", "", "X-Request-ID", "abc-123").Header().Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID not echoed: %q", got)
	}
	if got := h.do("GET", "/healthz", "", "X-Request-ID", "evil\"value").Header().Get("X-Request-ID"); got == "evil\"value" {
		t.Error("unsafe X-Request-ID echoed")
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	path := h.accountPath("/users")
	for name, header := range map[string]string{
		"missing": "", "basic": "Basic dXNlcjpwYXNz", "empty bearer": "Bearer ", "unknown": "Bearer nope",
		"bad chars": "Bearer a\"b", "huge": "Bearer " + strings.Repeat("a", 600),
	} {
		t.Run(name, func(t *testing.T) {
			w := h.do("GET", path, "", "Authorization", header)
			decodeProblem(t, w, 401, codeUnauthorized)
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	if w := h.do("GET", path, "", "Authorization", "bearer "+portalToken); w.Code != 200 {
		t.Errorf("lower-case scheme: %d", w.Code)
	}
	if w := h.do("GET", path, "", "Authorization", "Bearer "+scopedToken); w.Code != 200 {
		t.Errorf("scoped token on its account: %d", w.Code)
	}
	other := "/v1/accounts/" + uuid.NewString() + "/users"
	decodeProblem(t, h.do("GET", other, "", "Authorization", "Bearer "+scopedToken), 403, codeForbidden)
	decodeProblem(t, h.api("GET", other, ""), 404, codeNotFound)
	decodeProblem(t, h.api("GET", "/v1/accounts/not-a-uuid/users", ""), 404, codeNotFound)
	decodeProblem(t, h.api("GET", "/v1/accounts/"+strings.ToUpper(h.account.ID.String())+"x/users", ""), 404, codeNotFound)
	decodeProblem(t, h.do("POST", "/v1/accounts", `{"name":"X"}`, "Authorization", "Bearer "+scopedToken), 403, codeForbidden)
	// Invitee routes need no API token.
	decodeProblem(t, h.do("GET", "/v1/invitations/preview?token=x", ""), 404, codeTokenInvalid)
}

func TestBodyLimitsAndMediaTypes(t *testing.T) {
	h := newHarness(t)
	big := `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	decodeProblem(t, h.api("POST", "/v1/accounts", big), 413, codePayloadTooLarge)

	// A chunked body announces no length; the limit still holds while reading.
	req := httptest.NewRequest("POST", "/v1/accounts", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+portalToken)
	w := httptest.NewRecorder()
	h.srv.engine.ServeHTTP(w, req)
	decodeProblem(t, w, 413, codePayloadTooLarge)

	decodeProblem(t, h.do("POST", "/v1/accounts", `{"name":"X"}`, "Authorization", "Bearer "+portalToken, "Content-Type", "text/plain"), 415, codeUnsupportedMediaType)
	if w := h.do("POST", "/v1/accounts", `{"name":"X"}`, "Authorization", "Bearer "+portalToken); w.Code != 201 {
		t.Errorf("no Content-Type: %d", w.Code)
	}
	if w := h.api("POST", "/v1/accounts", `{"name":"X"}`, "Content-Type", "application/json; charset=utf-8"); w.Code != 201 {
		t.Errorf("charset parameter: %d", w.Code)
	}
	p := decodeProblem(t, h.api("POST", "/v1/accounts", `{"name":`), 422, codeValidation)
	if p.Errors[0].Field != "body" {
		t.Errorf("errors = %+v", p.Errors)
	}
}

func TestCatalog(t *testing.T) {
	h := newHarness(t)
	acc := decodeJSON[map[string]any](t, h.api("POST", "/v1/accounts", `{"name":" Globex "}`), 201)
	if acc["name"] != "Globex" || acc["id"] == "" {
		t.Fatalf("account = %v", acc)
	}
	sub := decodeJSON[map[string]any](t, h.api("POST", h.accountPath("/subscriptions"),
		`{"application":"crm","name":"Sales","seats":3,"roles":["rep","lead"]}`), 201)
	if sub["seats"] != 3.0 || fmt.Sprint(sub["roles"]) != "[rep lead]" {
		t.Fatalf("subscription = %v", sub)
	}
	if _, ok := sub["seats_available"]; ok {
		t.Error("create answers seat counts")
	}
	h.pending("held@acme.test")
	got := decodeJSON[map[string]any](t, h.api("GET", h.accountPath("/subscriptions/"+sub["id"].(string)), ""), 200)
	if got["seats_used"] != 0.0 || got["seats_available"] != 3.0 {
		t.Fatalf("subscription = %v", got)
	}
	decodeProblem(t, h.api("GET", h.accountPath("/subscriptions/"+uuid.NewString()), ""), 404, codeNotFound)
	decodeProblem(t, h.api("GET", h.accountPath("/subscriptions/nope"), ""), 404, codeNotFound)
	decodeProblem(t, h.api("POST", h.accountPath("/subscriptions"), `{"application":"crm","name":"S","seats":-1,"roles":["a"]}`), 422, codeValidation)

	decodeJSON[map[string]any](t, h.api("POST", h.accountPath("/groups"), `{"name":"Sales"}`), 201)
	decodeProblem(t, h.api("POST", h.accountPath("/groups"), `{"name":"Sales"}`), 409, codeDuplicateGroup)
}

func TestListValidation(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ query, field string }{
		{"status=bogus", "status"}, {"limit=0", "limit"}, {"limit=101", "limit"}, {"limit=abc", "limit"},
		{"limit=99999999999999999999", "limit"}, {"cursor=abc", "cursor"}, {"email=a%00b", "email"},
		{"email=%FF", "email"},
	} {
		p := decodeProblem(t, h.api("GET", h.accountPath("/invitations?"+tc.query), ""), 422, codeValidation)
		if !hasField(&p, tc.field) {
			t.Errorf("%s: errors %+v", tc.query, p.Errors)
		}
	}
	for i := range 3 {
		inv := h.pending(fmt.Sprintf("p%d@acme.test", i))
		inv.CreatedAt = inv.CreatedAt.Add(time.Duration(i) * time.Second)
		h.store.put(inv)
	}
	page := decodeJSON[invitationListView](t, h.api("GET", h.accountPath("/invitations?limit=2"), ""), 200)
	if len(page.Items) != 2 || page.NextCursor == nil || page.Items[0].Email != "p2@acme.test" {
		t.Fatalf("page 1 = %+v", page)
	}
	page = decodeJSON[invitationListView](t, h.api("GET", h.accountPath("/invitations?limit=2&cursor="+*page.NextCursor), ""), 200)
	if len(page.Items) != 1 || page.NextCursor != nil || page.Items[0].Email != "p0@acme.test" {
		t.Fatalf("page 2 = %+v", page)
	}
	if !strings.Contains(h.api("GET", h.accountPath("/invitations?status=accepted"), "").Body.String(), `"items":[]`) {
		t.Error("an empty page is not an empty array")
	}
}

func TestReadiness(t *testing.T) {
	h := newHarness(t)
	if w := h.do("GET", "/readyz", ""); w.Code != 200 {
		t.Fatalf("ready: %d %s", w.Code, w.Body)
	}
	h.store.pingErr = errBoom
	w := h.do("GET", "/readyz", "")
	got := decodeJSON[map[string]any](t, w, 503)
	if fmt.Sprint(got["checks"]) != "map[postgres:unavailable temporal:ok]" {
		t.Fatalf("readyz = %v", got)
	}
	if h.do("GET", "/healthz", "").Code != 200 {
		t.Error("healthz depends on Postgres")
	}
}

func TestPanicsBecomeProblems(t *testing.T) {
	h := newHarness(t)
	h.srv.engine.GET("/panic", func(*gin.Context) { panic("bug") })
	decodeProblem(t, h.do("GET", "/panic", ""), 500, codeInternal)
	if !strings.Contains(h.logs.String(), "panic in handler") {
		t.Error("panic not logged")
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t)
	h.srv = newServer(Deps{Config: h.srv.cfg, Temporal: h.temporal, Signer: h.srv.signer, Hasher: h.srv.hasher, Registry: reg}, h.store)
	inv := h.pending("m@acme.test")
	h.api("GET", h.accountPath("/invitations/"+inv.ID.String()), "")
	h.do("GET", "/no/such/"+inv.ID.String(), "")
	h.do("BREW", "/healthz", "")
	body := h.do("GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`http_requests_total{method="GET",route="/v1/accounts/:account_id/invitations/:invitation_id",status="200"} 1`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`http_requests_total{method="OTHER",route="unmatched",status="405"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="/v1/accounts/:account_id/invitations/:invitation_id",le="0.005"}`,
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, inv.ID.String()) || strings.Contains(body, h.account.ID.String()) {
		t.Error("an id became a label value")
	}
	// A second server on the same registry reuses the collectors instead of panicking.
	newServer(Deps{Registry: reg}, h.store)
}

func TestOpenAPIDocumentsEveryRouteAndCode(t *testing.T) {
	h := newHarness(t)
	w := h.do("GET", "/openapi.yaml", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/yaml" {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string                    `yaml:"openapi"`
		Paths      map[string]map[string]any `yaml:"paths"`
		Components struct {
			Schemas map[string]struct {
				Enum []string `yaml:"enum"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, r := range h.srv.engine.Routes() {
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("openapi.yaml lacks %s %s", r.Method, path)
		}
	}
	codes := doc.Components.Schemas["ProblemCode"].Enum
	for code := range problemKinds {
		if !strings.Contains(strings.Join(codes, " ")+" ", code+" ") {
			t.Errorf("ProblemCode lacks %s", code)
		}
	}
	if len(codes) != len(problemKinds) {
		t.Errorf("ProblemCode has %d codes, the server %d", len(codes), len(problemKinds))
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("secret@acme.test")
	token := h.srv.signer.Sign(inv.ID, 1)
	h.temporal.onUpdate = func(updateOpts) (any, error) { return map[string]string{"user_id": uuid.NewString()}, nil }
	h.do("GET", "/invite?token="+token, "")
	h.do("GET", "/v1/invitations/preview?token="+token, "")
	h.do("POST", "/v1/invitations/accept", `{"token":"`+token+`","password":"Sup3rSecret!pw","accept_terms":true}`)
	h.api("GET", h.accountPath("/users"), "")
	logs := h.logs.String()
	for _, secret := range []string{token, "Sup3rSecret!pw", portalToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, `"route":"/invite"`) {
		t.Errorf("requests are not logged by route: %s", logs)
	}
}

func TestNothingPanicsOnHostileInput(t *testing.T) {
	h := newHarness(t)
	h.temporal.onUpdate = func(updateOpts) (any, error) { return nil, errBoom }
	inv := h.pending("x@acme.test")
	bodies := []string{"", "null", "[]", "{}", `{"a":1}`, "\x00", "{\"name\":\"\xff\"}", strings.Repeat("[", 5000),
		`{"token":null,"password":null,"accept_terms":null}`, `{"seats":1e400}`, `{"group_ids":` + strings.Repeat("[", 100) + `}`}
	paths := []string{"/v1/accounts", h.accountPath("/subscriptions"), h.accountPath("/groups"), h.accountPath("/invitations"),
		h.accountPath("/invitations/" + inv.ID.String() + "/resend"), "/v1/invitations/accept", "/v1/invitations/decline",
		"/invite/accept", "/invite/decline"}
	for _, path := range paths {
		for _, body := range bodies {
			w := h.api("POST", path, body)
			if w.Code >= 500 && w.Code != 503 {
				t.Errorf("POST %s %q: %d %s", path, body, w.Code, w.Body)
			}
		}
	}
	if strings.Contains(h.logs.String(), "panic") {
		t.Error("a request panicked")
	}
}

func TestAccessLogLine(t *testing.T) {
	var buf bytes.Buffer
	h := newHarness(t)
	h.srv.log = slog.New(slog.NewJSONHandler(&buf, nil))
	h.api("GET", h.accountPath("/users"), "")
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for _, k := range []string{"method", "route", "status", "duration_ms", "request_id"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %s: %v", k, line)
		}
	}
	if line["route"] != "/v1/accounts/:account_id/users" || line["status"] != float64(http.StatusOK) {
		t.Errorf("log line = %v", line)
	}
}

func TestEncodedSlashStaysInItsSegment(t *testing.T) {
	h := newHarness(t)
	inv := h.pending("slash@acme.test")
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()+"%2Flink"), ""), 404, codeNotFound)
	if w := h.api("GET", h.accountPath("/invitations/"+inv.ID.String()+"/link"), ""); w.Code != 200 {
		t.Fatalf("link: %d", w.Code)
	}
	if w := h.api("GET", h.accountPath("/invitations/"+strings.Replace(inv.ID.String(), "a", "%61", 1)), ""); w.Code != 200 && strings.Contains(inv.ID.String(), "a") {
		t.Fatalf("percent-encoded id character: %d", w.Code)
	}
}
