package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/emailhash"
	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// obsAccount is an account with its subscriptions, made through the observability stack's API.
type obsAccount struct {
	ID, Name string
	GroupID  string
	Subs     map[string]obsSubscription // by a short key of the test's choosing
}

type obsSubscription struct {
	ID, Application, Name string
}

// obsScenario is what driveEveryOutcome left behind: one invitation per outcome, each with its
// own invitee address.
type obsScenario struct {
	// Acme holds the invitations decided by their invitee or administrator; Globex the ones
	// that expired.
	Acme, Globex obsAccount
	// Invitations by outcome: accepted, declined, revoked, pending (a 7-day one still open),
	// email_failed (Resend refused the address), email_retried (Resend failed once, then sent),
	// expired (renewal refused for want of a seat), renewed (a run of lifecycle 0, as runs still
	// open after the upgrade are: renewed, so it continued as new into a run of lifecycle 2, then
	// accepted on generation 2), globex_pending (took the seat the expired one wanted). All but
	// renewed are created through the API, so their runs are of contract.Lifecycle2.
	Inv map[string]invitation
	// UnregisteredWorkflowID is a workflow of a type no worker registers: its workflow tasks
	// fail, which is what the workflow task failure alert is about.
	UnregisteredWorkflowID string
}

func (o *obsStack) newAccount(t *testing.T, name string, subs map[string]obsSubscription, seats map[string]int) obsAccount {
	t.Helper()
	a := obsAccount{Name: name, Subs: map[string]obsSubscription{}}
	var acct struct{ ID, Name string }
	o.portal().do(t, "POST", "/v1/accounts", map[string]any{"name": name}).expect(t, 201).decode(t, &acct)
	a.ID = acct.ID
	for key, s := range subs {
		var got struct{ ID string }
		o.portal().do(t, "POST", "/v1/accounts/"+a.ID+"/subscriptions", map[string]any{
			"application": s.Application, "name": s.Name, "seats": seats[key],
			"roles": []string{"viewer", "editor", "admin"},
		}).expect(t, 201).decode(t, &got)
		s.ID = got.ID
		a.Subs[key] = s
	}
	var group struct{ ID string }
	o.portal().do(t, "POST", "/v1/accounts/"+a.ID+"/groups", map[string]any{"name": "Designers"}).expect(t, 201).decode(t, &group)
	a.GroupID = group.ID
	return a
}

func (a obsAccount) path(rest string) string { return "/v1/accounts/" + a.ID + rest }

func (a obsAccount) inviteBody(sub, email, first string) map[string]any {
	return map[string]any{
		"email": email, "first_name": first, "last_name": "Example",
		"subscription_id": a.Subs[sub].ID, "role": "editor", "group_ids": []string{a.GroupID},
		"inviter": map[string]any{"name": "Ada Admin", "email": "ada@acme.test"},
	}
}

func (o *obsStack) invite(t *testing.T, c apiClient, a obsAccount, sub, email, first string) invitation {
	t.Helper()
	var inv invitation
	c.do(t, "POST", a.path("/invitations"), a.inviteBody(sub, email, first)).expect(t, 201).decode(t, &inv)
	return inv
}

