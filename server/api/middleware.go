package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/onboarding-service/onboarding/server/bearer"
	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/ratelimit"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// Keys of the values middleware leaves in the gin context (the request ID and a refusal's
// code are the problem package's, which the page sets too).
const (
	ctxToken   = "onboarding.api_token"
	ctxAccount = "onboarding.account"
)

// requestID takes the caller's X-Request-ID when it is short and plain (so it cannot inject
// anything into logs), or makes one, and echoes it: support quotes it to find the log line.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !plainRequestID(id) {
		id = uuid.NewString()
	}
	c.Set(problem.RequestIDKey, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func plainRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// observe logs every request and records its metrics. It names the route by its template,
// never by the raw URL: paths hold ids and the /invite query string holds an invite token.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.observe(c.Request.Method, route, status, elapsed)

	level := slog.LevelInfo
	switch probe := route == "/healthz" || route == "/readyz" || route == "/metrics"; {
	case probe && status < 400:
		level = slog.LevelDebug // probes and scrapes would drown the log
	case probe:
		level = slog.LevelWarn // readyz names the failing dependency; every probe need not page
	case status >= 500:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.String("request_id", c.GetString(problem.RequestIDKey)),
	}
	if code := c.GetString(problem.CodeKey); code != "" {
		attrs = append(attrs, slog.String("code", code))
		s.metrics.problem(route, code)
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// recoverPanics answers a 500 problem when a handler panics. Validation is meant to make
// this unreachable; if it is reached, the stack is logged so the hole can be closed.
func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		rec := recover()
		if rec == nil {
			return
		}
		if rec == http.ErrAbortHandler { //nolint:errorlint // a sentinel, compared as net/http does
			panic(rec) // net/http's way to abort a response; let it do so
		}
		s.log.Error("panic in handler", "route", c.FullPath(), "request_id", c.GetString(problem.RequestIDKey),
			"panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			problem.Write(c, problem.Internal(fmt.Errorf("panic: %v", rec)))
		}
		c.Abort()
	}()
	c.Next()
}

// limitBody caps request bodies at 1 MiB: an announced larger body is refused at once, and
// a chunked one fails while it is read (readBody maps that to 413).
func limitBody(c *gin.Context) {
	if c.Request.ContentLength > jsonbody.MaxBytes {
		problem.Write(c, problem.New(contract.CodePayloadTooLarge, "The request body must be at most %d bytes.", jsonbody.MaxBytes))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, jsonbody.MaxBytes)
	c.Next()
}

// renderErrors answers the error a handler returned.
func (s *Server) renderErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	s.fail(c, c.Errors.Last().Err)
}

// fail answers err as a problem, logging the cause of a 5xx.
func (s *Server) fail(c *gin.Context, err error) {
	problem.Write(c, problem.Log(s.log, c, "request failed", err))
}

// authenticate requires a known, unrevoked API token: `Authorization: Bearer <token>`.
func (s *Server) authenticate(c *gin.Context) {
	client := "ip:" + clientKey(c.ClientIP())
	if wait := s.limits.unauthorizedIP.Blocked(c.Request.Context(), client, s.now()); wait > 0 {
		problem.Write(c, ratelimit.Refusal(wait, "without a valid API token from this address"))
		return
	}
	token, ok := bearer.Token(c.GetHeader("Authorization"))
	if !ok {
		s.limits.unauthorizedIP.Take(c.Request.Context(), client, s.now())
		problem.Write(c, problem.New(contract.CodeUnauthorized, "Send an API token in the Authorization header: Bearer <token>."))
		return
	}
	t, err := s.store.LookupAPIToken(c.Request.Context(), token)
	if errors.Is(err, store.ErrNotFound) {
		s.limits.unauthorizedIP.Take(c.Request.Context(), client, s.now())
		c.Header("WWW-Authenticate", `Bearer realm="onboarding", error="invalid_token"`)
		problem.Write(c, problem.New(contract.CodeUnauthorized, "The API token is unknown or revoked."))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxToken, t)
	c.Next()
}

// loadAccount resolves the :account_id of the path: 404 for a malformed or unknown id, 403
// when the token is scoped to another account (checked first, so a scoped token cannot
// probe which accounts exist).
func (s *Server) loadAccount(c *gin.Context) {
	id, ok := parseID(c.Param("account_id"))
	if !ok {
		problem.Write(c, problem.NotFound("account"))
		return
	}
	if tok, ok := apiToken(c); !ok || !tok.Allows(id) {
		problem.Write(c, problem.New(contract.CodeForbidden, "This API token is not allowed to act on this account."))
		return
	}
	acc, err := s.store.GetAccount(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(c, problem.NotFound("account"))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAccount, acc)
	c.Next()
}

// apiToken is the caller's token, set by authenticate. Callers must treat a missing token
// as "not allowed": its zero value would otherwise read as an unscoped token.
func apiToken(c *gin.Context) (store.APIToken, bool) {
	t, _ := c.Get(ctxToken)
	tok, ok := t.(store.APIToken)
	return tok, ok
}

// fullReach reports whether the caller's token may see people beyond its account: the portal's
// unscoped token. A token scoped to an account sees only the people that account knows.
func fullReach(c *gin.Context) bool {
	tok, ok := apiToken(c)
	return ok && tok.AccountID == nil
}

// account is the path's account, set by loadAccount.
func account(c *gin.Context) store.Account {
	a, _ := c.Get(ctxAccount)
	acc, _ := a.(store.Account)
	return acc
}
