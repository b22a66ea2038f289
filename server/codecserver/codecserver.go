// Package codecserver is Temporal's remote codec endpoint: support staff point the Temporal UI
// (Settings, Codec Server) or the CLI (--codec-endpoint, --codec-auth) at <API>/codec and see
// decoded payloads. It exposes the endpoint's handlers; the API mounts them at /codec/decode and
// /codec/encode and answers their errors as problems.
package codecserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
)

// POST /codec/decode and /codec/encode take and return {"payloads":[...]} in protobuf JSON.
// Served only with PAYLOAD_ENCRYPTION_KEY set and a way to authenticate: CODEC_AUTH_TOKEN (the
// CLI's --codec-auth), CODEC_OIDC_ISSUER with CODEC_OIDC_AUDIENCE (the Temporal UI's forwarded
// access token), or both. CODEC_CORS_ORIGIN names the UI origins a browser may call from.

// codecPreflightMaxAge lets a browser cache the preflight for 10 minutes.
const codecPreflightMaxAge = "600"

// Endpoint holds the codec and the settings of the endpoint.
type Endpoint struct {
	codec   *codec.Codec
	origins []string
	// token is the hash of CODEC_AUTH_TOKEN; hasToken is false when it is unset.
	token    [sha256.Size]byte
	hasToken bool
	// oidc verifies the UI's access tokens; nil without CODEC_OIDC_ISSUER.
	oidc *oidcVerifier
	// localUI lets a loopback browser on an allowed origin in without a token
	// (CODEC_ALLOW_LOCAL_UI, development only).
	localUI bool
}

// New returns the endpoint, or nil when it is not served: it needs PAYLOAD_ENCRYPTION_KEY, and
// CODEC_AUTH_TOKEN or CODEC_OIDC_ISSUER. It contacts no identity provider: discovery waits for
// the first token that needs it.
func New(cfg config.Config) *Endpoint {
	if cfg.PayloadKey == nil || (cfg.CodecAuthToken == "" && cfg.CodecOIDCIssuer == "") {
		return nil
	}
	e := &Endpoint{
		codec:    codec.New(*cfg.PayloadKey, cfg.PayloadKeysPrevious...),
		origins:  cfg.CodecCORSOrigins,
		hasToken: cfg.CodecAuthToken != "",
		token:    sha256.Sum256([]byte(cfg.CodecAuthToken)),
		localUI:  cfg.CodecAllowLocalUI && !cfg.Production(),
	}
	if cfg.CodecOIDCIssuer != "" {
		e.oidc = newOIDCVerifier(cfg.CodecOIDCIssuer, cfg.CodecOIDCAudience)
	}
	return e
}

