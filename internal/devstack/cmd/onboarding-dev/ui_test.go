package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/onboarding-service/onboarding/internal/codec"
	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/testdb"
	"github.com/onboarding-service/onboarding/workflows/contract"
)

// TestTemporalUIDecodesEncryptedInvitation runs `make run`'s stack (startStack, on free ports,
// a database and data directory of its own), creates an invitation, and checks that its history
// is encrypted in Temporal while the dev server's UI, in headless Chromium, shows its decoded
// summary and input. The screenshot is test-artifacts/devstack-ui/temporal-ui-decoded.png
// (docs/images/temporal-ui-decoded.png is one of them).
func TestTemporalUIDecodesEncryptedInvitation(t *testing.T) {
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	artifacts := filepath.Join(root, "test-artifacts", "devstack-ui")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	browser := chromium(t)
	cli := os.Getenv("TEMPORAL_CLI")
	if cli == "" {
		cli = filepath.Join(root, ".bin", "temporal")
	}
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("Temporal CLI not found (%v): run `make test`, which builds .bin/temporal, or set TEMPORAL_CLI", err)
	}
	dbURL := isolateEnv(t)

	// The children's output goes to a log, not the test's output.
	logFile, err := os.Create(filepath.Join(artifacts, "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	saved := terminal
	terminal = &lockedWriter{w: logFile}
	defer func() { terminal = saved }()

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	st, err := startStack(ctx, layout{root: root, binDir: t.TempDir(), dataDir: dataDir, temporalCLI: cli})
	if err != nil {
		t.Fatalf("startStack: %v (log: %s)", err, logFile.Name())
	}
	defer func() {
		st.sup.stopAll()
		if err := testdb.Drop(context.Background(), dbURL); err != nil {
			t.Logf("dropping %s: %v", dbURL, err)
		}
	}()

	// The key and the codec token are generated into the data directory, readable by the owner
	// only, and the children got them.
	for _, name := range []string{"payload-encryption.key", "codec-auth-token"} {
		fi, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	if st.set.cfg.PayloadKey == nil || st.set.cfg.CodecAuthToken == "" || !st.set.cfg.CodecAllowLocalUI {
		t.Fatalf("make run settings: key %v, codec token set %v, local UI %v",
			st.set.cfg.PayloadKey != nil, st.set.cfg.CodecAuthToken != "", st.set.cfg.CodecAllowLocalUI)
	}
	banner := st.banner()
	if !banner.localUI || banner.codecEndpoint != st.set.apiURL+"/codec" {
		t.Fatalf("banner: %+v", banner)
	}

	// The UI was started with the codec endpoint.
	var uiSettings struct {
		Codec struct{ Endpoint string }
	}
	getJSON(t, st.temporal.UIURL()+"/api/v1/settings", &uiSettings)
	if uiSettings.Codec.Endpoint != st.set.codecEndpoint {
		t.Fatalf("the UI's codec endpoint is %q, want %q", uiSettings.Codec.Endpoint, st.set.codecEndpoint)
	}

	// Invite Jane, as the banner's curl does.
	api := apiClient{base: st.set.apiURL, token: st.set.apiToken, http: &http.Client{Timeout: 30 * time.Second}}
	var inv struct {
		ID uuid.UUID `json:"id"`
	}
	const email = "jane.doe@example.com"
	if err := api.call(ctx, http.MethodPost, "/v1/accounts/"+st.demo.AccountID+"/invitations", map[string]any{
		"email": email, "first_name": "Jane", "last_name": "Doe",
		"subscription_id": st.demo.SubscriptionID, "role": "editor", "group_ids": []string{st.demo.GroupID},
	}, http.StatusCreated, &inv); err != nil {
		t.Fatal(err)
	}
	workflowID := contract.InvitationWorkflowID(inv.ID)
	summary := "Invite " + contract.MaskEmail(email) + " to Acme Corp / Adobe Creative Cloud as editor"

	// What Temporal stores, read without the codec: encrypted, nothing of Jane in it.
	raw, err := client.DialContext(ctx, client.Options{HostPort: st.temporal.Address(), Namespace: st.temporal.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	desc, err := raw.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	checkEncryptedHistory(ctx, t, raw, workflowID, runID, "jane", "Acme", "example.com")

	// The UI, in a browser on this machine, shows the decoded summary, current details and input.
	run := st.temporal.UIURL() + "/namespaces/" + url.PathEscape(st.temporal.Namespace()) +
		"/workflows/" + url.PathEscape(workflowID) + "/" + url.PathEscape(runID)
	ctx = newBrowser(t, ctx, browser)
	pages := map[string]string{}
	pages["metadata"] = showPage(t, ctx, run+"/user-metadata", filepath.Join(artifacts, "temporal-ui-decoded.png"),
		summary, "Waiting for "+contract.MaskEmail(email)+" to accept or decline")
	pages["history"] = showPage(t, ctx, run+"/history", filepath.Join(artifacts, "temporal-ui-decoded-input.png"),
		`"Email": "`+email+`"`, `"SubscriptionName": "Acme Design Team"`, summary)
	for name, text := range pages {
		_ = os.WriteFile(filepath.Join(artifacts, name+".txt"), []byte(text), 0o644)
		if strings.Contains(text, "binary/encrypted") || strings.Contains(text, codec.MetadataKeyID) {
			t.Errorf("the UI's %s page shows an encrypted payload:\n%s", name, text)
		}
	}
}

// isolateEnv points every setting `make run` reads at this test's own ports and database, and
// clears those a developer's shell may have set. It returns the database URL.
func isolateEnv(t *testing.T) string {
	t.Helper()
	port := func() string {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(p)
	}
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/onboarding?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	// Named as internal/testkit/stack names its databases, so its sweep drops an abandoned one.
	u.Path = fmt.Sprintf("/onboarding_devui_p%d_%x", os.Getpid(), time.Now().UnixNano()&0xffffff)
	for k, v := range map[string]string{
		"HTTP_ADDR": "127.0.0.1:" + port(), "WORKER_METRICS_ADDR": "127.0.0.1:" + port(),
		"TEMPORAL_ADDRESS": "127.0.0.1:" + port(), "TEMPORAL_UI_PORT": port(), "DATABASE_URL": u.String(),
		"TEMPORAL_NAMESPACE": "", "METRICS_ADDR": "", "APP_ENV": "", "RESEND_API_KEY": "",
		"TOKEN_SECRET": "", "BOOTSTRAP_API_TOKEN": "", "PAYLOAD_ENCRYPTION_KEY": "", "PAYLOAD_ENCRYPTION_KEY_ID": "",
		"PAYLOAD_ENCRYPTION_KEYS_PREVIOUS": "", "CODEC_AUTH_TOKEN": "", "CODEC_CORS_ORIGIN": "",
		"CODEC_ALLOW_LOCAL_UI": "", "CODEC_OIDC_ISSUER": "", "CODEC_OIDC_AUDIENCE": "",
	} {
		t.Setenv(k, v)
	}
	return u.String()
}

// checkEncryptedHistory fails unless every payload of the run's history (inputs, results,
// summaries and details) is the codec's, and none holds any of clear.
func checkEncryptedHistory(ctx context.Context, t *testing.T, c client.Client, workflowID, runID string, clear ...string) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	payloads := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		var found []*commonpb.Payload
		if s := ev.GetWorkflowExecutionStartedEventAttributes(); s != nil {
			found = append(found, s.GetInput().GetPayloads()...)
		}
		if m := ev.GetUserMetadata(); m != nil {
			found = append(found, m.GetSummary(), m.GetDetails())
		}
		for _, p := range found {
			if p == nil {
				continue
			}
			payloads++
			if !codec.Encrypted(p) {
				t.Errorf("event %d (%s): payload with encoding %q is not the codec's", ev.GetEventId(), ev.GetEventType(), p.GetMetadata()["encoding"])
			}
			for _, s := range clear {
				if strings.Contains(string(p.GetData()), s) {
					t.Errorf("event %d: payload holds %q in clear", ev.GetEventId(), s)
				}
			}
		}
	}
	if payloads < 2 { // at least the input and the summary of the start event
		t.Fatalf("only %d payloads in the history of %s", payloads, workflowID)
	}
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(out) != nil {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
}

// chromium finds Chromium: $CHROMIUM, else Debian's binary.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: run `make chromium` (or `make test`, which installs it), or set CHROMIUM")
	return ""
}

// newBrowser starts headless Chromium for the test and returns its tab's context.
func newBrowser(t *testing.T, ctx context.Context, browser string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000))
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1440, 1000)); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return bctx
}

