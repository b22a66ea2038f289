package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/onboarding-service/onboarding/client"
	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
)

// The suite's fixture helpers (newFixture, createInvitation, invitation, subscription, accept)
// call the API through the generated client (client/, from server/api/openapi.yaml), the way a
// Go portal would. Tests that shape requests the client cannot express (malformed bodies,
// repeated headers, raw content types) stay on apiClient.do and request.

// sharedDoer sends through apitest.HTTPClient, read at each call, so whatever transport the
// test packages put there sees the typed client's requests too.
type sharedDoer struct{}

func (sharedDoer) Do(req *http.Request) (*http.Response, error) { return apitest.HTTPClient.Do(req) }

// typedClient is the generated client for base, sending token as the bearer token when it is
// not empty.
func typedClient(t testing.TB, base, token string) *client.ClientWithResponses {
	t.Helper()
	opts := []client.ClientOption{client.WithHTTPClient(sharedDoer{})}
	if token != "" {
		opts = append(opts, client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	}
	c, err := client.NewClientWithResponses(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// typed is the generated client with c's server and token.
func (c apiClient) typed(t testing.TB) *client.ClientWithResponses {
	t.Helper()
	return typedClient(t, c.base, c.token)
}

// typedPortal is the generated client against the stack's API with the portal's token.
func typedPortal(t testing.TB) *client.ClientWithResponses {
	t.Helper()
	return portal().typed(t)
}

// noErr fails the test on a generated client's error: a transport error, or a body that does
// not decode into the document's type for its status.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// asResponse is a generated client's answer as the suite's response, reporting a 5xx like
// apiClient.do.
func asResponse(t testing.TB, what string, res *http.Response, body []byte) response {
	t.Helper()
	r := response{Status: res.StatusCode, Header: res.Header, Body: body}
	if r.Status >= 500 {
		t.Errorf("%s answered %d: %s", what, r.Status, r.Body)
	}
	return r
}

// mustID parses an id the suite keeps as a string.
func mustID(t testing.TB, id string) uuid.UUID {
	t.Helper()
	u, err := uuid.Parse(id)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return u
}

// inviteRequest is inviteBody as the generated client's request type.
func (f fixture) inviteRequest(t testing.TB, email string) client.InvitationCreate {
	t.Helper()
	addr, first, last := client.Email(email), "Jane", "Doe"
	groups := []client.Id{mustID(t, f.GroupID)}
	return client.InvitationCreate{
		Email: &addr, FirstName: &first, LastName: &last,
		SubscriptionId: mustID(t, f.SubscriptionID), Role: "editor", GroupIds: &groups,
		Inviter: &client.Person{Name: "Ada Admin", Email: "ada@acme.test"},
	}
}
