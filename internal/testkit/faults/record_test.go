package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/emailhash"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/server/invitee"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows"
)

// historiesDir is where the recorded histories live, relative to the repository root; keep it
// equal to the directory workflows/replay_test.go reads.
const historiesDir = "workflows/testdata/histories"

// TestRecordHistories walks every lifecycle path of an invitation on the real stack and replays
// each run's history against the workflow code it was just recorded with. With -record it also
// writes them to workflows/testdata/histories, one JSON file per run (<path>.json, or
// <path>.runN.json when the path continues as new), for workflows/replay_test.go:
//
//	go test ./internal/testkit/faults -run TestRecordHistories -record
//
// The files it writes replace those of the same names. When a workflow change is guarded by
// workflow.GetVersion, keep the old histories first (rename them aside, e.g. accepted.json to
// accepted.before-<change>.json): they are the runs still open in production, and the replay
// test must go on replaying them (docs/operations.md).
func TestRecordHistories(t *testing.T) {
	t.Parallel()
	// Walked in `make test`, the paths take seconds: the invitations that expire live 6 s. When
	// recording, they are walked at a pace closer to real use, so the recorded timers and waits
	// look like production's: a minute between steps and invitations that live 4 minutes, with
	// the reminder 2 minutes before the expiry (a day-scale pace needs a time-skipping server,
	// which this machine has not; the workflow tests on the SDK's time-skipping environment
	// cover day-long spans). Recording takes about 6 minutes.
	ttl, reminder, pause, patience := "6s", "3s", time.Duration(0), 30*time.Second
	if *record {
		ttl, reminder, pause, patience = "4m", "2m", time.Minute, 6*time.Minute
	}
	long := newService(t, "record", map[string]string{"RESEND_MIN_INTERVAL": "0s"})
	short := newService(t, "record-short", map[string]string{
		"INVITATION_TTL": ttl, "INVITATION_REMINDER_BEFORE": reminder, "RESEND_MIN_INTERVAL": "0s",
		"TEMPORAL_TASK_QUEUE": long.taskQueue(),
	})
	long.startAll(t)
	short.startAPI(t)
	c, sc := long.client(), short.client()

	paths := map[string]func(t *testing.T) string{
		// created -> email -> accepted -> welcome
		"accepted": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Accepted")
			inv := f.invite(t, c, email)
			waitEmails(t, email, "invited you", 1, patience)
			time.Sleep(pause) // the invitee reads the email
			long.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *inv.InviteURL))).expect(t, 200)
			return inv.ID
		},
		"declined": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Declined")
			inv := f.invite(t, c, email)
			waitEmails(t, email, "invited you", 1, patience)
			time.Sleep(pause)
			long.invitee().do(t, "POST", "/v1/invitations/decline", map[string]any{"token": tokenOf(t, *inv.InviteURL)}).expect(t, 200)
			return inv.ID
		},
		"revoked": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Revoked")
			inv := f.invite(t, c, email)
			waitEmails(t, email, "invited you", 1, patience)
			time.Sleep(pause)
			c.do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expect(t, 200)
			return inv.ID
		},
		// created -> email -> reminder -> expired (the run ends) -> renewed (a new run) -> email -> accepted
		"expired-renewed-accepted": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Renewed")
			inv := f.invite(t, sc, email)
			waitEmails(t, email, "Reminder", 1, patience)
			eventually(t, patience, "the expiry", func() bool { return f.invitation(t, c, inv.ID).Status == "expired" })
			var renewed invitation
			time.Sleep(pause) // the administrator notices the expiry
			c.do(t, "POST", f.path("/invitations/"+inv.ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
			waitEmails(t, email, "invited you", 2, patience)
			time.Sleep(pause)
			long.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *renewed.InviteURL))).expect(t, 200)
			return inv.ID
		},
		// created -> email -> resend -> resend -> accepted
		"resent-accepted": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Resent")
			inv := f.invite(t, c, email)
			waitEmails(t, email, "invited you", 1, patience)
			time.Sleep(pause)
			c.do(t, "POST", f.path("/invitations/"+inv.ID+"/resend"), nil).expect(t, 200)
			time.Sleep(pause)
			c.do(t, "POST", f.path("/invitations/"+inv.ID+"/resend"), nil).expect(t, 200)
			waitEmails(t, email, "invited you", 3, patience)
			long.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *inv.InviteURL))).expect(t, 200)
			return inv.ID
		},
		// created -> resent until the history passes its bound -> continued as new -> accepted
		"history-full-accepted": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Full")
			inv := f.invite(t, c, email)
			waitEmails(t, email, "invited you", 1, patience)
			sends := 1
			first := describe(t, env.tc, wfID(inv.ID)).GetExecution().GetRunId()
			for describe(t, env.tc, wfID(inv.ID)).GetExecution().GetRunId() == first {
				if sends > 200 {
					t.Fatal("200 resends and the run never continued as new")
				}
				r, err := c.call("POST", f.path("/invitations/"+inv.ID+"/resend"), nil)
				switch {
				case err != nil:
					t.Fatal(err)
				case r.Status == 200:
					sends++
				case r.Status == 429: // the full run refuses while it settles: wait, as a client does
					time.Sleep(time.Second)
				default:
					t.Fatalf("resend answered %d %s", r.Status, r.Body)
				}
			}
			waitEmails(t, email, "invited you", sends, 60*time.Second)
			long.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *inv.InviteURL))).expect(t, 200)
			return inv.ID
		},
		// created -> email refused (422) -> delivery failed -> revoked
		"email-failed-revoked": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Bounced")
			env.faults.set(email, func(resendtest.Email) *resendtest.Fault {
				return &resendtest.Fault{Status: http.StatusUnprocessableEntity, Message: "The to address is invalid (injected)"}
			})
			inv := f.invite(t, c, email)
			eventually(t, patience, "delivery failed", func() bool {
				got := f.invitation(t, c, inv.ID)
				return got.Delivery != nil && got.Delivery.Status == "failed"
			})
			c.do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expect(t, 200)
			return inv.ID
		},
		// created -> email -> expired (the run ends) -> the invitee asks for a new one: a run that
		// emails the inviter and ends -> revoked, in Postgres (no run is left to do it)
		"renewal-requested-revoked": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Asked")
			inv := f.invite(t, sc, email)
			eventually(t, patience, "the expiry", func() bool { return f.invitation(t, c, inv.ID).Status == "expired" })
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			// What the hosted page's "Ask for a new invitation" runs, through the API's own code.
			st := &store.Store{Pool: env.db}
			row, err := st.GetInvitation(ctx, uuid.MustParse(inv.ID))
			if err != nil {
				t.Fatal(err)
			}
			svc := invitee.Service{Store: st, Workflows: &workflowclient.Client{Temporal: env.tc, TaskQueue: long.taskQueue()}}
			if err := svc.RequestRenewal(ctx, invitee.Link{Invitation: row, Generation: 1}); err != nil {
				t.Fatalf("request_renewal: %v", err)
			}
			waitEmails(t, "ada@acme.test", f.AccountName, 1, patience)
			eventually(t, patience, "the request's run to end", func() bool {
				return describe(t, env.tc, wfID(inv.ID)).GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			})
			c.do(t, "POST", f.path("/invitations/"+inv.ID+"/revoke"), nil).expect(t, 200)
			return inv.ID
		},
		// created -> email -> reminder -> expired: the run ends with the expiry
		"expired": func(t *testing.T) string {
			f := newFixture(t, c, 2)
			email := unique("Rec.Expired")
			inv := f.invite(t, sc, email)
			waitEmails(t, email, "Reminder", 1, patience)
			eventually(t, patience, "the expiry", func() bool { return f.invitation(t, c, inv.ID).Status == "expired" })
			return inv.ID
		},
		// a create refused for want of a seat by the workflow's own create (the API's pre-check
		// refuses first; the replay of a refused request under its Idempotency-Key skips it)
		"rejected": func(t *testing.T) string {
			f := newFixture(t, c, 1)
			f.invite(t, c, unique("Rec.First"))
			key := "rec-refused-" + randomHex(4)
			body := f.inviteBody(unique("Rec.Refused"))
			c.do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", key).expectProblem(t, 409, "seats_exhausted")
			c.do(t, "POST", f.path("/invitations"), body, "Idempotency-Key", key).expectProblem(t, 409, "seats_exhausted")
			var id uuid.UUID
			if err := env.db.QueryRow(context.Background(), `select invitation_id from idempotency_keys where account_id = $1 and key = $2`,
				uuid.MustParse(f.AccountID), key).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if got := searchKeyword(t, env.tc, wfID(id.String()), contract.SearchStatus); got != string(contract.StatusRejected) {
				t.Fatalf("the refused create's workflow is %q, want rejected", got)
			}
			return id.String()
		},
	}

	// A password reset: two requests (the second supersedes the first link) and the confirm
	// with the newest link. Its walk returns the reset workflow's ID.
	paths["password-reset-confirmed"] = func(t *testing.T) string {
		f := newFixture(t, c, 2)
		email := unique("Rec.Reset")
		inv := f.invite(t, c, email)
		long.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *inv.InviteURL))).expect(t, 200)
		for n := 1; n <= 2; n++ {
			long.invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": email}).expect(t, 202)
			waitEmails(t, email, "Reset your password", n, patience)
		}
		long.invitee().do(t, "POST", "/v1/password-resets/confirm", map[string]any{
			"token": tokenOf(t, lastEmailText(email, "Reset your password")), "password": "Reset-Recorded-42",
		}).expect(t, 200)
		return resetWorkflowID(email)
	}
	// A reset asked for an address nobody has: the run ends at once, and sends nothing.
	paths["password-reset-unknown"] = func(t *testing.T) string {
		email := unique("Rec.Nobody")
		long.invitee().do(t, "POST", "/v1/password-resets", map[string]any{"email": email}).expect(t, 202)
		return resetWorkflowID(email)
	}

	var mu sync.Mutex
	recorded := map[string][]run{}
	t.Run("paths", func(t *testing.T) {
		for name, walk := range paths {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				id := workflowIDOf(walk(t))
				eventually(t, 30*time.Second, "the workflow to close", func() bool {
					return describe(t, env.tc, id).GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
				})
				rs := runs(t, env.tc, id)
				mu.Lock()
				recorded[name] = rs
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}

	// Each run replays against the code that made it.
	names := make([]string, 0, len(recorded))
	for name := range recorded {
		names = append(names, name)
	}
	sort.Strings(names)
	files := map[string][]byte{}
	for _, name := range names {
		for i, r := range recorded[name] {
			h := &historypb.History{Events: r.Events}
			if err := replay(h); err != nil {
				t.Errorf("%s run %d does not replay: %v", name, i+1, err)
			}
			file := name + ".json"
			if len(recorded[name]) > 1 {
				file = fmt.Sprintf("%s.run%d.json", name, i+1)
			}
			data, err := historyJSON(h)
			if err != nil {
				t.Fatal(err)
			}
			files[file] = data
		}
	}
	if !*record || t.Failed() {
		return
	}
	// Files of the same names are replaced; any other (histories kept from an earlier version
	// of the workflow, renamed aside) stays and keeps being replayed.
	dir := filepath.Join(env.root, historiesDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d histories to %s", len(files), dir)
}

// workflowIDOf is the workflow a path walked: an invitation's id, or a workflow ID itself.
func workflowIDOf(s string) string {
	if strings.Contains(s, ":") {
		return s
	}
	return wfID(s)
}

// resetWorkflowID is the password-reset workflow of an address on the suite's services.
func resetWorkflowID(email string) string {
	return contract.PasswordResetWorkflowID(emailhash.Hash(emailhash.DeriveKey([]byte(env.tokenSecret)), email))
}

// lastEmailText is the text of the newest email to addr whose subject contains substr.
func lastEmailText(addr, substr string) string {
	text := ""
	for _, e := range env.resend.EmailsTo(addr) {
		if strings.Contains(e.Subject, substr) {
			text = e.Text
		}
	}
	return text
}

// replay replays a history against the current workflow code.
func replay(h *historypb.History) error {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.Invitation, workflow.RegisterOptions{Name: contract.WorkflowName})
	r.RegisterWorkflowWithOptions(workflows.Email, workflow.RegisterOptions{Name: contract.EmailWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.PasswordReset, workflow.RegisterOptions{Name: contract.PasswordResetWorkflowName})
	return r.ReplayWorkflowHistory(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)), h)
}

// historyJSON renders a history as `temporal workflow show --output json` does, indented
// stably (protojson's own spacing varies from build to build).
func historyJSON(h *historypb.History) ([]byte, error) {
	raw, err := protojson.Marshal(h)
	if err != nil {
		return nil, err
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
