// Package providerevents verifies and reads the webhooks Resend, the email
// provider, sends about the invitation emails: delivered, bounced, marked as
// spam, delayed. It is pure: no Postgres, no Temporal, no network. The HTTP
// handler for POST /v1/provider-events/resend uses it like this:
//
//	v, err := providerevents.NewVerifier(cfg.ResendWebhookSecret) // at startup
//	...
//	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, limit)) // raw bytes
//	if err := v.Verify(body, r.Header, time.Now()); err != nil {
//		// errors.Is(err, providerevents.ErrSignature): answer 401
//	}
//	ev, err := providerevents.Parse(r.Header.Get(providerevents.HeaderID), body)
//	if err != nil {
//		// malformed body: answer 400
//	}
//	status, known := ev.Delivery()
//	// !known: answer 2xx and do nothing else
//
// # Signatures
//
// Resend delivers its webhooks through Svix. Each request carries svix-id,
// svix-timestamp (unix seconds) and svix-signature (space-separated
// "v1,<base64>" entries, one per active secret); a signature is the base64
// HMAC-SHA256 of "<svix-id>.<svix-timestamp>.<raw body>" keyed with the bytes
// of the endpoint secret (the base64 after "whsec_"). Verify accepts a request
// when any v1 entry matches and the timestamp is within Tolerance (5 minutes)
// of the caller's clock, in the past or the future; anything else is
// ErrSignature, which the handler answers with 401. Verification uses Svix's
// maintained Go library; see Verifier for why the timestamp check is ours.
//
// # Dedupe key
//
// The svix-id is the identity of one event: Resend sends the same svix-id on
// every retry of an event and when an event is replayed from its dashboard,
// and a different one for each new event. It is Event.ID, and the handler
// records it (a unique key) in the same transaction as the change the event
// makes, so that a retry, a replay, or a request replayed by an attacker
// within the 5-minute window finds the id already there and changes nothing.
// Verify alone does not detect duplicates.
//
// # Unknown and duplicate events are accepted and ignored
//
// Resend retries anything that is not a 2xx. So the handler answers 2xx, and
// does nothing else, for a duplicate svix-id, for an event whose type Delivery
// does not know (email.sent, email.opened, email.clicked, contact.*, types
// added later). Only a bad signature (401) and a body that cannot be read
// (400) are refused by this package's rules. (An email_id that matches no
// invitation is the handler's call; a fast bounce can arrive before the send
// has stored Resend's email id, and a non-2xx then lets Resend's retry
// deliver it again once it has.)
//
// # Mapping
//
// Event.Delivery gives the invitation's delivery.status for the four types
// the contract names: email.delivered → delivered, email.bounced → bounced,
// email.complained → complained (both of these also emit
// invitation.delivery_failed), and email.delivery_delayed, which is known but
// leaves the status as it is and is only counted.
package providerevents
