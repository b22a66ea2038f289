package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/temporalclient"
	"github.com/onboarding-service/onboarding/internal/testkit/webhooktest"
	"github.com/onboarding-service/onboarding/server/api"
	"github.com/onboarding-service/onboarding/worker"
)

// What docs/security.md promises about secrets, checked on the real stack: a full lifecycle
// leaves no password, invite token, API token or Resend key in the Temporal history (decoded),
// in the service's logs or in its metrics; with payload encryption on, the raw history holds no
// email address, and /codec/decode opens it for the codec token only.

// sidePair is an API and a worker of their own (own task queue, settings and logs) over the
// shared database and Temporal dev server, for settings the shared stack does not have.
type sidePair struct {
	cfg  config.Config
	api  *httptest.Server
	logs *lockedLog
}

// startSidePair starts a pair on the short durations of stack.ShortCfg, adjusted by adjust.
func startSidePair(t *testing.T, name string, adjust func(*config.Config)) *sidePair {
	t.Helper()
	cfg := stack.ShortCfg
	cfg.TemporalTaskQueue = "onboarding-e2e-" + name + "-" + randomHex(3)
	if adjust != nil {
		adjust(&cfg)
	}
	p := &sidePair{cfg: cfg, logs: &lockedLog{}}
	logger := slog.New(slog.NewJSONHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := temporalclient.Dial(ctx, cfg, logger, temporalclient.WithPayloadEncryption(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	acts, err := worker.NewActivities(cfg, stack.Store, logger)
	if err != nil {
		t.Fatal(err)
	}
	mainWorker, emailWorker := worker.New(c, cfg, acts)
	hooks := worker.NewWebhooks(c, cfg, stack.Store, nil, logger)
	for _, w := range []interface {
		Start() error
		Stop()
	}{emailWorker, hooks.Worker, mainWorker} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		hooks.Dispatcher.Run(dispatchCtx)
	}()
	t.Cleanup(func() {
		stopDispatch()
		<-dispatched
	})
	p.api = httptest.NewServer(api.New(api.Deps{
		Config: cfg, Store: stack.Store, Temporal: c, Signer: invitetoken.NewSigner(cfg.TokenSecret, cfg.TokenSecretPrevious...),
		Hasher: password.NewHasher(2), Logger: logger, Registry: prometheus.NewRegistry(),
	}))
	t.Cleanup(p.api.Close)
	return p
}

func (p *sidePair) portal() apiClient  { return apiClient{base: p.api.URL, token: stack.Token} }
func (p *sidePair) invitee() apiClient { return apiClient{base: p.api.URL} }

// lockedLog collects logs written from many goroutines.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// workflowHistory returns the events of every run of an invitation's workflow (a renewal continues
// it as new), as Temporal stores them: nothing is decoded.
func workflowHistory(t *testing.T, invitationID string) []*historypb.HistoryEvent {
	t.Helper()
	return historyOf(t, "invitation:"+invitationID)
}

// historyOf returns the events of every run of a workflow, newest run first.
func historyOf(t *testing.T, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []*historypb.HistoryEvent
	runID := ""
	for range 50 {
		it := stack.Temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var events []*historypb.HistoryEvent
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, ev)
		}
		if len(events) == 0 {
			t.Fatalf("no history for %s run %q", workflowID, runID)
		}
		all = append(all, events...)
		if runID = events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId(); runID == "" {
			return all
		}
	}
	t.Fatal("more than 50 runs")
	return nil
}

