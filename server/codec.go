package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onboarding-service/onboarding/internal/codec"
)

// Temporal's remote codec protocol: support staff point the Temporal UI (Settings, Codec
// Server) or the CLI (--codec-endpoint, --codec-auth) at <API>/codec and see decoded payloads.
// POST /codec/decode and /codec/encode take and return {"payloads":[...]} in protobuf JSON.
// Served only with PAYLOAD_ENCRYPTION_KEY and CODEC_AUTH_TOKEN both set, behind that token;
// CODEC_CORS_ORIGIN names the UI origins a browser may call from.

// codecPreflightMaxAge lets a browser cache the preflight for 10 minutes.
const codecPreflightMaxAge = "600"

func (s *Server) codecRoutes(r *gin.Engine) {
	if s.cfg.PayloadKey == nil || s.cfg.CodecAuthToken == "" {
		return
	}
	c := codec.New(*s.cfg.PayloadKey, s.cfg.PayloadKeysPrevious...)
	want := sha256.Sum256([]byte(s.cfg.CodecAuthToken))
	g := r.Group("/codec", s.codecCORS)
	for path, op := range map[string]func([]*commonpb.Payload) ([]*commonpb.Payload, error){
		"/decode": c.Decode,
		"/encode": c.Encode,
	} {
		g.OPTIONS(path, s.codecPreflight)
		g.POST(path, codecAuth(want), handle(codecHandler(op)))
	}
}

// codecCORS answers browsers of the allowed origins (the Temporal UI's), and only them.
func (s *Server) codecCORS(c *gin.Context) {
	origin := c.GetHeader("Origin")
	c.Writer.Header().Add("Vary", "Origin")
	if origin == "" {
		c.Next() // not a browser, or same origin: CORS does not apply
		return
	}
	if !slices.Contains(s.cfg.CodecCORSOrigins, origin) {
		writeProblem(c, newProblem(contract.CodeForbidden, "This origin may not call the codec endpoint; see CODEC_CORS_ORIGIN."))
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	c.Next()
}

// codecPreflight answers a CORS preflight (the origin was checked by codecCORS).
func (s *Server) codecPreflight(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	// The UI sends its namespace and, when told to, the access token.
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	h.Set("Access-Control-Max-Age", codecPreflightMaxAge)
	c.Status(http.StatusNoContent)
	c.Abort()
}

// codecAuth requires `Authorization: Bearer <CODEC_AUTH_TOKEN>`, compared in constant time
// (hashes of equal length, so the token's length does not show either).
func codecAuth(want [sha256.Size]byte) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := bearerToken(c.GetHeader("Authorization"))
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="onboarding-codec"`)
			writeProblem(c, newProblem(contract.CodeUnauthorized, "Send the codec token in the Authorization header: Bearer <CODEC_AUTH_TOKEN>."))
			return
		}
		c.Next()
	}
}

func codecHandler(op func([]*commonpb.Payload) ([]*commonpb.Payload, error)) func(*gin.Context) error {
	return func(c *gin.Context) error {
		data, err := readJSON(c)
		if err != nil {
			return err
		}
		payloads, p := decodePayloads(data)
		if p != nil {
			return p
		}
		out, err := op(payloads)
		if errors.Is(err, codec.ErrUnknownKey) || errors.Is(err, codec.ErrCorrupt) {
			return invalidField("payloads", err.Error())
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
}

// decodePayloads reads a codec request body: {"payloads":[{"metadata":{...},"data":"..."}]},
// refusing unknown fields.
func decodePayloads(data []byte) ([]*commonpb.Payload, *problem) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, invalidField(bodyField, "a JSON object is required")
	}
	var in commonpb.Payloads
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, &in); err != nil {
		return nil, invalidField(bodyField, "must be {\"payloads\":[...]} in Temporal's JSON form")
	}
	return in.Payloads, nil
}
