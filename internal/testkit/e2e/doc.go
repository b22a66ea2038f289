// Package e2e holds the end-to-end tests: the real API router and a real worker against a real
// Temporal dev server and a real Postgres database, with Resend's remote API the only stand-in.
package e2e
