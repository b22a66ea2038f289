package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/internal/codec"
)

// Security holds the settings of docs/security.md: secret rotation, payload encryption, the
// codec endpoint and rate limits.
type Security struct {
	// TokenSecretPrevious verify invite tokens only (TOKEN_SECRET_PREVIOUS, comma-separated),
	// so links issued before a rotation keep working until they are removed.
	TokenSecretPrevious [][]byte

	// PayloadKey seals every payload written to Temporal (PAYLOAD_ENCRYPTION_KEY and
	// PAYLOAD_ENCRYPTION_KEY_ID); nil means payloads are written in clear.
	PayloadKey *codec.Key
	// PayloadKeysPrevious still open payloads sealed before a rotation
	// (PAYLOAD_ENCRYPTION_KEYS_PREVIOUS).
	PayloadKeysPrevious []codec.Key
	// CodecAuthToken guards /codec/encode and /codec/decode (CODEC_AUTH_TOKEN); empty leaves
	// them unserved.
	CodecAuthToken string
	// CodecCORSOrigins may call the codec endpoints from a browser (CODEC_CORS_ORIGIN).
	CodecCORSOrigins []string
	// CodecOIDCIssuer and CodecOIDCAudience, both or neither, let the codec endpoints also take
	// the Temporal UI's forwarded access token (its codec setting passAccessToken): a JWT signed
	// by the issuer's keys (OIDC discovery and JWKS) whose audience holds CodecOIDCAudience.
	CodecOIDCIssuer   string
	CodecOIDCAudience string
	// CodecAllowLocalUI (CODEC_ALLOW_LOCAL_UI, development only) lets a browser on this machine
	// call the codec without a token from a CodecCORSOrigins page: the dev server's UI has no
	// way to send one. `make run` sets it.
	CodecAllowLocalUI bool

	// Rate limits (RATE_LIMIT_*); a zero RateLimit is no limit.
	RateInviteeIP        RateLimit
	RateInviteeToken     RateLimit
	RateInvitationCreate RateLimit
	// RateSignInUser and RateSignInIP limit failed sign-ins of an existing user accepting an
	// invitation: per user (RATE_LIMIT_SIGN_IN_USER) and per client (RATE_LIMIT_SIGN_IN_IP).
	// Only failures spend; a correct password is never refused while the bucket has a token.
	RateSignInUser RateLimit
	RateSignInIP   RateLimit
	// RateUnauthorizedIP limits requests answered 401 (no or an unknown API token), per client
	// (RATE_LIMIT_UNAUTHORIZED_IP): a client guessing tokens is refused with 429 for a while.
	RateUnauthorizedIP RateLimit
	// TrustedProxies may set X-Forwarded-For (TRUSTED_PROXIES: addresses or CIDRs); none by
	// default, so the client address is the connection's peer.
	TrustedProxies []string
}

// RateLimit allows Count requests at once, refilled at Count per Per (a token bucket).
type RateLimit struct {
	Count int
	Per   time.Duration
}

// Enabled reports whether the limit applies.
func (r RateLimit) Enabled() bool { return r.Count > 0 && r.Per > 0 }

func (r RateLimit) String() string {
	if !r.Enabled() {
		return "0"
	}
	return strconv.Itoa(r.Count) + "/" + r.Per.String()
}

// minSecretLen is the shortest TOKEN_SECRET accepted (bytes).
const minSecretLen = 32

// minBootstrapTokenLen is the shortest BOOTSTRAP_API_TOKEN production accepts.
const minBootstrapTokenLen = 32

// minCodecTokenLen is the shortest CODEC_AUTH_TOKEN accepted.
const minCodecTokenLen = 32

// devTokenSecrets are values that appear in this repository's examples, docs and tests, or
// that people type when they mean "later". Production refuses them.
var devTokenSecrets = []string{
	"CHANGE-ME-to-at-least-32-random-characters",
	"0123456789abcdef0123456789abcdef",
	"a-secret-of-at-least-thirty-two-bytes",
	"another-deployment-secret-of-32-bytes!!",
	"the-secret-after-the-rotation-00002",
	"development-token-secret-not-for-production",
	"dev-secret-dev-secret-dev-secret-dev-secret",
	"secretsecretsecretsecretsecretsecret",
	"changemechangemechangemechangeme",
}

// DevSecret reports whether secret is a known development or placeholder value: one listed
// above, one that says "change me", or a single character repeated.
func DevSecret(secret []byte) bool {
	lower := strings.ToLower(string(secret))
	for _, d := range devTokenSecrets {
		if lower == strings.ToLower(d) {
			return true
		}
	}
	squashed := strings.NewReplacer("-", "", "_", "", " ", "", ".", "").Replace(lower)
	for _, marker := range []string{"changeme", "replaceme", "placeholder", "notforproduction", "insecure"} {
		if strings.Contains(squashed, marker) {
			return true
		}
	}
	return len(secret) > 0 && bytes.Count(secret, secret[:1]) == len(secret)
}

