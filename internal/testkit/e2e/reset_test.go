package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/emailhash"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// resetWorkflowID is the password-reset workflow of an address on the shared stack.
func resetWorkflowID(email string) string {
	return contract.PasswordResetWorkflowID(emailhash.Hash(stack.Cfg.EmailHashKey, email))
}

// requestReset asks for a reset link for email and returns the token of the n-th reset email.
func requestReset(t *testing.T, email string, n int) string {
	t.Helper()
	var out struct{ Status string }
	invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": email}).expect(t, 202).decode(t, &out)
	if out.Status != "requested" {
		t.Fatalf("reset request answered %q, want requested", out.Status)
	}
	text := waitEmail(t, email, "Reset your password", n)
	if !strings.Contains(text, "http://portal.test/reset?token=") {
		t.Fatalf("the reset email links elsewhere: %s", text)
	}
	return tokenOf(t, text)
}

func confirmReset(t *testing.T, token, pw string) response {
	t.Helper()
	return invitee().do(t, "POST", "/v1/password-resets/confirm", map[string]any{"token": token, "password": pw})
}

// TestPasswordResetRestoresControl finishes the attack of issue 11: account A pre-accepted with
// a password of its choosing; the person resets it by email (A's password stops working, the
// link works once) and then accepts B's invitation with their own password.
func TestPasswordResetRestoresControl(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t, 2), newFixture(t, 2)
	victim := unique("Victim.Reset")
	invA := a.createInvitation(t, portal(), victim)
	var joined struct {
		UserID string `json:"user_id"`
	}
	accept(t, tokenOf(t, *invA.InviteURL)).expect(t, 200).decode(t, &joined) // A's chosen password
	invB := b.createInvitation(t, portal(), victim)
	tokenB := tokenOf(t, *invB.InviteURL)

	token := requestReset(t, victim, 1)
	// A forged or malformed token, no password, a weak one: refused, and the link stays good.
	forged := invitetoken.NewSigner([]byte(strings.Repeat("k", 32))).PasswordReset().Sign(uuid.MustParse(joined.UserID), 1)
	confirmReset(t, forged, "Victim-Owns-It-77").expectProblem(t, 404, "token_invalid")
	confirmReset(t, "not-a-token", "Victim-Owns-It-77").expectProblem(t, 404, "token_invalid")
	// An invite token is no reset token (each kind has its own key domain).
	confirmReset(t, tokenB, "Victim-Owns-It-77").expectProblem(t, 404, "token_invalid")
	p := confirmReset(t, token, "").expectProblem(t, 422, "credentials_invalid")
	if len(p.Errors) != 1 || p.Errors[0].Field != "password" {
		t.Errorf("credentials_invalid names %+v; want the password field", p.Errors)
	}
	confirmReset(t, token, "short").expectProblem(t, 422, "password_policy")

	var out struct{ Status string }
	confirmReset(t, token, "Victim-Owns-It-77").expect(t, 200).decode(t, &out)
	if out.Status != "reset" {
		t.Fatalf("confirm answered %q, want reset", out.Status)
	}
	confirmReset(t, token, "Victim-Owns-It-78").expectProblem(t, 410, "link_expired") // used

	// A's password no longer opens the person's account; theirs does.
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": tokenB, "password": "Correct-Horse-42", "accept_terms": true}).
		expectProblem(t, 422, "credentials_invalid")
	var acc struct {
		UserID string `json:"user_id"`
	}
	invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{"token": tokenB, "password": "Victim-Owns-It-77", "accept_terms": true}).
		expect(t, 200).decode(t, &acc)
	if acc.UserID != joined.UserID {
		t.Fatalf("B's accept made user %s, want the person's own %s", acc.UserID, joined.UserID)
	}
	// The run ended with the use of its link.
	eventually(t, 10*time.Second, "the reset workflow to complete", func() bool {
		d, err := stack.Temporal.DescribeWorkflowExecution(context.Background(), resetWorkflowID(victim), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
	})
}

// TestPasswordResetLinks: a newer request supersedes the older link (410), an expired link is
// 410, and nothing of a link is stored: no token in the emails table or the resets table.
func TestPasswordResetLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	person := unique("Reset.Links")
	inv := f.createInvitation(t, portal(), person)
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200)

	first := requestReset(t, person, 1)
	second := requestReset(t, person, 2)
	if first == second {
		t.Fatal("a newer request sent the same link")
	}
	confirmReset(t, first, "Second-Link-Wins-1").expectProblem(t, 410, "link_expired")

	ctx := context.Background()
	var stored int
	if err := stack.Store.Pool.QueryRow(ctx, `select count(*) from emails where recipient = $1 and (html like '%'||$2||'%' or text like '%'||$2||'%' or html like '%'||$3||'%' or text like '%'||$3||'%')`,
		person, first, second).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("%d stored emails hold a reset token (%v)", stored, err)
	}
	var row string
	if err := stack.Store.Pool.QueryRow(ctx, `select row_to_json(r)::text from password_resets r join users u on u.id = r.user_id where lower(u.email) = lower($1)`,
		person).Scan(&row); err != nil || strings.Contains(row, second) || !strings.Contains(row, `"generation":2`) {
		t.Fatalf("the reset row %s (%v): want generation 2 and no token", row, err)
	}

	// The link's time runs out (moved into the past here; the workflow's timer does the same).
	if _, err := stack.Store.Pool.Exec(ctx, `update password_resets r set expires_at = now() - interval '1 second' from users u
		where u.id = r.user_id and lower(u.email) = lower($1)`, person); err != nil {
		t.Fatal(err)
	}
	confirmReset(t, second, "Second-Link-Wins-1").expectProblem(t, 410, "link_expired")
}

// TestPasswordResetTellsNothing: an unknown address gets the same answer as a known one, sends
// nothing, and is limited alike (RATE_LIMIT_PASSWORD_RESET_EMAIL, 3 an hour per address).
func TestPasswordResetTellsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	known := unique("Reset.Known")
	inv := f.createInvitation(t, portal(), known)
	accept(t, tokenOf(t, *inv.InviteURL)).expect(t, 200)
	unknown := unique("Reset.Nobody")

	answers := map[string]string{}
	for _, email := range []string{known, unknown} {
		r := invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": email}).expect(t, 202)
		answers[email] = string(r.Body) + " " + r.Header.Get("Content-Type") + " " + r.Header.Get("Cache-Control")
	}
	if answers[known] != answers[unknown] {
		t.Fatalf("known and unknown addresses answer differently:\n%s\n%s", answers[known], answers[unknown])
	}
	waitEmail(t, known, "Reset your password", 1)
	eventually(t, 10*time.Second, "the unknown address's reset run to end", func() bool {
		d, err := stack.Temporal.DescribeWorkflowExecution(context.Background(), resetWorkflowID(unknown), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
	})
	if n := len(stack.Resend.EmailsTo(unknown)); n != 0 {
		t.Fatalf("%d emails to an address nobody has", n)
	}
	for _, email := range []string{known, unknown} {
		for range 2 {
			invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": email}).expect(t, 202)
		}
		r := invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": strings.ToUpper(email)})
		r.expectProblem(t, 429, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("429 for %s without Retry-After", email)
		}
	}
	invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": "not an address"}).expectInvalid(t, "email")
	invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": known, "extra": 1}).expectInvalid(t, "extra")
}
