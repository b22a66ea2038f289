package pages

import (
	"cmp"
	"strings"
	"time"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// What the pages say about an invitation.

// pageInvitation is what the page says about an invitation.
type pageInvitation struct {
	Account      string
	Application  string
	Plan         string
	Role         string
	Email        string
	FirstName    string
	InviterName  string
	InviterEmail string
	Expires      string
	ExpiresISO   string
	// ExpiryLabel heads the expiry line ("Valid until", "Expired on"); empty hides it.
	ExpiryLabel string
	// MessageLines is the inviter's note, line by line.
	MessageLines []string
}

func newPageInvitation(inv store.Invitation) *pageInvitation {
	exp := inv.ExpiresAt.UTC()
	return &pageInvitation{
		Account: inv.AccountName, Application: inv.Application, Plan: inv.Subscription, Role: inv.Role,
		Email: inv.Email, FirstName: inv.FirstName,
		InviterName: inv.InviterName, InviterEmail: inv.InviterEmail,
		Expires: exp.Format(contract.ExpiryLayout), ExpiresISO: exp.Format(time.RFC3339),
		MessageLines: messageLines(inv.Message),
	}
}

// messageLines splits the inviter's note into its lines; none when there is no note.
func messageLines(msg string) []string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return nil
	}
	return strings.Split(msg, "\n")
}

// initial is the first letter of a name, for the page's monogram.
func initial(name string) string {
	for _, r := range strings.TrimSpace(name) {
		return strings.ToUpper(string(r))
	}
	return "?"
}

// inviter names who invited, for sentences: "Ada Admin" or a fallback such as "the person who
// invited you".
func (p *pageInvitation) inviter(fallback string) string {
	return cmp.Or(p.InviterName, fallback)
}

// contact says how to reach the inviter: "Ada Admin (ada@acme.test)".
func (p *pageInvitation) contact() string {
	switch {
	case p.InviterName != "" && p.InviterEmail != "":
		return p.InviterName + " (" + p.InviterEmail + ")"
	case p.InviterEmail != "":
		return p.InviterEmail
	}
	return p.inviter("the person who invited you")
}
