// Package codecserver is Temporal's remote codec endpoint: support staff point the Temporal UI
// (Settings, Codec Server) or the CLI (--codec-endpoint, --codec-auth) at <API>/codec and see
// decoded payloads. It exposes the endpoint's handlers; the API mounts them at /codec/decode and
// /codec/encode and answers their errors as problems.
package codecserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/onboarding-service/onboarding/server/bearer"
	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/config"
)

// POST /codec/decode and /codec/encode take and return {"payloads":[...]} in protobuf JSON.
// Served only with PAYLOAD_ENCRYPTION_KEY and CODEC_AUTH_TOKEN both set, behind that token;
// CODEC_CORS_ORIGIN names the UI origins a browser may call from.

// codecPreflightMaxAge lets a browser cache the preflight for 10 minutes.
const codecPreflightMaxAge = "600"

// Endpoint holds the codec and the settings of the endpoint.
type Endpoint struct {
	codec   *codec.Codec
	origins []string
	// token is the hash of CODEC_AUTH_TOKEN.
	token [sha256.Size]byte
}

// New returns the endpoint, or nil when it is not served: it needs PAYLOAD_ENCRYPTION_KEY and
// CODEC_AUTH_TOKEN both set.
func New(cfg config.Config) *Endpoint {
	if cfg.PayloadKey == nil || cfg.CodecAuthToken == "" {
		return nil
	}
	return &Endpoint{
		codec:   codec.New(*cfg.PayloadKey, cfg.PayloadKeysPrevious...),
		origins: cfg.CodecCORSOrigins,
		token:   sha256.Sum256([]byte(cfg.CodecAuthToken)),
	}
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
	// The UI sends its namespace and, when told to, the access token.
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	h.Set("Access-Control-Max-Age", codecPreflightMaxAge)
	c.Status(http.StatusNoContent)
	c.Abort()
}

// Auth requires `Authorization: Bearer <CODEC_AUTH_TOKEN>`, compared in constant time
// (hashes of equal length, so the token's length does not show either).
func (e *Endpoint) Auth(c *gin.Context) {
	token, ok := bearer.Token(c.GetHeader("Authorization"))
	got := sha256.Sum256([]byte(token))
	if !ok || subtle.ConstantTimeCompare(got[:], e.token[:]) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="onboarding-codec"`)
		problem.Write(c, problem.New(contract.CodeUnauthorized, "Send the codec token in the Authorization header: Bearer <CODEC_AUTH_TOKEN>."))
		return
	}
	c.Next()
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
