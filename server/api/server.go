// Package api is the JSON API in front of the invitation workflows: it validates and
// authorises requests, talks to Temporal for everything that changes an invitation, and reads
// Postgres for everything else. It never decides an invitation's fate; the workflow does. It
// owns the router: its routes, middleware, rate limits, metrics and OpenAPI document, and it
// mounts the hosted invitee page (server/pages) and Temporal's codec endpoint
// (server/codecserver) on it.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/onboarding-service/onboarding/server/codecserver"
	"github.com/onboarding-service/onboarding/server/invitecreate"
	"github.com/onboarding-service/onboarding/server/invitee"
	"github.com/onboarding-service/onboarding/server/pages"
	"github.com/onboarding-service/onboarding/server/passwordreset"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/server/workflowclient"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/config"
	"github.com/onboarding-service/onboarding/internal/invitetoken"
	"github.com/onboarding-service/onboarding/internal/password"
	"github.com/onboarding-service/onboarding/internal/providerevents"
	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/webhook"
)

// Deps are what the API needs from the process that runs it.
type Deps struct {
	Config   config.Config
	Store    *store.Store
	Temporal client.Client
	Signer   *invitetoken.Signer
	Hasher   *password.Hasher
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// RateLimitKeys prefixes the keys of the rate limits' buckets, which live in Postgres so
	// that every replica enforces one limit: replicas of one deployment share it (empty); tests
	// give each server of theirs its own.
	RateLimitKeys string
}

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// Server holds the API's dependencies.
type Server struct {
	cfg       config.Config
	store     *store.Store
	temporal  client.Client
	workflows *workflowclient.Client
	// creator is the create of one invitation, shared with the worker's bulk batches.
	creator *invitecreate.Service
	signer  *invitetoken.Signer
	links   invitetoken.Links
	log     *slog.Logger
	metrics *httpMetrics
	// now is the clock of the API, its invitee operations and its page; tests move it.
	now    func() time.Time
	engine *gin.Engine
	// limits are the per-address and per-account rate limits (ratelimit.go); the per-link
	// one is the invitee operations'.
	limits rateLimits
	// invitee runs the invitee operations, for the invitee routes and the page; resets the
	// password resets, for their routes and the /reset page.
	invitee *invitee.Service
	resets  *passwordreset.Service
	// pages are the hosted invitee page's handlers; codec is Temporal's codec endpoint, nil
	// when it is not served.
	pages *pages.Handlers
	codec *codecserver.Endpoint
	// webhookSecrets derive the endpoints' signing secrets from TOKEN_SECRET (nil without
	// one); webhookPolicy is which endpoint URLs may be registered.
	webhookSecrets *webhook.Secrets
	webhookPolicy  webhook.Policy
	// providerVerifier checks Resend's webhook signatures; nil when RESEND_WEBHOOK_SECRET is
	// unset, and provider events are refused. providerEvents counts them.
	providerVerifier *providerevents.Verifier
	providerEvents   *prometheus.CounterVec
}

// New returns the API's HTTP handler.
func New(d Deps) http.Handler { return newServer(d).engine }

