package problem

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
)

// Keys of the values an answer leaves in the gin context for the API's access log.
const (
	// RequestIDKey holds the request's ID, set by the API's request-ID middleware.
	RequestIDKey = "onboarding.request_id"
	// CodeKey holds the code of a refusal, set by Write and Record.
	CodeKey = "onboarding.problem_code"
)

// Record notes the code a request was refused with, for the access log and the problem metrics,
// when the answer is not a problem document (a page, a form shown again).
func Record(c *gin.Context, code string) { c.Set(CodeKey, code) }

// Classify turns any error into a problem: problems stay as they are, failures to reach a
// dependency become 503 unavailable, and the rest 500 internal.
func Classify(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	if transient(err) {
		return Unavailable(err)
	}
	return Internal(err)
}

// Log classifies err and, when that is a 5xx, logs its cause under msg with the route and the
// request ID, so the access log line leads to it. A client that went away is logged at info:
// nothing is wrong here.
func Log(log *slog.Logger, c *gin.Context, msg string, err error) *Problem {
	p := Classify(err)
	if p.Status >= 500 {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) {
			level = slog.LevelInfo
		}
		log.Log(c.Request.Context(), level, msg, "route", c.FullPath(),
			"request_id", c.GetString(RequestIDKey), "code", p.Code, "error", errString(p.Cause))
	}
	return p
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// transient reports whether err means a dependency was unreachable, slow or overloaded, so
// the same request may well succeed shortly.
func transient(err error) bool {
	var (
		netErr      net.Error
		connectErr  *pgconn.ConnectError
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		exhausted   *serviceerror.ResourceExhausted
		canceled    *serviceerror.Canceled
	)
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		transientPostgres(err) ||
		errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) || errors.As(err, &canceled)
}

// transientPostgres reports Postgres errors that a retry can get past: a lost connection
// (class 08), a backend terminated by an administrator or a restart (57P01-57P03), a
// serialization failure or deadlock (40001, 40P01), too many connections (53300).
func transientPostgres(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "57P01", "57P02", "57P03", "40001", "40P01", "53300":
		return true
	}
	return strings.HasPrefix(pgErr.Code, "08")
}

// Sentence capitalises a message and ends it with a full stop, as problem details read; an
// empty message stays empty, for the caller to say something instead.
func Sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = strings.ToUpper(string(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
