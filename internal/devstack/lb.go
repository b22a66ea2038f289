package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// LoadBalancer spreads HTTP requests over API replicas, as an ingress or a cloud load balancer
// does in production, with the retry rules such a balancer applies (nginx's proxy_next_upstream,
// Envoy's retry policy):
//
//   - a request whose connection to a replica failed before anything was sent (refused, reset
//     on connect) goes to the next replica: it cannot have reached the service;
//   - a request that failed after it was sent (the replica died mid-answer) is retried only when
//     a repeat is harmless: GET, HEAD, OPTIONS, PUT and DELETE, and any request carrying an
//     Idempotency-Key (the API then answers a repeat with what the first one did);
//   - anything else is answered 502 with the contract's error shape, saying the request may
//     have been applied, so the caller never reads a failure that hides a success.
//
// Replicas are health-checked on their readiness endpoint; one that fails is skipped until it
// answers again. `make cluster` runs one in front of its two API replicas; the cluster tests put
// one in front of theirs.
type LoadBalancer struct {
	backends []*backend
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
	log      *slog.Logger
	// Retried counts requests that went to a second replica.
	Retried atomic.Int64
}

type backend struct {
	url     *url.URL
	healthy atomic.Bool
}

// maxRetriedBody bounds what the balancer keeps of a request body to send it again; a larger
// body is streamed once and not retried.
const maxRetriedBody = 8 << 20

// NewLoadBalancer balances over the replicas at urls (http://host:port). Health checks of
// readyPath run until ctx ends.
func NewLoadBalancer(ctx context.Context, urls []string, readyPath string, log *slog.Logger) (*LoadBalancer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lb := &LoadBalancer{log: log}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("load balancer: bad replica URL %q", raw)
		}
		b := &backend{url: u}
		b.healthy.Store(true)
		lb.backends = append(lb.backends, b)
	}
	if len(lb.backends) == 0 {
		return nil, errors.New("load balancer: no replicas")
	}
	lb.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetXForwarded()
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "replica" // chosen per attempt by the transport
		},
		Transport:     &retryTransport{lb: lb, base: newBackendTransport()},
		FlushInterval: -1, // event streams and large exports pass through as written
		ErrorHandler:  lb.writeBadGateway,
	}
	go lb.checkHealth(ctx, readyPath)
	return lb, nil
}

func newBackendTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
}

func (lb *LoadBalancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength >= 0 && r.ContentLength <= maxRetriedBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRetriedBody+1))
		if err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	lb.proxy.ServeHTTP(w, r)
}

// pick returns the replicas in the order to try them: round robin, healthy ones first.
func (lb *LoadBalancer) pick() []*backend {
	n := len(lb.backends)
	start := int(lb.next.Add(1) % uint64(n))
	order := make([]*backend, 0, n)
	var down []*backend
	for i := range n {
		b := lb.backends[(start+i)%n]
		if b.healthy.Load() {
			order = append(order, b)
		} else {
			down = append(down, b)
		}
	}
	return append(order, down...) // all down: try them anyway, one may be back
}

type retryTransport struct {
	lb   *LoadBalancer
	base *http.Transport
}

func (t *retryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var lastErr error
	for i, b := range t.lb.pick() {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.Host = b.url.Scheme, b.url.Host, r.Host
		if i > 0 {
			if r.GetBody == nil && r.Body != nil && r.Body != http.NoBody {
				break // a streamed body cannot be sent twice
			}
			if r.GetBody != nil {
				body, err := r.GetBody()
				if err != nil {
					return nil, err
				}
				out.Body = body
			}
			t.lb.Retried.Add(1)
		}
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if r.Context().Err() != nil {
			return nil, err // the caller went away
		}
		notSent := isConnectError(err)
		if notSent {
			b.healthy.Store(false) // the health check brings it back
		}
		if !notSent && !retriable(r) {
			return nil, &appliedUnknownError{err: err}
		}
		t.lb.log.Warn("replica failed; trying the next", "replica", b.url.Host, "method", r.Method, "path", r.URL.Path, "error", err)
	}
	return nil, lastErr
}

// retriable says whether sending r a second time is harmless.
func retriable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// isConnectError reports an error from dialling, before any byte of the request was written.
func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// appliedUnknownError is a non-repeatable request whose replica failed after receiving it.
type appliedUnknownError struct{ err error }

func (e *appliedUnknownError) Error() string { return e.err.Error() }

// writeBadGateway answers in the contract's error shape, saying whether the request can have
// reached the service.
func (lb *LoadBalancer) writeBadGateway(w http.ResponseWriter, r *http.Request, err error) {
	msg := "No API replica could be reached; the request was not applied."
	var unknown *appliedUnknownError
	if errors.As(err, &unknown) {
		msg = "The API replica failed while handling the request; it may have been applied. " +
			"Read the resource, or send the request again with an Idempotency-Key."
	}
	lb.log.Warn("answered 502", "method", r.Method, "path", r.URL.Path, "error", err)
	body, _ := json.Marshal(map[string]any{
		"type": "urn:onboarding:problem:bad_gateway", "title": "Bad gateway", "status": http.StatusBadGateway,
		"code": "bad_gateway", "detail": msg,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write(body)
}

func (lb *LoadBalancer) checkHealth(ctx context.Context, path string) {
	c := &http.Client{Timeout: time.Second, Transport: newBackendTransport()}
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for _, b := range lb.backends {
			resp, err := c.Get(b.url.String() + path)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if ok != b.healthy.Swap(ok) {
				lb.log.Info("replica health changed", "replica", b.url.Host, "healthy", ok)
			}
		}
	}
}
