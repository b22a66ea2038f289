// Package problem holds the RFC 9457 problem details every JSON error is answered with: the
// problem type, the status and title of each code, how any error becomes a problem, and how a
// problem is answered and logged. The JSON API, the hosted pages and the codec endpoint share it,
// so a code means the same everywhere.
package problem

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
)

// kind is the fixed part of a problem: its HTTP status and human title.
type kind struct {
	status int
	title  string
}

var kinds = map[contract.Code]kind{
	contract.CodeUnauthorized:         {http.StatusUnauthorized, "Authentication required"},
	contract.CodeForbidden:            {http.StatusForbidden, "Not allowed for this account"},
	contract.CodeNotFound:             {http.StatusNotFound, "Not found"},
	contract.CodeValidation:           {http.StatusUnprocessableEntity, "Invalid request"},
	contract.CodeDuplicateInvitation:  {http.StatusConflict, "A pending invitation exists"},
	contract.CodeAlreadyMember:        {http.StatusConflict, "Already a member"},
	contract.CodeSeatsExhausted:       {http.StatusConflict, "No free seat"},
	contract.CodeInvalidState:         {http.StatusConflict, "Not possible in the invitation's state"},
	contract.CodeIdempotencyConflict:  {http.StatusUnprocessableEntity, "Idempotency key reused with a different request"},
	contract.CodeInvitationExpired:    {http.StatusGone, "Invitation expired"},
	contract.CodeTokenInvalid:         {http.StatusNotFound, "Invitation link not valid"},
	contract.CodePasswordPolicy:       {http.StatusUnprocessableEntity, "Password too weak"},
	contract.CodeTermsNotAccepted:     {http.StatusUnprocessableEntity, "Terms not accepted"},
	contract.CodeRateLimited:          {http.StatusTooManyRequests, "Too many requests"},
	contract.CodeCredentialsInvalid:   {http.StatusUnprocessableEntity, "Sign-in failed"},
	contract.CodeLinkExpired:          {http.StatusGone, "Password-reset link no longer valid"},
	contract.CodeWebhookURLInvalid:    {http.StatusUnprocessableEntity, "Webhook URL not allowed"},
	contract.CodeDomainNotAllowed:     {http.StatusUnprocessableEntity, "Email domain not allowed"},
	contract.CodeRedirectNotAllowed:   {http.StatusUnprocessableEntity, "Redirect URL not allowed"},
	contract.CodeDuplicateGroup:       {http.StatusConflict, "A group with this name exists"},
	contract.CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, "Method not allowed"},
	contract.CodePayloadTooLarge:      {http.StatusRequestEntityTooLarge, "Request body too large"},
	contract.CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	contract.CodeUnavailable:          {http.StatusServiceUnavailable, "Service temporarily unavailable"},
	contract.CodeInternal:             {http.StatusInternalServerError, "Internal error"},
}

// TypePrefix makes a code a URI, as RFC 9457 wants for "type".
const TypePrefix = "urn:onboarding:problem:"

// BodyField names the body as a whole in field errors.
const BodyField = "body"

// Codes are every code a problem can carry, for the checks that each is documented.
func Codes() []contract.Code {
	return slices.Collect(maps.Keys(kinds))
}

// FieldError names one bad field. Field is a JSON path ("inviter.email", "group_ids[2]"),
// "body" for the body as a whole, or a query parameter or header name.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem detail. Handlers return it as an error; the API's error
// middleware renders it.
type Problem struct {
	Type   string        `json:"type"`
	Title  string        `json:"title"`
	Status int           `json:"status"`
	Detail string        `json:"detail"`
	Code   contract.Code `json:"code"`
	Errors []FieldError  `json:"errors,omitempty"`
	// InvitationID names the existing invitation of a duplicate_invitation problem.
	InvitationID string `json:"invitation_id,omitempty"`

	// RetryAfter sets the Retry-After header when positive.
	RetryAfter time.Duration `json:"-"`
	// Cause is logged with 5xx answers and never sent.
	Cause error `json:"-"`
}

// Error says the code and detail, and the cause when there is one.
func (p *Problem) Error() string {
	if p.Cause != nil {
		return string(p.Code) + ": " + p.Detail + ": " + p.Cause.Error()
	}
	return string(p.Code) + ": " + p.Detail
}

// Unwrap is the cause, so errors.Is sees through a problem.
func (p *Problem) Unwrap() error { return p.Cause }

// New builds the problem of a code with a detail; fmt arguments are applied when given.
func New(code contract.Code, detail string, args ...any) *Problem {
	k, ok := kinds[code]
	if !ok {
		k = kinds[contract.CodeInternal]
		code = contract.CodeInternal
	}
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &Problem{
		Type:   TypePrefix + string(code),
		Title:  k.title,
		Status: k.status,
		Detail: detail,
		Code:   code,
	}
}

// Invalid is a validation_failed problem naming each bad field.
func Invalid(errs ...FieldError) *Problem {
	fields := make([]string, 0, len(errs))
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	p := New(contract.CodeValidation, "The request has invalid fields: %s.", strings.Join(fields, ", "))
	p.Errors = errs
	return p
}

// InvalidField is a validation_failed problem about one field.
func InvalidField(field, message string) *Problem {
	return Invalid(FieldError{Field: field, Message: message})
}

// NotFound is a not_found problem about a kind of thing ("account", "invitation").
func NotFound(what string) *Problem {
	return New(contract.CodeNotFound, "No such %s.", what)
}

// Unavailable is a 503 that asks the client to come back shortly; cause is logged.
func Unavailable(cause error) *Problem {
	p := New(contract.CodeUnavailable, "A service this request depends on is not answering; retry shortly.")
	p.RetryAfter = 5 * time.Second
	p.Cause = cause
	return p
}

// Internal is a 500; cause is logged, never sent.
func Internal(cause error) *Problem {
	p := New(contract.CodeInternal, "The request could not be completed because of an internal error.")
	p.Cause = cause
	return p
}

// Write sends p and stops the handler chain.
func Write(c *gin.Context, p *Problem) {
	p.SetRetryAfter(c)
	if p.Code == contract.CodeUnauthorized && c.Writer.Header().Get("WWW-Authenticate") == "" {
		c.Header("WWW-Authenticate", `Bearer realm="onboarding"`)
	}
	c.Header("Cache-Control", "no-store")
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: the problem holds strings and ints only
		body = []byte(`{"type":"urn:onboarding:problem:internal","title":"Internal error","status":500,"code":"internal"}`)
	}
	Record(c, string(p.Code))
	c.Data(p.Status, "application/problem+json", body)
	c.Abort()
}

// SetRetryAfter sets the Retry-After header of a problem that has one.
func (p *Problem) SetRetryAfter(c *gin.Context) {
	if p.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(RetryAfterSeconds(p.RetryAfter)))
	}
}

// RetryAfterSeconds rounds up to whole seconds, at least 1, as Retry-After takes integers.
func RetryAfterSeconds(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		return 1
	}
	if s > 86400 {
		return 86400
	}
	return int(s)
}