// newServer builds the server; the package's tests keep it to reach its clock and signer.
func newServer(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      d.Config,
		store:    d.Store,
		temporal: d.Temporal,
		workflows: &workflowclient.Client{
			Temporal: d.Temporal, TaskQueue: d.Config.TemporalTaskQueue,
			Settings: invitecreate.LifecycleSettings(d.Config), EmailHashKey: d.Config.EmailHashKey,
		},
		signer:  d.Signer,
		links:   invitetoken.Links{Signer: d.Signer, Template: d.Config.AcceptURLTemplate},
		log:     d.Logger,
		metrics: newHTTPMetrics(d.Registry),
		now:     time.Now,
		codec:   codecserver.New(d.Config),

		webhookPolicy:    webhook.Policy{AllowHTTP: !d.Config.Production(), AllowLocalhost: d.Config.WebhookAllowLocalhost},
		providerVerifier: newProviderVerifier(d.Config.ResendWebhookSecret, d.Logger),
		providerEvents:   newProviderEventsMetric(d.Registry),
	}
	s.creator = &invitecreate.Service{Store: d.Store, Workflows: s.workflows, Config: d.Config}
	if len(d.Config.TokenSecret) > 0 {
		secrets := webhook.NewSecrets(d.Config.TokenSecret)
		s.webhookSecrets = &secrets
	}
	clock := func() time.Time { return s.now() } // the server's clock, as tests set it
	limit := sharedLimits(d)
	s.limits = rateLimits{
		inviteeIP:        limit(d.Config.RateInviteeIP, "invitee-ip"),
		invitationCreate: limit(d.Config.RateInvitationCreate, "invitations-account"),
		unauthorizedIP:   limit(d.Config.RateUnauthorizedIP, "unauthorized-ip"),
	}
	s.invitee = &invitee.Service{
		Store: d.Store, Signer: d.Signer, Hasher: d.Hasher, Workflows: s.workflows,
		LinkLimit:  limit(d.Config.RateInviteeToken, "invitee-link"),
		SignInUser: limit(d.Config.RateSignInUser, "signin-user"), SignInClient: limit(d.Config.RateSignInIP, "signin-ip"),
		Now: clock,
	}
	s.resets = &passwordreset.Service{
		Store: d.Store, Signer: d.Signer.PasswordReset(), Hasher: d.Hasher, Workflows: s.workflows,
		TTL:          d.Config.PasswordResetTTL,
		AddressLimit: limit(d.Config.RatePasswordResetEmail, "reset-email"), ClientLimit: limit(d.Config.RatePasswordResetIP, "reset-ip"),
		CheckEmail: emailProblem, Now: clock,
	}
	s.pages = pages.New(pages.Deps{Config: d.Config, Invitee: s.invitee, Resets: s.resets, Logger: d.Logger, Now: clock,
		RedirectAllowed: s.redirectAllowed})
	s.engine = s.routes(d.Registry)
	return s
}

func init() {
	// Debug mode prints every route at start and warns on stdout; the API logs through slog.
	gin.SetMode(gin.ReleaseMode)
}

