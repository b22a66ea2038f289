package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/onboarding-service/onboarding/workflows/contract"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/onboarding-service/onboarding/internal/devstack"
)

// The browser tests drive Debian's headless Chromium through the DevTools protocol (chromedp):
// the invitee's page as a person meets it, script included, with screenshots of every state.

// Viewports of the screenshots.
const (
	desktopWidth, desktopHeight = 1280, 800
	phoneWidth, phoneHeight     = 390, 844
)

// tab is one browser tab; every test gets a browser of its own with a fresh profile.
type tab struct {
	t   *testing.T
	ctx context.Context
	// problems the page reported (console errors, exceptions, CSP violations).
	mu       sync.Mutex
	problems []string
}

// chromiumPath finds Chromium: $CHROMIUM, else Debian's binary.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testing.Short() {
		t.Skip("no Chromium (make chromium installs it)")
	}
	t.Fatal("no Chromium found: run `make chromium` (or `make test`, which installs it), or set CHROMIUM")
	return ""
}

// newTab starts a headless Chromium for the test and opens a tab on a desktop-sized viewport.
// script=false turns JavaScript off, to check that the page works without it.
func newTab(t *testing.T, script bool) *tab {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(desktopWidth, desktopHeight),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	tb := &tab{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser under a context with no deadline (a deadline would end the browser too).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if pageStatusMessage(m) {
				continue // a page answered with its 4xx status, which expectPage checks
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Source == "security" {
				tb.mu.Lock()
				tb.problems = append(tb.problems, fmt.Sprintf("%s %s: %s", m.Type, m.Source, m.Text))
				tb.mu.Unlock()
			}
		}
	}()
	// A CSP violation is also reported to the page: record it where the test can read it. This
	// runs from DevTools, so the page's own CSP does not apply to it.
	tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation',
				e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
		})
		return err
	}))
	if !script {
		tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
	t.Cleanup(tb.checkClean)
	return tb
}

// pageStatusMessage reports whether m is the browser's note that a page itself (not one of its
// assets) answered 4xx: the invalid, expired and refused pages do so on purpose.
func pageStatusMessage(m chromedp.ConsoleMessage) bool {
	if m.Source != "network" || !strings.Contains(m.Text, "the server responded with a status of 4") {
		return false
	}
	u, err := url.Parse(m.URL)
	if err != nil {
		return false
	}
	switch u.Path {
	case "/invite", "/invite/accept", "/invite/decline", "/invite/request-renewal", "/reset", "/reset/request", "/reset/confirm":
		return true
	}
	return false
}

// timeout bounds each browser step; a page that hangs fails the test instead of the package.
const browserStepTimeout = 30 * time.Second

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

func result[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
	return v
}

// open navigates to url and returns the document's HTTP response.
func (tb *tab) open(url string) *network.Response {
	tb.t.Helper()
	return result(tb, chromedp.NavigateResponse(url))
}

// submit clicks a button that sends a form and waits for the next page; it returns that
// page's HTTP response.
func (tb *tab) submit(sel string) *network.Response {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("browser: clicking %s: %v", sel, err)
	}
	return resp
}

// view is the page's data-view: which page this is.
func (tb *tab) view() string {
	tb.t.Helper()
	return result(tb, chromedp.Evaluate[string](`(document.body && document.body.dataset.view) || ''`))
}

// expectPage asserts the page's HTTP status, view and security headers, and that its text holds
// each of texts.
func (tb *tab) expectPage(resp *network.Response, status int, view string, texts ...string) {
	tb.t.Helper()
	if resp == nil {
		tb.t.Fatalf("no response for the %s page", view)
	}
	if int(resp.Status) != status || tb.view() != view {
		tb.t.Fatalf("page %q with status %d, want %q with %d; text:\n%s", tb.view(), resp.Status, view, status, tb.text())
	}
	headers := map[string]string{}
	for k, v := range resp.Headers {
		headers[strings.ToLower(k)] = fmt.Sprint(v)
	}
	want := map[string]string{
		"content-security-policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
			"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		"referrer-policy":        "no-referrer",
		"cache-control":          "no-store",
		"x-content-type-options": "nosniff",
	}
	for k, v := range want {
		if headers[k] != v {
			tb.t.Errorf("%s page: %s = %q, want %q", view, k, headers[k], v)
		}
	}
	tb.cspClean()
	text := tb.text()
	for _, w := range texts {
		if !strings.Contains(text, w) {
			tb.t.Errorf("%s page does not say %q; it says:\n%s", view, w, text)
		}
	}
}

// text is what the page shows (innerText: no hidden elements, no markup).
func (tb *tab) text() string {
	return result(tb, chromedp.Evaluate[string](`document.body.innerText`))
}

