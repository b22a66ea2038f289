package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// The demo data `make run` creates once through the API, as the portal would.

type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// call sends body as JSON and decodes a response with status want into out. Any other status
// is returned as an *httpStatusError carrying the problem document.
func (a apiClient) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &httpStatusError{method: method, path: path, status: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

type httpStatusError struct {
	method, path string
	status       int
	body         string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.path, e.status, e.body)
}

type demoData struct {
	AccountID      string `json:"account_id"`
	SubscriptionID string `json:"subscription_id"`
	GroupID        string `json:"group_id"`
}

// ensureDemoData reuses the demo account saved in path while the API still knows it (the
// database survives restarts), and creates it through the API otherwise.
func ensureDemoData(ctx context.Context, api apiClient, path string) (demoData, error) {
	var d demoData
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &d) == nil && d.AccountID != "" && d.SubscriptionID != "" {
		err := api.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(d.AccountID)+"/subscriptions/"+url.PathEscape(d.SubscriptionID), nil, http.StatusOK, nil)
		var statusErr *httpStatusError
		switch {
		case err == nil:
			return d, nil
		case !errors.As(err, &statusErr):
			return d, err // the API is unreachable: creating would fail too
		}
		say("saved demo data is gone (%v); creating it again", err)
	}

	var created struct {
		ID string `json:"id"`
	}
	if err := api.call(ctx, http.MethodPost, "/v1/accounts", map[string]any{"name": "Acme Corp"}, http.StatusCreated, &created); err != nil {
		return d, err
	}
	d = demoData{AccountID: created.ID}
	account := "/v1/accounts/" + url.PathEscape(d.AccountID)
	if err := api.call(ctx, http.MethodPost, account+"/subscriptions", map[string]any{
		"application": "Adobe Creative Cloud",
		"name":        "Acme Design Team",
		"seats":       5,
		"roles":       []string{"viewer", "editor", "admin"},
	}, http.StatusCreated, &created); err != nil {
		return d, err
	}
	d.SubscriptionID = created.ID
	if err := api.call(ctx, http.MethodPost, account+"/groups", map[string]any{"name": "Designers"}, http.StatusCreated, &created); err != nil {
		return d, err
	}
	d.GroupID = created.ID
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return d, err
	}
	return d, os.WriteFile(path, append(b, '\n'), 0o644)
}
