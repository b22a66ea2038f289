package faults

import (
	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
	"github.com/onboarding-service/onboarding/internal/testkit/openapicheck"
	"github.com/onboarding-service/onboarding/server/api"
)

// Every call the fault suite makes through apitest is held to the API's OpenAPI document, as the
// e2e suite's are: what the service answers while its parts crash, restart or lose Postgres must
// be documented too (internal/testkit/openapicheck has the rules).
func init() {
	v, err := openapicheck.New(api.OpenAPIDocument())
	if err != nil {
		panic(err)
	}
	apitest.HTTPClient.Transport = v.Transport(apitest.HTTPClient.Transport)
}
