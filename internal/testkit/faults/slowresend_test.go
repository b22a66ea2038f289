package faults

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowResend sits in front of the suite's fake Resend and holds the emails to chosen
// recipients for a while before passing them on: a slow email provider, for tests that need an
// email in flight. Holding them here keeps the shared fake free for the other tests.
type slowResend struct {
	*httptest.Server
	delay    time.Duration
	mu       sync.Mutex
	slow     map[string]bool
	release  chan struct{}
	once     sync.Once
	inflight atomic.Int32
}

func newSlowResend(t *testing.T, delay time.Duration) *slowResend {
	s := &slowResend{delay: delay, slow: map[string]bool{}, release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.releaseAll()
		s.Close()
	})
	return s
}

// slowFor makes emails to addr slow.
func (s *slowResend) slowFor(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow[strings.ToLower(addr)] = true
}

// inFlight is the number of slow emails being held.
func (s *slowResend) inFlight() int { return int(s.inflight.Load()) }

// releaseAll lets every held email through at once, and later ones without delay.
func (s *slowResend) releaseAll() { s.once.Do(func() { close(s.release) }) }

func (s *slowResend) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg struct{ To []string }
	_ = json.Unmarshal(body, &msg)
	s.mu.Lock()
	slow := false
	for _, to := range msg.To {
		slow = slow || s.slow[strings.ToLower(to)]
	}
	s.mu.Unlock()
	if slow {
		s.inflight.Add(1)
		select {
		case <-time.After(s.delay):
		case <-s.release:
		case <-r.Context().Done(): // the sender gave up; nothing reaches Resend
			s.inflight.Add(-1)
			return
		}
		s.inflight.Add(-1)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, env.resend.URL+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}
