package activities

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// update rewrites the golden files from the current templates: go test ./activities -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixedLinks makes the invite link depend on the invitation and generation only.
type fixedLinks struct{}

func (fixedLinks) InviteURL(id uuid.UUID, generation int) string {
	return fmt.Sprintf("https://portal.example/invite?token=tok-%s-g%d", id.String()[:8], generation)
}

// goldenInvitations are the cases every kind of email is rendered for.
func goldenInvitations() map[string]store.Invitation {
	base := store.Invitation{
		NewInvitation: store.NewInvitation{
			ID:           uuid.MustParse("0b6f3c2e-8d1a-4c5e-9f00-1a2b3c4d5e6f"),
			Application:  "Adobe Creative Cloud",
			Role:         "editor",
			Email:        "jane.doe@example.test",
			FirstName:    "Jane",
			LastName:     "Doe",
			InviterName:  "Ada Admin",
			InviterEmail: "ada@acme.test",
			// 23:30 in New York is the next day in UTC: the emails must say the UTC one.
			ExpiresAt: time.Date(2026, 11, 27, 23, 30, 0, 0, mustZone("America/New_York")),
		},
		AccountName:  "Acme Corp",
		Subscription: "Design Team",
		Status:       contract.StatusPending,
		Generation:   2,
	}
	noInviter := base
	noInviter.InviterName, noInviter.InviterEmail = "", ""
	noInviter.FirstName, noInviter.LastName = "", ""
	hostile := base
	hostile.FirstName = `<script>alert(1)</script>`
	hostile.LastName = `O'Brien & "Sons"`
	hostile.AccountName = `Tom & Jerry <b>Studio</b>`
	hostile.Application = `App"><img src=x onerror=alert(2)>`
	hostile.Subscription = `Team {{.Link}}`
	hostile.Role = `admin</strong><a href="https://evil.example">`
	hostile.InviterName = "Mallory\r\nBcc: victim@example.test"
	hostile.InviterEmail = `mallory@evil.example`
	return map[string]store.Invitation{"plain": base, "no_inviter": noInviter, "escaping": hostile}
}

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("EST", -5*3600)
	}
	return loc
}

func goldenActivities() *Activities {
	return &Activities{Links: fixedLinks{}, From: "Acme Onboarding <onboarding@acme.test>", PortalURL: "https://portal.example"}
}

// TestEmailGolden renders each email kind for each case and compares its subject, text part and
// HTML part with testdata/golden.
func TestEmailGolden(t *testing.T) {
	a := goldenActivities()
	for name, inv := range goldenInvitations() {
		for _, kind := range []contract.EmailKind{contract.KindInvite, contract.KindReminder, contract.KindWelcome, contract.KindRenewalRequest} {
			t.Run(string(kind)+"/"+name, func(t *testing.T) {
				msg, err := a.render(inv, SendEmailInput{InvitationID: inv.ID, Generation: inv.Generation, Kind: kind, Seq: 1})
				if err != nil {
					t.Fatal(err)
				}
				head := fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\n\n", msg.From, msg.To, msg.Subject)
				golden(t, string(kind)+"."+name+".txt", head+msg.Text)
				golden(t, string(kind)+"."+name+".html", msg.HTML)
			})
		}
	}
}

// TestEmailContent checks what every email must say, beyond the golden files' exact text.
func TestEmailContent(t *testing.T) {
	a := goldenActivities()
	inv := goldenInvitations()["plain"]
	for _, kind := range []contract.EmailKind{contract.KindInvite, contract.KindReminder, contract.KindWelcome, contract.KindRenewalRequest} {
		msg, err := a.render(inv, SendEmailInput{InvitationID: inv.ID, Generation: inv.Generation, Kind: kind, Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		link := "https://portal.example/invite?token=tok-0b6f3c2e-g2"
		if kind == contract.KindWelcome || kind == contract.KindRenewalRequest {
			link = "https://portal.example"
		}
		want := []string{"Ada Admin", "Acme Corp", "Adobe Creative Cloud", "Design Team", "editor", link}
		if kind != contract.KindWelcome {
			want = append(want, "Saturday, 28 November 2026 at 04:30 UTC")
		}
		for part, body := range map[string]string{"text": msg.Text, "html": msg.HTML} {
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("%s %s part lacks %q", kind, part, w)
				}
			}
		}
		if msg.Subject == "" || strings.ContainsAny(msg.Subject, "\r\n") {
			t.Errorf("%s subject %q", kind, msg.Subject)
		}
		if !strings.HasPrefix(msg.HTML, "<!doctype html>") || !strings.Contains(msg.HTML, `<html lang="en">`) {
			t.Errorf("%s HTML part is not a whole document", kind)
		}
	}
	if msg, _ := a.render(inv, SendEmailInput{InvitationID: inv.ID, Generation: 2, Kind: contract.KindRenewalRequest}); msg.To != "ada@acme.test" {
		t.Errorf("renewal request goes to %q, want the inviter", msg.To)
	}
}

// TestEmailEscaping: a hostile value is text in the HTML part and plain in the text part.
func TestEmailEscaping(t *testing.T) {
	a := goldenActivities()
	inv := goldenInvitations()["escaping"]
	for _, kind := range []contract.EmailKind{contract.KindInvite, contract.KindReminder, contract.KindWelcome, contract.KindRenewalRequest} {
		msg, err := a.render(inv, SendEmailInput{InvitationID: inv.ID, Generation: inv.Generation, Kind: kind, Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"<script", "<img", "<b>", `href="https://evil.example"`} {
			if strings.Contains(msg.HTML, bad) {
				t.Errorf("%s HTML part holds %q unescaped", kind, bad)
			}
		}
		// A value is data, never a template: "{{.Link}}" in a name stays as typed.
		for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "Tom &amp; Jerry &lt;b&gt;Studio&lt;/b&gt;", "Team {{.Link}}"} {
			if !strings.Contains(msg.HTML, escaped) {
				t.Errorf("%s HTML part lacks %q", kind, escaped)
			}
		}
		if !strings.Contains(msg.Text, "Tom & Jerry <b>Studio</b>") || strings.Contains(msg.Text, "&amp;") || strings.Contains(msg.Text, "&lt;") {
			t.Errorf("%s text part is not plain:\n%s", kind, msg.Text)
		}
		if kind != contract.KindRenewalRequest && kind != contract.KindWelcome && !strings.Contains(msg.Text, "<script>alert(1)</script>") {
			t.Errorf("%s text part lacks the first name as typed", kind)
		}
		if strings.ContainsAny(msg.Subject, "\r\n") {
			t.Errorf("%s subject %q spans lines", kind, msg.Subject)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./activities -run Golden -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./activities -run Golden -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
