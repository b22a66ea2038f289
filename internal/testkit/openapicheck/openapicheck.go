// Package openapicheck holds the test suites to the service's OpenAPI document
// (server/api/openapi.yaml): every exchange a test makes is validated with kin-openapi's
// openapi3filter, and a mismatch (a field the schema does not have, a wrong type or format, a
// missing required field, a status or media type the operation does not document) is an error.
//
// The rule for requests: the response is always validated; the request only when the response
// is 2xx. Tests send malformed requests on purpose (bad JSON, unknown fields, wrong types) to see
// them refused, and a refused request is the point of such a test, not a mismatch. A request the
// service accepted must match the document.
//
// Fuzz tests, whose random requests the service may accept where the document would not, use
// CheckResponse: only the route and the answer are judged.
//
// A request whose route (method and path) is not in the document is an error, unless the
// service answered 404 or 405 with a body matching the document's Problem schema: the document
// then agrees that there is no such route.
//
// A request body without a Content-Type is read as application/json, as the API reads it (it
// answers 415 only to a body declared as something else).
//
// No body is skipped: JSON and problem+json bodies are validated against their schemas; the
// text/html pages, text/plain (/metrics) and the page's text/css and text/javascript assets are
// checked for their documented status and media type and validated as the strings the document
// says they are (kin-openapi has no decoder for text/html, text/css and text/javascript: they are
// registered here as plain text).
//
// Authentication is not the validator's business (the suites test it themselves): security
// requirements are accepted as met. The document itself is validated when loaded, its examples
// against their schemas included. Formats uuid, email and uri are checked (kin-openapi only
// checks date and date-time by itself).
package openapicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Validator checks exchanges against one OpenAPI document.
type Validator struct {
	doc     *openapi3.T
	router  routers.Router
	options *openapi3filter.Options
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// formats are the string formats the document uses and kin-openapi does not check by itself
// (it checks date and date-time).
var formats = map[string]openapi3.StringFormatValidator{
	"uuid": openapi3.NewCallbackValidator(func(s string) error {
		if !uuidPattern.MatchString(s) {
			return errors.New("not a UUID")
		}
		return nil
	}),
	"email": openapi3.NewCallbackValidator(func(s string) error {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			return errors.New("not an email address")
		}
		return nil
	}),
	"uri": openapi3.NewCallbackValidator(func(s string) error {
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() {
			return errors.New("not an absolute URI")
		}
		return nil
	}),
}

// New loads the document (YAML or JSON) and validates it.
func New(document []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("openapicheck: loading the document: %w", err)
	}
	// Tests call the service on whatever address it listens on: match paths only.
	doc.Servers = nil
	// components.pathItems (OpenAPI 3.1, used by the webhooks) is not in kin-openapi's model yet.
	router, err := legacy.NewRouter(doc, openapi3.AllowExtraSiblingFields("pathItems"), openapi3.EnableMultiError())
	if err != nil {
		return nil, fmt.Errorf("openapicheck: %w", err)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	}
	for name, f := range formats {
		opts.SchemaValidationOptions = append(opts.SchemaValidationOptions, openapi3.WithStringFormatValidator(name, f))
	}
	return &Validator{doc: doc, router: router, options: opts}, nil
}

func init() {
	for _, mt := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
	}
}

// Check validates one exchange: req (its body given apart, as req.Body may be consumed), and the
// answer's status, header and body. See the package comment for which parts are checked when.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	return v.check(req, reqBody, true, status, header, body)
}

// CheckResponse validates the answer only (and that the route is documented), for fuzz tests
// whose random requests the service may accept though the document would not.
func (v *Validator) CheckResponse(req *http.Request, status int, header http.Header, body []byte) error {
	return v.check(req, nil, false, status, header, body)
}

func (v *Validator) check(req *http.Request, reqBody []byte, checkRequest bool, status int, header http.Header, body []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.ContentLength = int64(len(reqBody))
	if len(reqBody) > 0 && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	where := req.Method + " " + req.URL.Path
	route, params, err := v.router.FindRoute(r)
	for name, value := range params {
		// The legacy router lets a path's last parameter match nothing
		// (PATCH /v1/accounts/{id}/invitations as .../invitations/{invitation_id}).
		if err == nil && value == "" {
			err = fmt.Errorf("no matching operation was found (empty path parameter %s)", name)
		}
	}
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			if err := v.checkProblem(header, body); err != nil {
				return fmt.Errorf("openapicheck: %s (no such route) answered %d: %w", where, status, err)
			}
			return nil
		}
		return fmt.Errorf("openapicheck: %s answered %d: the route is not in the document (%v)", where, status, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: v.options}
	var errs []string
	if checkRequest && status >= 200 && status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, "request: "+flatten(err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                v.options,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Sprintf("response %d: %s", status, flatten(err)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("openapicheck: %s (operation %s %s) does not match the document:\n  %s\n  response body: %s",
			where, route.Method, route.Path, strings.Join(errs, "\n  "), clip(body))
	}
	return nil
}

// checkProblem validates a body against components/schemas/Problem.
func (v *Validator) checkProblem(header http.Header, body []byte) error {
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt != "application/problem+json" {
		return fmt.Errorf("Content-Type %q, want application/problem+json", header.Get("Content-Type"))
	}
	ref := v.doc.Components.Schemas["Problem"]
	if ref == nil || ref.Value == nil {
		return errors.New("the document has no Problem schema")
	}
	val, err := decode(body)
	if err != nil {
		return err
	}
	opts := append([]openapi3.SchemaValidationOption{openapi3.MultiErrors(), openapi3.VisitAsResponse(), openapi3.EnableJSONSchema2020()},
		v.options.SchemaValidationOptions...)
	if err := ref.Value.VisitJSON(val, opts...); err != nil {
		return fmt.Errorf("%s: %s", flatten(err), clip(body))
	}
	return nil
}

func decode(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w: %s", err, clip(body))
	}
	return v, nil
}

// flatten spells err on one line, naming each failing field and rule without the schema and
// value dumps of kin-openapi's messages.
func flatten(err error) string {
	var me openapi3.MultiError
	var re *openapi3filter.RequestError
	var se *openapi3.SchemaError
	switch {
	case errors.As(err, &me):
		parts := make([]string, 0, len(me))
		for _, e := range me {
			parts = append(parts, flatten(e))
		}
		return strings.Join(parts, "; ")
	case errors.As(err, &re) && re.Err != nil:
		where := "body"
		if re.Parameter != nil {
			where = fmt.Sprintf("parameter %q in %s", re.Parameter.Name, re.Parameter.In)
		}
		return where + ": " + flatten(re.Err)
	case errors.As(err, &se):
		reason := strings.ReplaceAll(se.Reason, "\n", " ")
		// JSON Schema 2020-12 spells a property that unevaluatedProperties: false refuses so.
		reason = strings.ReplaceAll(reason, "false schema", "a property the schema does not have")
		return fmt.Sprintf("at %q: %s", "/"+strings.Join(se.JSONPointer(), "/"), reason)
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
