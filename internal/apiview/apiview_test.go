package apiview

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// An event's invitation has every field of the invitation object but invite_url, even for a
// pending invitation, whose object in the API carries its link.
func TestEventHasNoInviteURL(t *testing.T) {
	inv := store.Invitation{Status: contract.StatusPending, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	inv.ID, inv.Email = uuid.New(), "jane@acme.test"
	link := "https://portal.test/invite?token=secret"
	if b, _ := json.Marshal(InvitationOf(inv, &link)); !strings.Contains(string(b), `"invite_url":"https://portal.test/invite?token=secret"`) {
		t.Fatalf("the API's object lacks its link: %s", b)
	}
	b, err := json.Marshal(EventOf(store.FeedEvent{ID: "evt_1", Type: contract.PublicCreated, Invitation: inv}))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data struct {
			Invitation map[string]any `json:"invitation"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Data.Invitation["invite_url"]; ok || strings.Contains(string(b), "token") {
		t.Fatalf("the event carries invite_url: %s", b)
	}
	for _, k := range []string{"id", "email", "status", "delivery", "expires_at", "group_ids"} {
		if _, ok := got.Data.Invitation[k]; !ok {
			t.Errorf("the event's invitation lacks %s: %s", k, b)
		}
	}
}
