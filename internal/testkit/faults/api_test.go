package faults

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// createOutcome is what a portal's create call for one person came to.
type createOutcome struct {
	email string
	keyed bool // sent with an Idempotency-Key (the email)
	last  response
	err   error
	tries int
}

// TestAPIRestartMidTraffic keeps four portal clients creating invitations while the API is
// SIGKILLed and restarted, then SIGTERMed and restarted. Half the creates carry an
// Idempotency-Key. Afterwards every create that got no answer is retried as a client would
// (same key, or same body), and then: every person has exactly one invitation, every
// invitation row has its workflow in the matching state, every workflow of the account that
// recorded an invitation has its row (the others were refused creates, status rejected),
// every claimed Idempotency-Key names an existing invitation, and the seats reserved equal the
// pending rows: nothing was half-created.
func TestAPIRestartMidTraffic(t *testing.T) {
	t.Parallel()
	svc := newService(t, "apirestart", nil).startAll(t)
	c := svc.client()
	f := newFixture(t, c, 500)

	var mu sync.Mutex
	var outcomes []*createOutcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := &createOutcome{email: unique(fmt.Sprintf("Restart%d.%d", w, i)), keyed: i%2 == 0, tries: 1}
				var hdr []string
				if o.keyed {
					hdr = []string{"Idempotency-Key", "restart-" + o.email}
				}
				o.last, o.err = c.call("POST", f.path("/invitations"), f.inviteBody(o.email), hdr...)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if o.err != nil {
					time.Sleep(50 * time.Millisecond) // the API is down: do not spin
				}
			}
		})
	}

	time.Sleep(2 * time.Second)
	api := svc.api
	api.signal(t, syscall.SIGKILL)
	if exited, _ := api.exitedIn(10 * time.Second); !exited {
		t.Fatal("the API survived SIGKILL")
	}
	svc.startAPI(t)
	time.Sleep(2 * time.Second)
	api = svc.api
	api.signal(t, syscall.SIGTERM)
	exited, err := api.exitedIn(30 * time.Second)
	if !exited || err != nil {
		t.Fatalf("the API after SIGTERM: exited %v, %v\n%s", exited, err, api.logTail())
	}
	svc.startAPI(t)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	// What the clients saw, then their retries.
	counts := map[string]int{}
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			counts["no answer"]++
		case o.last.Status == 201:
			counts["201"]++
		case o.last.retrySafe():
			counts["503"]++
		default:
			counts[fmt.Sprintf("%d %s", o.last.Status, o.last.code())]++
			t.Errorf("create for %s answered %d %s", o.email, o.last.Status, o.last.Body)
		}
	}
	t.Logf("%d creates during the restarts: %v", len(outcomes), counts)
	if counts["201"] == 0 || counts["no answer"] == 0 {
		t.Fatalf("the traffic did not straddle the restarts: %v", counts)
	}
	ids := map[string]string{} // email -> invitation id
	for _, o := range outcomes {
		for o.err != nil || o.last.retrySafe() {
			var hdr []string
			if o.keyed {
				hdr = []string{"Idempotency-Key", "restart-" + o.email}
			}
			o.last, o.err = c.call("POST", f.path("/invitations"), f.inviteBody(o.email), hdr...)
			o.tries++
			if o.tries > 10 {
				t.Fatalf("create for %s still failing: %v %d %s", o.email, o.err, o.last.Status, o.last.Body)
			}
		}
		switch {
		case o.last.Status == 201:
			var inv invitation
			o.last.decode(t, &inv)
			ids[o.email] = inv.ID
		case o.tries > 1 && !o.keyed && o.last.code() == "duplicate_invitation":
			// The unanswered first attempt had created it: the retry names it.
			var p problem
			o.last.decode(t, &p)
			ids[o.email] = p.InvitationID
		default:
			t.Errorf("create for %s ended %d %s after %d tries", o.email, o.last.Status, o.last.Body, o.tries)
		}
	}

	// One invitation per person, each with its workflow.
	rows := map[string]string{} // id -> status
	r, err := env.db.Query(context.Background(), `select id, status, lower(email) from invitations where account_id = $1`, uuid.MustParse(f.AccountID))
	if err != nil {
		t.Fatal(err)
	}
	perEmail := map[string]int{}
	for r.Next() {
		var id uuid.UUID
		var status, email string
		if err := r.Scan(&id, &status, &email); err != nil {
			t.Fatal(err)
		}
		rows[id.String()] = status
		perEmail[email]++
	}
	r.Close()
	for _, o := range outcomes {
		if perEmail[o.email] != 1 {
			t.Errorf("%d invitations for %s, want 1", perEmail[o.email], o.email)
		}
		if id := ids[o.email]; id != "" && rows[id] == "" {
			t.Errorf("the API answered invitation %s for %s, which has no row", id, o.email)
		}
	}
	if len(rows) != len(outcomes) {
		t.Errorf("%d invitation rows for %d people", len(rows), len(outcomes))
	}
	for id, status := range rows {
		if status != "pending" {
			t.Errorf("invitation %s is %s, want pending", id, status)
		}
		if got := searchKeyword(t, env.tc, wfID(id), contract.SearchStatus); got != status {
			t.Errorf("invitation %s: row %s, workflow %q", id, status, got)
		}
	}
	// Every workflow of the account recorded its invitation, or was refused (rejected).
	eventually(t, 30*time.Second, "visibility to list every workflow of the account", func() bool {
		return len(listWorkflows(t, env.tc, fmt.Sprintf(`AccountId = %q`, f.AccountID))) >= len(rows)
	})
	for id, status := range listWorkflows(t, env.tc, fmt.Sprintf(`AccountId = %q`, f.AccountID)) {
		invID := id[len("invitation:"):]
		if rows[invID] == "" && status != string(contract.StatusRejected) {
			t.Errorf("workflow %s is %q but has no invitation row", id, status)
		}
	}
	// Every claimed Idempotency-Key names an invitation that exists.
	if n := sqlInt(t, `select count(*) from idempotency_keys k where k.account_id = $1
		and not exists (select 1 from invitations i where i.id = k.invitation_id)`, uuid.MustParse(f.AccountID)); n != 0 {
		t.Errorf("%d Idempotency-Keys name an invitation that does not exist", n)
	}
	s := seatsOf(t, f)
	if err := s.consistent(); err != nil {
		t.Fatal(err)
	}
	if s.Reserved != len(rows) {
		t.Fatalf("seats %+v for %d pending invitations", s, len(rows))
	}
}

