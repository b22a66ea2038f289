package e2e

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/onboarding-service/onboarding/client"
	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
)

// inviteJane is the README's example of the Go client (section "The Go client"), character for
// character: TestReadmeExampleIsTheCode fails when the two differ.
func inviteJane(ctx context.Context, hc *http.Client, server, token string) (*client.Invitation, error) {
	c, err := client.NewClientWithResponses(server, client.WithHTTPClient(hc),
		client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	if err != nil {
		return nil, err
	}
	acct, err := c.CreateAccountWithResponse(ctx, client.NameRequest{Name: "Acme"})
	if err != nil {
		return nil, err
	}
	if acct.JSON201 == nil {
		return nil, fmt.Errorf("create account: %d %s", acct.StatusCode(), acct.Body)
	}
	sub, err := c.CreateSubscriptionWithResponse(ctx, acct.JSON201.Id, client.SubscriptionCreate{
		Application: "Adobe Creative Cloud", Name: "Design Team", Seats: 10,
		Roles: []string{"viewer", "editor"},
	})
	if err != nil {
		return nil, err
	}
	if sub.JSON201 == nil {
		return nil, fmt.Errorf("create subscription: %d %s", sub.StatusCode(), sub.Body)
	}
	email, first, last := client.Email("jane@acme.test"), "Jane", "Doe"
	inv, err := c.CreateInvitationWithResponse(ctx, acct.JSON201.Id, nil, client.InvitationCreate{
		SubscriptionId: sub.JSON201.Id, Role: "editor",
		Email: &email, FirstName: &first, LastName: &last,
	})
	if err != nil {
		return nil, err
	}
	if inv.JSON201 == nil {
		return nil, fmt.Errorf("create invitation: %d %s", inv.StatusCode(), inv.Body)
	}
	return inv.JSON201, nil // pending; inv.JSON201.InviteUrl is Jane's link
}

// TestReadmeExample runs the README's client example against the stack.
func TestReadmeExample(t *testing.T) {
	inv, err := inviteJane(context.Background(), apitest.HTTPClient, stack.API.URL, stack.Token)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Status != client.InvitationStatus("pending") || inv.Email != "jane@acme.test" || inv.InviteUrl == nil {
		t.Fatalf("invitation %+v, want pending for jane@acme.test with a link", inv)
	}
	waitEmail(t, "jane@acme.test", "", 1)
}

// TestReadmeExampleIsTheCode checks that the README's Go block is inviteJane's source.
func TestReadmeExampleIsTheCode(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- client example: internal/testkit/e2e/readme_example_test.go inviteJane -->\n```go\n", "```\n"
	_, block, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README.md has no %q", start)
	}
	block, _, ok = strings.Cut(block, end)
	if !ok {
		t.Fatal("README.md: the client example's block does not end")
	}

	src, err := os.ReadFile("readme_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "readme_example_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var code string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "inviteJane" {
			code = string(src[fset.Position(fn.Pos()).Offset:fset.Position(fn.End()).Offset]) + "\n"
		}
	}
	if code == "" {
		t.Fatal("no func inviteJane in readme_example_test.go")
	}
	if block != code {
		t.Fatalf("README.md's client example differs from inviteJane:\n--- README\n%s\n--- inviteJane\n%s", block, code)
	}
}
