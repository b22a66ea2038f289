package worker

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// /healthz answers ok while the workers poll, and 503 with the reason once one stopped for good.
func TestHealthzReflectsAFatalError(t *testing.T) {
	var hs health
	mux := metricsMux(prometheus.NewRegistry(), &hs)
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return w
	}
	if w := get(); w.Code != http.StatusOK || w.Body.String() != "ok\n" {
		t.Fatalf("healthy: %d %q", w.Code, w.Body)
	}
	hs.fail(errors.New("Namespace default is not found."))
	hs.fail(errors.New("a later error"))
	w := get()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "Namespace default is not found.") {
		t.Fatalf("after a fatal error: %d %q, want 503 naming the first error", w.Code, w.Body)
	}
}
