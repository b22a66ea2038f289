package e2e

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/server/api"
)

// securityAPI starts another API process over the shared database, Temporal and worker, with cfg.
func securityAPI(t *testing.T, cfg config.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(api.New(api.Deps{
		Config: cfg, Store: stack.Store, Temporal: stack.Temporal,
		Signer: invitetoken.NewSigner(cfg.TokenSecret, cfg.TokenSecretPrevious...),
		Hasher: password.NewHasher(2), Registry: prometheus.NewRegistry(),
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestTokenSecretRotation follows docs/security.md: the API restarted with a new TOKEN_SECRET
// and the old one in TOKEN_SECRET_PREVIOUS still honours links emailed before (preview and
// accept), and copies out links under the new secret; once the old secret is removed, its links
// answer exactly like a forgery.
func TestTokenSecretRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	before := f.createInvitation(t, portal(), unique("Rotate"))
	oldLink := tokenOf(t, *before.InviteURL)
	other := f.createInvitation(t, portal(), unique("Rotate.Other"))

	newSecret := []byte("rotated-" + randomHex(16))
	rotatedCfg := stack.Cfg
	rotatedCfg.TokenSecret, rotatedCfg.TokenSecretPrevious = newSecret, [][]byte{stack.Cfg.TokenSecret}
	rotated := apiClient{base: securityAPI(t, rotatedCfg).URL, token: stack.Token}

	var pv preview
	rotated.do(t, "GET", "/v1/invitations/preview?token="+oldLink, nil).expect(t, 200).decode(t, &pv)
	if pv.Status != "pending" || pv.Email != before.Email {
		t.Fatalf("preview of an old link after the rotation: %+v", pv)
	}
	var link struct {
		InviteURL string `json:"invite_url"`
	}
	rotated.do(t, "GET", f.path("/invitations/"+other.ID+"/link"), nil).expect(t, 200).decode(t, &link)
	newLink := tokenOf(t, link.InviteURL)
	if newLink == tokenOf(t, *other.InviteURL) {
		t.Fatal("the rotated API copies out links under the old secret")
	}
	rotated.do(t, "GET", "/v1/invitations/preview?token="+newLink, nil).expect(t, 200)

	// The old secret removed.
	removedCfg := rotatedCfg
	removedCfg.TokenSecretPrevious = nil
	removed := apiClient{base: securityAPI(t, removedCfg).URL}
	removed.do(t, "GET", "/v1/invitations/preview?token="+newLink, nil).expect(t, 200)
	forged := invitetoken.NewSigner([]byte("forger-"+randomHex(16))).Sign(uuid.MustParse(before.ID), 1)
	for _, call := range []struct {
		method, path string
		body         func(tok string) any
	}{
		{"GET", "/v1/invitations/preview?token=", nil},
		{"POST", "/v1/invitations/accept", func(tok string) any {
			return map[string]any{"token": tok, "password": "Correct-Horse-42", "accept_terms": true}
		}},
		{"POST", "/v1/invitations/decline", func(tok string) any { return map[string]any{"token": tok} }},
	} {
		answer := func(tok string) response {
			if call.body == nil {
				return removed.do(t, call.method, call.path+tok, nil)
			}
			return removed.do(t, call.method, call.path, call.body(tok))
		}
		old, fake := answer(oldLink), answer(forged)
		old.expectProblem(t, 404, "token_invalid")
		if string(old.Body) != string(fake.Body) {
			t.Errorf("%s: a link of the removed secret answers %s, a forgery %s", call.path, old.Body, fake.Body)
		}
	}

	// And back on the rotated API the old link is still good for the real thing.
	rotated.do(t, "POST", "/v1/invitations/accept", map[string]any{"token": oldLink, "password": "Correct-Horse-42", "accept_terms": true}).
		expect(t, 200)
}

// TestRateLimits: on a real API with small limits, the invitee routes answer 429 rate_limited
// with Retry-After per client address and per link, and creating invitations per account;
// nothing refused reaches the workflow.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	f, g := newFixture(t, 5), newFixture(t, 5)
	inv := f.createInvitation(t, portal(), unique("Limit"))
	token := tokenOf(t, *inv.InviteURL)

	perLink := stack.Cfg
	perLink.RateInviteeToken = config.RateLimit{Count: 2, Per: time.Minute}
	linkAPI := apiClient{base: securityAPI(t, perLink).URL}
	linkAPI.do(t, "GET", "/v1/invitations/preview?token="+token, nil).expect(t, 200)
	linkAPI.do(t, "GET", "/v1/invitations/preview?token="+token, nil).expect(t, 200)
	r := linkAPI.do(t, "POST", "/v1/invitations/decline", map[string]any{"token": token})
	r.expectProblem(t, 429, "rate_limited")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 30 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if got := f.invitation(t, portal(), inv.ID); got.Status != "pending" {
		t.Fatalf("a limited decline went through: %s", got.Status)
	}

	perAddress := stack.Cfg
	perAddress.RateInviteeIP = config.RateLimit{Count: 3, Per: time.Minute}
	addrAPI := apiClient{base: securityAPI(t, perAddress).URL}
	for range 3 {
		addrAPI.do(t, "GET", "/v1/invitations/preview?token=forged", nil).expectProblem(t, 404, "token_invalid")
	}
	addrAPI.do(t, "GET", "/v1/invitations/preview?token="+token, nil).expectProblem(t, 429, "rate_limited")
	page := addrAPI.do(t, "GET", "/invite?token="+token, nil)
	if page.Status != 429 || page.Header.Get("Retry-After") == "" || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the page while limited: %d %v", page.Status, page.Header)
	}

	perAccount := stack.Cfg
	perAccount.RateInvitationCreate = config.RateLimit{Count: 2, Per: time.Hour}
	createAPI := apiClient{base: securityAPI(t, perAccount).URL, token: stack.Token}
	for range 2 {
		createAPI.do(t, "POST", g.path("/invitations"), g.inviteBody(unique("Bulk"))).expect(t, 201)
	}
	r = createAPI.do(t, "POST", g.path("/invitations"), g.inviteBody(unique("Bulk")))
	r.expectProblem(t, 429, "rate_limited")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1000 || ra > 1800 {
		t.Fatalf("Retry-After %q, want about 30 minutes", r.Header.Get("Retry-After"))
	}
	var list struct{ Items []invitation }
	createAPI.do(t, "GET", g.path("/invitations"), nil).expect(t, 200).decode(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("%d invitations, want 2: the limited create left something behind", len(list.Items))
	}
	// Another account has its own budget.
	createAPI.do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Elsewhere"))).expect(t, 201)
}

// TestCommonPasswordRefused: a password from the shipped list of common passwords is refused
// with password_policy even though it has every character class; a 64-character passphrase
// is accepted.
func TestCommonPasswordRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	inv := f.createInvitation(t, portal(), unique("Common"))
	token := tokenOf(t, *inv.InviteURL)
	for _, pw := range []string{"Password123!", "P@ssw0rd2026", "Welcome2026!", "Qwerty123456"} {
		p := invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": pw, "accept_terms": true}).
			expectProblem(t, 422, "password_policy")
		if len(p.Errors) != 1 || p.Errors[0].Field != "password" || !strings.Contains(p.Detail, "common") {
			t.Errorf("%s: %+v", pw, p)
		}
	}
	long := "A long passphrase of 64 characters, with 1 digit & symbols......"
	if len([]rune(long)) != 64 {
		t.Fatalf("%d characters", len([]rune(long)))
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": token, "password": long, "accept_terms": true}).expect(t, 200)
}

// TestAPITokenCommands runs the real binary: `onboarding-api tokens create` prints a token once
// that the API then accepts (scoped: 403 on other accounts), `tokens list` shows it without the
// token, and `tokens revoke` makes the API refuse it at once.
func TestAPITokenCommands(t *testing.T) {
	t.Parallel()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "onboarding-api")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the binary with: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./server/cmd/onboarding-api")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, g := newFixture(t, 2), newFixture(t, 2)
	tokens := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"tokens"}, args...)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+stack.Cfg.DatabaseURL, "APP_ENV=development", "TOKEN_SECRET=", "LOG_LEVEL=error")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	name := "support-" + randomHex(3)
	out, msg, err := tokens("create", "--name", name, "--account", f.AccountID)
	if err != nil {
		t.Fatalf("tokens create: %v\n%s", err, msg)
	}
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, "onb_") || len(token) != 68 || strings.Contains(msg, token) {
		t.Fatalf("tokens create printed %q (stderr %q)", out, msg)
	}
	scoped := apiClient{base: stack.API.URL, token: token}
	scoped.do(t, "GET", f.path("/users"), nil).expect(t, 200)
	scoped.do(t, "GET", g.path("/users"), nil).expectProblem(t, 403, "forbidden")
	scoped.do(t, "POST", "/v1/accounts", map[string]any{"name": "Nope"}).expectProblem(t, 403, "forbidden")

	list, _, err := tokens("list")
	if err != nil || !strings.Contains(list, name) || !strings.Contains(list, "account "+f.AccountID) || strings.Contains(list, token) {
		t.Fatalf("tokens list: %v\n%s", err, list)
	}
	var id string
	for _, line := range strings.Split(list, "\n") {
		if fields := strings.Fields(line); len(fields) > 1 && fields[1] == name {
			id = fields[0]
			if !strings.HasSuffix(line, "-") {
				t.Fatalf("a new token is listed as revoked: %q", line)
			}
		}
	}
	if _, msg, err := tokens("revoke", id); err != nil || !strings.Contains(msg, "Revoked") {
		t.Fatalf("tokens revoke %s: %v %s", id, err, msg)
	}
	scoped.do(t, "GET", f.path("/users"), nil).expectProblem(t, 401, "unauthorized")
	list, _, _ = tokens("list")
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, name) && strings.HasSuffix(strings.TrimSpace(line), "-") {
			t.Fatalf("a revoked token is listed as live: %q", line)
		}
	}
	if _, _, err := tokens("revoke", uuid.NewString()); err == nil {
		t.Fatal("revoking an unknown token succeeded")
	}
	if _, _, err := tokens("create"); err == nil {
		t.Fatal("create without --name succeeded")
	}
}
