// Package faults holds the service's fault-injection tests: the real API and worker binaries,
// built afresh and run as child processes against a Temporal dev server on a SQLite file, a
// Postgres database of their own and a test server speaking Resend's HTTP API, while the tests
// kill, stop and restart processes, terminate database connections, make Resend fail and race
// requests against each other. Each test then checks, over HTTP and in SQL, that nothing was
// lost or done twice. See docs/operations.md for what each fault means in production.
//
// TestRecordHistories also records the histories of every lifecycle path from real runs; with
// -record it writes them to workflows/testdata/histories, which workflows/replay_test.go replays:
//
//	go test ./internal/testkit/faults -run TestRecordHistories -record
package faults