// historyText renders events as searchable text: every event in protobuf JSON (names,
// identities, failure messages) and every payload's data and metadata as bytes, after decode
// (nil: as stored).
func historyText(t *testing.T, events []*historypb.HistoryEvent, decode func([]*commonpb.Payload) ([]*commonpb.Payload, error)) (string, []*commonpb.Payload) {
	t.Helper()
	var text strings.Builder
	var payloads []*commonpb.Payload
	for _, ev := range events {
		err := proxy.VisitPayloads(context.Background(), ev, proxy.VisitPayloadsOptions{
			Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
				payloads = append(payloads, ps...)
				out := ps
				if decode != nil {
					var err error
					if out, err = decode(ps); err != nil {
						return nil, err
					}
				}
				for _, p := range out {
					for k, v := range p.GetMetadata() {
						text.WriteString(k + "=" + string(v) + "\n")
					}
					text.Write(p.GetData())
					text.WriteByte('\n')
				}
				return ps, nil // the event itself stays as stored
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		data, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(data)
		text.WriteByte('\n')
	}
	return text.String(), payloads
}

// assertAbsent fails for each secret found in text.
func assertAbsent(t *testing.T, where, text string, secrets map[string]string) {
	t.Helper()
	if text == "" {
		t.Fatalf("%s: nothing to search", where)
	}
	for name, secret := range secrets {
		if secret == "" {
			t.Fatalf("secret %s is empty", name)
		}
		if strings.Contains(text, secret) {
			i := strings.Index(text, secret)
			t.Errorf("%s holds the %s: …%s…", where, name, text[max(0, i-120):min(len(text), i+len(secret)+40)])
		}
	}
}

// TestSecretsStayOutOfHistoryLogsAndMetrics: a full lifecycle (create, resend, copy link,
// expiry, renew, accept with a password; a decline; a revoke) through the real API, worker and
// Temporal, then the decoded history of each invitation, the logs of the run and the metrics
// are searched for the password, every invite token, the API token and the Resend key.
func TestSecretsStayOutOfHistoryLogsAndMetrics(t *testing.T) {
	t.Parallel()
	p := startSidePair(t, "secrets", nil)
	f := newFixture(t, 5)
	pw := "Known-Secret-Pass-" + randomHex(4)
	secrets := map[string]string{
		"password":           pw,
		"API token":          stack.Token,
		"Resend key":         stack.Resend.APIKey,
		"TOKEN_SECRET (hex)": string(stack.Cfg.TokenSecret),
	}
	email := unique("Leak.Check")
	// A webhook endpoint of the account: its events, deliveries and attempt records are
	// searched too.
	hook := webhooktest.NewReceiver(t, "")
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	p.portal().do(t, "POST", f.path("/webhooks"), map[string]any{"url": hook.URL() + "/hooks"}).expect(t, 201).decode(t, &ep)
	hook.SetSecrets(ep.Secret)
	secrets["webhook secret"] = ep.Secret

	var inv invitation
	p.portal().do(t, "POST", f.path("/invitations"), f.inviteBody(email)).expect(t, 201).decode(t, &inv)
	first := tokenOf(t, *inv.InviteURL)
	secrets["first invite token"] = first
	waitEmail(t, email, "invited you", 1)
	eventually(t, 5*time.Second, "the resend interval", func() bool {
		return p.portal().do(t, "POST", f.path("/invitations/"+inv.ID+"/resend"), nil).Status == 200
	})
	p.portal().do(t, "GET", f.path("/invitations/"+inv.ID+"/link"), nil).expect(t, 200)
	p.invitee().do(t, "GET", "/v1/invitations/preview?token="+first, nil).expect(t, 200)
	eventually(t, shortTTL+15*time.Second, "the invitation to expire", func() bool {
		return f.invitation(t, p.portal(), inv.ID).Status == "expired"
	})
	var renewed invitation
	p.portal().do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
	second := tokenOf(t, *renewed.InviteURL)
	secrets["renewed invite token"] = second
	// A refused password travels as far as a good one before the policy stops it.
	p.invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": second, "password": "Password2024!", "accept_terms": true}).
		expectProblem(t, 422, "password_policy")
	p.invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": second, "password": pw, "accept_terms": true}).expect(t, 200)
	// The same accept again gets the first answer (a retry whose answer was lost).
	p.invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": second, "password": pw, "accept_terms": true}).expect(t, 200)

	var declined, revoked invitation
	p.portal().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Leak.Decline"))).expect(t, 201).decode(t, &declined)
	secrets["declined invite token"] = tokenOf(t, *declined.InviteURL)
	p.invitee().do(t, "POST", "/v1/invitations/decline", map[string]any{"token": secrets["declined invite token"]}).expect(t, 200)
	p.portal().do(t, "POST", f.path("/invitations"), f.inviteBody(unique("Leak.Revoke"))).expect(t, 201).decode(t, &revoked)
	secrets["revoked invite token"] = tokenOf(t, *revoked.InviteURL)
	p.portal().do(t, "POST", f.path("/invitations/"+revoked.ID+"/revoke"), nil).expect(t, 200)
	waitEmail(t, email, "Welcome", 1)

	// The invitee resets their password: the reset link's token and the new password are secrets
	// too, and the reset workflow's history is searched as the invitations' are.
	p.invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": email}).expect(t, 202)
	resetToken := tokenOf(t, waitEmail(t, email, "Reset your password", 1))
	secrets["reset token"] = resetToken
	newPW := "Reset-Secret-Pass-" + randomHex(4)
	secrets["new password"] = newPW
	p.invitee().do(t, "POST", "/v1/password-resets/confirm", map[string]any{"token": resetToken, "password": "weak"}).
		expectProblem(t, 422, "password_policy")
	p.invitee().do(t, "POST", "/v1/password-resets/confirm", map[string]any{"token": resetToken, "password": newPW}).expect(t, 200)
	p.invitee().do(t, "POST", "/v1/password-resets/confirm", map[string]any{"token": resetToken, "password": newPW}).
		expectProblem(t, 410, "link_expired")
	resetText, _ := historyText(t, historyOf(t, resetWorkflowID(email)), nil)
	assertAbsent(t, "the password reset's history", resetText, secrets)
	if !strings.Contains(resetText, "$argon2id$") || !strings.Contains(resetText, "Send the password-reset email") {
		t.Fatalf("the reset's history lacks the hash or the email step: the search would find nothing: %.300s", resetText)
	}

	for _, id := range []string{inv.ID, declined.ID, revoked.ID} {
		events := workflowHistory(t, id)
		text, _ := historyText(t, events, nil) // no codec here: payloads are plain JSON
		assertAbsent(t, "the history of "+id, text, secrets)
		if id == inv.ID && (!strings.Contains(text, email) || !strings.Contains(text, "$argon2id$")) {
			t.Fatal("the decoded history lacks the invitee's address or the password hash: the search would find nothing")
		}
	}
	// Events out: the feed, every delivery's body and headers, the attempt records, and the
	// rows behind them hold no token, link or password (the secret only signs).
	var feed []feedEvent
	eventually(t, 30*time.Second, "every event delivered", func() bool {
		feed = f.feed(t, "")
		return len(feed) > 0 && len(webhooktest.Distinct(hook.Deliveries())) >= len(feed)
	})
	feedJSON, _ := json.Marshal(feed)
	assertAbsent(t, "the event feed", string(feedJSON), secrets)
	for _, d := range hook.Attempts() {
		headers, _ := json.Marshal(d.Header)
		assertAbsent(t, "webhook delivery "+d.WebhookID, string(d.Raw)+string(headers), secrets)
	}
	attempts := p.portal().do(t, "GET", f.path("/webhooks/"+ep.ID+"/deliveries?limit=100"), nil).expect(t, 200)
	assertAbsent(t, "the webhook's delivery records", string(attempts.Body), secrets)
	var rows string
	if err := stack.Store.Pool.QueryRow(context.Background(), `
		select coalesce(string_agg(e.type || ' ' || e.detail || ' ' || coalesce(e.data::text, ''), E'\n'), '') ||
			coalesce((select string_agg(a.error, E'\n') from webhook_attempts a join webhook_endpoints w on w.id = a.endpoint_id where w.account_id = $1), '')
		from invitation_events e where e.account_id = $1`, f.AccountID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, "the events' and attempts' rows", rows, secrets)
	if !strings.Contains(rows, email) {
		t.Fatalf("the events' rows lack the invitee's address: the search would find nothing: %.300s", rows)
	}

	logs := p.logs.String()
	assertAbsent(t, "the logs", logs, secrets)
	if !strings.Contains(logs, `"route":"/v1/invitations/accept"`) {
		t.Fatalf("the pair logged no requests: %.500s", logs)
	}
	metrics := p.invitee().do(t, "GET", "/metrics", nil).expect(t, 200)
	assertAbsent(t, "the API's metrics", string(metrics.Body), secrets)

	// The Temporal dev server's own log of the run, for good measure.
	if root, err := devstack.RepoRoot(); err == nil {
		if data, err := os.ReadFile(filepath.Join(root, "test-artifacts", "e2e-temporal.log")); err == nil && len(data) > 0 {
			assertAbsent(t, "the Temporal server's log", string(data), secrets)
		}
	}
}

// addressAtTestDomain matches any email address of the tests' domains.
var addressAtTestDomain = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9.\-]+\.test\b`)

// TestEncryptedPayloads: with PAYLOAD_ENCRYPTION_KEY the whole raw history of an invitation
// (creation, emails, acceptance) holds no email address and no name; search attributes stay
// readable; /codec/decode opens the payloads for the codec token only.
func TestEncryptedPayloads(t *testing.T) {
	t.Parallel()
	key := codec.Key{ID: "e2e-" + randomHex(2)}
	_, _ = rand.Read(key.Secret[:])
	codecToken := "codec-" + randomHex(20)
	p := startSidePair(t, "encrypted", func(c *config.Config) {
		c.PayloadKey = &key
		c.CodecAuthToken = codecToken
	})
	f := newFixture(t, 2)
	email := unique("Cipher.Person")
	body := f.inviteBody(email)
	body["first_name"], body["last_name"] = "Zenobia", "Quillfeather"
	var inv invitation
	p.portal().do(t, "POST", f.path("/invitations"), body).expect(t, 201).decode(t, &inv)
	waitEmail(t, email, "invited you", 1)
	p.invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{
		"token": tokenOf(t, *inv.InviteURL), "password": "Known-Secret-Pass-42", "accept_terms": true,
	}).expect(t, 200)
	waitEmail(t, email, "Welcome", 1) // the welcome email: its activity is in the history too

	events := workflowHistory(t, inv.ID)
	raw, payloads := historyText(t, events, nil)
	if m := addressAtTestDomain.FindString(raw); m != "" {
		i := strings.Index(raw, m)
		t.Fatalf("the raw history holds the address %q: …%s…", m, raw[max(0, i-200):min(len(raw), i+100)])
	}
	// Masked forms too ("j…@example.test" in a summary): no domain of an address may show.
	for _, s := range []string{"@example.test", "@acme.test", "Zenobia", "Quillfeather", "Known-Secret-Pass-42", "$argon2id$", stack.Resend.APIKey} {
		if strings.Contains(raw, s) {
			t.Errorf("the raw history holds %q", s)
		}
	}
	sealed := 0
	for _, pl := range payloads {
		if codec.Encrypted(pl) {
			sealed++
			if string(pl.Metadata[codec.MetadataKeyID]) != key.ID {
				t.Fatalf("payload sealed under key %q, want %q", pl.Metadata[codec.MetadataKeyID], key.ID)
			}
		}
	}
	if sealed < 5 {
		t.Fatalf("%d of %d payloads sealed", sealed, len(payloads))
	}
	// Search attributes are not encrypted, by design: they hold ids, statuses and a keyed hash.
	if !strings.Contains(raw, inv.AccountID) {
		t.Error("the AccountId search attribute is not readable in the raw history")
	}

	// The codec endpoint, as the Temporal UI calls it.
	var sealedOnly []*commonpb.Payload
	for _, pl := range payloads {
		if codec.Encrypted(pl) {
			sealedOnly = append(sealedOnly, pl)
		}
	}
	reqBody, err := protojson.Marshal(&commonpb.Payloads{Payloads: sealedOnly})
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"no token": "", "the API token": stack.Token, "a wrong token": "codec-" + randomHex(20)} {
		r := apiClient{base: p.api.URL, token: token}.do(t, "POST", "/codec/decode", reqBody)
		r.expectProblem(t, 401, "unauthorized")
		if strings.Contains(string(r.Body), email) {
			t.Fatalf("%s: the refusal holds the address", name)
		}
	}
	r := apiClient{base: p.api.URL, token: codecToken}.do(t, "POST", "/codec/decode", reqBody).expect(t, 200)
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal(r.Body, &decoded); err != nil || len(decoded.Payloads) != len(sealedOnly) {
		t.Fatalf("decode answered %d payloads for %d: %v", len(decoded.Payloads), len(sealedOnly), err)
	}
	var plain strings.Builder
	for _, pl := range decoded.Payloads {
		if codec.Encrypted(pl) {
			t.Fatal("a payload came back sealed")
		}
		plain.Write(pl.Data)
	}
	if !strings.Contains(plain.String(), email) || !strings.Contains(plain.String(), "Zenobia") {
		t.Fatalf("the decoded payloads lack the invitation's data")
	}
	// The same decoding the pair's Temporal client does: the API reads its own workflows.
	var got struct{ Status string }
	p.portal().do(t, "GET", f.path("/invitations/"+inv.ID), nil).expect(t, 200).decode(t, &got)
	if got.Status != "accepted" {
		t.Fatalf("status %s", got.Status)
	}
}
