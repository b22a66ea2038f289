package e2e

import (
	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
	"github.com/onboarding-service/onboarding/internal/testkit/openapicheck"
	"github.com/onboarding-service/onboarding/server/api"
)

// Every call the package makes through apitest (apitest.Call, apitest.RoundTrip and the typed
// client, all on apitest.HTTPClient) is held to the API's OpenAPI document: a mismatch is the
// call's error, so the test fails on it (internal/testkit/openapicheck has the rules).
func init() {
	v, err := openapicheck.New(api.OpenAPIDocument())
	if err != nil {
		panic(err)
	}
	apitest.HTTPClient.Transport = v.Transport(apitest.HTTPClient.Transport)
}
