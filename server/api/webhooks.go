package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/webhook"
)

// An account's webhook endpoints: POST/GET .../webhooks, DELETE .../webhooks/{id},
// POST .../webhooks/{id}/rotate-secret and GET .../webhooks/{id}/deliveries. The worker
// delivers to them (Standard Webhooks); the API only registers them. An endpoint's secret is
// derived from TOKEN_SECRET, its id and its version (internal/webhook), never stored, and shown
// only by the create and rotate answers.

const (
	// maxDescriptionRunes bounds an endpoint's description.
	maxDescriptionRunes = 500
	// maxWebhookEndpoints bounds an account's live endpoints: each event is delivered to each.
	maxWebhookEndpoints = 20
	// secretOverlap is how long the secret before a rotation keeps signing beside the new one.
	secretOverlap = 24 * time.Hour
	// urlCheckTimeout bounds the DNS look-up of a new endpoint's host.
	urlCheckTimeout = 5 * time.Second
)

type createWebhookBody struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types" max:"50"`
	Description string   `json:"description"`
}

// newWebhook is a validated create-webhook request.
type newWebhook struct {
	URL         string
	EventTypes  []string // empty: every type
	Description string
}

// decodeWebhook decodes and checks a create-webhook body. The URL's address policy is checked
// after it, by the handler (it looks the host up).
func decodeWebhook(data []byte) (newWebhook, *problem.Problem) {
	var b createWebhookBody
	if p := jsonbody.Decode(data, &b); p != nil {
		return newWebhook{}, p
	}
	var v fieldChecker
	w := newWebhook{URL: strings.TrimSpace(b.URL), EventTypes: []string{}}
	switch {
	case w.URL == "":
		v.add("url", "is required")
	case len(w.URL) > webhook.MaxURLLen:
		v.add("url", fmt.Sprintf("must have at most %d characters", webhook.MaxURLLen))
	case !plainText(w.URL):
		v.add("url", "must not contain control, formatting or invalid characters")
	}
	for i, t := range b.EventTypes {
		t = strings.TrimSpace(t)
		if !contract.IsPublicEventType(t) {
			v.add(fmt.Sprintf("event_types[%d]", i), "must be one of "+strings.Join(contract.PublicEventTypes, ", "))
			continue
		}
		if !slices.Contains(w.EventTypes, t) { // a repeated type means the same thing
			w.EventTypes = append(w.EventTypes, t)
		}
	}
	w.Description = v.text("description", b.Description, false, maxDescriptionRunes)
	return w, v.problem()
}

// webhookView is an endpoint as the list answers it.
type webhookView struct {
	ID          uuid.UUID `json:"id"`
	URL         string    `json:"url"`
	EventTypes  []string  `json:"event_types"`
	Description string    `json:"description"`
	// PreviousSecretExpiresAt is when the secret before the last rotation stops signing; null
	// when only the current one signs. An extension.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
}

// webhookSecretView is an endpoint with its current secret: the create and rotate answers.
type webhookSecretView struct {
	webhookView
	Secret string `json:"secret"`
}

type webhookListView struct {
	Items []webhookView `json:"items"`
}

func (s *Server) webhookView(w store.WebhookEndpoint) webhookView {
	v := webhookView{ID: w.ID, URL: w.URL, EventTypes: w.EventTypes, Description: w.Description, CreatedAt: w.CreatedAt.UTC()}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if w.PreviousUntil != nil && w.PreviousUntil.After(s.now()) {
		until := w.PreviousUntil.UTC()
		v.PreviousSecretExpiresAt = &until
	}
	return v
}

func (s *Server) webhookSecretView(w store.WebhookEndpoint) (webhookSecretView, error) {
	if s.webhookSecrets == nil {
		return webhookSecretView{}, errors.New("webhook secrets: no TOKEN_SECRET")
	}
	return webhookSecretView{webhookView: s.webhookView(w), Secret: s.webhookSecrets.For(w.ID.String(), w.SecretVersion)}, nil
}

// createWebhook registers an endpoint: the body (422 validation_failed), the URL's scheme and
// addresses (422 webhook_url_invalid), the account's number of endpoints.
func (s *Server) createWebhook(c *gin.Context) error {
	req, err := readRequest(c, decodeWebhook)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	acc := account(c)
	if err := s.checkWebhookURL(ctx, req.URL); err != nil {
		return err
	}
	existing, err := s.store.ListWebhookEndpoints(ctx, acc.ID)
	if err != nil {
		return err
	}
	if len(existing) >= maxWebhookEndpoints {
		return problem.InvalidField(problem.BodyField, fmt.Sprintf("the account already has %d webhook endpoints, the most it may have; delete one first", maxWebhookEndpoints))
	}
	w, err := s.store.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{
		ID: uuid.Must(uuid.NewV7()), AccountID: acc.ID, URL: req.URL, EventTypes: req.EventTypes, Description: req.Description,
		TaskQueue: s.cfg.TemporalTaskQueue,
	})
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("account")
	}
	if err != nil {
		return err
	}
	out, err := s.webhookSecretView(w)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/accounts/"+acc.ID.String()+"/webhooks/"+w.ID.String())
	c.JSON(http.StatusCreated, out)
	return nil
}

