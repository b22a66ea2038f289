package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The hosted page with version 2's options, in a real browser: the inviter's note shown as
// text (never markup), and the way on after accepting, to the invitation's redirect_url while
// the account allows its origin, and to sign-in otherwise.

// landing is the portal's page a redirect_url points to: a local server at an origin the
// account allows, which records who arrives.
type landing struct {
	srv    *httptest.Server
	origin string
	mu     sync.Mutex
	hits   []landingHit
}

type landingHit struct {
	at      time.Time
	uri     string
	referer string
}

func newLanding(t *testing.T) *landing {
	t.Helper()
	l := &landing{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.hits = append(l.hits, landingHit{at: time.Now(), uri: r.URL.RequestURI(), referer: r.Referer()})
		l.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portal</title><link rel="icon" href="data:,"></head>`+
			`<body data-view="landed"><h1>Welcome to the portal</h1></body></html>`)
	}))
	t.Cleanup(l.srv.Close)
	l.origin = l.srv.URL // http://127.0.0.1:<port>
	return l
}

func (l *landing) arrivals() []landingHit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]landingHit(nil), l.hits...)
}

// watchDialogs records every JavaScript dialog the tab's pages open (and dismisses it, so a
// page cannot stall), and every call of alert, confirm and prompt from the start of each
// document. It returns what it saw so far: the dialogs, then the calls.
func (tb *tab) watchDialogs() func() ([]string, []string) {
	tb.t.Helper()
	var mu sync.Mutex
	var opened []string
	err := chromedp.Listen(tb.ctx, func(ev any) {
		d, ok := ev.(*page.EventJavascriptDialogOpening)
		if !ok {
			return
		}
		mu.Lock()
		opened = append(opened, string(d.Type)+": "+d.Message)
		mu.Unlock()
		go func() {
			_, _ = chromedp.Call(tb.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}()
	})
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__dialogs = [];
				for (const k of ['alert', 'confirm', 'prompt']) {
					const orig = window[k];
					window[k] = function (m) { window.__dialogs.push(k + ': ' + m); return orig.apply(this, arguments); };
				}`,
		})
		return err
	}))
	return func() ([]string, []string) {
		calls := eval[[]string](tb, `window.__dialogs || []`)
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), opened...), calls
	}
}

// optionsMessage is a note with markup and script in it, on two lines.
const optionsMessage = "Hi Jane, welcome to the design team!\n" +
	`<script>alert(1)</script><img src=x onerror="alert(2)"> <b>bold?</b> & "quotes"`

// checkMessageShown asserts that the page shows optionsMessage literally in #invite-message:
// its text, its line break, and no element made from it.
func (tb *tab) checkMessageShown() {
	tb.t.Helper()
	if got, want := eval[string](tb, `document.getElementById('invite-message')?.textContent ?? '<missing>'`),
		strings.ReplaceAll(optionsMessage, "\n", ""); got != want {
		tb.t.Errorf("#invite-message textContent %q, want %q", got, want)
	}
	if lines := eval[[]string](tb, `(document.getElementById('invite-message')?.innerText ?? '').split('\n')`); len(lines) != 2 ||
		lines[0] != "Hi Jane, welcome to the design team!" || !strings.HasPrefix(lines[1], "<script>alert(1)</script>") {
		tb.t.Errorf("#invite-message shows lines %q, want the note's two lines", lines)
	}
	if n := eval[int](tb, `document.querySelectorAll('#invite-message br').length`); n != 1 {
		tb.t.Errorf("#invite-message has %d line breaks, want 1", n)
	}
	if injected := eval[[]string](tb, `[...document.querySelectorAll('#invite-message *:not(br), img, b, script:not([src])')].map(e => e.outerHTML)`); len(injected) != 0 {
		tb.t.Errorf("the note made elements: %q", injected)
	}
	if scripts := eval[[]string](tb, `[...document.scripts].map(s => s.src)`); len(scripts) != 1 || !strings.HasPrefix(scripts[0], stack.API.URL+"/") {
		tb.t.Errorf("scripts on the page: %q, want only the page's own", scripts)
	}
}

// acceptAsNewUser fills in and sends the invite page's form for a new user.
func (tb *tab) acceptAsNewUser() {
	tb.t.Helper()
	tb.typeInto("#password", strongPassword)
	tb.typeInto("#password_confirm", strongPassword)
	tb.do(chromedp.Click(chromedp.CSS("#accept_terms"), chromedp.NodeVisible))
}

