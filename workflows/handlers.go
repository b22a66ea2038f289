package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/onboarding-service/onboarding/internal/store"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onboarding-service/onboarding/activities"
)

// Update validators reject at once, without a trace in history, what does not fit the current
// state; handlers take the mutex and check again, since the state may change while they wait.

func (w *invitation) validateCreate(ctx workflow.Context) error {
	if w.st.Status != "" {
		return businessErr(contract.CodeInvalidState, "the invitation was already created")
	}
	if w.in.InvitationID == uuid.Nil || w.in.AccountID == uuid.Nil || w.in.SubscriptionID == uuid.Nil {
		return businessErr(contract.CodeValidation, "the invitation, account and subscription ids are required")
	}
	if w.in.Settings.TTL <= 0 {
		return businessErr(contract.CodeValidation, "the invitation TTL must be positive")
	}
	return nil
}

func (w *invitation) create(ctx workflow.Context) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	defer w.mu.Unlock()
	if err := w.validateCreate(ctx); err != nil {
		return w.st, err
	}
	expires := workflow.Now(ctx).Add(w.in.Settings.TTL)
	in := store.NewInvitation{
		ID: w.in.InvitationID, AccountID: w.in.AccountID, SubscriptionID: w.in.SubscriptionID,
		Application: w.in.Application, Role: w.in.Role, GroupIDs: w.in.GroupIDs, UserID: w.in.UserID,
		Email: w.in.Email, FirstName: w.in.FirstName, LastName: w.in.LastName, Phone: w.in.Phone,
		InviterName: w.in.Inviter.Name, InviterEmail: w.in.Inviter.Email, ExpiresAt: expires,
		ExpiresIn: w.in.Settings.TTL, HoldEmail: w.in.HoldEmail, Message: w.in.Message,
		Metadata: w.in.Metadata, RedirectURL: w.in.RedirectURL,
	}
	if w.v2 {
		in.CreateRun = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	// The API waits for this answer, so the create is bounded; the rest of the lifecycle is not.
	opts := dbOptions("Record the invitation and reserve a seat")
	// Well inside the API's 20 s, so the undo below also ends before the caller gives up.
	opts.ScheduleToCloseTimeout = 10 * time.Second
	err := w.step(ctx, opts, a.CreateInvitation, in, nil)
	if err != nil {
		w.st.Status = contract.StatusRejected
		if be, ok := businessError(err); ok {
			return w.st, be
		}
		// The create may have committed before it timed out: undo it, so a failed create
		// leaves nothing behind, then tell the caller to try again.
		var uerr error
		if w.v2 {
			uerr = w.step(ctx, dbOptions("Undo a create that did not finish"), a.AbandonCreate, activities.AbandonInput{
				InvitationID: w.id(), RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID,
			}, nil)
		} else {
			uerr = w.step(ctx, dbOptions("Undo a create that did not finish"), a.DiscardInvitation, w.id(), nil)
		}
		if uerr != nil {
			w.logger(ctx).Error("undo of an unfinished create failed", "error", uerr)
		}
		return w.st, temporal.NewApplicationError("the invitation could not be recorded: "+err.Error(), string(contract.CodeUnavailable))
	}
	w.st.Status = contract.StatusPending
	w.st.Generation = 1
	w.st.ExpiresAt = expires
	w.st.Delivery = contract.Delivery{Status: contract.DeliveryQueued}
	if w.in.HoldEmail {
		w.st.Delivery = contract.Delivery{} // nothing is sent until a resend
	}
	return w.st, nil
}