// CORS answers browsers of the allowed origins (the Temporal UI's), and only them; it runs on
// every codec route, preflights included.
func (e *Endpoint) CORS(c *gin.Context) {
	origin := c.GetHeader("Origin")
	c.Writer.Header().Add("Vary", "Origin")
	if origin == "" {
		c.Next() // not a browser, or same origin: CORS does not apply
		return
	}
	if !slices.Contains(e.origins, origin) {
		problem.Write(c, problem.New(contract.CodeForbidden, "This origin may not call the codec endpoint; see CODEC_CORS_ORIGIN."))
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	c.Next()
}

// Preflight answers a CORS preflight (the origin was checked by CORS).
func (e *Endpoint) Preflight(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	// The UI sends its namespace and, with passAccessToken, the access token (and its ID token
	// in Authorization-Extras, which the codec ignores).
	h.Set("Access-Control-Allow-Headers", "Authorization, Authorization-Extras, Content-Type, X-Namespace")
	h.Set("Access-Control-Max-Age", codecPreflightMaxAge)
	c.Status(http.StatusNoContent)
	c.Abort()
}

// Auth lets a request in with `Authorization: Bearer <CODEC_AUTH_TOKEN>` (compared in
// constant time, as hashes of equal length so the token's length does not show either) or with
// an access token of CODEC_OIDC_ISSUER for CODEC_OIDC_AUDIENCE; in development with
// CODEC_ALLOW_LOCAL_UI, also a browser on this machine calling from an allowed origin.
func (e *Endpoint) Auth(c *gin.Context) {
	header := c.GetHeader("Authorization")
	if header == "" && e.localUI && e.fromLocalUI(c) {
		c.Next()
		return
	}
	token, ok := credential(header)
	if ok && e.hasToken {
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], e.token[:]) == 1 {
			c.Next()
			return
		}
	}
	detail := "Send the codec token in the Authorization header: Bearer <CODEC_AUTH_TOKEN>."
	if ok && e.oidc != nil && strings.Count(token, ".") == 2 {
		err := e.oidc.verify(c.Request.Context(), token)
		var expired *oidc.TokenExpiredError
		switch {
		case err == nil:
			c.Next()
			return
		case errors.Is(err, errIdPUnavailable):
			// The identity provider did not answer: the token may be good, so no 401 (the UI
			// would send the user to sign in again). The API logs the cause.
			_ = c.Error(problem.Unavailable(err))
			c.Abort()
			return
		case errors.As(err, &expired):
			detail = "The access token has expired; sign in to the Temporal UI again."
		default:
			detail = "The access token is not one of CODEC_OIDC_ISSUER's for CODEC_OIDC_AUDIENCE (signature, issuer, audience and expiry are checked)."
		}
	}
	c.Header("WWW-Authenticate", `Bearer realm="onboarding-codec"`)
	problem.Write(c, problem.New(contract.CodeUnauthorized, detail))
}

// fromLocalUI reports whether the request comes from a browser on this machine (the
// connection's peer is a loopback address; forwarded headers are not read) on a page of an
// allowed origin. Only the dev server's UI, which cannot send a token, relies on it.
func (e *Endpoint) fromLocalUI(c *gin.Context) bool {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && slices.Contains(e.origins, c.GetHeader("Origin"))
}

// maxCredential bounds a bearer credential. Access tokens of identity providers run to a few
// kilobytes, past the 512 characters server/bearer allows the API's own tokens, so the codec
// reads its header itself, with the same character rules.
const maxCredential = 8 << 10

// credential reads `Authorization: Bearer <token>` (RFC 6750's b64token characters).
func credential(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxCredential {
		return "", false
	}
	for _, r := range token {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/=", r)) {
			return "", false
		}
	}
	return token, true
}

// Decode answers POST /codec/decode; the error it returns is for the API to answer.
func (e *Endpoint) Decode(c *gin.Context) error { return serve(c, e.codec.Decode) }

// Encode answers POST /codec/encode; the error it returns is for the API to answer.
func (e *Endpoint) Encode(c *gin.Context) error { return serve(c, e.codec.Encode) }

func serve(c *gin.Context, op func([]*commonpb.Payload) ([]*commonpb.Payload, error)) error {
	data, err := jsonbody.Read(c)
	if err != nil {
		return err
	}
	payloads, p := decodePayloads(data)
	if p != nil {
		return p
	}
	out, err := op(payloads)
	if errors.Is(err, codec.ErrUnknownKey) || errors.Is(err, codec.ErrCorrupt) {
		return problem.InvalidField("payloads", err.Error())
	}
	if err != nil {
		return err
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json", body)
	return nil
}

// decodePayloads reads a codec request body: {"payloads":[{"metadata":{...},"data":"..."}]},
// refusing unknown fields.
func decodePayloads(data []byte) ([]*commonpb.Payload, *problem.Problem) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, problem.InvalidField(problem.BodyField, "a JSON object is required")
	}
	var in commonpb.Payloads
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, &in); err != nil {
		return nil, problem.InvalidField(problem.BodyField, "must be {\"payloads\":[...]} in Temporal's JSON form")
	}
	return in.Payloads, nil
}
