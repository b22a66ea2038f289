package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/devstack"
	stacktest "github.com/onboarding-service/onboarding/internal/testkit/stack"
	"github.com/onboarding-service/onboarding/server/api"
)

// TestMain starts the one stack the package's tests share: a Temporal dev server, a Postgres
// database of its own and a real worker (internal/testkit/stack), with a Resend stand-in as the
// only fake. It lives in the external test package because stacktest imports server; the
// package's own tests get the stack through api.UseStack (stack_test.go). A stack that
// cannot start fails the run: `make test` provides Postgres and the Temporal CLI.
func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(root, "test-artifacts"), 0o755); err != nil {
		return 0, err
	}
	// Everything the stack logs (API, worker, Temporal SDK) goes to the file for people and to
	// the buffer for the tests that check what is logged.
	f, err := os.Create(filepath.Join(root, "test-artifacts", "server.log"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	logs := &syncBuffer{}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := stacktest.Start(ctx, stacktest.Options{Name: "server", Log: io.MultiWriter(f, logs)})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	api.UseStack(api.TestStack{
		Cfg: st.Cfg, ShortCfg: st.ShortCfg, DBURL: st.DBURL, Store: st.Store, Temporal: st.Temporal,
		Resend: st.Resend, Token: st.Token, Logs: logs.String,
	})
	return m.Run(), nil
}

// syncBuffer is a log sink that tests can read while the stack writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
