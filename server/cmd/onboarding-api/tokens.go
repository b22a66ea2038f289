package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
)

// tokenStore is what the tokens commands need of *store.Store.
type tokenStore interface {
	CreateAPIToken(ctx context.Context, name string, accountID *uuid.UUID) (store.APIToken, string, error)
	ListAPITokens(ctx context.Context) ([]store.APITokenInfo, error)
	RevokeAPIToken(ctx context.Context, id uuid.UUID) (store.APITokenInfo, error)
}

const tokensUsage = `usage:
  onboarding-api tokens create --name NAME [--account ACCOUNT_ID]
      create an API token; it is printed once, on standard output, and stored as a hash only.
      Without --account the token acts on every account (the portal's); with it, on that one.
  onboarding-api tokens list
      list tokens: id, name, scope, created, revoked (never the token)
  onboarding-api tokens revoke TOKEN_ID
      revoke a token; every API replica refuses it from the next request on`

// errUsage marks a mistake in the command line (exit status 2).
var errUsage = errors.New("bad usage")

// runTokens runs `onboarding-api tokens ...`. The token goes to stdout alone, so a script can
// capture it (TOKEN=$(onboarding-api tokens create --name portal)); messages go to stderr.
func runTokens(ctx context.Context, st tokenStore, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokensUsage)
		return errUsage
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		name := fs.String("name", "", "what the token is for (e.g. portal)")
		account := fs.String("account", "", "limit the token to this account id")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *name == "" {
			fmt.Fprintln(stderr, tokensUsage)
			return errUsage
		}
		var accountID *uuid.UUID
		if *account != "" {
			id, err := uuid.Parse(*account)
			if err != nil {
				return fmt.Errorf("--account %q is not an account id", *account)
			}
			accountID = &id
		}
		t, token, err := st.CreateAPIToken(ctx, *name, accountID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no account %s", *account)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Created API token %s (%s) for %s.\nCopy it now: it is shown only this once; only its hash is stored.\n",
			t.ID, t.Name, scope(t.AccountID))
		fmt.Fprintln(stdout, token)
		return nil
	case "list":
		if len(args) != 1 {
			fmt.Fprintln(stderr, tokensUsage)
			return errUsage
		}
		list, err := st.ListAPITokens(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tSCOPE\tCREATED\tREVOKED")
		for _, t := range list {
			revoked := "-"
			if t.RevokedAt != nil {
				revoked = t.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, scope(t.AccountID), t.CreatedAt.UTC().Format(time.RFC3339), revoked)
		}
		return w.Flush()
	case "revoke":
		if len(args) != 2 {
			fmt.Fprintln(stderr, tokensUsage)
			return errUsage
		}
		id, err := uuid.Parse(args[1])
		if err != nil {
			return fmt.Errorf("%q is not a token id (see: onboarding-api tokens list)", args[1])
		}
		t, err := st.RevokeAPIToken(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no API token %s", id)
		case errors.Is(err, store.ErrAlreadyRevoked):
			fmt.Fprintf(stderr, "API token %s (%s) was already revoked at %s.\n", t.ID, t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
			return nil
		case err != nil:
			return err
		}
		fmt.Fprintf(stderr, "Revoked API token %s (%s).\n", t.ID, t.Name)
		return nil
	default:
		fmt.Fprintln(stderr, tokensUsage)
		return errUsage
	}
}

func scope(accountID *uuid.UUID) string {
	if accountID == nil {
		return "all accounts"
	}
	return "account " + accountID.String()
}