func (c *Config) loadSecurity(getenv func(string) string) []error {
	var errs []error
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	// Invite-token secrets: the current one is read by LoadFrom; production refuses known
	// development values for it and for the previous ones.
	if c.Production() && c.TokenSecret != nil && DevSecret(c.TokenSecret) {
		errs = append(errs, errors.New("TOKEN_SECRET: is a development or placeholder value; use random bytes (openssl rand -hex 32)"))
	}
	for i, s := range splitList(getenv("TOKEN_SECRET_PREVIOUS")) {
		switch {
		case len(s) < minSecretLen:
			errs = append(errs, fmt.Errorf("TOKEN_SECRET_PREVIOUS: entry %d must be at least %d characters", i+1, minSecretLen))
		case c.Production() && DevSecret([]byte(s)):
			errs = append(errs, fmt.Errorf("TOKEN_SECRET_PREVIOUS: entry %d is a development or placeholder value", i+1))
		default:
			c.TokenSecretPrevious = append(c.TokenSecretPrevious, []byte(s))
		}
	}

	errs = append(errs, c.loadPayloadKeys(str)...)

	c.CodecAuthToken = str("CODEC_AUTH_TOKEN", "")
	if c.CodecAuthToken != "" && len(c.CodecAuthToken) < minCodecTokenLen {
		errs = append(errs, fmt.Errorf("CODEC_AUTH_TOKEN: must be at least %d characters", minCodecTokenLen))
	}
	for _, o := range splitList(str("CODEC_CORS_ORIGIN", "http://localhost:8233")) {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("CODEC_CORS_ORIGIN: %q is not an origin such as https://temporal.example.com", o))
			continue
		}
		c.CodecCORSOrigins = append(c.CodecCORSOrigins, strings.TrimSuffix(o, "/"))
	}
	errs = append(errs, c.loadCodecOIDC(str)...)

	rate := func(name, def string) RateLimit {
		r, err := ParseRateLimit(str(name, def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return r
	}
	c.RateInviteeIP = rate("RATE_LIMIT_INVITEE_IP", "60/1m")
	c.RateInviteeToken = rate("RATE_LIMIT_INVITEE_TOKEN", "20/1m")
	c.RateInvitationCreate = rate("RATE_LIMIT_INVITATIONS_ACCOUNT", "120/1m")
	c.RateSignInUser = rate("RATE_LIMIT_SIGN_IN_USER", "5/15m")
	c.RateSignInIP = rate("RATE_LIMIT_SIGN_IN_IP", "20/15m")
	c.RateUnauthorizedIP = rate("RATE_LIMIT_UNAUTHORIZED_IP", "30/1m")

	for _, p := range splitList(getenv("TRUSTED_PROXIES")) {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is neither an IP address nor a CIDR", p))
				continue
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	return errs
}

// loadPayloadKeys reads PAYLOAD_ENCRYPTION_KEY, its id, and the previous keys
// ("id:base64key" or "base64key", comma-separated).
func (c *Config) loadPayloadKeys(str func(name, def string) string) []error {
	var errs []error
	seen := map[string]bool{}
	if raw := str("PAYLOAD_ENCRYPTION_KEY", ""); raw != "" {
		secret, err := codec.ParseKey(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("PAYLOAD_ENCRYPTION_KEY: %w", err))
		} else {
			k := codec.Key{ID: str("PAYLOAD_ENCRYPTION_KEY_ID", codec.DeriveKeyID(secret)), Secret: secret}
			if msg := codec.CheckKeyID(k.ID); msg != "" {
				errs = append(errs, fmt.Errorf("PAYLOAD_ENCRYPTION_KEY_ID: %s", msg))
			}
			if c.Production() && DevSecret(secret[:]) {
				errs = append(errs, errors.New("PAYLOAD_ENCRYPTION_KEY: is a placeholder (one byte repeated); use openssl rand -base64 32"))
			}
			c.PayloadKey = &k
			seen[k.ID] = true
		}
	} else if str("PAYLOAD_ENCRYPTION_KEY_ID", "") != "" {
		errs = append(errs, errors.New("PAYLOAD_ENCRYPTION_KEY_ID: set without PAYLOAD_ENCRYPTION_KEY"))
	}
	for i, entry := range splitList(str("PAYLOAD_ENCRYPTION_KEYS_PREVIOUS", "")) {
		id, raw, named := strings.Cut(entry, ":")
		if !named {
			raw, id = id, ""
		}
		secret, err := codec.ParseKey(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("PAYLOAD_ENCRYPTION_KEYS_PREVIOUS: entry %d %w", i+1, err))
			continue
		}
		if id == "" {
			id = codec.DeriveKeyID(secret)
		}
		if msg := codec.CheckKeyID(id); msg != "" {
			errs = append(errs, fmt.Errorf("PAYLOAD_ENCRYPTION_KEYS_PREVIOUS: entry %d: key id %s", i+1, msg))
			continue
		}
		if seen[id] {
			errs = append(errs, fmt.Errorf("PAYLOAD_ENCRYPTION_KEYS_PREVIOUS: entry %d: key id %q is used twice", i+1, id))
			continue
		}
		seen[id] = true
		c.PayloadKeysPrevious = append(c.PayloadKeysPrevious, codec.Key{ID: id, Secret: secret})
	}
	// Histories hold names, addresses and password hashes: production encrypts them unless it
	// says, in so many words, that it will not.
	if c.Production() && c.PayloadKey == nil && len(errs) == 0 && !strings.EqualFold(str("PAYLOAD_ENCRYPTION_OPT_OUT", ""), "true") {
		errs = append(errs, errors.New("PAYLOAD_ENCRYPTION_KEY: required when APP_ENV=production (openssl rand -base64 32), unless PAYLOAD_ENCRYPTION_OPT_OUT=true says payloads go to Temporal in clear"))
	}
	if c.PayloadKey == nil && len(c.PayloadKeysPrevious) > 0 && len(errs) == 0 {
		errs = append(errs, errors.New("PAYLOAD_ENCRYPTION_KEYS_PREVIOUS: set without PAYLOAD_ENCRYPTION_KEY (keep the newest key as the current one)"))
	}
	return errs
}