// visibleText is the text of the first element sel matches, "" when it is hidden or missing.
func (tb *tab) visibleText(sel string) string {
	tb.t.Helper()
	return result(tb, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		return el && el.checkVisibility() ? el.innerText : '';
	})()`, sel)))
}

// eval runs a JavaScript expression in the page and decodes its result.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	return result(tb, chromedp.Evaluate[T](expr))
}

// typeInto replaces a field's value by typing text, key by key, as a person would.
func (tb *tab) typeInto(sel, text string) {
	tb.t.Helper()
	tb.do(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel)),
		chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible),
	)
}

// screenshotDir is where screenshots go: test-artifacts/screenshots at the repository's root
// (git-ignored).
func screenshotDir(t *testing.T) string {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test-artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shoot saves the whole page at desktop and at phone width, as <name>-desktop.png and
// <name>-phone.png, and checks that the page fits the phone without scrolling sideways.
func (tb *tab) shoot(name string) {
	tb.t.Helper()
	dir := screenshotDir(tb.t)
	tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
	tb.save(filepath.Join(dir, name+"-desktop.png"))
	tb.do(chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	// A mobile browser widens its layout viewport to content that does not fit, so compare with
	// the phone's width, not with innerWidth.
	if width := eval[int](tb, `Math.max(document.documentElement.scrollWidth, window.innerWidth)`); width > phoneWidth {
		tb.t.Errorf("%s: the page is %d px wide, more than a phone's %d", name, width, phoneWidth)
	}
	tb.save(filepath.Join(dir, name+"-phone.png"))
	tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
}

// shootEmail shows the HTML part of the first email to addr whose subject holds subject, as a
// mail client would (a local file, no server), and screenshots it.
func (tb *tab) shootEmail(name, addr, subject string) {
	tb.t.Helper()
	waitEmail(tb.t, addr, subject, 1)
	var html string
	for _, e := range stack.Resend.EmailsTo(addr) {
		if strings.Contains(e.Subject, subject) {
			html = e.HTML
			break
		}
	}
	path := filepath.Join(tb.t.TempDir(), name+".html")
	if err := os.WriteFile(path, []byte(html), 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.do(chromedp.Navigate("file://" + path))
	tb.shoot(name)
}

// save writes a PNG of the whole page, beyond the viewport.
func (tb *tab) save(path string) {
	tb.t.Helper()
	png := result(tb, chromedp.Action[[]byte](func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		m, err := cdp.Call(ctx, tg, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		size := m.CSSContentSize
		res, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: new(true),
			FromSurface:           new(true),
			Clip:                  &page.Viewport{X: 0, Y: 0, Width: size.Width, Height: size.Height, Scale: 1},
		})
		if err != nil {
			return nil, err
		}
		return res.Data, nil
	}))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// audit checks what can be checked of accessibility in the page as rendered: the language,
// one h1, headings in order, a label for every field, a name for every button and link, no
// positive tabindex, and text contrast (WCAG AA: 4.5:1, 3:1 for large text).
func (tb *tab) audit() {
	tb.t.Helper()
	issues := eval[[]string](tb, auditScript)
	for _, issue := range issues {
		tb.t.Errorf("accessibility (%s page): %s", tb.view(), issue)
	}
}

const auditScript = `(() => {
	const issues = [];
	if (!document.documentElement.lang) issues.push('html has no lang');
	if (!document.title.trim()) issues.push('no title');
	const h1 = document.querySelectorAll('h1');
	if (h1.length !== 1) issues.push(h1.length + ' h1 elements');
	let level = 0;
	for (const h of document.querySelectorAll('h1,h2,h3,h4,h5,h6')) {
		const l = Number(h.tagName[1]);
		if (level && l > level + 1) issues.push('heading jumps from h' + level + ' to h' + l);
		level = l;
	}
	const visible = el => el.checkVisibility();
	for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
		if (el.hidden) continue;
		const labelled = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
		if (!labelled) issues.push('field ' + (el.id || el.name) + ' has no label');
	}
	for (const el of document.querySelectorAll('button, a[href]')) {
		if (!visible(el)) continue;
		if (!(el.innerText.trim() || el.getAttribute('aria-label'))) issues.push(el.tagName + ' without a name');
	}
	for (const el of document.querySelectorAll('[tabindex]')) {
		if (Number(el.getAttribute('tabindex')) > 0) issues.push('positive tabindex on ' + el.tagName);
	}
	const parse = c => {
		const m = c.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
		return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])] : [0, 0, 0, 1];
	};
	const background = el => {
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c[3] > 0) return c;
		}
		return [255, 255, 255, 1];
	};
	const lum = c => {
		const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
	};
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	const seen = new Set();
	while (walker.nextNode()) {
		const el = walker.currentNode.parentElement;
		if (!walker.currentNode.textContent.trim() || seen.has(el) || !visible(el)) continue;
		seen.add(el);
		if (el.closest('[disabled], .visually-hidden, [aria-hidden=true]')) continue;
		const style = getComputedStyle(el);
		const fg = parse(style.color), bg = background(el);
		const a = fg[3];
		const mixed = [0, 1, 2].map(i => fg[i] * a + bg[i] * (1 - a));
		const l1 = lum(mixed), l2 = lum(bg);
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (ratio < need) issues.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ' for "' + el.innerText.trim().slice(0, 40) + '"');
	}
	return issues;
})()`

// focusOrder presses Tab from the top of the page n times and returns the id (or text) of each
// element that gets the focus.
func (tb *tab) focusOrder(n int) []string {
	tb.t.Helper()
	tb.do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`))
	var order []string
	for range n {
		tb.do(chromedp.KeyEvent("\t"))
		order = append(order, eval[string](tb, `(() => {
			const el = document.activeElement;
			return el.id || el.getAttribute('name') || el.textContent.replace(/\s+/g, ' ').trim();
		})()`))
	}
	return order
}

