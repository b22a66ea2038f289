package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server on 127.0.0.1 that counts the requests reaching it.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func wantRefused(t *testing.T, err error, addr string) {
	t.Helper()
	var uerr *URLError
	if !errors.As(err, &uerr) {
		t.Fatalf("err = %v, want a *URLError from the connect-time check", err)
	}
	if !strings.Contains(uerr.Reason, "refused to connect to "+addr) || !strings.Contains(uerr.Reason, "loopback") {
		t.Fatalf("reason %q", uerr.Reason)
	}
}

func TestClientRefusesLoopbackAtConnect(t *testing.T) {
	srv, hits := countingServer(t, nil)

	resp, err := Policy{AllowHTTP: true}.Client(5 * time.Second).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("connected to %s: %s", srv.URL, resp.Status)
	}
	wantRefused(t, err, "127.0.0.1")
	if hits.Load() != 0 {
		t.Fatalf("the server was reached %d times", hits.Load())
	}

	resp, err = Policy{AllowHTTP: true, AllowLocalhost: true}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("AllowLocalhost: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || hits.Load() != 1 {
		t.Fatalf("AllowLocalhost: %s %q, %d hits", resp.Status, body, hits.Load())
	}
}

func TestClientRefusesIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	var hits atomic.Int32
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })}}
	srv.Start()
	t.Cleanup(srv.Close)
	_, err = Policy{AllowHTTP: true}.Client(5 * time.Second).Get(srv.URL)
	wantRefused(t, err, "::1")
	if hits.Load() != 0 {
		t.Fatal("reached")
	}
	resp, err := Policy{AllowHTTP: true, AllowLocalhost: true}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestClientDNSRebinding: a name that resolves to a public address when it is registered and
// to 127.0.0.1 when the delivery connects is refused at connect time.
func TestClientDNSRebinding(t *testing.T) {
	srv, hits := countingServer(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := newFakeDNS(t)
	dns.set("hooks.rebind.test", "93.184.216.34")
	p := Policy{AllowHTTP: true, Resolver: dns.resolver()}
	target := "http://hooks.rebind.test:" + strconv.Itoa(port) + "/hooks"

	if err := p.Check(context.Background(), target); err != nil {
		t.Fatalf("registration: %v", err)
	}
	dns.set("hooks.rebind.test", "127.0.0.1") // the attacker's DNS answers differently now

	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader("{}"))
	resp, err := p.Client(5 * time.Second).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("delivered to a rebound address: %s", resp.Status)
	}
	wantRefused(t, err, "127.0.0.1")
	if hits.Load() != 0 || dns.queried("hooks.rebind.test") < 2 {
		t.Fatalf("hits %d, look-ups %d", hits.Load(), dns.queried("hooks.rebind.test"))
	}

	// The same name and resolver connect when loopback is allowed: the refusal was the rule.
	p.AllowLocalhost = true
	resp, err = p.Client(5 * time.Second).Do(req.Clone(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("hits %d", hits.Load())
	}
}

// A name resolving to a refused and an allowed address never connects to the refused one.
func TestClientSkipsRefusedAddressesOfAName(t *testing.T) {
	srv, hits := countingServer(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := newFakeDNS(t)
	dns.set("both.example.test", "10.0.0.1", "127.0.0.1")
	_, err := Policy{AllowHTTP: true, AllowLocalhost: true, Resolver: dns.resolver()}.Client(5 * time.Second).
		Get("http://both.example.test:" + strconv.Itoa(port) + "/")
	if err != nil || hits.Load() != 1 {
		t.Fatalf("err %v hits %d: the allowed loopback address should have been used", err, hits.Load())
	}
	dns.set("private.example.test", "10.0.0.1")
	_, err = Policy{AllowHTTP: true, AllowLocalhost: true, Resolver: dns.resolver()}.Client(5 * time.Second).
		Get("http://private.example.test:" + strconv.Itoa(port) + "/")
	var uerr *URLError
	if !errors.As(err, &uerr) || !strings.Contains(uerr.Reason, "10.0.0.1, a private address") {
		t.Fatalf("private-only name: %v", err)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var other atomic.Int32
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/other" {
			other.Add(1)
			return
		}
		http.Redirect(w, r, "/other", http.StatusTemporaryRedirect)
	})
	resp, err := Policy{AllowHTTP: true, AllowLocalhost: true}.Client(5*time.Second).Post(srv.URL+"/hooks", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || other.Load() != 0 {
		t.Fatalf("status %d, redirect target reached %d times", resp.StatusCode, other.Load())
	}
}

func TestClientTimeoutAndShape(t *testing.T) {
	release := make(chan struct{})
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := Policy{AllowHTTP: true, AllowLocalhost: true}.Client(300 * time.Millisecond)
	start := time.Now()
	_, err := c.Get(srv.URL)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %s, want a timeout after 300ms", err, time.Since(start))
	}
	var uerr *url.Error
	if !errors.As(err, &uerr) || !uerr.Timeout() {
		t.Fatalf("err %v is not a timeout", err)
	}

	// Proxies from the environment are never used: they would connect on our behalf, unchecked.
	t.Setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
	t.Setenv("HTTP_PROXY", "http://10.0.0.1:3128")
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil || c.Timeout != 300*time.Millisecond || c.CheckRedirect == nil ||
		tr.MaxIdleConnsPerHost <= 0 || tr.MaxIdleConns <= 0 || tr.IdleConnTimeout <= 0 {
		t.Fatalf("client %+v transport %+v", c, tr)
	}
}