// loadCodecOIDC reads CODEC_OIDC_ISSUER and CODEC_OIDC_AUDIENCE, and CODEC_ALLOW_LOCAL_UI.
func (c *Config) loadCodecOIDC(str func(name, def string) string) []error {
	var errs []error
	c.CodecOIDCIssuer, c.CodecOIDCAudience = str("CODEC_OIDC_ISSUER", ""), str("CODEC_OIDC_AUDIENCE", "")
	switch {
	case (c.CodecOIDCIssuer == "") != (c.CodecOIDCAudience == ""):
		errs = append(errs, errors.New("CODEC_OIDC_ISSUER, CODEC_OIDC_AUDIENCE: set both (the identity provider and the audience its tokens carry for the codec) or neither"))
	case c.CodecOIDCIssuer != "":
		u, err := url.Parse(c.CodecOIDCIssuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("CODEC_OIDC_ISSUER: %q is not an issuer URL such as https://login.example.com/realms/support", c.CodecOIDCIssuer))
		} else if u.Scheme != "https" && c.Production() {
			// Keys fetched over plain HTTP could be swapped on the way: anyone could then mint tokens.
			errs = append(errs, fmt.Errorf("CODEC_OIDC_ISSUER: %q must be an https URL when APP_ENV=production", c.CodecOIDCIssuer))
		}
	}
	if v := str("CODEC_ALLOW_LOCAL_UI", ""); v != "" {
		allow, err := strconv.ParseBool(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("CODEC_ALLOW_LOCAL_UI: %q must be true or false", v))
		case allow && c.Production():
			errs = append(errs, errors.New("CODEC_ALLOW_LOCAL_UI: development only (it lets a local browser decode without a token); use CODEC_AUTH_TOKEN or CODEC_OIDC_ISSUER in production"))
		default:
			c.CodecAllowLocalUI = allow
		}
	}
	return errs
}

// ParseRateLimit reads "N/duration" (e.g. "60/1m", "5/s"): N requests at once, refilled at N
// per duration. "0" or "off" means no limit.
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return RateLimit{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count < 1 || count > 1_000_000 {
		return RateLimit{}, fmt.Errorf("%q must be N/duration such as 60/1m (1 <= N <= 1000000), or 0 for no limit", s)
	}
	per = strings.TrimSpace(per)
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per // "5/s" reads as 5 per 1s
	}
	d, err := time.ParseDuration(per)
	if err != nil || d < time.Millisecond || d > 24*time.Hour {
		return RateLimit{}, fmt.Errorf("%q: the duration after / must be between 1ms and 24h, such as 1m", s)
	}
	return RateLimit{Count: count, Per: d}, nil
}

// splitList splits a comma-separated setting, trimming entries and dropping empty ones.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
