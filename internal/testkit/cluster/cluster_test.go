package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboarding-service/onboarding/internal/testkit/apitest"
)

// The banner's "Invite Jane" command, run as printed, creates an invitation through the load
// balancer and a worker replica emails it.
func TestBannerCurlInvitesJane(t *testing.T) {
	out, err := exec.Command("bash", "-c", env.curl).CombinedOutput()
	if err != nil {
		t.Fatalf("the banner's curl: %v\n%s\n%s", err, env.curl, out)
	}
	var inv invitation
	if err := json.Unmarshal(out, &inv); err != nil {
		t.Fatalf("the banner's curl answered %s", out)
	}
	if inv.Status != "pending" || inv.Email != "jane.doe@example.com" || inv.SubscriptionID != env.sub {
		t.Fatalf("invitation %+v, want Jane's pending invitation to the demo subscription", inv)
	}
	waitFor(t, "Jane's invite email", func() bool { return len(env.resend.EmailsTo("jane.doe@example.com")) == 1 })
}

// The banner's Temporal UI is the UI server, pointed at the cluster: its API lists the
// namespace the workflows run in.
func TestBannerTemporalUIServesTheCluster(t *testing.T) {
	resp, err := http.Get(env.uiURL + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Namespaces []struct {
			NamespaceInfo struct{ Name string } `json:"namespaceInfo"`
		} `json:"namespaces"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s/api/v1/namespaces: %d, %v", env.uiURL, resp.StatusCode, err)
	}
	for _, ns := range body.Namespaces {
		if ns.NamespaceInfo.Name == "default" {
			return
		}
	}
	t.Fatalf("the UI lists no namespace default: %+v", body)
}

// One worker replica is killed while accepts are in flight; the other carries them, the killed
// one is started again, and each invitation is accepted once, into one user and one seat.
func TestWorkerReplicaKilledMidAccept(t *testing.T) {
	sub := newSubscription(t, 20)
	const n = 12
	invs := make([]invitation, n)
	for i := range invs {
		invs[i] = create(t, sub, unique("killed-worker"), uuid.NewString())
	}
	var wg sync.WaitGroup
	results := make([]apitest.Response, n)
	errs := make([]error, n)
	for i := range invs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = accept(invs[i])
		}()
	}
	time.Sleep(30 * time.Millisecond) // the accepts are on their way: crash a replica under them
	old := kill(t, "worker-1")
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("accept %d: %v", i, errs[i])
		}
		// A 503 says nothing happened yet: the invitee's page retries, as a person would.
		for attempt := 0; r.Status == http.StatusServiceUnavailable && attempt < 10; attempt++ {
			time.Sleep(2 * time.Second)
			if r, errs[i] = accept(invs[i]); errs[i] != nil {
				t.Fatal(errs[i])
			}
		}
		if r.Status != http.StatusOK {
			t.Errorf("accept %d: %d %s", i, r.Status, r.Body)
		}
	}
	waitRestarted(t, "worker-1", old)
	for _, inv := range invs {
		got := get(t, inv.ID)
		if got.Status != "accepted" || got.UserID == nil {
			t.Errorf("invitation %s: %s, user %v; want accepted with a user", inv.ID, got.Status, got.UserID)
		}
	}
	s := subscription(t, sub)
	if s.SeatsUsed != n || s.SeatsReserved != 0 {
		t.Errorf("subscription seats used %d, reserved %d; want %d used, 0 reserved", s.SeatsUsed, s.SeatsReserved, n)
	}
}

// An API replica is killed mid-traffic. Every request is either answered by the service
// (directly or after the load balancer sent it to the other replica) or, for a request that
// cannot be repeated safely, answered 502 saying it may have been applied: never a failure that
// hides a success, never a duplicate.
func TestAPIReplicaKilledMidTraffic(t *testing.T) {
	sub := newSubscription(t, 500)
	type outcome struct {
		email, key string
		resp       apitest.Response
		err        error
	}
	var mu sync.Mutex
	var outcomes []outcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{email: unique(fmt.Sprintf("lb-%d-%d", w, i))}
				if w == 0 {
					// One portal sends its creates without an Idempotency-Key.
					o.resp, o.err = createRaw(sub, o.email, "")
				} else {
					o.key = uuid.NewString()
					o.resp, o.err = createRaw(sub, o.email, o.key)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				r, err := apitest.Call(env.apiURL, env.token, http.MethodGet, "/v1/accounts/"+env.account+"/invitations?limit=5", nil)
				mu.Lock()
				outcomes = append(outcomes, outcome{resp: r, err: err}) // a read: no email
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	retriesBefore := env.out.count("replica failed; trying the next")
	old := kill(t, "api-1")
	// The load balancer's health check (every 500 ms) takes the dead replica out of the round
	// robin at its next tick; until then every other request is sent to it, refused, and sent on.
	// The traffic above may send none to it in that moment; pairs of reads sent from the kill on
	// until one was sent on make sure some do.
	for probeUntil := time.Now().Add(300 * time.Millisecond); time.Now().Before(probeUntil) &&
		env.out.count("replica failed; trying the next") == retriesBefore; {
		var probes sync.WaitGroup
		for range 2 {
			probes.Go(func() {
				r, err := apitest.Call(env.apiURL, env.token, http.MethodGet, "/v1/accounts/"+env.account+"/invitations?limit=1", nil)
				mu.Lock()
				outcomes = append(outcomes, outcome{resp: r, err: err})
				mu.Unlock()
			})
		}
		probes.Wait()
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	waitRestarted(t, "api-1", old)

	created, gateway := 0, 0
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("a request failed at the transport: %v", o.err)
		case o.email == "":
			if o.resp.Status != http.StatusOK {
				t.Errorf("list: %d %s", o.resp.Status, o.resp.Body)
			}
		case o.resp.Status == http.StatusCreated:
			created++
			if n := countByEmail(t, o.email); n != 1 {
				t.Errorf("%s: created, and %d invitations hold the address", o.email, n)
			}
		case o.resp.Status == http.StatusBadGateway && o.key == "":
			gateway++
			// Truthful: it says the create may have been applied, and the portal finds at most one.
			if !strings.Contains(string(o.resp.Body), "may have been applied") {
				t.Errorf("502 without saying the create may have been applied: %s", o.resp.Body)
			}
			if n := countByEmail(t, o.email); n > 1 {
				t.Errorf("%s: %d invitations after one create", o.email, n)
			}
		default:
			t.Errorf("create %s (key %q): %d %s", o.email, o.key, o.resp.Status, o.resp.Body)
		}
	}
	if created < 20 {
		t.Errorf("only %d creates in 4.5 s of traffic", created)
	}
	// The kill met traffic on api-1: a request it refused or dropped was sent on, or one it was
	// handling, which could not be repeated, was answered 502.
	if env.out.count("replica failed; trying the next") == retriesBefore && gateway == 0 {
		t.Errorf("the load balancer never sent a request on to the other replica, nor answered one in flight on api-1 502: was api-1 serving?")
	}
	t.Logf("%d creates answered 201 over the crash, %d unkeyed ones 502 (may have been applied); %d requests sent on by the load balancer",
		created, gateway, env.out.count("replica failed; trying the next")-retriesBefore)
}

// Temporal's history service is killed and started again by its keeper. While it is down the
// API answers truthfully (201, or 503 meaning nothing happened, retried with the same key);
// afterwards invitations from before and after the restart are accepted.
func TestHistoryServiceRestarted(t *testing.T) {
	sub := newSubscription(t, 10)
	before := create(t, sub, unique("before-history"), uuid.NewString())
	old := kill(t, "temporal-history")
	// The keeper restarts it after 200 ms and it takes a second or two to serve: the first
	// create goes out while it is down (the frontend holds it, or the API answers 503).
	sentWhileDown := pid(t, "temporal-history") == old
	key, email := uuid.NewString(), unique("during-history")
	var during invitation
	unavailable := 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := createRaw(sub, email, key)
		if err != nil {
			t.Fatalf("create during the restart: %v", err)
		}
		if r.Status == http.StatusCreated {
			if err := json.Unmarshal(r.Body, &during); err != nil {
				t.Fatal(err)
			}
			break
		}
		if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("create during the restart: %d %s", r.Status, r.Body)
		}
		unavailable++
		time.Sleep(time.Second)
	}
	waitRestarted(t, "temporal-history", old)
	if n := countByEmail(t, email); n != 1 {
		t.Errorf("%d invitations for one key retried %d times", n, unavailable)
	}
	for _, inv := range []invitation{before, during} {
		r, err := accept(inv)
		for attempt := 0; err == nil && r.Status == http.StatusServiceUnavailable && attempt < 30; attempt++ {
			time.Sleep(2 * time.Second)
			r, err = accept(inv)
		}
		if err != nil || r.Status != http.StatusOK {
			t.Errorf("accept %s after the restart: %v %d %s", inv.Email, err, r.Status, r.Body)
		}
	}
	t.Logf("first create sent while history was down: %v; answered 503 %d times before it was back", sentWhileDown, unavailable)
}

// Helpers: the API as the portal and the invitee call it, through the load balancer.

type invitation struct {
	ID             string  `json:"id"`
	Email          string  `json:"email"`
	SubscriptionID string  `json:"subscription_id"`
	Status         string  `json:"status"`
	UserID         *string `json:"user_id"`
	InviteURL      *string `json:"invite_url"`
}

func unique(local string) string {
	return local + "+" + uuid.NewString()[:8] + "@example.test"
}

func newSubscription(t *testing.T, seats int) string {
	t.Helper()
	r, err := apitest.Call(env.apiURL, env.token, http.MethodPost, "/v1/accounts/"+env.account+"/subscriptions", map[string]any{
		"application": "Cluster Test", "name": t.Name(), "seats": seats, "roles": []string{"member"},
	})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("create subscription: %v %d %s", err, r.Status, r.Body)
	}
	var s struct{ ID string }
	_ = json.Unmarshal(r.Body, &s)
	return s.ID
}

type seats struct {
	SeatsUsed     int `json:"seats_used"`
	SeatsReserved int `json:"seats_reserved"`
}

func subscription(t *testing.T, id string) seats {
	t.Helper()
	r, err := apitest.Call(env.apiURL, env.token, http.MethodGet, "/v1/accounts/"+env.account+"/subscriptions/"+id, nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("get subscription: %v %d %s", err, r.Status, r.Body)
	}
	var s seats
	_ = json.Unmarshal(r.Body, &s)
	return s
}

func createRaw(sub, email, key string) (apitest.Response, error) {
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	return apitest.Call(env.apiURL, env.token, http.MethodPost, "/v1/accounts/"+env.account+"/invitations", map[string]any{
		"email": email, "first_name": "Cluster", "last_name": "Test", "subscription_id": sub, "role": "member",
	}, header...)
}

func create(t *testing.T, sub, email, key string) invitation {
	t.Helper()
	r, err := createRaw(sub, email, key)
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("create %s: %v %d %s", email, err, r.Status, r.Body)
	}
	var inv invitation
	if err := json.Unmarshal(r.Body, &inv); err != nil || inv.InviteURL == nil {
		t.Fatalf("create %s answered %s", email, r.Body)
	}
	return inv
}

func get(t *testing.T, id string) invitation {
	t.Helper()
	r, err := apitest.Call(env.apiURL, env.token, http.MethodGet, "/v1/accounts/"+env.account+"/invitations/"+id, nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("get %s: %v %d %s", id, err, r.Status, r.Body)
	}
	var inv invitation
	_ = json.Unmarshal(r.Body, &inv)
	return inv
}

func accept(inv invitation) (apitest.Response, error) {
	u, err := url.Parse(*inv.InviteURL)
	if err != nil {
		return apitest.Response{}, err
	}
	return apitest.Call(env.apiURL, "", http.MethodPost, "/v1/invitations/accept", map[string]any{
		"token": u.Query().Get("token"), "password": "Correct-Horse-42", "accept_terms": true,
	})
}

// countByEmail counts the account's invitations to email, whatever their state.
func countByEmail(t *testing.T, email string) int {
	t.Helper()
	r, err := apitest.Call(env.apiURL, env.token, http.MethodGet, "/v1/accounts/"+env.account+"/invitations?limit=100&email="+url.QueryEscape(email), nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("list by email: %v %d %s", err, r.Status, r.Body)
	}
	var page struct{ Items []invitation }
	_ = json.Unmarshal(r.Body, &page)
	return len(page.Items)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
