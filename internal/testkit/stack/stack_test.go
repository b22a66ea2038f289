package stack

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/onboarding-service/onboarding/internal/store/migrations"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"
)

// TestDropAbandoned: a test database whose owner is gone is dropped; one whose owner lives is
// kept.
func TestDropAbandoned(t *testing.T) {
	ctx := context.Background()
	live, err := databaseURL(os.Getenv("DATABASE_URL"), "sweep")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(live)
	// Above Linux's largest pid (4194304): no process can own it.
	u.Path = fmt.Sprintf("/onboarding_sweep_p%d_%s", 4194305+1, RandomHex(6))
	dead := u.String()
	for _, db := range []string{live, dead} {
		if err := migrations.EnsureDatabase(ctx, db); err != nil {
			t.Fatalf("postgres (make test starts it): %v", err)
		}
		t.Cleanup(func() { _ = testdb.Drop(context.Background(), db) })
	}
	if err := dropAbandoned(ctx, live); err != nil {
		t.Fatal(err)
	}
	exists := func(db string) bool {
		s, err := store.Open(ctx, db)
		if err != nil {
			return false
		}
		s.Close()
		return true
	}
	if !exists(live) {
		t.Error("the live run's database was dropped")
	}
	if exists(dead) {
		t.Error("the abandoned database is still there")
	}
}