// TestBrowserOptionsMessageAndRedirect: the invitation's note, with markup and a script in it
// and on two lines, is shown as text, and runs nothing; after accepting, with the
// redirect_url's origin allowed, the page offers the way on to it (the continue link), and
// takes the browser there by itself after 3 seconds, without a referrer.
func TestBrowserOptionsMessageAndRedirect(t *testing.T) {
	portalPage := newLanding(t)
	f := newFixture(t, 2)
	if st := f.putSettings(t, []string{}, []string{portalPage.origin}); len(st.AllowedRedirectOrigins) != 1 || st.AllowedRedirectOrigins[0] != portalPage.origin {
		t.Fatalf("settings %+v, want the origin %s", st, portalPage.origin)
	}
	email := unique("Page.Message")
	redirect := portalPage.origin + "/welcome?from=invite&x=1"
	inv := f.createWith(t, portal(), email, map[string]any{"message": optionsMessage, "redirect_url": redirect})
	tb := newTab(t, true)
	dialogs := tb.watchDialogs()

	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "invite", "Join "+f.AccountName, "Message",
		"Hi Jane, welcome to the design team!", `<script>alert(1)</script><img src=x onerror="alert(2)"> <b>bold?</b> & "quotes"`)
	tb.checkMessageShown()
	tb.audit()
	tb.shoot("options-01-invite-message")
	// The watch works: a dialog the test opens is seen both ways, and is the only one so far.
	tb.do(chromedp.Evaluate[chromedp.Void](`alert('probe')`))
	if opened, calls := dialogs(); len(opened) != 1 || opened[0] != "alert: probe" || len(calls) != 1 || calls[0] != "alert: probe" {
		t.Fatalf("dialogs %q and calls %q, want only the probe", opened, calls)
	}

	// Accept: the accepted page leads on to the portal and goes there by itself.
	tb.acceptAsNewUser()
	resp := tb.submit("#accept-button")
	accepted := time.Now()
	tb.expectPage(resp, 200, "accepted", "Welcome to "+f.AccountName, "Hi Jane, welcome to the design team!")
	host := strings.TrimPrefix(portalPage.origin, "http://")
	link := eval[map[string]string](tb, `(() => {
		const a = document.getElementById('continue');
		return a ? {href: a.getAttribute('href'), text: a.textContent.trim(), cls: a.className, visible: String(a.checkVisibility())} : {};
	})()`)
	if link["href"] != redirect || !strings.Contains(link["text"], host) || !strings.Contains(link["cls"], "primary") || link["visible"] != "true" {
		t.Errorf("the continue link is %v, want a visible primary link to %s naming %s", link, redirect, host)
	}
	refresh := eval[[]string](tb, `[...document.querySelectorAll('meta[http-equiv="refresh" i]')].map(m => m.content)`)
	if len(refresh) != 1 || refresh[0] != "3;url="+redirect {
		t.Errorf("meta refresh %q, want [3;url=%s]", refresh, redirect)
	}
	if signIn := eval[int](tb, `[...document.querySelectorAll('a')].filter(a => a.textContent.includes('sign in')).length`); signIn != 0 {
		t.Errorf("the accepted page offers sign-in as well as the redirect (%d links)", signIn)
	}
	tb.checkMessageShown()
	tb.audit()
	// One quick desktop shot, before the page moves on by itself.
	tb.save(filepath.Join(screenshotDir(t), "options-02-accepted-redirect-desktop.png"))
	if v := tb.view(); v != "accepted" {
		t.Errorf("the page moved on to %q within %s, before the 3 s of its refresh", v, time.Since(accepted))
	}

	// The browser arrives at the redirect_url within a few seconds, and no sooner than about 3.
	var hit landingHit
	eventually(t, 6*time.Second, "the browser to arrive at "+redirect, func() bool {
		for _, h := range portalPage.arrivals() {
			if h.uri == "/welcome?from=invite&x=1" {
				hit = h
				return true
			}
		}
		return false
	})
	if d := hit.at.Sub(accepted); d < 2*time.Second {
		t.Errorf("the browser left the accepted page %s after it loaded, before its 3 s", d)
	}
	t.Logf("arrived at the redirect_url %s after the accepted page", hit.at.Sub(accepted))
	if hit.referer != "" {
		t.Errorf("the redirect carried Referer %q, want none", hit.referer)
	}
	eventually(t, 5*time.Second, "the landing page to load", func() bool { return tb.view() == "landed" })
	if at := eval[string](tb, `location.href`); at != redirect {
		t.Errorf("the browser is at %s, want %s", at, redirect)
	}
	if hits := portalPage.arrivals(); len(hits) != 1 {
		t.Errorf("the portal's page was asked %d times (%+v), want once", len(hits), hits)
	}
	if opened, calls := dialogs(); len(opened) != 1 || len(calls) != 0 {
		t.Errorf("dialogs %q and calls %q after the probe: the note ran script", opened, calls)
	}
	if u := f.optUsers(t)[email]; u.State != "active" {
		t.Errorf("the invitee is listed as %+v, want active", u.accountUser)
	}

	// The invite email says the note too, as text.
	tb.shootEmail("options-email-invite-message", email, "invited you")
	if n := eval[int](tb, `document.querySelectorAll('script, img[src="x"]').length`); n != 0 {
		t.Errorf("the invite email's HTML has %d elements made from the note", n)
	}
	if body := tb.text(); !strings.Contains(body, `<script>alert(1)</script>`) || !strings.Contains(body, "Hi Jane, welcome to the design team!") {
		t.Errorf("the invite email does not show the note as text:\n%s", body)
	}
	if opened, calls := dialogs(); len(opened) != 1 || len(calls) != 0 {
		t.Errorf("dialogs %q and calls %q: the email ran script", opened, calls)
	}
}