// inviteLifecycle0 creates an invitation whose workflow runs lifecycle 0, as the runs started
// before contract.Lifecycle2 that are still open after an upgrade: it sends the create
// update-with-start itself, with the input the API builds (server/api/invitations.go
// invitationInput, server/workflowclient) but without a Lifecycle, without start search
// attributes (lifecycle 0 sets its own) and with the short settings. Such a run keeps regular
// activities for its Postgres steps and, once expired, stays open until a renew or a revoke.
func (o *obsStack) inviteLifecycle0(t *testing.T, a obsAccount, sub, email, first string) invitation {
	t.Helper()
	s := a.Subs[sub]
	in := contract.InvitationInput{
		InvitationID:     uuid.Must(uuid.NewV7()),
		AccountID:        uuid.MustParse(a.ID),
		AccountName:      a.Name,
		SubscriptionID:   uuid.MustParse(s.ID),
		SubscriptionName: s.Name,
		Application:      s.Application,
		Role:             "editor",
		GroupIDs:         []uuid.UUID{uuid.MustParse(a.GroupID)},
		Email:            email,
		FirstName:        first,
		LastName:         "Example",
		Inviter:          contract.Person{Name: "Ada Admin", Email: "ada@acme.test"},
		Settings: contract.Settings{
			TTL:               o.ShortCfg.InvitationTTL,
			ReminderBefore:    o.ShortCfg.ReminderBefore,
			ResendMinInterval: o.ShortCfg.ResendMinInterval,
		},
		EmailHash: emailhash.Hash(o.Cfg.EmailHashKey, email),
		Lifecycle: 0, // before contract.Lifecycle2
	}
	ctx, cancel := obsContext(t)
	defer cancel()
	st := createLifecycle0(ctx, t, o.Client, obsTaskQueue, in)
	if st.Status != contract.StatusPending || st.Generation != 1 {
		t.Fatalf("create of lifecycle 0 for %s answered %s, generation %d; want pending, generation 1", email, st.Status, st.Generation)
	}
	return o.invitation(t, a, in.InvitationID.String()) // for its invite_url, as the portal reads it
}

func (o *obsStack) invitation(t *testing.T, a obsAccount, id string) invitation {
	t.Helper()
	var inv invitation
	o.portal().do(t, "GET", a.path("/invitations/"+id), nil).expect(t, 200).decode(t, &inv)
	return inv
}

func (o *obsStack) accept(t *testing.T, link string) {
	t.Helper()
	o.invitee().do(t, "POST", "/v1/invitations/accept", map[string]any{
		"token": tokenOf(t, link), "password": "Correct-Horse-42", "accept_terms": true,
	}).expect(t, 200)
}

// obsAddress is an invitee address unique to this run, under the acme.test domain so that the
// UI's masked summary reads like production's ("j…@acme.test").
func obsAddress(local string) string {
	return strings.ToLower(local) + "." + randomHex(3) + "@acme.test"
}

