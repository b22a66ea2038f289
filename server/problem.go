package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Problem codes. Those of CONTRACT.md come first; the rest are this service's extensions,
// documented in openapi.yaml. Clients branch on the code, never on title or detail.
const (
	codeUnauthorized        = "unauthorized"
	codeForbidden           = "forbidden"
	codeNotFound            = "not_found"
	codeValidation          = "validation_failed"
	codeDuplicateInvitation = "duplicate_invitation"
	codeAlreadyMember       = "already_member"
	codeSeatsExhausted      = "seats_exhausted"
	codeInvalidState        = "invalid_state"
	codeIdempotencyConflict = "idempotency_conflict"
	codeInvitationExpired   = "invitation_expired"
	codeTokenInvalid        = "token_invalid"
	codePasswordPolicy      = "password_policy"
	codeTermsNotAccepted    = "terms_not_accepted"
	codeRateLimited         = "rate_limited"

	codeDuplicateGroup       = "duplicate_group"
	codeMethodNotAllowed     = "method_not_allowed"
	codePayloadTooLarge      = "payload_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeUnavailable          = "unavailable"
	codeInternal             = "internal"
)

// problemKind is the fixed part of a problem: its HTTP status and human title.
type problemKind struct {
	status int
	title  string
}

var problemKinds = map[string]problemKind{
	codeUnauthorized:         {http.StatusUnauthorized, "Authentication required"},
	codeForbidden:            {http.StatusForbidden, "Not allowed for this account"},
	codeNotFound:             {http.StatusNotFound, "Not found"},
	codeValidation:           {http.StatusUnprocessableEntity, "Invalid request"},
	codeDuplicateInvitation:  {http.StatusConflict, "A pending invitation exists"},
	codeAlreadyMember:        {http.StatusConflict, "Already a member"},
	codeSeatsExhausted:       {http.StatusConflict, "No free seat"},
	codeInvalidState:         {http.StatusConflict, "Not possible in the invitation's state"},
	codeIdempotencyConflict:  {http.StatusUnprocessableEntity, "Idempotency key reused with a different request"},
	codeInvitationExpired:    {http.StatusGone, "Invitation expired"},
	codeTokenInvalid:         {http.StatusNotFound, "Invitation link not valid"},
	codePasswordPolicy:       {http.StatusUnprocessableEntity, "Password too weak"},
	codeTermsNotAccepted:     {http.StatusUnprocessableEntity, "Terms not accepted"},
	codeRateLimited:          {http.StatusTooManyRequests, "Too many requests"},
	codeDuplicateGroup:       {http.StatusConflict, "A group with this name exists"},
	codeMethodNotAllowed:     {http.StatusMethodNotAllowed, "Method not allowed"},
	codePayloadTooLarge:      {http.StatusRequestEntityTooLarge, "Request body too large"},
	codeUnsupportedMediaType: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	codeUnavailable:          {http.StatusServiceUnavailable, "Service temporarily unavailable"},
	codeInternal:             {http.StatusInternalServerError, "Internal error"},
}

// problemTypePrefix makes a code a URI, as RFC 9457 wants for "type".
const problemTypePrefix = "urn:onboarding:problem:"

// fieldError names one bad field. Field is a JSON path ("inviter.email", "group_ids[2]"),
// "body" for the body as a whole, or a query parameter or header name.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// problem is an RFC 9457 problem detail. Handlers return it as an error; the error
// middleware renders it.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Code   string       `json:"code"`
	Errors []fieldError `json:"errors,omitempty"`
	// InvitationID names the existing invitation of a duplicate_invitation problem.
	InvitationID string `json:"invitation_id,omitempty"`

	// retryAfter sets the Retry-After header when positive.
	retryAfter time.Duration
	// cause is logged with 5xx answers and never sent.
	cause error
}

func (p *problem) Error() string {
	if p.cause != nil {
		return p.Code + ": " + p.Detail + ": " + p.cause.Error()
	}
	return p.Code + ": " + p.Detail
}

func (p *problem) Unwrap() error { return p.cause }

// newProblem builds the problem of a code with a detail; fmt arguments are applied when given.
func newProblem(code, detail string, args ...any) *problem {
	kind, ok := problemKinds[code]
	if !ok {
		kind = problemKinds[codeInternal]
		code = codeInternal
	}
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &problem{
		Type:   problemTypePrefix + code,
		Title:  kind.title,
		Status: kind.status,
		Detail: detail,
		Code:   code,
	}
}

// invalid is a validation_failed problem naming each bad field.
func invalid(errs ...fieldError) *problem {
	fields := make([]string, 0, len(errs))
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	p := newProblem(codeValidation, "The request has invalid fields: %s.", strings.Join(fields, ", "))
	p.Errors = errs
	return p
}

// invalidField is a validation_failed problem about one field.
func invalidField(field, message string) *problem {
	return invalid(fieldError{Field: field, Message: message})
}

// notFound is a not_found problem about a kind of thing ("account", "invitation").
func notFound(what string) *problem {
	return newProblem(codeNotFound, "No such %s.", what)
}

// unavailable is a 503 that asks the client to come back shortly; cause is logged.
func unavailable(cause error) *problem {
	p := newProblem(codeUnavailable, "A service this request depends on is not answering; retry shortly.")
	p.retryAfter = 5 * time.Second
	p.cause = cause
	return p
}

// internal is a 500; cause is logged, never sent.
func internal(cause error) *problem {
	p := newProblem(codeInternal, "The request could not be completed because of an internal error.")
	p.cause = cause
	return p
}

// writeProblem sends p and stops the handler chain.
func writeProblem(c *gin.Context, p *problem) {
	if p.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(p.retryAfter)))
	}
	if p.Code == codeUnauthorized && c.Writer.Header().Get("WWW-Authenticate") == "" {
		c.Header("WWW-Authenticate", `Bearer realm="onboarding"`)
	}
	c.Header("Cache-Control", "no-store")
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: the problem holds strings and ints only
		body = []byte(`{"type":"urn:onboarding:problem:internal","title":"Internal error","status":500,"code":"internal"}`)
	}
	c.Set(ctxProblemCode, p.Code)
	c.Data(p.Status, "application/problem+json", body)
	c.Abort()
}

// retryAfterSeconds rounds up to whole seconds, at least 1, as Retry-After takes integers.
func retryAfterSeconds(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		return 1
	}
	if s > 86400 {
		return 86400
	}
	return int(s)
}
