package problem

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/workflows/contract"
)

func TestProblemRendering(t *testing.T) {
	gin.SetMode(gin.TestMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	p := New(contract.CodeRateLimited, "Wait %d seconds.", 3)
	p.RetryAfter = 2500 * time.Millisecond
	Write(c, p)
	if w.Code != 429 || w.Header().Get("Retry-After") != "3" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	var got map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	want := map[string]any{"type": "urn:onboarding:problem:rate_limited", "title": "Too many requests", "status": 429.0,
		"detail": "Wait 3 seconds.", "code": "rate_limited"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("body = %v", got)
	}

	w = httptest.NewRecorder()
	c, _ = gin.CreateTestContext(w)
	Write(c, Invalid(FieldError{"email", "is required"}, FieldError{"group_ids[1]", "must be a UUID"}))
	if !strings.Contains(w.Body.String(), `"errors":[{"field":"email","message":"is required"},{"field":"group_ids[1]"`) {
		t.Fatalf("body = %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), "email, group_ids[1]") {
		t.Fatalf("detail does not name the fields: %s", w.Body)
	}
	// Every code has a kind, and only validation problems carry errors by default.
	for code, kind := range kinds {
		if p := New(code, "x"); p.Status != kind.status || p.Errors != nil {
			t.Errorf("%s: %+v", code, p)
		}
	}
	if RetryAfterSeconds(0) != 1 || RetryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Error("Retry-After rounding")
	}
}
