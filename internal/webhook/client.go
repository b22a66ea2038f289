package webhook

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Client returns the HTTP client deliveries go through. Every connection it opens is checked,
// at connect time, against the policy's address rules (the address actually dialled, after DNS),
// so a host name that resolved to a public address when it was registered and resolves to a
// private one now (DNS rebinding) is refused; the refusal is a *URLError inside the request's
// error. It never uses a proxy from the environment (that would dial on its behalf, unchecked),
// never follows a redirect (the 3xx is the answer, and a failed attempt, as the specification
// recommends), and gives up after timeout in all (DeliveryTimeout in the service). It does not
// re-check the URL's scheme: Check did at registration.
func (p Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Resolver:  p.Resolver,
		Control:   p.control,
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		// Connections are kept for the next delivery to the same endpoint, a few per host and
		// not for long; there is no cap on connections per host, so a busy or slow endpoint
		// never makes another's deliveries wait for a connection.
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     60 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// control runs after the socket is made and before it connects, with the address being
// connected to.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &URLError{Reason: fmt.Sprintf("cannot check the address %q before connecting", address), Err: err}
	}
	if reason := p.refusal(ap.Addr()); reason != "" {
		return &URLError{Reason: fmt.Sprintf("refused to connect to %s, %s%s", ap.Addr().WithZone(""), reason, publicOnly)}
	}
	return nil
}
