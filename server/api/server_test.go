package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	decodeProblem(t, h.do("GET", "/nope", ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("GET", "/v1/accounts/", ""), 404, contract.CodeNotFound) // no redirect on trailing slash

	w := h.do("DELETE", "/v1/accounts", "")
	decodeProblem(t, w, 405, contract.CodeMethodNotAllowed)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow = %q", w.Header().Get("Allow"))
	}
	w = h.do("GET", "/v1/invitations/accept", "")
	decodeProblem(t, w, 405, contract.CodeMethodNotAllowed)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow = %q", w.Header().Get("Allow"))
	}
	if w.Header().Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID")
	}
	if got := h.do("GET", "/healthz", "", "X-Request-ID", "abc-123").Header().Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID not echoed: %q", got)
	}
	if got := h.do("GET", "/healthz", "", "X-Request-ID", "evil\"value").Header().Get("X-Request-ID"); got == "evil\"value" || got == "" {
		t.Errorf("unsafe X-Request-ID: %q", got)
	}
}

// TestMediaTypes: a JSON body is accepted without a Content-Type and with parameters on it.
// (Oversized bodies, announced or chunked, other media types and malformed JSON are covered
// end to end by internal/testkit/e2e TestBodyTooLarge, TestMalformedInput and TestErrorsValidation.)
func TestMediaTypes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if w := h.do("POST", "/v1/accounts", `{"name":"X"}`, "Authorization", "Bearer "+portalToken); w.Code != 201 {
		t.Errorf("no Content-Type: %d %s", w.Code, w.Body)
	}
	if w := h.api("POST", "/v1/accounts", `{"name":"X"}`, "Content-Type", "application/json; charset=utf-8"); w.Code != 201 {
		t.Errorf("charset parameter: %d %s", w.Code, w.Body)
	}
	if w := h.api("POST", h.accountPath("/groups"), `{"name":"Y"}`, "Content-Type", "Application/JSON"); w.Code != 201 {
		t.Errorf("media type in upper case: %d %s", w.Code, w.Body)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	w := h.api("POST", "/v1/accounts", `{"name":" Globex "}`)
	acc := decodeJSON[map[string]any](t, w, 201)
	if acc["name"] != "Globex" || acc["id"] == "" || w.Header().Get("Location") != "/v1/accounts/"+fmt.Sprint(acc["id"]) {
		t.Fatalf("account = %v, Location %q", acc, w.Header().Get("Location"))
	}
	sub := decodeJSON[map[string]any](t, h.api("POST", h.accountPath("/subscriptions"),
		`{"application":"crm","name":"Sales","seats":3,"roles":["rep","lead"]}`), 201)
	if sub["seats"] != 3.0 || fmt.Sprint(sub["roles"]) != "[rep lead]" || sub["application"] != "crm" || sub["name"] != "Sales" {
		t.Fatalf("subscription = %v", sub)
	}
	if _, ok := sub["seats_available"]; ok {
		t.Error("create answers seat counts")
	}
	subPath := h.accountPath("/subscriptions/" + sub["id"].(string))
	got := decodeJSON[map[string]any](t, h.api("GET", subPath, ""), 200)
	if got["seats_used"] != 0.0 || got["seats_reserved"] != 0.0 || got["seats_available"] != 3.0 {
		t.Fatalf("subscription = %v", got)
	}
	h.create(fmt.Sprintf(`{"email":%q,"first_name":"H","last_name":"Eld","subscription_id":"%s","role":"rep"}`, uniqueEmail("held"), sub["id"]))
	got = decodeJSON[map[string]any](t, h.api("GET", subPath, ""), 200)
	if got["seats_used"] != 0.0 || got["seats_reserved"] != 1.0 || got["seats_available"] != 2.0 {
		t.Fatalf("subscription with a pending invitation = %v", got)
	}
	decodeProblem(t, h.api("GET", h.accountPath("/subscriptions/"+uuid.NewString()), ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("GET", h.accountPath("/subscriptions/nope"), ""), 404, contract.CodeNotFound)
	decodeProblem(t, h.api("POST", h.accountPath("/subscriptions"), `{"application":"crm","name":"S","seats":-1,"roles":["a"]}`), 422, contract.CodeValidation)

	g := decodeJSON[map[string]any](t, h.api("POST", h.accountPath("/groups"), `{"name":"Sales"}`), 201)
	if g["name"] != "Sales" || g["id"] == "" {
		t.Errorf("group = %v", g)
	}
	decodeProblem(t, h.api("POST", h.accountPath("/groups"), `{"name":"Sales"}`), 409, contract.CodeDuplicateGroup)
	// Group names are per account.
	other := decodeJSON[map[string]any](t, h.api("POST", "/v1/accounts", `{"name":"Other"}`), 201)
	decodeJSON[map[string]any](t, h.api("POST", "/v1/accounts/"+other["id"].(string)+"/groups", `{"name":"Sales"}`), 201)
}

// TestListValidation: each bad query parameter is named. (Paging with limit and cursor, newest
// first, and filters are covered end to end by internal/testkit/e2e TestListInvitations.)
func TestListValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct{ query, field string }{
		{"status=bogus", "status"}, {"limit=0", "limit"}, {"limit=101", "limit"}, {"limit=abc", "limit"},
		{"limit=99999999999999999999", "limit"}, {"cursor=abc", "cursor"}, {"email=a%00b", "email"},
		{"email=%FF", "email"},
	} {
		p := decodeProblem(t, h.api("GET", h.accountPath("/invitations?"+tc.query), ""), 422, contract.CodeValidation)
		if !hasField(&p, tc.field) {
			t.Errorf("%s: errors %+v", tc.query, p.Errors)
		}
	}
	if body := h.api("GET", h.accountPath("/invitations?status=accepted"), "").Body.String(); !strings.Contains(body, `"items":[]`) {
		t.Errorf("an empty page is not an empty array: %s", body)
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	got := decodeJSON[map[string]any](t, h.do("GET", "/readyz", ""), 200)
	if fmt.Sprint(got) != "map[checks:map[postgres:ok temporal:ok] status:ok]" {
		t.Fatalf("readyz = %v", got)
	}

	noPostgres := h.serverWith(func(d *Deps) { d.Store = closedStore(t) })
	w := serve(t, noPostgres, "GET", "/readyz", "")
	got = decodeJSON[map[string]any](t, w, 503)
	if fmt.Sprint(got) != "map[checks:map[postgres:unavailable temporal:ok] status:unavailable]" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("readyz without Postgres = %v", got)
	}
	if serve(t, noPostgres, "GET", "/healthz", "").Code != 200 {
		t.Error("healthz depends on Postgres")
	}

	noTemporal := h.serverWith(func(d *Deps) { d.Temporal = deadTemporal(t) })
	start := time.Now()
	got = decodeJSON[map[string]any](t, serve(t, noTemporal, "GET", "/readyz", ""), 503)
	if fmt.Sprint(got) != "map[checks:map[postgres:ok temporal:unavailable] status:unavailable]" {
		t.Fatalf("readyz without Temporal = %v", got)
	}
	if d := time.Since(start); d > readyTimeout+2*time.Second {
		t.Errorf("readyz took %s", d)
	}
	if serve(t, noTemporal, "GET", "/healthz", "").Code != 200 {
		t.Error("healthz depends on Temporal")
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"msg":"readiness check failed","check":"postgres"`) ||
		!strings.Contains(logs, `"msg":"readiness check failed","check":"temporal"`) {
		t.Errorf("failed checks are not logged: %s", logs)
	}
}

func TestPanicsBecomeProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.srv.engine.GET("/panic", func(*gin.Context) { panic("bug") })
	// /panic is this test's own route, not in the document: served without the validator.
	w := httptest.NewRecorder()
	h.srv.engine.ServeHTTP(w, newRequest("GET", "/panic", ""))
	decodeProblem(t, w, 500, contract.CodeInternal)
	if logs := h.logs.String(); !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, `"route":"/panic"`) {
		t.Errorf("panic not logged: %s", logs)
	}
	// The server goes on serving.
	if w := h.api("GET", h.accountPath("/users"), ""); w.Code != 200 {
		t.Errorf("after a panic: %d", w.Code)
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("m"))
	srv := h.serverWith(func(d *Deps) { d.Registry = reg })
	serve(t, srv, "GET", h.accountPath("/invitations/"+inv.ID.String()), "", "Authorization", "Bearer "+portalToken)
	serve(t, srv, "GET", "/no/such/"+inv.ID.String(), "")
	serve(t, srv, "BREW", "/healthz", "")
	body := serve(t, srv, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`http_requests_total{method="GET",route="/v1/accounts/:account_id/invitations/:invitation_id",status="200"} 1`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`http_requests_total{method="OTHER",route="unmatched",status="405"} 1`,
		`http_problems_total{code="not_found",route="unmatched"} 1`,
		`http_problems_total{code="method_not_allowed",route="unmatched"} 1`,
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
	h.serverWith(func(d *Deps) { d.Registry = reg })
}

func TestOpenAPIDocumentsEveryRouteAndCode(t *testing.T) {
	t.Parallel()
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
	for _, code := range problem.Codes() {
		if !strings.Contains(strings.Join(codes, " ")+" ", string(code)+" ") {
			t.Errorf("ProblemCode lacks %s", code)
		}
	}
	if len(codes) != len(problem.Codes()) {
		t.Errorf("ProblemCode has %d codes, the server %d", len(codes), len(problem.Codes()))
	}
}

// TestLogsCarryNoSecrets: invite tokens, passwords and API tokens appear in no log line, the
// API's or the worker's.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("secret"))
	token := h.token(inv)
	h.do("GET", "/invite?token="+token, "")
	h.do("GET", "/v1/invitations/preview?token="+token, "")
	decodeJSON[acceptView](t, h.do("POST", "/v1/invitations/accept", `{"token":"`+token+`","password":"Sup3rSecret!pw","accept_terms":true}`), 200)
	h.api("GET", h.accountPath("/users"), "")
	h.do("GET", h.accountPath("/users"), "", "Authorization", "Bearer "+h.scopedToken)
	h.do("GET", h.accountPath("/users"), "", "Authorization", "Bearer "+h.scopedToken+"x") // an unknown token
	eventually(t, 20*time.Second, "the welcome email", func() bool { return h.row(inv.ID).DeliveryStatus != "" && len(stack.Resend.EmailsTo(inv.Email)) == 2 })
	logs := h.logs.String()
	all := stack.Logs()
	for _, secret := range []string{token, url.QueryEscape(token), "Sup3rSecret!pw", portalToken, h.scopedToken, passwordHash(t, *h.row(inv.ID).UserID)} {
		if strings.Contains(logs, secret) || strings.Contains(all, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, `"route":"/invite"`) || !strings.Contains(logs, `"route":"/v1/invitations/accept"`) {
		t.Errorf("requests are not logged by route: %s", logs)
	}
}

func TestNothingPanicsOnHostileInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("x"))
	bodies := []string{"", "null", "[]", "{}", `{"a":1}`, "\x00", "{\"name\":\"\xff\"}", strings.Repeat("[", 5000),
		`{"token":null,"password":null,"accept_terms":null}`, `{"seats":1e400}`, `{"group_ids":` + strings.Repeat("[", 100) + `}`}
	paths := []string{"/v1/accounts", h.accountPath("/subscriptions"), h.accountPath("/groups"), h.accountPath("/invitations"),
		h.accountPath("/invitations/" + inv.ID.String() + "/resend"), "/v1/invitations/accept", "/v1/invitations/decline",
		"/invite/accept", "/invite/decline", h.accountPath("/webhooks"), "/v1/provider-events/resend"}
	// Over the real stack, and with Temporal unreachable (where a request gets that far, it
	// may answer 503, nothing else from the 5xx range).
	dead := h.serverWith(func(d *Deps) { d.Temporal = deadTemporal(t) })
	for _, srv := range []*Server{h.srv, dead} {
		for _, path := range paths {
			for _, body := range bodies {
				w := within(t, srv, 10*time.Second, "POST", path, body, "Authorization", "Bearer "+portalToken, "Content-Type", "application/json")
				if w.Code >= 500 && w.Code != 503 {
					t.Errorf("POST %s %q: %d %s", path, body, w.Code, w.Body)
				}
			}
		}
	}
	if strings.Contains(h.logs.String(), "panic") {
		t.Error("a request panicked")
	}
	if got := h.row(inv.ID); got.Status != "pending" || got.Sends != 1 {
		t.Errorf("the invitation changed: %+v", got)
	}
}

func TestAccessLogLine(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var buf syncLog
	srv := h.serverWith(func(d *Deps) { d.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	serve(t, srv, "GET", h.accountPath("/users"), "", "Authorization", "Bearer "+portalToken, "X-Request-ID", "req-1")
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace([]byte(buf.String())), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for _, k := range []string{"method", "route", "status", "duration_ms", "request_id"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %s: %v", k, line)
		}
	}
	if line["route"] != "/v1/accounts/:account_id/users" || line["status"] != float64(http.StatusOK) || line["request_id"] != "req-1" {
		t.Errorf("log line = %v", line)
	}
}

func TestEncodedSlashStaysInItsSegment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inv := h.pending(uniqueEmail("slash"))
	decodeProblem(t, h.api("GET", h.accountPath("/invitations/"+inv.ID.String()+"%2Flink"), ""), 404, contract.CodeNotFound)
	if w := h.api("GET", h.accountPath("/invitations/"+inv.ID.String()+"/link"), ""); w.Code != 200 {
		t.Fatalf("link: %d", w.Code)
	}
	id := inv.ID.String()
	i := strings.IndexAny(id, "abcdef")
	if w := h.api("GET", h.accountPath("/invitations/"+id[:i]+fmt.Sprintf("%%%02x", id[i])+id[i+1:]), ""); w.Code != 200 {
		t.Fatalf("percent-encoded id character: %d", w.Code)
	}
}

// With METRICS_ADDR set, the API's own listener serves no /metrics: the command serves them
// there instead.
func TestMetricsOffThePublicListener(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := h.serverWith(func(d *Deps) { d.Config.MetricsAddr = "127.0.0.1:0" })
	if w := serve(t, srv, "GET", "/metrics", ""); w.Code != 404 {
		t.Fatalf("GET /metrics on the public listener = %d, want 404", w.Code)
	}
	w := httptest.NewRecorder()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "probe_total", Help: "probe"}))
	MetricsHandler(reg).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "probe_total 0") {
		t.Fatalf("MetricsHandler = %d %s", w.Code, w.Body)
	}
}