// driveEveryOutcome drives invitations through every outcome on the observability stack: the
// invitee accepts and declines, the administrator revokes (while the database drops the step's
// connection, so a local activity fails once), invitations expire, one (a run of lifecycle 0) is
// renewed and accepted, renewal is refused for want of a seat, Resend refuses one address and
// fails once for another, and a workflow of an unregistered type fails its workflow tasks.
func driveEveryOutcome(t *testing.T, o *obsStack) *obsScenario {
	t.Helper()
	sc := &obsScenario{Inv: map[string]invitation{}}
	suffix := randomHex(2)
	sc.Acme = o.newAccount(t, "Acme "+suffix, map[string]obsSubscription{
		"cc":      {Application: "Adobe CC", Name: "Design Team"},
		"acrobat": {Application: "Adobe Acrobat " + suffix, Name: "Legal"},
	}, map[string]int{"cc": 10, "acrobat": 1})
	sc.Globex = o.newAccount(t, "Globex "+suffix, map[string]obsSubscription{
		"figma": {Application: "Figma " + suffix, Name: "Product"},
	}, map[string]int{"figma": 2})

	failing, retried := obsAddress("Fail.Fay"), obsAddress("Retry.Rita")
	var once sync.Once
	o.Resend.InjectFaults(func(e resendtest.Email) *resendtest.Fault {
		for _, to := range e.To {
			switch {
			case strings.EqualFold(to, failing):
				return &resendtest.Fault{Status: http.StatusUnprocessableEntity, Message: "The to address is invalid."}
			case strings.EqualFold(to, retried):
				var fault *resendtest.Fault
				once.Do(func() { fault = &resendtest.Fault{Status: http.StatusInternalServerError, Message: "internal error"} })
				return fault
			}
		}
		return nil
	})

	// Expiry takes the short TTL's seconds: start those first and do the rest meanwhile. The
	// expired one is the API's (lifecycle 2): its run completes with the expiry. The renewed one
	// is a run of lifecycle 0, as runs still open after the upgrade are: its Postgres steps are
	// regular activities, and once expired it stays open, waiting for a renew.
	expiring, renewing := obsAddress("Late.Larry"), obsAddress("Renew.Ruth")
	sc.Inv["expired"] = o.invite(t, o.short(), sc.Globex, "figma", expiring, "Larry")
	sc.Inv["renewed"] = o.inviteLifecycle0(t, sc.Globex, "figma", renewing, "Ruth")

	jane := obsAddress("Jane.Doe")
	sc.Inv["accepted"] = o.invite(t, o.portal(), sc.Acme, "cc", jane, "Jane")
	o.waitEmail(t, jane, "invited you", 1)
	o.accept(t, *sc.Inv["accepted"].InviteURL)
	o.waitEmail(t, jane, "Welcome", 1)

	dan := obsAddress("Decline.Dan")
	sc.Inv["declined"] = o.invite(t, o.portal(), sc.Acme, "cc", dan, "Dan")
	o.waitEmail(t, dan, "invited you", 1) // so that no email is cut short: the counts stay exact
	o.invitee().do(t, "POST", "/v1/invitations/decline", map[string]any{"token": tokenOf(t, *sc.Inv["declined"].InviteURL)}).expect(t, 200)

	rex := obsAddress("Revoke.Rex")
	sc.Inv["revoked"] = o.invite(t, o.portal(), sc.Acme, "cc", rex, "Rex")
	o.waitEmail(t, rex, "invited you", 1)
	o.revokeOnDroppedConnection(t, sc.Acme, sc.Inv["revoked"].ID)

	// The Acrobat subscription has one seat: the pending invitation holds it, so the next
	// invite is refused.
	sc.Inv["pending"] = o.invite(t, o.portal(), sc.Acme, "acrobat", obsAddress("Jane.Pending"), "Jane")
	o.portal().do(t, "POST", sc.Acme.path("/invitations"), sc.Acme.inviteBody("acrobat", obsAddress("No.Seat"), "Nora")).
		expectProblem(t, 409, "seats_exhausted")

	sc.Inv["email_failed"] = o.invite(t, o.portal(), sc.Acme, "cc", failing, "Fay")
	sc.Inv["email_retried"] = o.invite(t, o.portal(), sc.Acme, "cc", retried, "Rita")
	o.waitEmail(t, retried, "invited you", 1)

	// A workflow type no worker registers: its workflow tasks fail until it is terminated.
	sc.UnregisteredWorkflowID = "obs-unregistered-" + randomHex(4)
	ctx, cancel := obsContext(t)
	defer cancel()
	if _, err := o.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: sc.UnregisteredWorkflowID, TaskQueue: obsTaskQueue,
	}, "InvitationV0"); err != nil {
		t.Fatal(err)
	}

	// Expiry, then a renewal that is accepted on its new link, then a renewal refused because
	// the freed seat was taken meanwhile. The API's renew of the lifecycle-0 invitation goes to
	// its still-open run (update-with-start finds it), which renews with a regular activity and
	// continues as new into a run of lifecycle 2; that run sends generation 2's invite and takes
	// the accept (a local activity), and the welcome email goes out from an InvitationEmail
	// workflow. The refused renew of the lifecycle-2 invitation starts a new run under the same
	// workflow ID (its first run completed at the expiry); the RenewInvitation local activity
	// answers seats_exhausted (a benign refusal, not counted as a failure) and that run
	// completes, still expired.
	for _, key := range []string{"expired", "renewed"} {
		id := sc.Inv[key].ID
		obsEventually(t, shortTTL+30*time.Second, key+" to expire", func() bool {
			return o.invitation(t, sc.Globex, id).Status == "expired"
		})
	}
	var renewed invitation
	o.short().do(t, "POST", sc.Globex.path("/invitations/"+sc.Inv["renewed"].ID+"/renew"), nil).expect(t, 200).decode(t, &renewed)
	o.waitEmail(t, renewing, "invited you", 2) // generation 2's invite
	o.accept(t, *renewed.InviteURL)
	sc.Inv["globex_pending"] = o.invite(t, o.portal(), sc.Globex, "figma", obsAddress("Seat.Taker"), "Sam")
	o.short().do(t, "POST", sc.Globex.path("/invitations/"+sc.Inv["expired"].ID+"/renew"), nil).expectProblem(t, 409, "seats_exhausted")

	// Let the failing email settle as failed; the retried one as sent.
	obsEventually(t, 60*time.Second, "the refused email to be recorded as failed", func() bool {
		d := o.invitation(t, sc.Acme, sc.Inv["email_failed"].ID).Delivery
		return d != nil && d.Status == "failed"
	})
	obsEventually(t, 60*time.Second, "the retried email to be recorded as sent", func() bool {
		d := o.invitation(t, sc.Acme, sc.Inv["email_retried"].ID).Delivery
		return d != nil && d.Status == "sent"
	})
	for key, inv := range sc.Inv {
		a := sc.Acme
		if strings.HasPrefix(key, "globex") || key == "expired" || key == "renewed" {
			a = sc.Globex
		}
		sc.Inv[key] = o.invitation(t, a, inv.ID)
	}
	return sc
}