// checkInvitee decides whether the invitee's link (of generation gen) may act now.
func (w *invitation) checkInvitee(ctx workflow.Context, gen int) error {
	switch {
	case w.st.Status == "" || w.st.Status == contract.StatusRejected:
		return businessErr(contract.CodeNotFound, "no such invitation")
	case gen != w.st.Generation:
		return businessErr(contract.CodeInvitationExpired, "this link was replaced by a newer invitation")
	case w.st.Status == contract.StatusExpired:
		return businessErr(contract.CodeInvitationExpired, "the invitation expired at %s", w.st.ExpiresAt.UTC().Format(time.RFC3339))
	case w.st.Status != contract.StatusPending:
		return businessErr(contract.CodeInvalidState, "the invitation is already %s", w.st.Status)
	case !workflow.Now(ctx).Before(w.st.ExpiresAt):
		// The timer is due but not yet handled (say, a worker was down): the link has expired.
		return businessErr(contract.CodeInvitationExpired, "the invitation expired at %s", w.st.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func (w *invitation) validateAccept(ctx workflow.Context, req contract.AcceptRequest) error {
	return w.checkInvitee(ctx, req.Generation)
}

func (w *invitation) accept(ctx workflow.Context, req contract.AcceptRequest) (contract.AcceptResult, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return contract.AcceptResult{}, err
	}
	defer w.mu.Unlock()
	if err := w.checkInvitee(ctx, req.Generation); err != nil {
		return contract.AcceptResult{}, err
	}
	var res activities.ProvisionResult
	err := w.step(ctx, dbOptions("Provision the user, membership and seat"), a.ProvisionUser, activities.ProvisionInput{
		InvitationID: w.id(), Generation: req.Generation, PasswordHash: req.PasswordHash,
		StartWelcome: w.v2, // lifecycle 0 sends the welcome email from this run
	}, &res)
	if err != nil {
		w.learnClosed(ctx, err)
		return contract.AcceptResult{}, passOn(err)
	}
	w.st.Status = contract.StatusAccepted
	w.st.UserID = &res.UserID
	return contract.AcceptResult{UserID: res.UserID}, nil
}

func (w *invitation) validateDecline(ctx workflow.Context, req contract.DeclineRequest) error {
	return w.checkInvitee(ctx, req.Generation)
}

func (w *invitation) decline(ctx workflow.Context, req contract.DeclineRequest) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	defer w.mu.Unlock()
	if err := w.checkInvitee(ctx, req.Generation); err != nil {
		return w.st, err
	}
	if err := w.close(ctx, contract.StatusDeclined, "declined by the invitee"); err != nil {
		return w.st, err
	}
	return w.st, nil
}

func (w *invitation) validateResend(ctx workflow.Context) error {
	if w.historyFull(ctx) {
		// The run is about to continue as new once in-flight work settles; a stream of resends
		// must not keep it from doing so. The caller retries in a moment, on the new run.
		return rateLimited("the invitation is being compacted; retry in a moment", time.Second)
	}
	if w.st.Status != contract.StatusPending || !workflow.Now(ctx).Before(w.st.ExpiresAt) {
		return businessErr(contract.CodeInvalidState, "only a pending invitation can be resent; this one is %s", w.statusNow(ctx))
	}
	if wait := w.st.LastSentAt.Add(w.in.Settings.ResendMinInterval).Sub(workflow.Now(ctx)); wait > 0 {
		return rateLimited("the invitation was sent moments ago; try again later", wait)
	}
	return nil
}

func (w *invitation) resend(ctx workflow.Context) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	if err := w.validateResend(ctx); err != nil {
		w.mu.Unlock()
		return w.st, err
	}
	in := w.markEmail(ctx, contract.KindInvite)
	// Runs of lifecycle 0 that started before its version 1 delivered the resend within the
	// update; they keep doing so when replayed (docs/operations.md: changing the workflow safely).
	v := workflow.Version(1)
	if !w.v2 {
		v = workflow.GetVersion(ctx, "resend-delivers-in-background", workflow.DefaultVersion, 1)
	}
	w.mu.Unlock()
	if v == workflow.DefaultVersion {
		w.deliver(ctx, in)
		return w.st, nil
	}
	// Delivered in the background: the answer does not wait for a busy email queue or an
	// outage, and a closing invitation can give the delivery up.
	w.deliverInBackground(w.emailCtx, in)
	return w.st, nil
}

func (w *invitation) validateRenew(ctx workflow.Context) error {
	if w.statusNow(ctx) != contract.StatusExpired {
		return businessErr(contract.CodeInvalidState, "only an expired invitation can be renewed; this one is %s", w.statusNow(ctx))
	}
	return nil
}

