package openapicheck

import (
	"bytes"
	"io"
	"net/http"
)

// Transport validates every exchange sent through next (http.DefaultTransport if nil): RoundTrip
// returns Check's error on a mismatch, so the calling test fails on it. Both bodies are read and
// given back unread to the caller and the server.
func (v *Validator) Transport(next http.RoundTripper) http.RoundTripper {
	return v.TransportExcept(next, nil)
}

// TransportExcept is Transport, but leaves alone the answers notOurs picks: those of a load
// balancer in front of the service, which the document does not describe (the caller checks
// them itself).
func (v *Validator) TransportExcept(next http.RoundTripper, notOurs func(status int, header http.Header, body []byte) bool) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{v: v, next: next, notOurs: notOurs}
}

type transport struct {
	v       *Validator
	next    http.RoundTripper
	notOurs func(status int, header http.Header, body []byte) bool
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if t.notOurs != nil && t.notOurs(res.StatusCode, res.Header, body) {
		return res, nil
	}
	if err := t.v.Check(req, reqBody, res.StatusCode, res.Header, body); err != nil {
		return nil, err
	}
	return res, nil
}
