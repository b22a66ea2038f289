package server

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/onboarding-service/onboarding/internal/config"
)

// Rate limits against abuse (docs/security.md): in-process token buckets, so each API replica
// enforces them on its own share of the traffic.
//
//   - invitee routes, per client address (RATE_LIMIT_INVITEE_IP): bounds what one machine can
//     make the service do without any credential (database reads, argon2id hashes);
//   - invitee routes, per invite link (RATE_LIMIT_INVITEE_TOKEN): one link cannot be hammered
//     from many addresses; only links that verify get a bucket, so forged tokens cannot fill
//     the table;
//   - invitation creation, per account (RATE_LIMIT_INVITATIONS_ACCOUNT), counted only once the
//     API token is known to be allowed on the account, so nobody else can use up its budget.

// inviteeRoutes are the routes authorised by an invite token alone (route templates).
var inviteeRoutes = map[string]bool{
	"/v1/invitations/preview": true,
	"/v1/invitations/accept":  true,
	"/v1/invitations/decline": true,
	"/invite":                 true,
	"/invite/accept":          true,
	"/invite/decline":         true,
	"/invite/request-renewal": true,
}

// maxBuckets bounds each limiter's table. Buckets idle long enough to be full again are
// forgotten first; past the bound (a flood from very many addresses) the table is cleared,
// which errs on letting requests through rather than on refusing everyone.
const maxBuckets = 100_000

type rateLimits struct {
	inviteeIP, inviteeToken, invitationCreate *limiterSet
}

func newRateLimits(cfg config.Config) rateLimits {
	return rateLimits{
		inviteeIP:        newLimiterSet(cfg.RateInviteeIP),
		inviteeToken:     newLimiterSet(cfg.RateInviteeToken),
		invitationCreate: newLimiterSet(cfg.RateInvitationCreate),
	}
}

// limiterSet is one token bucket per key.
type limiterSet struct {
	limit rate.Limit
	burst int
	// idle is how long an untouched bucket takes to fill up again; it can then be dropped,
	// since a new bucket is the same thing.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	nextSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// newLimiterSet returns nil for a disabled limit; a nil set allows everything.
func newLimiterSet(r config.RateLimit) *limiterSet {
	if !r.Enabled() {
		return nil
	}
	return &limiterSet{
		limit:   rate.Limit(float64(r.Count) / r.Per.Seconds()),
		burst:   r.Count,
		idle:    r.Per,
		buckets: map[string]*bucket{},
	}
}

// take spends one token of key's bucket; it returns 0 when the request may go on, else how
// long until it would be allowed (nothing is spent then).
func (l *limiterSet) take(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextSweep) || len(l.buckets) >= maxBuckets {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return l.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

func (l *limiterSet) sweep(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.idle {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
	l.nextSweep = now.Add(l.idle)
}

func (l *limiterSet) size() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func rateLimited(wait time.Duration, what string) *problem {
	p := newProblem(contract.CodeRateLimited, "Too many requests %s; retry in %d seconds.", what, retryAfterSeconds(wait))
	p.retryAfter = wait
	return p
}

// limitInvitee applies the per-address and per-link limits to the invitee routes. It runs on
// every route and lets the others through.
func (s *Server) limitInvitee(c *gin.Context) {
	if !inviteeRoutes[c.FullPath()] {
		c.Next()
		return
	}
	now := s.now()
	if wait := s.limits.inviteeIP.take("ip:"+clientKey(c.ClientIP()), now); wait > 0 {
		s.refuseInvitee(c, rateLimited(wait, "from this address"))
		return
	}
	if s.limits.inviteeToken != nil && s.signer != nil {
		if id, gen, err := s.signer.Verify(inviteToken(c)); err == nil {
			key := id.String() + "/" + strconv.Itoa(gen)
			if wait := s.limits.inviteeToken.take(key, now); wait > 0 {
				s.refuseInvitee(c, rateLimited(wait, "for this invitation link"))
				return
			}
		}
	}
	c.Next()
}

// limitInvitationCreate applies the per-account limit on creating invitations; it runs after
// loadAccount, so the caller is known to be allowed on the account.
func (s *Server) limitInvitationCreate(c *gin.Context) {
	if wait := s.limits.invitationCreate.take(account(c).ID.String(), s.now()); wait > 0 {
		writeProblem(c, rateLimited(wait, "creating invitations for this account"))
		return
	}
	c.Next()
}

// refuseInvitee answers the hosted page's routes with a page, the API's with a problem.
func (s *Server) refuseInvitee(c *gin.Context, p *problem) {
	if strings.HasPrefix(c.FullPath(), "/invite") {
		s.renderPageError(c, p)
		c.Abort()
		return
	}
	writeProblem(c, p)
}

// clientKey is the bucket key of an address: IPv4 as is, IPv6 by its /64, which is what one
// subscriber usually holds.
func clientKey(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil || parsed.To4() != nil {
		return ip
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// inviteToken finds the invite token of an invitee request: in the query string, or in the
// JSON or form body, which is read here and put back for the handler (bounded by limitBody).
func inviteToken(c *gin.Context) string {
	if c.Request.Method == "GET" || c.Request.Method == "HEAD" {
		return c.Query("token")
	}
	data := peekBody(c)
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(data))
		if err != nil {
			return ""
		}
		return form.Get("token")
	}
	var b struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(data, &b) != nil {
		return ""
	}
	return b.Token
}

// peekBody reads the body and puts an identical one back: the same bytes, then the same
// error (a body over the limit still answers 413 in the handler).
func peekBody(c *gin.Context) []byte {
	if c.Request.Body == nil {
		return nil
	}
	data, err := io.ReadAll(c.Request.Body)
	c.Request.Body = replayBody{Reader: io.MultiReader(bytes.NewReader(data), errReader{err}), closer: c.Request.Body}
	if err != nil {
		return nil
	}
	return data
}

type replayBody struct {
	io.Reader
	closer io.Closer
}

func (r replayBody) Close() error { return r.closer.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}