// checkClean fails the test for console errors, uncaught exceptions and CSP violations.
func (tb *tab) checkClean() {
	tb.cspClean()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		tb.t.Errorf("browser reported: %s", p)
	}
}

// cspClean fails the test if the current page reported a CSP violation.
func (tb *tab) cspClean() {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	csp, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp || []`))
	if err == nil && len(csp) > 0 {
		tb.t.Errorf("CSP violations on the %s page: %v", tb.view(), csp)
	}
}

// workflowState queries the invitation workflow's state query.
func workflowState(t *testing.T, invitationID string) contract.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := stack.Temporal.QueryWorkflow(ctx, contract.InvitationWorkflowID(uuid.MustParse(invitationID)), "", contract.QueryState)
	if err != nil {
		t.Fatalf("querying the workflow of %s: %v", invitationID, err)
	}
	var st contract.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// dbRow is what Postgres holds about an invitation and the user it names.
type dbRow struct {
	Status        string
	UserID        *string
	Users         int
	PasswordHash  string
	Memberships   int
	Role          string
	GroupIDs      int
	Seats         int
	SeatsUsed     int
	SeatsReserved int
}

// dbState reads Postgres directly: the invitation's status, the users with its email, the
// membership and seat of the invitation's user, and its subscription's counters.
func dbState(t *testing.T, invitationID string) dbRow {
	t.Helper()
	ctx := context.Background()
	var r dbRow
	var email, accountID, subscriptionID string
	err := stack.Store.Pool.QueryRow(ctx, `select status, user_id::text, email, account_id::text, subscription_id::text
		from invitations where id = $1`, invitationID).Scan(&r.Status, &r.UserID, &email, &accountID, &subscriptionID)
	if err != nil {
		t.Fatal(err)
	}
	err = stack.Store.Pool.QueryRow(ctx, `select count(*), coalesce(max(password_hash), '') from users where lower(email) = lower($1)`,
		email).Scan(&r.Users, &r.PasswordHash)
	if err != nil {
		t.Fatal(err)
	}
	if r.UserID != nil {
		err = stack.Store.Pool.QueryRow(ctx, `select count(*), coalesce(max(role), ''), coalesce(max(cardinality(group_ids)), 0)
			from memberships where account_id = $1 and user_id = $2 and state = 'active'`, accountID, *r.UserID).Scan(&r.Memberships, &r.Role, &r.GroupIDs)
		if err != nil {
			t.Fatal(err)
		}
		err = stack.Store.Pool.QueryRow(ctx, `select count(*) from seats where subscription_id = $1 and user_id = $2`,
			subscriptionID, *r.UserID).Scan(&r.Seats)
		if err != nil {
			t.Fatal(err)
		}
	}
	err = stack.Store.Pool.QueryRow(ctx, `select seats_used, seats_reserved from subscriptions where id = $1`, subscriptionID).
		Scan(&r.SeatsUsed, &r.SeatsReserved)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventTypes are the types of an invitation's recorded events, in order.
func eventTypes(t *testing.T, invitationID string) []string {
	t.Helper()
	rows, err := stack.Store.Pool.Query(context.Background(), `select type from invitation_events where invitation_id = $1 order by id`, invitationID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}

// pageURL is the hosted page of an invitation on base (stack.API or stack.Short): the emails
// point at PUBLIC_BASE_URL, which is no server in the tests.
func pageURL(t *testing.T, base, inviteURL string) string {
	t.Helper()
	return base + "/invite?token=" + tokenOf(t, inviteURL)
}