// listWorkflows returns the latest status search attribute of every workflow matching query,
// by workflow ID.
func listWorkflows(t *testing.T, c client.Client, query string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var token []byte
	for {
		res, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			t.Fatalf("list %s: %v", query, err)
		}
		for _, e := range res.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			var status string
			if p := e.GetSearchAttributes().GetIndexedFields()[contract.SearchStatus.GetName()]; p != nil {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &status)
			}
			if _, seen := out[id]; !seen || e.GetCloseTime() == nil {
				out[id] = status
			}
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

// TestAPIGracefulShutdown: SIGTERM reaches the API while an accept is in flight: the
// workflow task that handles the accept's update has started on the worker and provisions the
// user inside it, as a local activity the test kit's slow worker holds 3 s (within the step's
// 5 s attempt timeout). The API stops accepting connections at once, waits for the update,
// answers the accept 200, and exits cleanly; the user is provisioned once.
func TestAPIGracefulShutdown(t *testing.T) {
	t.Parallel()
	svc := newService(t, "apiterm", nil)
	svc.startSlowWorker(t, 3*time.Second, nil)
	api := svc.startAPI(t)
	c := svc.client()
	f := newFixture(t, c, 2)
	email := unique("Graceful.Api")
	inv := f.invite(t, c, email)
	waitEmails(t, email, "invited you", 1, 30*time.Second)

	answer, _, _ := acceptWhenIdle(t, svc, inv)
	signalled := time.Now()
	api.signal(t, syscall.SIGTERM)

	// New connections are refused while the accept finishes.
	time.Sleep(300 * time.Millisecond)
	if res, err := (&http.Client{Timeout: 2 * time.Second}).Get(svc.url() + "/healthz"); err == nil {
		res.Body.Close()
		t.Errorf("a new request after SIGTERM was served (%d); want the listener closed", res.StatusCode)
	}
	got := <-answer
	if got.err != nil {
		t.Fatalf("the in-flight accept failed at shutdown: %v", got.err)
	}
	got.r.expect(t, 200)
	if !got.at.After(signalled) {
		t.Fatalf("the accept was answered before the SIGTERM: it was not in flight")
	}
	exited, err := api.exitedIn(10 * time.Second)
	if !exited || err != nil {
		t.Fatalf("the API after SIGTERM: exited %v, %v\n%s", exited, err, api.logTail())
	}
	t.Logf("accept answered %s after SIGTERM; the API exited right after", got.at.Sub(signalled).Round(100*time.Millisecond))
	svc.startAPI(t)
	checkProvisionedOnce(t, svc, f, inv.ID, email)
	checkAnsweredUser(t, svc, f, inv.ID, []response{got.r})
}
