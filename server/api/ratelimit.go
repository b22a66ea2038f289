package api

import (
	"net"

	"github.com/gin-gonic/gin"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/ratelimit"
)

// Rate limits against abuse (docs/security.md), each attached where it applies:
//
//   - the invitee routes (/v1/invitations/{preview,accept,decline} and the page's /invite,
//     /invite/{accept,decline,request-renewal}), per client address (RATE_LIMIT_INVITEE_IP):
//     bounds what one machine can make the service do without any credential (database
//     reads, argon2id hashes); middleware on their two route groups;
//   - the same routes per invite link (RATE_LIMIT_INVITEE_TOKEN): counted by the invitee
//     operations where the token is resolved (server/invitee), so the body is read once;
//   - invitation creation, per account (RATE_LIMIT_INVITATIONS_ACCOUNT), on its route after
//     loadAccount, so only a token allowed on the account can use up its budget.

//   - answers 401, per client address (RATE_LIMIT_UNAUTHORIZED_IP): only failures spend, so a
//     client with a good token is never slowed; one guessing tokens is.

//
// Every limit's buckets are in Postgres (store.TakeToken), so N replicas enforce one limit, not
// N of them.

type rateLimits struct {
	inviteeIP, invitationCreate, unauthorizedIP *ratelimit.Set
}

// sharedLimits makes the limits of d's configuration, each with its buckets in d's store under
// its name (in-process for a server built without a store).
func sharedLimits(d Deps) func(config.RateLimit, string) *ratelimit.Set {
	return func(r config.RateLimit, name string) *ratelimit.Set {
		if d.Store == nil {
			return ratelimit.New(r)
		}
		return ratelimit.NewShared(r, d.RateLimitKeys+name, d.Store, d.Logger)
	}
}

// limitInviteeAddress applies the per-address limit to a group of invitee routes; refuse
// answers a refusal the group's way (a problem for the JSON routes, a page for the page's).
func (s *Server) limitInviteeAddress(refuse func(*gin.Context, *problem.Problem)) gin.HandlerFunc {
	return func(c *gin.Context) {
		if wait := s.limits.inviteeIP.Take(c.Request.Context(), "ip:"+clientKey(c.ClientIP()), s.now()); wait > 0 {
			refuse(c, ratelimit.Refusal(wait, "from this address"))
			return
		}
		c.Next()
	}
}

// limitInvitationCreate applies the per-account limit on creating invitations; it runs after
// loadAccount, so the caller is known to be allowed on the account.
func (s *Server) limitInvitationCreate(c *gin.Context) {
	if wait := s.limits.invitationCreate.Take(c.Request.Context(), account(c).ID.String(), s.now()); wait > 0 {
		problem.Write(c, ratelimit.Refusal(wait, "creating invitations for this account"))
		return
	}
	c.Next()
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
