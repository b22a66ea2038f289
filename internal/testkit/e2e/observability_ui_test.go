package e2e

import (
	"context"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The Temporal UI as support meets it, in Debian's headless Chromium: the dev server of the
// observability stack serves it (TemporalOptions.UIPort).

// uiBrowser is a headless Chromium for the Temporal UI screenshots.
type uiBrowser struct {
	ctx context.Context
}

func newUIBrowser(t *testing.T) *uiBrowser {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("no Chromium found: run `make chromium` (or `make test`, which installs it), or set CHROMIUM")
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 1000),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	return &uiBrowser{ctx: ctx}
}

// open loads a page and waits until its text contains every one of want (the UI renders in
// the browser, after its API calls), then returns that text.
func (b *uiBrowser) open(t *testing.T, pageURL string, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("open %s: %v", pageURL, err)
	}
	var text string
	for {
		var err error
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err != nil {
			t.Fatalf("read %s: %v (text so far: %.2000s)", pageURL, err, text)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return text
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never showed %q; it shows:\n%.3000s", pageURL, missing, text)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// screenshot saves the whole page as test-artifacts/screenshots/<name>.png and the page's text
// next to it, and returns the PNG's path.
func (b *uiBrowser) screenshot(t *testing.T, root, name, text string) string {
	t.Helper()
	dir := filepath.Join(root, "test-artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// A moment for fonts and the last API answers to settle into the layout.
	if err := chromedp.Do(ctx, chromedp.Sleep(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG; below, JPEG
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, name+".txt"), []byte(text), 0o644)
	return path
}

// workflowPageURL is the UI's page of one run of a workflow.
func (o *obsStack) workflowPageURL(workflowID, runID, tab string) string {
	return o.Temporal.UIURL() + "/namespaces/" + url.PathEscape(o.Temporal.Namespace()) + "/workflows/" +
		url.PathEscape(workflowID) + "/" + url.PathEscape(runID) + "/" + tab
}

// workflowsListURL is the UI's list of workflows filtered by a visibility query.
func (o *obsStack) workflowsListURL(query string) string {
	return o.Temporal.UIURL() + "/namespaces/" + url.PathEscape(o.Temporal.Namespace()) + "/workflows?query=" +
		url.QueryEscape(query)
}

// frameText waits until the text of the page's frames (the UI renders Markdown, such as a
// workflow's summary and current details, in frames of their own) contains every one of want,
// and returns it.
func (b *uiBrowser) frameText(t *testing.T, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	const script = `Array.from(document.querySelectorAll('iframe')).map(f => {
		try { return f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : ''; }
		catch (e) { return ''; }
	}).join('\n')`
	for {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](script))
		if err != nil {
			t.Fatalf("read frames: %v", err)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return text
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page's frames never showed %q; they show:\n%.2000s", missing, text)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stackPNGs writes the images of paths one above the other into out.
func stackPNGs(out string, paths ...string) error {
	var imgs []image.Image
	width, height := 0, 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		imgs = append(imgs, img)
		width = max(width, img.Bounds().Dx())
		height += img.Bounds().Dy()
	}
	canvas := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(canvas, canvas.Bounds(), image.White, image.Point{}, draw.Src)
	y := 0
	for _, img := range imgs {
		r := image.Rect(0, y, img.Bounds().Dx(), y+img.Bounds().Dy())
		draw.Draw(canvas, r, img, img.Bounds().Min, draw.Src)
		y += img.Bounds().Dy()
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, canvas); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// screenshotTemporalUI opens the pending invitation in the Temporal UI, as support would, and
// saves its user metadata (summary, current details, activity summaries) and its search
// attributes; then the list of workflows found by the invitee's email hash.
func (o *obsStack) screenshotTemporalUI(t *testing.T, sc *obsScenario) {
	t.Helper()
	inv := sc.Inv["pending"]
	id := "invitation:" + inv.ID
	ctx, cancel := obsContext(t)
	defer cancel()
	d, err := o.Client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	run := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	masked := inv.Email[:1] + "…@acme.test"
	summary := fmt.Sprintf("Invite %s to %s / %s as editor", masked, sc.Acme.Name, sc.Acme.Subs["acrobat"].Application)
	b := newUIBrowser(t)

	// The summary and current details render as Markdown in frames of their own.
	b.open(t, o.workflowPageURL(id, run, "user-metadata"), "Summary", "Current Details", "Record the invitation and reserve a seat", "Send the invite email")
	frames := b.frameText(t, summary, "Waiting for "+masked+" to accept or decline until")
	metadata := b.screenshot(t, o.Root, "temporal-ui-invitation-metadata", frames)

	text := b.open(t, o.workflowPageURL(id, run, "search-attributes"), "InvitationStatus", "pending",
		"AccountId", sc.Acme.ID, "SubscriptionId", "Application", "InvitationGeneration", "DeliveryStatus", "sent",
		"InviteeEmailHash", o.emailHash(t, inv.Email))
	attributes := b.screenshot(t, o.Root, "temporal-ui-invitation-search-attributes", text)

	combined := filepath.Join(o.Root, "test-artifacts", "screenshots", "temporal-ui-invitation.png")
	if err := stackPNGs(combined, metadata, attributes); err != nil {
		t.Fatal(err)
	}

	query := `InviteeEmailHash = "` + o.emailHash(t, inv.Email) + `"`
	text = b.open(t, o.workflowsListURL(query), id)
	list := b.screenshot(t, o.Root, "temporal-ui-find-by-email-hash", text)
	t.Logf("screenshots: %s (summary, current details, activity summaries above the search attributes), %s, %s, %s",
		combined, metadata, attributes, list)
}