func (w *invitation) renew(ctx workflow.Context) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	defer w.mu.Unlock()
	if w.st.Status == contract.StatusPending && !workflow.Now(ctx).Before(w.st.ExpiresAt) {
		w.expire(ctx) // due but not yet handled: expire first, then renew
	}
	if err := w.validateRenew(ctx); err != nil {
		return w.st, err
	}
	gen := w.st.Generation + 1
	expires := workflow.Now(ctx).Add(w.in.Settings.TTL)
	err := w.step(ctx, dbOptions("Renew: new link, new expiry, seat reserved again"), a.RenewInvitation, activities.RenewInput{
		InvitationID: w.id(), Generation: gen, ExpiresAt: expires,
	}, nil)
	if err != nil {
		return w.st, passOn(err)
	}
	if w.v2 {
		w.giveUpEmails() // the old link's emails no longer matter; the run goes on with the new one
	} else {
		w.renewed = true // lifecycle 0 continues as new
	}
	w.st.Status = contract.StatusPending
	w.st.Generation = gen
	w.st.ExpiresAt = expires
	w.st.InviteSent, w.st.ReminderSent = false, false
	w.st.Delivery = contract.Delivery{Status: contract.DeliveryQueued}
	if w.emailHeld() {
		w.st.Delivery = contract.Delivery{}
	}
	return w.st, nil
}

func (w *invitation) validateRevoke(ctx workflow.Context, _ contract.RevokeRequest) error {
	// A revoke the run learned of from Postgres is this revoke, run again after the workflow
	// task that committed it was lost: its step repeats harmlessly and it answers as it did.
	if s := w.st.Status; s != contract.StatusPending && s != contract.StatusExpired && w.learned != contract.StatusRevoked {
		return businessErr(contract.CodeInvalidState, "only a pending or expired invitation can be revoked; this one is %s", s)
	}
	return nil
}

func (w *invitation) revoke(ctx workflow.Context, req contract.RevokeRequest) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	defer w.mu.Unlock()
	if err := w.validateRevoke(ctx, req); err != nil {
		return w.st, err
	}
	if err := w.close(ctx, contract.StatusRevoked, req.Detail()); err != nil {
		return w.st, err
	}
	return w.st, nil
}

func (w *invitation) validateRequestRenewal(ctx workflow.Context, req contract.RenewalRequest) error {
	switch {
	case req.Generation != w.st.Generation:
		return businessErr(contract.CodeInvalidState, "a newer invitation was sent: look for the latest email")
	case w.statusNow(ctx) != contract.StatusExpired:
		return businessErr(contract.CodeInvalidState, "only an expired invitation can be renewed; this one is %s", w.statusNow(ctx))
	}
	if last := w.st.RenewalRequestedAt; !last.IsZero() {
		if wait := last.Add(contract.RenewalRequestInterval).Sub(workflow.Now(ctx)); wait > 0 {
			return rateLimited("a new invitation was already requested today", wait)
		}
	}
	return nil
}

// requestRenewal tells the inviter that the invitee would like a new invitation.
func (w *invitation) requestRenewal(ctx workflow.Context, req contract.RenewalRequest) (contract.State, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return w.st, err
	}
	if w.st.Status == contract.StatusPending && !workflow.Now(ctx).Before(w.st.ExpiresAt) {
		w.expire(ctx)
	}
	if err := w.validateRequestRenewal(ctx, req); err != nil {
		w.mu.Unlock()
		return w.st, err
	}
	now := workflow.Now(ctx)
	w.st.RenewalRequestedAt = now
	w.mu.Unlock()
	err := w.step(ctx, dbOptions("Record the invitee's request for a new invitation"), a.RecordEvent, activities.RecordEventInput{
		InvitationID: w.id(), Type: contract.EventRenewalRequested,
		Detail:    "the invitee asked for a new invitation; the inviter is emailed",
		DedupeKey: fmt.Sprintf("%s:g%d:renewal_requested:%d", w.in.InvitationID, w.st.Generation, now.Unix()),
	}, nil)
	if err != nil {
		return w.st, passOn(err)
	}
	in := activities.SendEmailInput{
		InvitationID: w.id(), Generation: w.st.Generation, Kind: contract.KindRenewalRequest,
		Seq: int(now.Unix() / int64(contract.RenewalRequestInterval/time.Second)),
	}
	if !w.v2 {
		w.deliver(ctx, in) // lifecycle 0 answered once the inviter's email was out
		return w.st, nil
	}
	// In the background, on the run's own context: the expiry that ends the run gives up the
	// invite's emails, not this one, and the run ends once it is out.
	w.deliverInBackground(w.root, in)
	return w.st, nil
}

