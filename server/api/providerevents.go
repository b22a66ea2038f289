package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboarding-service/onboarding/internal/providerevents"
)

// POST /v1/provider-events/resend receives Resend's webhooks about the emails it sent: no API
// token, a Svix signature made with RESEND_WEBHOOK_SECRET instead. Delivered, bounced and
// complained reports become the invitation's delivery status (and, for the last two, the event
// invitation.delivery_failed) in one transaction with the provider event's id, so a retried or
// replayed event changes nothing; the invitation's workflow is then told, for its search
// attribute. Everything else that verifies is answered 200 and ignored: Resend retries any
// other answer, and would in the end disable the webhook.
//
// Neither the body nor the bounce reason is ever logged: both name the recipient.

// maxProviderEventBytes bounds a provider event's body; Resend's are a few KiB.
const maxProviderEventBytes = 256 << 10

// providerEventResult is the answer to an event that verified.
type providerEventResult struct {
	// Status is applied (the report changed the invitation's delivery, or was counted) or
	// ignored (a type the service does not use, a replay, or an email it did not send).
	Status string `json:"status"`
}

// Outcomes of provider events, the provider_events_total metric's result label.
const (
	providerApplied  = "applied"
	providerIgnored  = "ignored"
	providerRefused  = "refused"  // bad or stale signature
	providerDisabled = "disabled" // RESEND_WEBHOOK_SECRET unset or unusable
)

// newProviderVerifier builds the verifier of RESEND_WEBHOOK_SECRET; nil when it is unset or,
// logged, unusable: provider events are then refused.
func newProviderVerifier(secret string, log *slog.Logger) *providerevents.Verifier {
	if secret == "" {
		return nil
	}
	v, err := providerevents.NewVerifier(secret)
	if err != nil {
		log.Error("RESEND_WEBHOOK_SECRET is not a usable Svix secret: provider events are refused", "error", err)
		return nil
	}
	return v
}

func newProviderEventsMetric(reg *prometheus.Registry) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "provider_events_total",
		Help: "Resend webhook events received, by type (the four the service maps, else other) and result (applied, ignored, refused, disabled).",
	}, []string{"type", "result"}))
}

// countProviderEvent counts an event; the type label is bounded to the types the service knows.
func (s *Server) countProviderEvent(ev providerevents.Event, result string) {
	typ := "other"
	if _, known := ev.Delivery(); known {
		typ = ev.Type
	}
	s.providerEvents.WithLabelValues(typ, result).Inc()
}

// resendEvent answers one Resend webhook: 429 while the address is blocked for bad signatures,
// 404 when provider events are not enabled, 413 over maxProviderEventBytes, 401 for a bad or
// stale signature (which counts against the address), 422 for a signed body that is not an
// event, else 200.
func (s *Server) resendEvent(c *gin.Context) error {
	client := "ip:" + clientKey(c.ClientIP())
	if wait := s.limits.unauthorizedIP.Blocked(c.Request.Context(), client, s.now()); wait > 0 {
		return ratelimit.Refusal(wait, "with unverified signatures from this address")
	}
	if s.providerVerifier == nil {
		s.countProviderEvent(providerevents.Event{}, providerDisabled)
		return problem.New(contract.CodeNotFound, "Provider events are not enabled on this service: set RESEND_WEBHOOK_SECRET to the signing secret of the Resend webhook.")
	}
	if c.Request.ContentLength > maxProviderEventBytes {
		return problem.New(contract.CodePayloadTooLarge, "A provider event must be at most %d bytes.", maxProviderEventBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxProviderEventBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return problem.New(contract.CodePayloadTooLarge, "A provider event must be at most %d bytes.", maxProviderEventBytes)
	case err != nil:
		return problem.InvalidField(problem.BodyField, "the request body could not be read")
	}
	if err := s.providerVerifier.Verify(body, c.Request.Header, s.now()); err != nil {
		s.limits.unauthorizedIP.Take(c.Request.Context(), client, s.now())
		s.countProviderEvent(providerevents.Event{}, providerRefused)
		// The reason names a header or the timestamp's age, never the secret or a signature.
		s.log.Warn("provider event refused", "provider", "resend", "reason", err.Error(),
			"request_id", c.GetString(problem.RequestIDKey))
		return problem.New(contract.CodeUnauthorized, "The Svix signature does not verify with RESEND_WEBHOOK_SECRET, or svix-timestamp is more than 5 minutes from the service's clock.")
	}
	ev, err := providerevents.Parse(c.GetHeader(providerevents.HeaderID), body)
	if err != nil {
		// Parse's error may quote a field of the body: it is not logged, nor answered.
		return problem.InvalidField(problem.BodyField, "must be a Resend webhook event: a JSON object with a type and, for email events, data.email_id")
	}
	status, known := ev.Delivery()
	if !known {
		s.countProviderEvent(ev, providerIgnored)
		c.JSON(http.StatusOK, providerEventResult{Status: providerIgnored})
		return nil
	}
	ctx := c.Request.Context()
	applied, invitationID, err := s.store.ProviderDelivery(ctx, ev.ID, ev.Type, ev.EmailID, contract.DeliveryStatus(status), ev.Reason)
	if err != nil {
		return err // 5xx: Resend retries, and the event's id is not recorded
	}
	if applied && invitationID != nil && status != "" {
		// Postgres holds the report; the workflow only mirrors it in its search attribute. A
		// failure here must not have Resend retry an event already applied.
		d := contract.ProviderDelivery{Status: contract.DeliveryStatus(status), Error: ev.Reason}
		if err := s.workflows.NoteDelivery(context.WithoutCancel(ctx), *invitationID, d); err != nil {
			s.log.Warn("provider event applied, but the invitation's workflow was not told", "provider", "resend",
				"type", ev.Type, "invitation_id", invitationID.String(), "error", err.Error(),
				"request_id", c.GetString(problem.RequestIDKey))
		}
	}
	result := providerIgnored
	if applied {
		result = providerApplied
	}
	s.countProviderEvent(ev, result)
	s.log.Info("provider event", "provider", "resend", "type", ev.Type, "event_id", ev.ID, "result", result,
		"request_id", c.GetString(problem.RequestIDKey))
	c.JSON(http.StatusOK, providerEventResult{Status: result})
	return nil
}
