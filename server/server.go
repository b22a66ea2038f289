// Package server is the onboarding service's HTTP side, split by job into its subpackages: api
// (the JSON API and its router), pages (the hosted invitee page), codecserver (Temporal's codec
// endpoint), and the small packages they share (invitee, problem, ratelimit, workflowclient,
// jsonbody, bearer). This package only forwards to api for the callers that still build the
// API through it (internal/e2e); new code imports server/api.
package server

import (
	"net/http"

	"github.com/onboarding-service/onboarding/server/api"
)

// Deps are what the API needs from the process that runs it (api.Deps).
type Deps = api.Deps

// New returns the API's HTTP handler (api.New).
func New(d Deps) http.Handler { return api.New(d) }