// checkWebhookURL applies the address policy (https outside development; public addresses
// only, looked up now). The worker applies it again on every connection.
func (s *Server) checkWebhookURL(ctx context.Context, rawURL string) error {
	ctx, cancel := context.WithTimeout(ctx, urlCheckTimeout)
	defer cancel()
	err := s.webhookPolicy.Check(ctx, rawURL)
	if err == nil {
		return nil
	}
	var uerr *webhook.URLError
	if errors.As(err, &uerr) {
		p := problem.New(contract.CodeWebhookURLInvalid, "%s", problem.Sentence(uerr.Reason))
		p.Errors = []problem.FieldError{{Field: "url", Message: uerr.Reason}}
		return p
	}
	return err
}

func (s *Server) listWebhooks(c *gin.Context) error {
	endpoints, err := s.store.ListWebhookEndpoints(c.Request.Context(), account(c).ID)
	if err != nil {
		return err
	}
	out := webhookListView{Items: make([]webhookView, 0, len(endpoints))}
	for _, w := range endpoints {
		out.Items = append(out.Items, s.webhookView(w))
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// webhookID reads the path's endpoint id; a malformed one is not found, like an unknown one.
func webhookID(c *gin.Context) (uuid.UUID, error) {
	id, ok := parseID(c.Param("webhook_id"))
	if !ok {
		return uuid.Nil, problem.NotFound("webhook endpoint")
	}
	return id, nil
}

// loadWebhook reads the path's live endpoint, which must belong to the path's account.
func (s *Server) loadWebhook(c *gin.Context) (store.WebhookEndpoint, error) {
	id, err := webhookID(c)
	if err != nil {
		return store.WebhookEndpoint{}, err
	}
	w, err := s.store.GetWebhookEndpoint(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (w.AccountID != account(c).ID || w.Deleted)) {
		return store.WebhookEndpoint{}, problem.NotFound("webhook endpoint")
	}
	return w, err
}

// deleteWebhook deletes the endpoint: nothing more is delivered to it, deliveries in flight stop.
func (s *Server) deleteWebhook(c *gin.Context) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	err = s.store.DeleteWebhookEndpoint(c.Request.Context(), account(c).ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("webhook endpoint")
	}
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// rotateWebhookSecret moves the endpoint to a new secret; the one before keeps signing beside it
// for secretOverlap. Rotating again within it retires the oldest at once.
func (s *Server) rotateWebhookSecret(c *gin.Context) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	w, err := s.store.RotateWebhookSecret(c.Request.Context(), account(c).ID, id, secretOverlap)
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("webhook endpoint")
	}
	if err != nil {
		return err
	}
	out, err := s.webhookSecretView(w)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// webhookAttemptView is one delivery attempt.
type webhookAttemptView struct {
	ID            int64      `json:"id"`
	EventID       string     `json:"event_id"`
	Type          string     `json:"type"`
	Attempt       int        `json:"attempt"`
	StatusCode    *int       `json:"status_code"`
	Error         *string    `json:"error"`
	At            time.Time  `json:"at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

type webhookAttemptListView struct {
	Items      []webhookAttemptView `json:"items"`
	NextCursor *string              `json:"next_cursor"`
}

// listWebhookDeliveries answers a page of the endpoint's delivery attempts, newest first.
func (s *Server) listWebhookDeliveries(c *gin.Context) error {
	q := c.Request.URL.Query()
	var v fieldChecker
	limit := queryLimit(&v, q)
	var before int64
	if raw := q.Get("cursor"); raw != "" {
		n, ok := decodeSeqCursor(cursorAttempts, raw)
		if !ok {
			v.add("cursor", "must be a next_cursor value returned by this list")
		}
		before = n
	}
	if p := v.problem(); p != nil {
		return p
	}
	w, err := s.loadWebhook(c)
	if err != nil {
		return err
	}
	// One more than the page: whether there is a next page is known, not guessed.
	attempts, err := s.store.ListWebhookAttempts(c.Request.Context(), w.AccountID, w.ID, before, limit+1)
	if err != nil {
		return err
	}
	out := webhookAttemptListView{Items: make([]webhookAttemptView, 0, min(len(attempts), limit))}
	for i, a := range attempts {
		if i == limit {
			cur := encodeSeqCursor(cursorAttempts, attempts[limit-1].ID)
			out.NextCursor = &cur
			break
		}
		item := webhookAttemptView{ID: a.ID, EventID: a.EventID, Type: a.EventType, Attempt: a.Attempt,
			StatusCode: a.StatusCode, At: a.At.UTC()}
		if a.Error != "" {
			item.Error = &a.Error
		}
		if a.NextAttemptAt != nil {
			next := a.NextAttemptAt.UTC()
			item.NextAttemptAt = &next
		}
		out.Items = append(out.Items, item)
	}
	c.JSON(http.StatusOK, out)
	return nil
}
