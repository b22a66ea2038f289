package webhooktest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboarding-service/onboarding/internal/testkit/webhooktest"
)

// The secrets below are arbitrary 32-byte keys.
var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-test-secret-a-32-bytes!"))
	secretB = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-test-secret-b-32-bytes!"))
)

// sign is a sender's signature, written here from the specification for these tests.
func sign(secret, id string, ts int64, body string) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

type request struct {
	method string
	id     string
	ts     string
	sig    string
	body   string
}

// signed is a well-formed request signed with secret, now.
func signed(secret, id, body string) request {
	now := time.Now().Unix()
	return request{http.MethodPost, id, strconv.FormatInt(now, 10), sign(secret, id, now, body), body}
}

func send(t *testing.T, c *http.Client, url string, r request) (*http.Response, error) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	req, err := http.NewRequest(r.method, url+"/hooks", strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"webhook-id": r.id, "webhook-timestamp": r.ts, "webhook-signature": r.sig} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func status(t *testing.T, url string, r request) int {
	t.Helper()
	resp, err := send(t, http.DefaultClient, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

const event = `{"id":"evt_1","type":"invitation.accepted","created_at":"2026-12-01T10:00:00Z","account_id":"acc_1","data":{"user_id":"usr_1"}}`

func TestReceiverAcceptsSigned(t *testing.T) {
	r := webhooktest.NewReceiver(t, secretA)
	before := time.Now()
	req := signed(secretA, "evt_1", event)
	if got := status(t, r.URL(), req); got != http.StatusOK {
		t.Fatalf("status %d, rejections %+v", got, r.Rejections())
	}
	ds := r.Deliveries()
	if len(ds) != 1 || len(r.Rejections()) != 0 {
		t.Fatalf("deliveries %+v rejections %+v", ds, r.Rejections())
	}
	d := ds[0]
	ts, _ := strconv.ParseInt(req.ts, 10, 64)
	if d.WebhookID != "evt_1" || d.Type != "invitation.accepted" || !d.Timestamp.Equal(time.Unix(ts, 0)) ||
		d.Attempt != 1 || d.Status != 200 || !d.Accepted() || string(d.Raw) != event || d.ReceivedAt.Before(before) ||
		!slices.Equal(d.Matched, []int{0}) || d.Signatures != 1 || d.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("delivery %+v", d)
	}
	if data, _ := d.Body["data"].(map[string]any); data["user_id"] != "usr_1" {
		t.Fatalf("body %v", d.Body)
	}
	var decoded struct {
		AccountID string `json:"account_id"`
	}
	if err := d.Decode(&decoded); err != nil || decoded.AccountID != "acc_1" {
		t.Fatalf("decode %+v %v", decoded, err)
	}
	if r.AttemptCount("evt_1") != 1 || r.AttemptCount("evt_2") != 0 {
		t.Fatal("attempt counts")
	}
}

func TestReceiverRejects(t *testing.T) {
	now := time.Now().Unix()
	at := func(ts int64, secret string) request {
		return request{"", "evt_1", strconv.FormatInt(ts, 10), sign(secret, "evt_1", ts, event), event}
	}
	good := at(now, secretA)
	with := func(f func(*request)) request { r := good; f(&r); return r }
	for _, c := range []struct {
		name   string
		req    request
		status int
		reason string
	}{
		{"no signature", with(func(r *request) { r.sig = "" }), 401, "missing"},
		{"no id", with(func(r *request) { r.id = "" }), 401, "missing"},
		{"no timestamp", with(func(r *request) { r.ts = "" }), 401, "missing"},
		{"other secret", at(now, secretB), 401, "none of the 1 signature(s)"},
		{"signed for another id", with(func(r *request) { r.id = "evt_2" }), 401, "none of"},
		{"signed for another body", with(func(r *request) { r.body = strings.Replace(event, "usr_1", "usr_2", 1) }), 401, "none of"},
		{"signed for another timestamp", with(func(r *request) { r.ts = strconv.FormatInt(now+1, 10) }), 401, "none of"},
		{"v1a only", with(func(r *request) { r.sig = "v1a" + r.sig[2:] }), 401, "none of"},
		{"garbage", with(func(r *request) { r.sig = "v1,not-base64!!" }), 401, "none of"},
		{"six minutes old", at(now-6*60, secretA), 401, "tolerance"},
		{"six minutes ahead", at(now+6*60, secretA), 401, "tolerance"},
		{"milliseconds", at(now*1000, secretA), 401, "tolerance"},
		{"not a number", with(func(r *request) { r.ts = "yesterday" }), 401, "unix seconds"},
		{"GET", with(func(r *request) { r.method = http.MethodGet }), 405, "POST"},
		{"not JSON", signed(secretA, "evt_1", "hello"), 400, "JSON object"},
		{"a JSON array", signed(secretA, "evt_1", "[1,2]"), 400, "JSON object"},
		{"no type", signed(secretA, "evt_1", `{"id":"evt_1"}`), 400, "type"},
		{"too big", signed(secretA, "evt_1", `{"type":"x","pad":"`+strings.Repeat("a", 1<<20)+`"}`), 413, "body"},
	} {
		r := webhooktest.NewReceiver(t, secretA)
		if got := status(t, r.URL(), c.req); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
		rej := r.Rejections()
		if len(rej) != 1 || rej[0].Status != c.status || !strings.Contains(rej[0].Reason, c.reason) || rej[0].At.IsZero() {
			t.Errorf("%s: rejections %+v, want one saying %q", c.name, rej, c.reason)
		}
		if len(r.Deliveries()) != 0 || len(r.Attempts()) != 0 || r.AttemptCount("evt_1") != 0 {
			t.Errorf("%s: recorded as a delivery", c.name)
		}
	}
}

func TestReceiverToleranceInside(t *testing.T) {
	r := webhooktest.NewReceiver(t, secretA)
	now := time.Now().Unix()
	for _, ts := range []int64{now - 4*60, now + 4*60} {
		req := request{"", "evt_" + strconv.FormatInt(ts, 10), strconv.FormatInt(ts, 10), "", event}
		req.sig = sign(secretA, req.id, ts, event)
		if got := status(t, r.URL(), req); got != 200 {
			t.Errorf("timestamp %+ds: status %d %+v", ts-now, got, r.Rejections())
		}
	}
}

func TestReceiverRotation(t *testing.T) {
	r := webhooktest.NewReceiver(t, secretA)
	r.SetSecrets(secretB, secretA) // the new one, and the old one while it still signs

	oldOnly := signed(secretA, "evt_old", event)
	newOnly := signed(secretB, "evt_new", event)
	both := signed(secretB, "evt_both", event)
	ts, _ := strconv.ParseInt(both.ts, 10, 64)
	both.sig += " " + sign(secretA, "evt_both", ts, event)
	for _, req := range []request{oldOnly, newOnly, both} {
		if got := status(t, r.URL(), req); got != 200 {
			t.Fatalf("%s: %d %+v", req.id, got, r.Rejections())
		}
	}
	ds := r.Deliveries()
	if len(ds) != 3 || !slices.Equal(ds[0].Matched, []int{1}) || !slices.Equal(ds[1].Matched, []int{0}) ||
		!slices.Equal(ds[2].Matched, []int{0, 1}) || ds[2].Signatures != 2 {
		t.Fatalf("deliveries %+v", ds)
	}
	r.SetSecrets(secretB) // the old secret has stopped signing
	if got := status(t, r.URL(), signed(secretA, "evt_late", event)); got != 401 {
		t.Fatalf("the retired secret still verifies: %d", got)
	}
}

func TestReceiverWithoutSecretRefusesUntilSet(t *testing.T) {
	r := webhooktest.NewReceiver(t, "")
	if got := status(t, r.URL(), signed(secretA, "evt_1", event)); got != 401 {
		t.Fatalf("no secret: %d", got)
	}
	if rej := r.Rejections(); len(rej) != 1 || !strings.Contains(rej[0].Reason, "no secret") {
		t.Fatalf("rejections %+v", rej)
	}
	r.SetSecrets(secretA)
	if got := status(t, r.URL(), signed(secretA, "evt_1", event)); got != 200 {
		t.Fatalf("after SetSecrets: %d", got)
	}
}

// fatalTB records a Fatalf instead of ending the test, so a helper's refusal can be checked.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestReceiverRefusesMalformedSecret(t *testing.T) {
	for _, bad := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_***", "whsec_"} {
		tb := &fatalTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			webhooktest.NewReceiver(tb, bad)
		}()
		if !strings.Contains(tb.msg, "secret") {
			t.Errorf("NewReceiver(%q) did not fail the test (%q)", bad, tb.msg)
		}
	}
}