// TestBrowserOptionsRedirectWithdrawn: the redirect_url's origin is removed from the
// account's settings while the invitee has the page open; after accepting, the page offers
// the usual sign-in and goes nowhere by itself.
func TestBrowserOptionsRedirectWithdrawn(t *testing.T) {
	portalPage := newLanding(t)
	f := newFixture(t, 2)
	f.putSettings(t, []string{}, []string{portalPage.origin})
	email := unique("Page.Withdrawn")
	redirect := portalPage.origin + "/welcome"
	inv := f.createWith(t, portal(), email, map[string]any{"message": optionsMessage, "redirect_url": redirect})
	token := tokenOf(t, *inv.InviteURL)
	if pv := optPreviewOf(t, token); deref(pv.RedirectURL) != redirect {
		t.Fatalf("preview redirect_url %q, want %s", deref(pv.RedirectURL), redirect)
	}
	tb := newTab(t, true)
	dialogs := tb.watchDialogs()
	tb.expectPage(tb.open(pageURL(t, stack.API.URL, *inv.InviteURL)), 200, "invite", "Message")
	tb.checkMessageShown()

	// The account withdraws the origin (another one stays allowed).
	f.putSettings(t, []string{}, []string{"https://app.example.test"})
	if pv := optPreviewOf(t, token); pv.RedirectURL != nil {
		t.Errorf("preview redirect_url %q after the origin was withdrawn", *pv.RedirectURL)
	}

	tb.acceptAsNewUser()
	tb.expectPage(tb.submit("#accept-button"), 200, "accepted", "Welcome to "+f.AccountName, "Continue to sign in", "Hi Jane, welcome to the design team!")
	if n := eval[int](tb, `document.querySelectorAll('#continue').length`); n != 0 {
		t.Errorf("the accepted page has a continue link to a withdrawn origin")
	}
	if refresh := eval[[]string](tb, `[...document.querySelectorAll('meta[http-equiv="refresh" i]')].map(m => m.content)`); len(refresh) != 0 {
		t.Errorf("the accepted page refreshes to %q, for a withdrawn origin", refresh)
	}
	if hrefs := eval[[]string](tb, `[...document.querySelectorAll('a[href]')].map(a => a.href)`); strings.Contains(strings.Join(hrefs, " "), portalPage.origin) {
		t.Errorf("the accepted page links to the withdrawn origin: %q", hrefs)
	}
	if buttons := eval[[]string](tb, `[...document.querySelectorAll('a.button.primary')].map(a => a.textContent.trim())`); len(buttons) != 1 || buttons[0] != "Continue to sign in" {
		t.Errorf("primary links %q, want the sign-in button alone", buttons)
	}
	tb.checkMessageShown()
	tb.audit()
	tb.shoot("options-03-accepted-no-redirect")

	// It stays: no move after the 3 s a redirect would take.
	time.Sleep(4500 * time.Millisecond)
	if v := tb.view(); v != "accepted" {
		t.Errorf("the accepted page moved on to %q", v)
	}
	if hits := portalPage.arrivals(); len(hits) != 0 {
		t.Errorf("the browser went to the withdrawn origin: %+v", hits)
	}
	if opened, calls := dialogs(); len(opened) != 0 || len(calls) != 0 {
		t.Errorf("dialogs %q and calls %q: the note ran script", opened, calls)
	}
	if u := f.optUsers(t)[email]; u.State != "active" {
		t.Errorf("the invitee is listed as %+v, want active", u.accountUser)
	}
}
