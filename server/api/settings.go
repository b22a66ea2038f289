package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/onboarding-service/onboarding/server/jsonbody"
	"github.com/onboarding-service/onboarding/server/problem"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/accountpolicy"
	"github.com/onboarding-service/onboarding/internal/store"
)

// An account's settings: GET and PUT /v1/accounts/{account_id}/settings. The email domains
// its invitations may go to (each with its subdomains; empty: any) and the origins their
// redirect_url may point to (empty: none). Entries are stored and answered in the canonical
// form internal/accountpolicy gives them; create, bulk and renew apply them.

// maxSettingsEntries bounds each list of the settings.
const maxSettingsEntries = 100

type settingsBody struct {
	AllowedEmailDomains    []string `json:"allowed_email_domains" max:"100"`
	AllowedRedirectOrigins []string `json:"allowed_redirect_origins" max:"100"`
}

// decodeSettings decodes and checks a put-settings body: both lists are required (an empty
// list is a value), each entry is normalised, a bad one is named by its index, and entries
// equal once normalised count once, in the order first given.
func decodeSettings(data []byte) (accountpolicy.Settings, *problem.Problem) {
	var b settingsBody
	if p := jsonbody.Decode(data, &b); p != nil {
		return accountpolicy.Settings{}, p
	}
	var v fieldChecker
	st := accountpolicy.Settings{
		AllowedEmailDomains:    normalizeEntries(&v, "allowed_email_domains", b.AllowedEmailDomains, accountpolicy.NormalizeDomain),
		AllowedRedirectOrigins: normalizeEntries(&v, "allowed_redirect_origins", b.AllowedRedirectOrigins, accountpolicy.NormalizeOrigin),
	}
	return st, v.problem()
}

// normalizeEntries normalises one list of the settings; nil (absent or null) is refused.
func normalizeEntries(v *fieldChecker, field string, entries []string, normalize func(string) (string, error)) []string {
	if entries == nil {
		v.add(field, "is required (an empty list is allowed)")
		return []string{}
	}
	if len(entries) > maxSettingsEntries { // jsonbody's max tag refuses these first
		v.add(field, fmt.Sprintf("must have at most %d entries", maxSettingsEntries))
		return []string{}
	}
	out := make([]string, 0, len(entries))
	for i, e := range entries {
		n, err := normalize(e)
		if err != nil {
			v.add(fmt.Sprintf("%s[%d]", field, i), err.Error())
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// getAccountSettings answers the account's settings (both lists empty until a put).
func (s *Server) getAccountSettings(c *gin.Context) error {
	st, err := s.accountSettings(c.Request.Context(), account(c).ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

// putAccountSettings replaces the account's settings and answers them as stored. They apply
// to what is created or renewed from then on.
func (s *Server) putAccountSettings(c *gin.Context) error {
	st, err := readRequest(c, decodeSettings)
	if err != nil {
		return err
	}
	err = s.store.PutAccountSettings(c.Request.Context(), account(c).ID, st)
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("account")
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

// accountSettings reads an account's settings, for the settings routes and for the checks of
// create, bulk and renew (EmailAllowed, RedirectAllowed). Its lists are never nil.
func (s *Server) accountSettings(ctx context.Context, accountID uuid.UUID) (accountpolicy.Settings, error) {
	return s.store.AccountSettings(ctx, accountID)
}
