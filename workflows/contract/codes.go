package contract

import "slices"

// Code is an API problem code; clients branch on it, never on a title or detail. Workflow and
// activity errors carry the same codes as their ApplicationError type, so the API passes them
// on one to one.
type Code string

// The codes of CONTRACT.md.
const (
	CodeUnauthorized        Code = "unauthorized"
	CodeForbidden           Code = "forbidden"
	CodeNotFound            Code = "not_found"
	CodeValidation          Code = "validation_failed"
	CodeDuplicateInvitation Code = "duplicate_invitation"
	CodeAlreadyMember       Code = "already_member"
	CodeSeatsExhausted      Code = "seats_exhausted"
	CodeInvalidState        Code = "invalid_state"
	CodeIdempotencyConflict Code = "idempotency_conflict"
	CodeInvitationExpired   Code = "invitation_expired"
	CodeTokenInvalid        Code = "token_invalid"
	CodePasswordPolicy      Code = "password_policy"
	CodeTermsNotAccepted    Code = "terms_not_accepted"
	CodeRateLimited         Code = "rate_limited"
	// CodeCredentialsInvalid: an existing user's password on accept is wrong or missing.
	CodeCredentialsInvalid Code = "credentials_invalid"
	// CodeLinkExpired: a password-reset link is expired, used or superseded (410).
	CodeLinkExpired Code = "link_expired"
	// CodeWebhookURLInvalid: a webhook URL is not https (outside development) or resolves to a
	// private, loopback, link-local or metadata address (422).
	CodeWebhookURLInvalid Code = "webhook_url_invalid"
	// CodeDomainNotAllowed: the invitee's email domain is outside the account's
	// allowed_email_domains (422).
	CodeDomainNotAllowed Code = "domain_not_allowed"
	// CodeRedirectNotAllowed: redirect_url's origin is outside the account's
	// allowed_redirect_origins (422).
	CodeRedirectNotAllowed Code = "redirect_not_allowed"
)

// This service's extensions, documented in openapi.yaml.
const (
	CodeDuplicateGroup       Code = "duplicate_group"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeUnavailable          Code = "unavailable"
	CodeInternal             Code = "internal"
)

// businessCodes are the codes a workflow or activity refuses with: retrying cannot change the
// answer, and the API passes each on as the problem of that code.
var businessCodes = []Code{
	CodeInvalidState, CodeInvitationExpired, CodeRateLimited, CodeSeatsExhausted,
	CodeDuplicateInvitation, CodeAlreadyMember, CodeNotFound, CodeValidation, CodeLinkExpired,
}

// Business reports whether c is one of the workflow's business refusals.
func (c Code) Business() bool { return slices.Contains(businessCodes, c) }

// BusinessErrorTypes are the business codes as ApplicationError types, for a retry policy's
// NonRetryableErrorTypes.
func BusinessErrorTypes() []string {
	types := make([]string, len(businessCodes))
	for i, c := range businessCodes {
		types[i] = string(c)
	}
	return types
}