func TestReceiverFailNext(t *testing.T) {
	r := webhooktest.NewReceiver(t, secretA)
	r.FailNext(3, http.StatusInternalServerError)
	var got []int
	for i := 0; i < 4; i++ {
		got = append(got, status(t, r.URL(), signed(secretA, "evt_retry", event)))
		if i == 1 {
			// A request refused for its signature is not one of the three.
			if s := status(t, r.URL(), signed(secretB, "evt_retry", event)); s != 401 {
				t.Fatalf("bad signature: %d", s)
			}
		}
	}
	if !slices.Equal(got, []int{500, 500, 500, 200}) {
		t.Fatalf("statuses %v", got)
	}
	ds, all := r.Deliveries(), r.Attempts()
	if len(ds) != 1 || ds[0].Attempt != 4 || ds[0].WebhookID != "evt_retry" || r.AttemptCount("evt_retry") != 4 || len(all) != 4 {
		t.Fatalf("deliveries %+v, %d attempts", ds, len(all))
	}
	for i, a := range all {
		if a.Attempt != i+1 || a.Accepted() != (i == 3) {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	if status(t, r.URL(), signed(secretA, "evt_next", event)) != 200 {
		t.Fatal("FailNext outlived its count")
	}
}

func TestReceiverHang(t *testing.T) {
	r := webhooktest.NewReceiver(t, secretA)
	r.Hang()
	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	if _, err := send(t, impatient, r.URL(), signed(secretA, "evt_slow", event)); err == nil {
		t.Fatal("a hanging receiver answered")
	}
	if a := r.Attempts(); len(a) != 1 || a[0].Status != 0 || a[0].Accepted() || len(r.Deliveries()) != 0 {
		t.Fatalf("attempts %+v", a)
	}

	// A request hanging when Resume is called is answered 503; the next ones normally.
	var wg sync.WaitGroup
	wg.Add(1)
	var held int
	go func() {
		defer wg.Done()
		resp, err := send(t, http.DefaultClient, r.URL(), signed(secretA, "evt_slow", event))
		if err == nil {
			held = resp.StatusCode
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitForAttempts(ctx, func(a []webhooktest.Delivery) bool { return len(a) == 2 }); err != nil {
		t.Fatal(err)
	}
	r.Resume()
	wg.Wait()
	if held != http.StatusServiceUnavailable {
		t.Fatalf("held request answered %d", held)
	}
	if got := status(t, r.URL(), signed(secretA, "evt_slow", event)); got != 200 {
		t.Fatalf("after Resume: %d", got)
	}
	if r.AttemptCount("evt_slow") != 3 {
		t.Fatalf("attempts %d", r.AttemptCount("evt_slow"))
	}
}

func TestReceiverHangEndsWithTheTest(t *testing.T) {
	returned := make(chan error, 1)
	t.Run("hanging", func(t *testing.T) {
		r := webhooktest.NewReceiver(t, secretA)
		r.Hang()
		go func() {
			_, err := send(t, http.DefaultClient, r.URL(), signed(secretA, "evt_1", event))
			returned <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.WaitForAttempts(ctx, func(a []webhooktest.Delivery) bool { return len(a) == 1 }); err != nil {
			t.Fatal(err)
		}
	})
	select {
	case <-returned: // answered or cut off: either way the request is over
	case <-time.After(5 * time.Second):
		t.Fatal("the request was still hanging after its test ended")
	}
}

func TestReceiverWaitFor(t *testing.T) {
	r := webhooktest.NewReceiver(t, secretA)
	go func() {
		time.Sleep(50 * time.Millisecond)
		for _, id := range []string{"evt_1", "evt_2"} {
			_, _ = send(t, http.DefaultClient, r.URL(), signed(secretA, id, event))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, func(ds []webhooktest.Delivery) bool { return len(ds) == 2 }); err != nil {
		t.Fatal(err)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	err := r.WaitFor(short, func(ds []webhooktest.Delivery) bool { return len(ds) == 3 })
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || !strings.Contains(err.Error(), "evt_2 invitation.accepted") {
		t.Fatalf("timeout error %v", err)
	}
}

func TestDistinct(t *testing.T) {
	ds := []webhooktest.Delivery{{WebhookID: "a", Attempt: 1}, {WebhookID: "b", Attempt: 1}, {WebhookID: "a", Attempt: 2}}
	got := webhooktest.Distinct(ds)
	if len(got) != 2 || got[0].WebhookID != "a" || got[0].Attempt != 1 || got[1].WebhookID != "b" {
		t.Fatalf("%+v", got)
	}
}
