package activities

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html"
	htmltemplate "html/template"
	"log/slog"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onboarding-service/onboarding/internal/metrics"
	"github.com/onboarding-service/onboarding/internal/store"
)

// stillDue says whether an email is still worth sending given the invitation's current row.
func stillDue(inv store.Invitation, in SendEmailInput) bool {
	switch in.Kind {
	case contract.KindWelcome:
		return true
	case contract.KindRenewalRequest:
		return inv.Status == contract.StatusExpired && inv.Generation == in.Generation && inv.InviterEmail != ""
	default:
		return inv.Status == contract.StatusPending && inv.Generation == in.Generation
	}
}

// Message is one rendered email.
type Message struct {
	From           string
	To             string
	Subject        string
	HTML           string
	Text           string
	IdempotencyKey string
	Tags           map[string]string
	// Link is the call to action, for the dev mailbox's log; it is part of HTML and Text already.
	Link string
}

// ErrRejected marks a permanent refusal by the email provider.
var ErrRejected = errors.New("email rejected")

//go:embed templates
var templateFiles embed.FS

// Both template sets see the same helpers; html/template escapes every value for its context,
// text/template writes values as they are (a text part is plain text, nothing interprets it).
var (
	htmlTemplates = htmltemplate.Must(htmltemplate.New("").Funcs(htmltemplate.FuncMap{
		"button": func(link, label string) map[string]string { return map[string]string{"Link": link, "Label": label} },
	}).ParseFS(templateFiles, "templates/*.html"))
	textTemplates = texttemplate.Must(texttemplate.New("").ParseFS(templateFiles, "templates/*.txt"))
)

// SendEmailInput names one email of an invitation: its kind and, for invites, the send number
// (1 for the first, then one more per resend), which together with the generation make the
// idempotency key.
type SendEmailInput struct {
	InvitationID uuid.UUID
	Generation   int
	Kind         contract.EmailKind
	Seq          int
}

// IdempotencyKey is the key of the email in the store and at Resend.
func (in SendEmailInput) IdempotencyKey() string {
	return fmt.Sprintf("invitation-%s-g%d-%s-%d", in.InvitationID, in.Generation, in.Kind, in.Seq)
}

// SendEmailResult reports the delivery.
type SendEmailResult struct {
	Status contract.DeliveryStatus // sent, failed or skipped
	Error  string
}

// emailData is what the templates see. html/template escapes every value; subjects go through
// oneLine.
type emailData struct {
	Email     string
	FirstName string
	LastName  string
	FullName  string // first and last name; empty when the invitation has neither
	// Invitee names the invitee for others: "Jane Doe (jane@example.com)", or the email alone.
	Invitee      string
	InviterName  string
	InviterEmail string
	Account      string
	Application  string
	Plan         string // the subscription's name
	Role         string
	ExpiresAt    string // in UTC, spelled out
	Link         string
	// Preheader is the line mail clients show after the subject; Footer says why the recipient
	// got the email.
	Preheader string
	Footer    string
	// MessageLines is the inviter's note (the invitation's message), line by line; none when empty.
	MessageLines []string
}

