package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
)

// problemKind is the fixed part of a problem: its HTTP status and human title.
type problemKind struct {
	status int
	title  string
}

var problemKinds = map[contract.Code]problemKind{
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
	contract.CodeDuplicateGroup:       {http.StatusConflict, "A group with this name exists"},
	contract.CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, "Method not allowed"},
	contract.CodePayloadTooLarge:      {http.StatusRequestEntityTooLarge, "Request body too large"},
	contract.CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	contract.CodeUnavailable:          {http.StatusServiceUnavailable, "Service temporarily unavailable"},
	contract.CodeInternal:             {http.StatusInternalServerError, "Internal error"},
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
	Type   string        `json:"type"`
	Title  string        `json:"title"`
	Status int           `json:"status"`
	Detail string        `json:"detail"`
	Code   contract.Code `json:"code"`
	Errors []fieldError  `json:"errors,omitempty"`
	// InvitationID names the existing invitation of a duplicate_invitation problem.
	InvitationID string `json:"invitation_id,omitempty"`

	// retryAfter sets the Retry-After header when positive.
	retryAfter time.Duration
	// cause is logged with 5xx answers and never sent.
	cause error
}

func (p *problem) Error() string {
	if p.cause != nil {
		return string(p.Code) + ": " + p.Detail + ": " + p.cause.Error()
	}
	return string(p.Code) + ": " + p.Detail
}

func (p *problem) Unwrap() error { return p.cause }

// newProblem builds the problem of a code with a detail; fmt arguments are applied when given.
func newProblem(code contract.Code, detail string, args ...any) *problem {
	kind, ok := problemKinds[code]
	if !ok {
		kind = problemKinds[contract.CodeInternal]
		code = contract.CodeInternal
	}
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &problem{
		Type:   problemTypePrefix + string(code),
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
	p := newProblem(contract.CodeValidation, "The request has invalid fields: %s.", strings.Join(fields, ", "))
	p.Errors = errs
	return p
}

// invalidField is a validation_failed problem about one field.
func invalidField(field, message string) *problem {
	return invalid(fieldError{Field: field, Message: message})
}

// notFound is a not_found problem about a kind of thing ("account", "invitation").
func notFound(what string) *problem {
	return newProblem(contract.CodeNotFound, "No such %s.", what)
}

// unavailable is a 503 that asks the client to come back shortly; cause is logged.
func unavailable(cause error) *problem {
	p := newProblem(contract.CodeUnavailable, "A service this request depends on is not answering; retry shortly.")
	p.retryAfter = 5 * time.Second
	p.cause = cause
	return p
}

// internal is a 500; cause is logged, never sent.
func internal(cause error) *problem {
	p := newProblem(contract.CodeInternal, "The request could not be completed because of an internal error.")
	p.cause = cause
	return p
}

// writeProblem sends p and stops the handler chain.
func writeProblem(c *gin.Context, p *problem) {
	if p.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(p.retryAfter)))
	}
	if p.Code == contract.CodeUnauthorized && c.Writer.Header().Get("WWW-Authenticate") == "" {
		c.Header("WWW-Authenticate", `Bearer realm="onboarding"`)
	}
	c.Header("Cache-Control", "no-store")
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: the problem holds strings and ints only
		body = []byte(`{"type":"urn:onboarding:problem:internal","title":"Internal error","status":500,"code":"internal"}`)
	}
	c.Set(ctxProblemCode, string(p.Code))
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