// revokeOnDroppedConnection revokes an invitation while the database drops the connection the
// worker's step runs on, as a failover or a DBA ending the session would: the CloseInvitation
// local activity fails once, and its retry, on a fresh connection, goes through, so the revoke
// answers 200. That is the scenario's failed local activity (business refusals, such as the
// renew refused for want of a seat, are benign: the SDK does not count them as failures). To
// catch the step mid-transaction, the test holds the invitation's row until the step waits on
// it, then ends the waiting session and lets the row go.
func (o *obsStack) revokeOnDroppedConnection(t *testing.T, a obsAccount, id string) {
	t.Helper()
	ctx, cancel := obsContext(t)
	defer cancel()
	tx, err := stack.Store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }() // a second rollback is a no-op
	var holder int
	if err := tx.QueryRow(ctx, `select pg_backend_pid() from invitations where id = $1 for update`, id).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		r   response
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		r, err := o.portal().call("POST", a.path("/invitations/"+id+"/revoke"), nil)
		answered <- answer{r, err}
	}()
	var step int // the worker's session, waiting on the row
	obsEventually(t, 20*time.Second, "the revoke's CloseInvitation to wait on the held row", func() bool {
		return stack.Store.Pool.QueryRow(ctx,
			`select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid)) limit 1`, holder).Scan(&step) == nil
	})
	select {
	case a := <-answered:
		t.Fatalf("the revoke answered (%v, %v) before its step could run", a.r.Status, a.err)
	default:
	}
	var ended bool
	if err := stack.Store.Pool.QueryRow(ctx, `select pg_terminate_backend($1)`, step).Scan(&ended); err != nil || !ended {
		t.Fatalf("ending the step's session %d: %v, %v", step, ended, err)
	}
	obsEventually(t, 10*time.Second, "the step's session to end", func() bool {
		var n int
		return stack.Store.Pool.QueryRow(ctx, `select count(*) from pg_stat_activity where pid = $1`, step).Scan(&n) == nil && n == 0
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answered:
		if a.err != nil {
			t.Fatal(a.err)
		}
		a.r.expect(t, 200)
	case <-ctx.Done():
		t.Fatal("the revoke did not answer once its step could run")
	}
}

// terminateUnregistered ends the workflow whose tasks fail, once its failures were seen.
func (o *obsStack) terminateUnregistered(t *testing.T, sc *obsScenario) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := o.Client.TerminateWorkflow(ctx, sc.UnregisteredWorkflowID, "", "observability test: failures seen")
	if err != nil {
		t.Errorf("terminate %s: %v", sc.UnregisteredWorkflowID, err)
	}
}