// showPage opens page, waits until its text holds every one of want, saves a screenshot to png
// and returns the page's text.
func showPage(t *testing.T, ctx context.Context, page, png string, want ...string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("opening %s: %v", page, err)
	}
	var text string
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		text, err = chromedp.Run(ctx, chromedp.Evaluate[string](pageText))
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if err == nil && missing == "" {
			break
		}
		if time.Now().After(deadline) {
			shot(t, ctx, png)
			t.Fatalf("%s never showed %q (screenshot %s; err %v); its text:\n%s", page, missing, png, err, text)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Let the page settle (fonts, the last decoded cards) before the picture.
	_ = chromedp.Do(ctx, chromedp.Sleep(time.Second))
	shot(t, ctx, png)
	return text
}

// pageText is the text a person sees: the page's and that of its frames (the UI renders
// summaries and details, which may hold Markdown, in frames of their own).
const pageText = `(() => {
	const parts = [];
	const walk = (doc) => {
		if (!doc || !doc.body) return;
		parts.push(doc.body.innerText);
		for (const f of doc.querySelectorAll('iframe')) {
			try { walk(f.contentDocument); } catch (e) { parts.push('[frame: ' + e + ']'); }
		}
	};
	walk(document);
	return parts.join('\n');
})()`

func shot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Error(err)
	}
}
