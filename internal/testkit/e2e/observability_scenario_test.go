package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/testkit/resendtest"
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
	// expired (renewal refused for want of a seat), renewed (renewed, then accepted on
	// generation 2), globex_pending (took the seat the expired one wanted).
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
// invitee accepts and declines, the administrator revokes, invitations expire, one is renewed
// and accepted, renewal is refused for want of a seat, Resend refuses one address and fails
// once for another, and a workflow of an unregistered type fails its workflow tasks.
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

	// Expiry takes the short TTL's seconds: start those first and do the rest meanwhile.
	expiring, renewing := obsAddress("Late.Larry"), obsAddress("Renew.Ruth")
	sc.Inv["expired"] = o.invite(t, o.short(), sc.Globex, "figma", expiring, "Larry")
	sc.Inv["renewed"] = o.invite(t, o.short(), sc.Globex, "figma", renewing, "Ruth")

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
	o.portal().do(t, "POST", sc.Acme.path("/invitations/"+sc.Inv["revoked"].ID+"/revoke"), nil).expect(t, 200)

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
	// the freed seat was taken meanwhile.
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
