package api

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
)

// publicRoutes need no API token: probes, documents, the invitee's routes (authorised by the
// invite token) and the codec (its own token). Every other route is a portal route.
var publicRoutes = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.yaml": true,
	"/codec/decode": true, "/codec/encode": true,
	"/v1/provider-events/resend": true, // Resend's webhooks, authorised by their Svix signature
}

// TestScopedTokenRefusedOnEveryOtherAccount walks every registered route: a token scoped to
// one account gets 403 forbidden on every portal route of another account (existing or not),
// and cannot create accounts. A new route fails here until its tenancy is decided.
func TestScopedTokenRefusedOnEveryOtherAccount(t *testing.T) {
	t.Parallel()
	h, other := newHarness(t), newHarness(t)
	otherInv := other.pending(uniqueEmail("other"))
	otherHook := other.createWebhook(`{"url":"https://93.184.215.14/hooks","event_types":["invitation.renewal_requested"]}`)
	otherBatch := decodeJSON[batchView](t, other.api("POST", other.accountPath("/invitation-batches"),
		batchOf(other.inviteBody(uniqueEmail("other-bulk"), ""))), 202)
	// Settled before the walk: its one row is the other account's second invitation.
	batch := other.waitBatch(otherBatch.ID.String(), time.Minute)
	if batch.Succeeded != 1 || batch.Items[0].InvitationID == nil {
		t.Fatalf("the other account's batch %+v", batch)
	}

	checked := 0
	for _, r := range h.srv.engine.Routes() {
		switch {
		case publicRoutes[r.Path] || inviteeRoutes[r.Path] || strings.HasPrefix(r.Path, "/invite/") || r.Method == "OPTIONS":
			continue
		case r.Path == "/v1/accounts":
			decodeProblem(t, h.do(r.Method, r.Path, `{"name":"Sneaky"}`, "Authorization", "Bearer "+h.scopedToken,
				"Content-Type", "application/json"), 403, contract.CodeForbidden)
			checked++
		case strings.HasPrefix(r.Path, "/v1/accounts/:account_id"):
			for _, account := range []string{other.account.ID.String(), uuid.NewString()} {
				path := strings.Replace(r.Path, ":account_id", account, 1)
				path = strings.Replace(path, ":invitation_id", otherInv.ID.String(), 1)
				path = strings.Replace(path, ":subscription_id", other.sub.ID.String(), 1)
				path = strings.Replace(path, ":webhook_id", otherHook.ID.String(), 1)
				path = strings.Replace(path, ":batch_id", otherBatch.ID.String(), 1)
				if strings.Contains(path, ":") {
					t.Errorf("%s %s: a path parameter this test does not fill", r.Method, r.Path)
					continue
				}
				w := h.do(r.Method, path, `{}`, "Authorization", "Bearer "+h.scopedToken, "Content-Type", "application/json")
				if w.Code != 403 {
					t.Errorf("%s %s with another account's token: %d, want 403; %s", r.Method, r.Path, w.Code, w.Body)
					continue
				}
				decodeProblem(t, w, 403, contract.CodeForbidden)
			}
			checked++
		default:
			t.Errorf("route %s %s: neither public nor under an account; decide who may call it", r.Method, r.Path)
		}
	}
	if checked < 12 {
		t.Fatalf("checked %d portal routes; the contract has 12", checked)
	}
	// Nothing happened to the other account: its invitation is pending (a revoke would have
	// closed it), its two seats held once each, and it has the two workflows it made (a create
	// would have started another).
	if got := other.row(otherInv.ID); got.Status != "pending" || got.Generation != 1 {
		t.Fatalf("the other account's invitation is %s (generation %d)", got.Status, got.Generation)
	}
	if hooks := decodeJSON[webhookListView](t, other.api("GET", other.accountPath("/webhooks"), ""), 200); len(hooks.Items) != 1 ||
		hooks.Items[0].ID != otherHook.ID || hooks.Items[0].PreviousSecretExpiresAt != nil {
		t.Fatalf("the other account's webhooks changed: %+v", hooks.Items)
	}
	if s := other.subscription(); *s.SeatsReserved != 2 {
		t.Fatalf("the other account's subscription %+v", s)
	}
	// The batch's own workflow has no account attribute; its row's invitation has.
	want := []string{contract.InvitationWorkflowID(otherInv.ID), contract.InvitationWorkflowID(*batch.Items[0].InvitationID)}
	slices.Sort(want)
	eventually(t, 10*time.Second, "the other account's workflows to be listed", func() bool {
		return slices.Equal(other.accountWorkflows(), want)
	})
}
