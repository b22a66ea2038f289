package devstack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A replica that died mid-answer: it reads the request, then drops the connection.
func dyingReplica(t *testing.T, hits *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		hits.Add(1)
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func healthyReplica(t *testing.T, hits *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Replica", "healthy")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func balancer(t *testing.T, urls ...string) *httptest.Server {
	lb, err := NewLoadBalancer(t.Context(), urls, "/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, method, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A replica nobody listens on any more: every request, a POST without a key included, goes to
// the other one, since none of them reached the dead one.
func TestLoadBalancerSkipsAReplicaThatRefuses(t *testing.T) {
	var hits atomic.Int64
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	lb := balancer(t, deadURL, healthyReplica(t, &hits).URL)
	for i := range 6 {
		resp, body := send(t, http.MethodPost, lb.URL+"/v1/x", "body-"+string(rune('a'+i)))
		if resp.StatusCode != http.StatusOK || body != "body-"+string(rune('a'+i)) {
			t.Fatalf("request %d: %d %q, want the healthy replica's echo", i, resp.StatusCode, body)
		}
	}
	if hits.Load() != 6 {
		t.Errorf("the healthy replica served %d of 6", hits.Load())
	}
}

// A replica that fails after reading the request: a repeat-safe request (GET, or a POST with an
// Idempotency-Key) is sent on, body and all; a POST without one is answered 502 saying it may
// have been applied, and never sent twice.
func TestLoadBalancerRetriesOnlyWhatIsSafeToRepeat(t *testing.T) {
	var dyingHits, healthyHits atomic.Int64
	lb := balancer(t, dyingReplica(t, &dyingHits).URL, healthyReplica(t, &healthyHits).URL)

	for i := range 4 { // round robin: at least two of them meet the dying replica first
		resp, body := send(t, http.MethodPost, lb.URL+"/v1/invitations", `{"n":1}`, "Idempotency-Key", "k")
		if resp.StatusCode != http.StatusOK || body != `{"n":1}` {
			t.Fatalf("keyed POST %d: %d %q", i, resp.StatusCode, body)
		}
		if resp, _ := send(t, http.MethodGet, lb.URL+"/v1/invitations", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d: %d", i, resp.StatusCode)
		}
	}
	if dyingHits.Load() == 0 {
		t.Fatal("the dying replica was never tried: the test proves nothing")
	}

	var refused int
	for range 4 {
		before := healthyHits.Load()
		resp, body := send(t, http.MethodPost, lb.URL+"/v1/invitations", `{"n":2}`)
		switch resp.StatusCode {
		case http.StatusOK:
			if healthyHits.Load() != before+1 {
				t.Errorf("an unkeyed POST answered 200 without the healthy replica serving it once")
			}
		case http.StatusBadGateway:
			refused++
			if healthyHits.Load() != before {
				t.Errorf("an unkeyed POST that reached the dying replica was sent again")
			}
			var p struct{ Code, Detail string }
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Code != "bad_gateway" ||
				!strings.Contains(p.Detail, "may have been applied") || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("502 body %q (%s), want a bad_gateway problem saying it may have been applied", body, resp.Header.Get("Content-Type"))
			}
		default:
			t.Errorf("unkeyed POST: %d %q", resp.StatusCode, body)
		}
	}
	if refused == 0 {
		t.Error("no unkeyed POST met the dying replica in four round-robin turns")
	}
}