// SendEmail renders and sends one email of an invitation, at most once per idempotency key.
func (a *Activities) SendEmail(ctx context.Context, in SendEmailInput) (SendEmailResult, error) {
	key := in.IdempotencyKey()
	inv, err := a.Store.GetInvitation(ctx, in.InvitationID)
	if err != nil {
		return SendEmailResult{}, businessError(err)
	}
	stored, err := a.Store.GetEmail(ctx, key)
	switch {
	case err == nil && stored.Status != contract.DeliveryQueued: // an earlier attempt finished; do not send again
		return SendEmailResult{Status: stored.Status, Error: stored.Error}, nil
	case err == nil:
		// An earlier attempt began this email and may have reached Resend: finish it with the
		// same key and the same content, even if the invitation moved on since.
	case !errors.Is(err, store.ErrNotFound):
		return SendEmailResult{}, err
	case !stillDue(inv, in):
		// Revoked, declined, accepted or renewed meanwhile: the link in this email is dead.
		a.Metrics.Email(in.Kind, string(contract.DeliverySkipped))
		return SendEmailResult{Status: contract.DeliverySkipped}, nil
	case a.overCap(ctx, inv, in):
		// One address gets so many invitations a day from all accounts together, and no more:
		// recorded as failed, so the portal sees why, and never retried.
		reason := fmt.Sprintf("not sent: %s already got %d invitation emails in 24 hours (EMAIL_RECIPIENT_DAILY_CAP)", contract.MaskEmail(inv.Email), a.RecipientDailyCap)
		a.Metrics.Email(in.Kind, string(contract.DeliveryFailed))
		if _, err := a.Store.BeginEmail(ctx, store.Email{
			IdempotencyKey: key, InvitationID: inv.ID, Kind: in.Kind, Recipient: inv.Email, Subject: "(not sent)",
		}, 0); err != nil {
			return SendEmailResult{}, err
		}
		if err := a.finishEmail(ctx, key, contract.DeliveryFailed, "", reason); err != nil {
			return SendEmailResult{}, err
		}
		a.logger(ctx, inv).Warn("email not sent: recipient's daily cap reached", "kind", in.Kind, "cap", a.RecipientDailyCap)
		return SendEmailResult{Status: contract.DeliveryFailed, Error: reason}, nil
	default:
		msg, err := a.render(inv, in)
		if err != nil {
			return SendEmailResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTemplate, err)
		}
		inviteSeq := 0
		if in.Kind == contract.KindInvite {
			inviteSeq = in.Seq
		}
		// Stored with the invite link replaced by a placeholder: a link is a key to an account,
		// and the table is read by more people and kept longer than an email in flight.
		link := secretLink(a.linkOf(inv, in), in.Kind)
		if stored, err = a.Store.BeginEmail(ctx, store.Email{
			IdempotencyKey: key, InvitationID: inv.ID, Kind: in.Kind, Recipient: msg.To,
			Subject: msg.Subject, HTML: withoutLink(msg.HTML, link, true), Text: withoutLink(msg.Text, link, false),
		}, inviteSeq); err != nil {
			return SendEmailResult{}, err
		}
		if stored.Status != contract.DeliveryQueued {
			return SendEmailResult{Status: stored.Status, Error: stored.Error}, nil
		}
	}
	link := a.linkOf(inv, in)
	msg := Message{
		From: a.From, To: stored.Recipient, Subject: stored.Subject,
		HTML: withLink(stored.HTML, secretLink(link, in.Kind), true), Text: withLink(stored.Text, secretLink(link, in.Kind), false),
		IdempotencyKey: key, Tags: map[string]string{"kind": string(in.Kind)}, Link: link,
	}
	providerID, err := a.Mailer.Send(ctx, msg)
	switch {
	case errors.Is(err, ErrRejected):
		a.Metrics.Email(in.Kind, string(contract.DeliveryFailed))
		if ferr := a.finishEmail(ctx, key, contract.DeliveryFailed, "", err.Error()); ferr != nil {
			return SendEmailResult{}, ferr
		}
		a.logger(ctx, inv).Warn("email rejected", "kind", in.Kind, "error", err)
		return SendEmailResult{Status: contract.DeliveryFailed, Error: err.Error()}, nil
	case err != nil:
		a.Metrics.Email(in.Kind, metrics.EmailResultError)
		return SendEmailResult{}, err // retried with the same idempotency key
	}
	a.Metrics.Email(in.Kind, string(contract.DeliverySent))
	if err := a.finishEmail(ctx, key, contract.DeliverySent, providerID, ""); err != nil {
		return SendEmailResult{}, err
	}
	return SendEmailResult{Status: contract.DeliverySent}, nil
}

// finishEmail records a send's outcome, retrying within this attempt: once Resend has the
// email, the record must follow even if the invitation closes before another attempt would run.
func (a *Activities) finishEmail(ctx context.Context, key string, status contract.DeliveryStatus, providerID, errMsg string) error {
	wait := 100 * time.Millisecond
	for {
		err := a.Store.FinishEmail(ctx, key, status, providerID, errMsg)
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// MarkEmailFailedInput records that an email could not be delivered after all retries.
type MarkEmailFailedInput struct {
	Email  SendEmailInput
	Reason string
}

// MarkEmailFailed records a final delivery failure so the portal and support see it.
func (a *Activities) MarkEmailFailed(ctx context.Context, in MarkEmailFailedInput) error {
	err := a.Store.FinishEmail(ctx, in.Email.IdempotencyKey(), contract.DeliveryFailed, "", in.Reason)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the email never got as far as being recorded
	}
	return err
}

func (a *Activities) render(inv store.Invitation, in SendEmailInput) (Message, error) {
	d := newEmailData(inv)
	d.Link = a.linkOf(inv, in)
	to := inv.Email
	var subject string
	switch in.Kind {
	case contract.KindInvite:
		subject = fmt.Sprintf("You're invited to join %s on %s", d.Account, d.Application)
		if d.InviterName != "" {
			subject = fmt.Sprintf("%s invited you to join %s on %s", d.InviterName, d.Account, d.Application)
		}
		d.Preheader = fmt.Sprintf("Join %s on %s as %s. The invitation is valid until %s.", d.Account, d.Application, d.Role, d.ExpiresAt)
	case contract.KindReminder:
		subject = fmt.Sprintf("Reminder: your invitation to %s expires %s", d.Account, inv.ExpiresAt.UTC().Format("2 Jan 2006 15:04 UTC"))
		d.Preheader = fmt.Sprintf("Your invitation to join %s on %s expires on %s.", d.Account, d.Application, d.ExpiresAt)
	case contract.KindWelcome:
		subject = fmt.Sprintf("Welcome to %s on %s", d.Account, d.Application)
		d.Preheader = fmt.Sprintf("Your access to %s in %s is ready.", d.Application, d.Account)
	case contract.KindRenewalRequest:
		subject = fmt.Sprintf("%s asked for a new invitation to %s", cmp.Or(d.FullName, d.Email), d.Account)
		to = inv.InviterEmail
		d.Preheader = fmt.Sprintf("Their invitation to join %s on %s expired on %s.", d.Account, d.Application, d.ExpiresAt)
		d.Footer = fmt.Sprintf("You received this email because you invited %s to %s. We send it at most once a day per invitation.",
			d.Invitee, d.Account)
	default:
		return Message{}, fmt.Errorf("unknown email kind %q", in.Kind)
	}
	var html, text bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&html, string(in.Kind)+".html", d); err != nil {
		return Message{}, err
	}
	if err := textTemplates.ExecuteTemplate(&text, string(in.Kind)+".txt", d); err != nil {
		return Message{}, err
	}
	return Message{
		From: a.From, To: to, Subject: oneLine(subject), HTML: html.String(), Text: text.String(),
		IdempotencyKey: in.IdempotencyKey(),
		Tags:           map[string]string{"kind": string(in.Kind)},
		Link:           d.Link,
	}, nil
}

