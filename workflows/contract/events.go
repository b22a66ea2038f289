package contract

// The public events of CONTRACT.md, "Events and webhooks": what the feed serves and webhooks
// deliver. Each is a row of an invitation's story written in the transaction of its change;
// story rows with no public type (a welcome email sent, say) stay in the story only.
const (
	PublicCreated          = "invitation.created"
	PublicSent             = "invitation.sent"
	PublicDeliveryFailed   = "invitation.delivery_failed"
	PublicReminded         = "invitation.reminded"
	PublicResent           = "invitation.resent"
	PublicUpdated          = "invitation.updated"
	PublicAccepted         = "invitation.accepted"
	PublicDeclined         = "invitation.declined"
	PublicExpired          = "invitation.expired"
	PublicRevoked          = "invitation.revoked"
	PublicRenewed          = "invitation.renewed"
	PublicRenewalRequested = "invitation.renewal_requested"
)

// PublicEventTypes are every public event type, in lifecycle order.
var PublicEventTypes = []string{
	PublicCreated, PublicSent, PublicDeliveryFailed, PublicReminded, PublicResent, PublicUpdated,
	PublicAccepted, PublicDeclined, PublicExpired, PublicRevoked, PublicRenewed, PublicRenewalRequested,
}

// IsPublicEventType reports whether t is one of PublicEventTypes.
func IsPublicEventType(t string) bool {
	for _, p := range PublicEventTypes {
		if p == t {
			return true
		}
	}
	return false
}

// PublicTypeOf returns the public type of a lifecycle story event (created, the statuses,
// renewed, renewal_requested), or "" for one that is not public. Email events are typed where
// the email's outcome is recorded (store.FinishEmail), from its kind.
func PublicTypeOf(storyType string) string {
	switch storyType {
	case EventCreated, EventRenewed, EventRenewalRequested, EventUpdated,
		string(StatusAccepted), string(StatusDeclined), string(StatusExpired), string(StatusRevoked):
		return "invitation." + storyType
	}
	return ""
}

// Provider delivery statuses: what Resend reports after it accepted an email.
const (
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryBounced    DeliveryStatus = "bounced"
	DeliveryComplained DeliveryStatus = "complained"
)

// SignalProviderDelivery tells a running invitation workflow what the email provider reported
// after the send (delivered, bounced, complained), so its DeliveryStatus search attribute and
// state follow. A closed run is not signalled: Postgres and the story keep the report.
const SignalProviderDelivery = "provider_delivery"

// ProviderDelivery is SignalProviderDelivery's argument.
type ProviderDelivery struct {
	Status DeliveryStatus
	Error  string `json:",omitempty"`
}

// WebhookDeliveryWorkflowName delivers one public event to one webhook endpoint; its activity
// runs on WebhookTaskQueue, shared fairly between endpoints (the fairness key is the endpoint).
const WebhookDeliveryWorkflowName = "WebhookDelivery"

// WebhookTaskQueue is the delivery attempts' task queue beside the main one.
func WebhookTaskQueue(mainQueue string) string { return mainQueue + "-webhooks" }

// WebhookDeliveryWorkflowID names the delivery of event (evt_...) to endpoint: one workflow per
// pair, so the dispatcher's second start of the same delivery is refused, never doubled.
func WebhookDeliveryWorkflowID(endpointID, eventID string) string {
	return "webhook:" + endpointID + ":" + eventID
}
