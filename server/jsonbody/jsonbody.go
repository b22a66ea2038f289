// Package jsonbody reads JSON request bodies and decodes them strictly: declared as JSON,
// bounded, and matching the target struct exactly, with each refusal a problem that names the
// offending field by its JSON path.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/server/problem"
)

// MaxBytes bounds every request body (1 MiB); the API's body-limit middleware enforces it.
const MaxBytes = 1 << 20

// Read checks that the body is declared as JSON (a missing Content-Type is taken as
// JSON) and reads it, bounded by the body-limit middleware.
func Read(c *gin.Context) ([]byte, error) {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, problem.New(contract.CodeUnsupportedMediaType, "Send the body as application/json.")
		}
	}
	return readBody(c)
}

// readBody reads the whole (bounded) body, mapping an oversized one to 413.
func readBody(c *gin.Context) ([]byte, error) {
	data, err := io.ReadAll(c.Request.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, problem.New(contract.CodePayloadTooLarge, "The request body must be at most %d bytes.", MaxBytes)
	case err != nil:
		// The client went away or sent a broken chunked body; nobody reads the answer.
		return nil, problem.InvalidField(problem.BodyField, "the request body could not be read")
	}
	return data, nil
}

// Decode decodes data into dst, a pointer to a struct, refusing anything the struct does
// not describe exactly: a body that is not one JSON object, invalid UTF-8, unknown or
// duplicate keys (matched case-sensitively, unlike encoding/json), wrong types, numbers that
// are not integers where integers are expected, and arrays longer than their `max` tag. The
// problem names the offending field by its JSON path.
func Decode(data []byte, dst any) *problem.Problem {
	if len(bytes.TrimSpace(data)) == 0 {
		return problem.InvalidField(problem.BodyField, "a JSON object is required")
	}
	if !utf8.Valid(data) {
		return problem.InvalidField(problem.BodyField, "the body must be UTF-8 text")
	}
	t := reflect.TypeOf(dst).Elem()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if fe := checkShape(dec, t, "", 0); fe != nil {
		return problem.Invalid(*fe)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.InvalidField(problem.BodyField, "unexpected data after the JSON object")
	}
	// The shape is known good, so this cannot fail but for a bug; stay safe all the same.
	if err := json.Unmarshal(data, dst); err != nil {
		return problem.InvalidField(problem.BodyField, "the body does not match the expected structure")
	}
	return nil
}

// checkShape reads one JSON value from dec and checks it against t. maxItems bounds arrays.
func checkShape(dec *json.Decoder, t reflect.Type, path string, maxItems int) *problem.FieldError {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tok == nil {
		if path == "" {
			return &problem.FieldError{Field: problem.BodyField, Message: "must be a JSON object"}
		}
		return nil // null is "absent"; validation decides whether the field was required
	}
	field := path
	if field == "" {
		field = problem.BodyField
	}
	if t == rawMessageType {
		return skipObject(dec, tok, field)
	}
	switch t.Kind() {
	case reflect.Struct:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return &problem.FieldError{Field: field, Message: "must be a JSON object"}
		}
		fields := structFields(t)
		seen := make(map[string]bool, len(fields))
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return syntaxError(err)
			}
			key, _ := keyTok.(string)
			sub := key
			if key == "" {
				sub = `""` // an empty key still needs a visible name in errors[].field
			}
			if path != "" {
				sub = path + "." + sub
			}
			f, known := fields[key]
			if !known {
				return &problem.FieldError{Field: sub, Message: "unknown field"}
			}
			if seen[key] {
				return &problem.FieldError{Field: sub, Message: "given more than once"}
			}
			seen[key] = true
			if fe := checkShape(dec, f.typ, sub, f.maxItems); fe != nil {
				return fe
			}
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return syntaxError(err)
		}
	case reflect.Slice:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return &problem.FieldError{Field: field, Message: "must be an array"}
		}
		for i := 0; dec.More(); i++ {
			if maxItems > 0 && i >= maxItems {
				return &problem.FieldError{Field: field, Message: fmt.Sprintf("must have at most %d entries", maxItems)}
			}
			if fe := checkShape(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i), 0); fe != nil {
				return fe
			}
		}
		if _, err := dec.Token(); err != nil {
			return syntaxError(err)
		}
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return &problem.FieldError{Field: field, Message: "must be a string"}
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return &problem.FieldError{Field: field, Message: "must be true or false"}
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return &problem.FieldError{Field: field, Message: "must be an integer"}
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			return &problem.FieldError{Field: field, Message: "must be an integer in range"}
		}
	default:
		// Request structs use only the kinds above; a new kind needs handling here first.
		return &problem.FieldError{Field: field, Message: "cannot be decoded"}
	}
	return nil
}

// rawMessageType is a free-form JSON object field (metadata): any object, kept as it came.
var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// maxObjectDepth bounds the nesting of a free-form object.
const maxObjectDepth = 16

// skipObject reads the rest of the free-form object that tok opened.
func skipObject(dec *json.Decoder, tok json.Token, field string) *problem.FieldError {
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &problem.FieldError{Field: field, Message: "must be a JSON object"}
	}
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if depth++; depth > maxObjectDepth {
				return &problem.FieldError{Field: field, Message: fmt.Sprintf("must nest at most %d levels deep", maxObjectDepth)}
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

func syntaxError(err error) *problem.FieldError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &problem.FieldError{Field: problem.BodyField, Message: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &problem.FieldError{Field: problem.BodyField, Message: "the JSON ends too early"}
	}
	return &problem.FieldError{Field: problem.BodyField, Message: "malformed JSON"}
}

type shapeField struct {
	typ      reflect.Type
	maxItems int
}

var structFieldCache sync.Map // reflect.Type -> map[string]shapeField

// structFields maps the JSON names of t's fields to their types and `max` tags.
func structFields(t reflect.Type) map[string]shapeField {
	if cached, ok := structFieldCache.Load(t); ok {
		return cached.(map[string]shapeField)
	}
	fields := make(map[string]shapeField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		maxItems, _ := strconv.Atoi(f.Tag.Get("max"))
		fields[name] = shapeField{typ: f.Type, maxItems: maxItems}
	}
	structFieldCache.Store(t, fields)
	return fields
}

// ReadRaw reads the whole (bounded) body whatever its declared type, for the routes that take
// other types too (a bulk batch's text/csv): the caller checks the type.
func ReadRaw(c *gin.Context) ([]byte, error) { return readBody(c) }
