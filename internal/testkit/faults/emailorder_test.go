package faults

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEmailPriorityAndFairness: the email queue sends 2 emails a second (EMAIL_RATE_PER_SECOND),
// and account A creates 30 invitations at once: a backlog of about 15 s. Meanwhile account B
// invites one person, and a person of A who was invited earlier accepts. B's invite (another
// account: its own fairness key) and the welcome email (priority 1) are sent ahead of A's
// backlog, not behind it; and every email still goes out once. Order is asserted, not durations.
func TestEmailPriorityAndFairness(t *testing.T) {
	t.Parallel()
	svc := newService(t, "emailorder", map[string]string{"EMAIL_RATE_PER_SECOND": "2"}).startAll(t)
	c := svc.client()
	a := newFixture(t, c, 40)
	b := newFixture(t, c, 2)
	joiner := unique("Order.Joiner")
	joined := a.invite(t, c, joiner)
	waitEmails(t, joiner, "invited you", 1, 30*time.Second)

	burst := make([]string, 30)
	var wg sync.WaitGroup
	for i := range burst {
		burst[i] = unique(fmt.Sprintf("Order.Burst%02d", i))
		wg.Go(func() { a.invite(t, c, burst[i]) })
	}
	wg.Wait()
	single := unique("Order.Single")
	b.invite(t, c, single)
	svc.invitee().do(t, "POST", "/v1/invitations/accept", acceptBody(tokenOf(t, *joined.InviteURL))).expect(t, 200)

	waitEmails(t, single, "invited you", 1, 60*time.Second)
	waitEmails(t, joiner, "Welcome", 1, 60*time.Second)
	var burstAt []time.Time
	for _, addr := range burst {
		waitEmails(t, addr, "invited you", 1, 60*time.Second)
		if n := emailsTo(addr, "invited you"); n != 1 {
			t.Errorf("%d invites to %s, want 1", n, addr)
		}
		burstAt = append(burstAt, env.resend.EmailsTo(addr)[0].ReceivedAt)
	}
	sort.Slice(burstAt, func(i, j int) bool { return burstAt[i].Before(burstAt[j]) })
	at := func(addr, subject string) time.Time {
		for _, e := range env.resend.EmailsTo(addr) {
			if strings.Contains(e.Subject, subject) {
				return e.ReceivedAt
			}
		}
		t.Fatalf("no %q email to %s", subject, addr)
		return time.Time{}
	}
	behind := func(when time.Time) int { // how many of the burst went out before it
		return sort.Search(len(burstAt), func(i int) bool { return burstAt[i].After(when) })
	}
	singleAt, welcomeAt := at(single, "invited you"), at(joiner, "Welcome")
	t.Logf("A's backlog of %d took %s; B's invite went out after %d of it, the welcome after %d",
		len(burstAt), burstAt[len(burstAt)-1].Sub(burstAt[0]).Round(100*time.Millisecond), behind(singleAt), behind(welcomeAt))
	// Both were queued after the whole burst; in arrival order they would come last (30).
	if n := behind(singleAt); n > len(burst)/2 {
		t.Errorf("account B's single invite went out after %d of account A's %d: queued behind the burst", n, len(burst))
	}
	if n := behind(welcomeAt); n > len(burst)/2 {
		t.Errorf("the welcome email went out after %d of account A's %d invites: queued behind the burst", n, len(burst))
	}
}
