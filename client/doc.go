// Package client is a typed Go client of the onboarding API, generated from
// server/api/openapi.yaml by oapi-codegen (onboarding.gen.go, configured by oapi-codegen.yaml).
// Regenerate it with `make generate` after a change of the document; `make test` fails when it
// is stale (`make check-generated`). NewClientWithResponses returns a client whose methods
// answer the decoded body of each documented status (JSON201, ApplicationproblemJSON422, ...);
// the README has an example. typescript/onboarding.d.ts holds the same document's types for
// the portal (openapi-typescript).
package client
