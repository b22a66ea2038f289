package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/onboarding-service/onboarding/internal/testkit/openapicheck"
)

// Every request the package's tests send goes through exchange, which holds it and its answer
// to openapi.yaml (internal/testkit/openapicheck): the answer always, the request when the
// service accepted it (2xx). A mismatch fails the test.

var contractValidator = sync.OnceValues(func() (*openapicheck.Validator, error) {
	return openapicheck.New(openAPIDocument)
})

// exchange serves req on s and checks the exchange against the document, reporting a mismatch
// to t. With responsesOnly (fuzz inputs) the request is not judged, only the answer.
func exchange(t testing.TB, s *Server, req *http.Request, responsesOnly bool) *httptest.ResponseRecorder {
	t.Helper()
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	w := httptest.NewRecorder()
	s.engine.ServeHTTP(w, req)
	v, err := contractValidator()
	if err != nil {
		t.Fatal(err)
	}
	if responsesOnly {
		err = v.CheckResponse(req, w.Code, w.Header(), w.Body.Bytes())
	} else {
		err = v.Check(req, reqBody, w.Code, w.Header(), w.Body.Bytes())
	}
	if err != nil {
		t.Errorf("%v", err)
	}
	return w
}
