// Package resendtest is a stand-in for Resend's remote API in tests: an httptest server that
// speaks Resend's HTTP API for sending email (POST /emails with Bearer auth and an
// Idempotency-Key), keeps what it received, and can inject the faults Resend can answer with.
package resendtest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Email is one email as Resend received it.
type Email struct {
	ID             string            `json:"id"`
	From           string            `json:"from"`
	To             []string          `json:"to"`
	Subject        string            `json:"subject"`
	HTML           string            `json:"html"`
	Text           string            `json:"text"`
	Tags           []Tag             `json:"tags"`
	Headers        map[string]string `json:"headers"`
	IdempotencyKey string            `json:"-"`
	ReceivedAt     time.Time         `json:"-"`
}

// Tag is a Resend email tag.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Fault is an answer to inject instead of accepting an email.
type Fault struct {
	Status     int    // 429, 422, 500, ...
	RetryAfter string // Retry-After header for 429
	Message    string
}

// Attempt is one request received, accepted or not.
type Attempt struct {
	IdempotencyKey string
	Status         int
	At             time.Time
}

// Server is a fake Resend.
type Server struct {
	*httptest.Server
	APIKey string

	mu       sync.Mutex
	emails   []Email
	byKey    map[string]idempotent
	attempts []Attempt
	faults   func(Email) *Fault
	nextID   int
}

type idempotent struct {
	bodyHash [32]byte
	id       string
}

// NewServer starts a fake Resend that accepts apiKey.
func NewServer(apiKey string) *Server {
	s := &Server{APIKey: apiKey, byKey: map[string]idempotent{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /emails", s.send)
	s.Server = httptest.NewServer(mux)
	return s
}

// InjectFaults sets a function deciding, per request, whether to answer with a fault.
func (s *Server) InjectFaults(f func(Email) *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Emails returns the accepted emails, oldest first.
func (s *Server) Emails() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Email(nil), s.emails...)
}

// EmailsTo returns the accepted emails to a recipient, oldest first.
func (s *Server) EmailsTo(addr string) []Email {
	var out []Email
	for _, e := range s.Emails() {
		for _, to := range e.To {
			if strings.EqualFold(to, addr) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Attempts returns every request received, in order.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attempt(nil), s.attempts...)
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		writeError(w, http.StatusUnauthorized, "missing_api_key", "Missing API key in the authorization header.")
		return
	}
	var e Email
	raw := json.NewDecoder(http.MaxBytesReader(w, r.Body, 40<<20))
	if err := raw.Decode(&e); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "validation_error", "Invalid JSON: "+err.Error())
		return
	}
	e.IdempotencyKey = r.Header.Get("Idempotency-Key")
	e.ReceivedAt = time.Now()
	body, _ := json.Marshal(e)
	hash := sha256.Sum256(body)

	s.mu.Lock()
	defer s.mu.Unlock()
	record := func(status int) {
		s.attempts = append(s.attempts, Attempt{IdempotencyKey: e.IdempotencyKey, Status: status, At: e.ReceivedAt})
	}
	if s.faults != nil {
		if f := s.faults(e); f != nil {
			record(f.Status)
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if f.Status == http.StatusTooManyRequests {
				w.Header().Set("ratelimit-limit", "2")
				w.Header().Set("ratelimit-remaining", "0")
			}
			writeError(w, f.Status, faultName(f.Status), f.Message)
			return
		}
	}
	switch {
	case len(e.To) == 0 || e.From == "" || e.Subject == "":
		record(http.StatusUnprocessableEntity)
		writeError(w, http.StatusUnprocessableEntity, "validation_error", "from, to and subject are required")
		return
	case e.IdempotencyKey != "":
		if prev, ok := s.byKey[e.IdempotencyKey]; ok {
			if prev.bodyHash != hash {
				record(http.StatusConflict)
				writeError(w, http.StatusConflict, "invalid_idempotent_request", "Same idempotency key used with a different request payload.")
				return
			}
			record(http.StatusOK)
			writeJSON(w, http.StatusOK, map[string]string{"id": prev.id})
			return
		}
	}
	s.nextID++
	e.ID = fmt.Sprintf("re_%06d", s.nextID)
	s.emails = append(s.emails, e)
	if e.IdempotencyKey != "" {
		s.byKey[e.IdempotencyKey] = idempotent{bodyHash: hash, id: e.ID}
	}
	record(http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]string{"id": e.ID})
}

func faultName(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case http.StatusUnprocessableEntity:
		return "validation_error"
	default:
		return "internal_server_error"
	}
}

func writeError(w http.ResponseWriter, status int, name, msg string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "name": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