// linkOf is an email's call to action: the invite link, or the portal for the welcome and the
// inviter's notice.
// overCap reports whether an invite or reminder would pass the recipient's daily cap. A failed
// count errs on sending (the rate-limited queue still bounds the flow).
func (a *Activities) overCap(ctx context.Context, inv store.Invitation, in SendEmailInput) bool {
	if a.RecipientDailyCap <= 0 || (in.Kind != contract.KindInvite && in.Kind != contract.KindReminder) {
		return false
	}
	n, _, err := a.Store.RecentInviteEmails(ctx, inv.Email, time.Now().Add(-24*time.Hour))
	return err == nil && n >= a.RecipientDailyCap
}

// LinkPlaceholder stands in a stored email body where its link goes: the link is put back at
// send time, from the invitation's id and generation (invite links are never stored).
const LinkPlaceholder = "{{invite-link}}"

// secretLink is an email's link when it is a key (the invite and reminder carry the invite
// token), or "" (the welcome and renewal-request emails point to the portal: no secret).
func secretLink(link string, kind contract.EmailKind) string {
	if kind == contract.KindInvite || kind == contract.KindReminder {
		return link
	}
	return ""
}

// withoutLink replaces an email's secret link (escaped for HTML in an HTML part) by
// LinkPlaceholder; withLink puts it back.
func withoutLink(body, link string, isHTML bool) string {
	if link == "" {
		return body
	}
	if isHTML {
		return strings.ReplaceAll(body, html.EscapeString(link), LinkPlaceholder)
	}
	return strings.ReplaceAll(body, link, LinkPlaceholder)
}

func withLink(body, link string, isHTML bool) string {
	if link == "" {
		return body
	}
	if isHTML {
		link = html.EscapeString(link)
	}
	return strings.ReplaceAll(body, LinkPlaceholder, link)
}

func (a *Activities) linkOf(inv store.Invitation, in SendEmailInput) string {
	if in.Kind == contract.KindWelcome || in.Kind == contract.KindRenewalRequest {
		return a.PortalURL
	}
	return a.Links.InviteURL(inv.ID, in.Generation)
}

// newEmailData holds what every kind of email says about the invitation.
func newEmailData(inv store.Invitation) emailData {
	// Values are kept to one line each, so a name cannot start a line of its own in the text part.
	d := emailData{
		Email: oneLine(inv.Email), FirstName: oneLine(inv.FirstName), LastName: oneLine(inv.LastName),
		InviterName: oneLine(inv.InviterName), InviterEmail: oneLine(inv.InviterEmail),
		Account: oneLine(inv.AccountName), Application: oneLine(inv.Application), Plan: oneLine(inv.Subscription),
		Role: oneLine(inv.Role), ExpiresAt: inv.ExpiresAt.UTC().Format(contract.ExpiryLayout),
	}
	if msg := strings.TrimSpace(inv.Message); msg != "" {
		for _, l := range strings.Split(msg, "\n") {
			d.MessageLines = append(d.MessageLines, oneLine(strings.TrimRight(l, "\r")))
		}
	}
	d.FullName = strings.TrimSpace(d.FirstName + " " + d.LastName)
	d.Invitee = d.Email
	if d.FullName != "" {
		d.Invitee = d.FullName + " (" + d.Email + ")"
	}
	by := "someone"
	if d.InviterName != "" {
		by = d.InviterName
	}
	d.Footer = fmt.Sprintf("You received this email because %s invited %s to %s. If you did not expect it, you can ignore it: nothing happens unless you accept.",
		by, d.Email, d.Account)
	return d
}

// oneLine turns control characters (line breaks, tabs) into single spaces, so a value or a
// subject stays on one line whatever the names in it hold.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, unicode.IsControl), " ")
}

// logger returns the activities' logger with the invitation's and account's ids, and the
// workflow's and activity's when ctx is an activity's, so that every line about an invitation
// can be found by either id.
func (a *Activities) logger(ctx context.Context, inv store.Invitation) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.Default()
	}
	l = l.With("invitation_id", inv.ID, "account_id", inv.AccountID)
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		l = l.With("workflow_id", info.WorkflowExecution.ID, "activity", info.ActivityType.Name, "attempt", info.Attempt)
	}
	return l
}
