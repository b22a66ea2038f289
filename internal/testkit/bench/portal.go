package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// benchPassword is every new user's password: long, mixed and not on the common-password list.
const benchPassword = "Correct-Horse-Battery-42"

// portal calls the API as the portal (with the API token) and as invitees (without one).
type portal struct {
	base  string
	token string
	http  *http.Client
}

func newPortal(base, token string) *portal {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One kept-alive connection per caller: Go's default of 2 idle connections per host would
	// make most of 16 callers dial anew for every request, and measure that.
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	return &portal{base: base, token: token, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// statusError is an answer other than the one expected; the bench fails on it.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s answered %d: %s", e.method, e.path, e.status, e.body)
}

// call sends body as JSON (with the API token when authed) and decodes a want answer into out.
func (p *portal) call(ctx context.Context, authed bool, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authed {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	res, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return &statusError{method: method, path: path, status: res.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// fixture is the account the bench invites into: one subscription per caller (so 16 callers
// never share a seat row), one more that all callers share (the hot seat row), and a group.
type fixture struct {
	AccountID string
	Subs      []string // Subs[i] is caller i's own subscription
	HotSub    string
	GroupID   string
}

// maxSeats is the API's largest subscription: the bench never runs out of seats.
const maxSeats = 1000000

func (p *portal) setUp(ctx context.Context, callers int) (fixture, error) {
	var f fixture
	var id struct {
		ID string `json:"id"`
	}
	if err := p.call(ctx, true, http.MethodPost, "/v1/accounts", map[string]any{"name": "Bench Corp"}, http.StatusCreated, &id); err != nil {
		return f, err
	}
	f.AccountID = id.ID
	acct := "/v1/accounts/" + url.PathEscape(f.AccountID)
	sub := func(name string) (string, error) {
		err := p.call(ctx, true, http.MethodPost, acct+"/subscriptions", map[string]any{
			"application": "Adobe Creative Cloud", "name": name, "seats": maxSeats,
			"roles": []string{"viewer", "editor", "admin"},
		}, http.StatusCreated, &id)
		return id.ID, err
	}
	for i := range callers {
		s, err := sub(fmt.Sprintf("Team %02d", i))
		if err != nil {
			return f, err
		}
		f.Subs = append(f.Subs, s)
	}
	var err error
	if f.HotSub, err = sub("Everyone"); err != nil {
		return f, err
	}
	if err := p.call(ctx, true, http.MethodPost, acct+"/groups", map[string]any{"name": "Designers"}, http.StatusCreated, &id); err != nil {
		return f, err
	}
	f.GroupID = id.ID
	return f, nil
}

// invitation is what the bench keeps of a created invitation: its id, its invitee's address
// and the token of its link, for the accept.
type invitation struct {
	ID    string
	Email string
	Token string
}

// create invites a new person by email into subscription sub and returns the invitation.
func (p *portal) create(ctx context.Context, f fixture, sub, email string) (invitation, error) {
	var got struct {
		ID        string  `json:"id"`
		Status    string  `json:"status"`
		InviteURL *string `json:"invite_url"`
	}
	err := p.call(ctx, true, http.MethodPost, "/v1/accounts/"+url.PathEscape(f.AccountID)+"/invitations", map[string]any{
		"email": email, "first_name": "Bench", "last_name": "Invitee",
		"subscription_id": sub, "role": "editor", "group_ids": []string{f.GroupID},
		"inviter": map[string]any{"name": "Ada Admin", "email": "ada@bench.test"},
	}, http.StatusCreated, &got)
	if err != nil {
		return invitation{}, err
	}
	if got.InviteURL == nil {
		return invitation{}, fmt.Errorf("invitation %s (%s) has no invite_url", got.ID, got.Status)
	}
	u, err := url.Parse(*got.InviteURL)
	if err != nil || u.Query().Get("token") == "" {
		return invitation{}, fmt.Errorf("invitation %s: no token in invite_url %q", got.ID, *got.InviteURL)
	}
	return invitation{ID: got.ID, Email: email, Token: u.Query().Get("token")}, nil
}

// accept accepts inv as its invitee, a new user setting a password; the 200 comes once the
// user, membership and seat are provisioned.
func (p *portal) accept(ctx context.Context, inv invitation) error {
	var got struct {
		Status string `json:"status"`
	}
	err := p.call(ctx, false, http.MethodPost, "/v1/invitations/accept", map[string]any{
		"token": inv.Token, "password": benchPassword, "accept_terms": true,
	}, http.StatusOK, &got)
	if err != nil {
		return err
	}
	if got.Status != "" && got.Status != "accepted" {
		return fmt.Errorf("accept of %s answered status %q", inv.ID, got.Status)
	}
	return nil
}

// isStatus reports whether err is an unexpected HTTP answer (as opposed to a transport error).
func isStatus(err error) bool {
	var se *statusError
	return errors.As(err, &se)
}