// statusNow is the status as the invitee would see it: a pending invitation past its expiry
// is expired even before the timer's turn comes.
func (w *invitation) statusNow(ctx workflow.Context) contract.Status {
	if w.st.Status == contract.StatusPending && !workflow.Now(ctx).Before(w.st.ExpiresAt) {
		return contract.StatusExpired
	}
	return w.st.Status
}

// close records a closing status in Postgres (releasing the seat) and in the workflow.
func (w *invitation) close(ctx workflow.Context, to contract.Status, detail string) error {
	run := w.step
	if to == contract.StatusExpired {
		// Nobody waits on an expiry, and many fall due together: during a Postgres outage a
		// regular activity retries without a trace in history, where a local one would keep a
		// workflow task open and record its heartbeats.
		run = w.activity
	}
	err := run(ctx, dbOptions("Close the invitation: "+string(to)), a.CloseInvitation, activities.CloseInput{
		InvitationID: w.id(), Generation: w.st.Generation, Status: to, Detail: detail,
	}, nil)
	if err != nil {
		w.learnClosed(ctx, err)
		return passOn(err)
	}
	w.st.Status = to
	return nil
}

// expire closes a pending invitation whose time is up; the caller holds the mutex.
func (w *invitation) expire(ctx workflow.Context) {
	if w.st.Status != contract.StatusPending {
		return
	}
	if err := w.close(ctx, contract.StatusExpired, "not accepted before "+w.st.ExpiresAt.UTC().Format(time.RFC3339)); err != nil {
		if w.st.Status != contract.StatusPending {
			return // closed otherwise first, as the run learned from Postgres (learnClosed)
		}
		// Postgres disagrees otherwise (only possible if it was changed by hand): the
		// workflow's clock wins.
		w.logger(ctx).Error("expiry not recorded", "error", err)
		w.st.Status = contract.StatusExpired
	}
}

func (w *invitation) expireLocked(ctx workflow.Context) {
	if err := w.mu.Lock(ctx); err != nil {
		return
	}
	defer w.mu.Unlock()
	w.expire(ctx)
}

// learnClosed brings a pending run's state up to Postgres when a step was refused because
// Postgres holds the invitation as closed (activities' ClosedDetails). That happens when a
// workflow task whose step committed an accept or decline was lost (its worker killed before it
// completed the task, or the server dropped it): the step's result never reached the history,
// the task that replaced it ran later, and by then the update was refused (the clock past the
// expiry) or another close ran. The run ends as Postgres says, not as it guessed, and the API
// answers the invitee from Postgres too (invitee.Service). Runs recorded before the details
// existed see none and keep their old course.
func (w *invitation) learnClosed(ctx workflow.Context, err error) {
	var appErr *temporal.ApplicationError
	var d contract.ClosedDetails
	if w.st.Status != contract.StatusPending || !errors.As(err, &appErr) || appErr.Type() != string(contract.CodeInvalidState) ||
		!appErr.HasDetails() || appErr.Details(&d) != nil || d.Status == "" || d.Status == contract.StatusPending {
		return
	}
	w.logger(ctx).Info("the invitation was closed already, as Postgres holds it; the run follows", "status", d.Status)
	w.st.Status, w.learned = d.Status, d.Status
	if d.Status == contract.StatusAccepted {
		w.st.UserID = d.UserID
	}
}