func (s *Server) routes(reg *prometheus.Registry) *gin.Engine {
	r := gin.New()
	// An API answers what it was asked: no redirects to a "fixed" path, and a wrong method is
	// a 405 with Allow rather than a 404.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	// Route on the path as sent, so an encoded slash stays inside its segment: a path id
	// "<uuid>%2Flink" is a malformed id (404), not the /link route.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.ContextWithFallback = true
	// The client address is the peer's; X-Forwarded-For counts only from TRUSTED_PROXIES.
	_ = r.SetTrustedProxies(s.cfg.TrustedProxies)

	r.Use(s.requestID, s.observe, s.recoverPanics, limitBody, s.renderErrors)
	r.NoRoute(func(c *gin.Context) {
		problem.Write(c, problem.New(contract.CodeNotFound, "No route matches this path."))
	})
	r.NoMethod(func(c *gin.Context) {
		problem.Write(c, problem.New(contract.CodeMethodNotAllowed, "This path allows %s.", c.Writer.Header().Get("Allow")))
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if s.cfg.MetricsAddr == "" { // else served on METRICS_ADDR only (cmd/onboarding-api)
		r.GET("/metrics", metricsHandler(reg))
	}
	r.GET("/openapi.yaml", serveOpenAPI)
	if s.codec != nil { // Temporal's remote codec, when payloads are encrypted
		g := r.Group("/codec", s.codec.CORS)
		g.OPTIONS("/decode", s.codec.Preflight)
		g.POST("/decode", s.codec.Auth, handle(s.codec.Decode))
		g.OPTIONS("/encode", s.codec.Preflight)
		g.POST("/encode", s.codec.Auth, handle(s.codec.Encode))
	}

	// The hosted acceptance page, authorised by the invite token; its assets are not limited.
	r.GET("/invite/assets/:name", pages.Asset)
	page := r.Group("/invite", s.limitInviteeAddress(s.pages.Refuse))
	page.GET("", s.pages.Show)
	page.POST("/accept", s.pages.Accept)
	page.POST("/decline", s.pages.Decline)
	page.POST("/request-renewal", s.pages.RequestRenewal)
	// The hosted password-reset page, behind the same per-address limit.
	resetPage := r.Group("/reset", s.limitInviteeAddress(s.pages.Refuse))
	resetPage.GET("", s.pages.ShowReset)
	resetPage.POST("/request", s.pages.ResetRequest)
	resetPage.POST("/confirm", s.pages.ResetConfirm)

	// Every /v1 answer is about one account, invitation or person: no cache keeps it.
	v1 := r.Group("/v1", func(c *gin.Context) { c.Header("Cache-Control", "no-store") })
	// Invitee routes: the invite token in the request authorises them.
	inv := v1.Group("/invitations", s.limitInviteeAddress(problem.Write))
	inv.GET("/preview", handle(s.previewInvitation))
	inv.POST("/accept", handle(s.acceptInvitation))
	inv.POST("/decline", handle(s.declineInvitation))
	// The password reset: the per-address limit, then its own per-address and per-client ones.
	reset := v1.Group("/password-resets", s.limitInviteeAddress(problem.Write))
	reset.POST("", handle(s.requestPasswordReset))
	reset.POST("/confirm", handle(s.confirmPasswordReset))
	// Resend's webhooks, authorised by their Svix signature; bad signatures count against the
	// address like bad API tokens (so Resend's bursts are never slowed).
	v1.POST("/provider-events/resend", handle(s.resendEvent))

	api := v1.Group("", s.authenticate)
	api.POST("/accounts", handle(s.createAccount))
	acct := api.Group("/accounts/:account_id", s.loadAccount)
	acct.POST("/subscriptions", handle(s.createSubscription))
	acct.GET("/subscriptions/:subscription_id", handle(s.getSubscription))
	acct.POST("/groups", handle(s.createGroup))
	acct.GET("/users", handle(s.listUsers))
	acct.GET("/settings", handle(s.getAccountSettings))
	acct.PUT("/settings", handle(s.putAccountSettings))
	acct.POST("/invitations", s.limitInvitationCreate, handle(s.createInvitation)) // per-account limit
	acct.GET("/invitations", handle(s.listInvitations))
	acct.POST("/invitation-batches", s.limitInvitationCreate, handle(s.createBatch))
	acct.GET("/invitation-batches/:batch_id", handle(s.getBatch))
	acct.GET("/invitations/:invitation_id", handle(s.getInvitation))
	acct.PATCH("/invitations/:invitation_id", handle(s.editInvitation))
	acct.GET("/invitations/:invitation_id/link", handle(s.invitationLink))
	acct.POST("/invitations/:invitation_id/resend", handle(s.invitationAction(actionResend)))
	acct.POST("/invitations/:invitation_id/renew", handle(s.invitationAction(actionRenew)))
	acct.POST("/invitations/:invitation_id/revoke", handle(s.invitationAction(actionRevoke)))
	acct.GET("/events", handle(s.listEvents))
	acct.POST("/webhooks", handle(s.createWebhook))
	acct.GET("/webhooks", handle(s.listWebhooks))
	acct.DELETE("/webhooks/:webhook_id", handle(s.deleteWebhook))
	acct.POST("/webhooks/:webhook_id/rotate-secret", handle(s.rotateWebhookSecret))
	acct.GET("/webhooks/:webhook_id/deliveries", handle(s.listWebhookDeliveries))
	return r
}

// handle adapts a handler that returns an error; renderErrors answers the error.
func handle(h func(*gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			_ = c.Error(err)
			c.Abort()
		}
	}
}
