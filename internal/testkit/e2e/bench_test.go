package e2e

import (
	"testing"
	"time"
)

// The performance of the service's two synchronous paths, measured on the real stack: creating
// an invitation (update-with-start: workflow start, seat reserved, row recorded) and accepting
// one (token check, argon2id hash, provisioning update). `make bench` reports them; no test
// asserts a duration, since a busy machine would make it flaky.

func BenchmarkCreateInvitation(b *testing.B) {
	f := newFixture(b, 100000)
	for b.Loop() {
		portal().do(b, "POST", f.path("/invitations"), f.inviteBody(unique("Bench"))).expect(b, 201)
	}
}

func BenchmarkAcceptInvitation(b *testing.B) {
	f := newFixture(b, 100000)
	var total time.Duration
	n := 0
	for b.Loop() {
		// Only the accept is timed; its invitation is created untimed just before.
		b.StopTimer()
		var inv invitation
		portal().do(b, "POST", f.path("/invitations"), f.inviteBody(unique("Accept"))).expect(b, 201).decode(b, &inv)
		token := tokenInLink.FindStringSubmatch(*inv.InviteURL)[1]
		b.StartTimer()
		start := time.Now()
		invitee().do(b, "POST", "/v1/invitations/accept", map[string]any{
			"token": token, "password": "Correct-Horse-42", "accept_terms": true,
		}).expect(b, 200)
		total += time.Since(start)
		n++
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(max(n, 1)), "ms/accept")
}
