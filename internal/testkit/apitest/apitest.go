// Package apitest calls the service's HTTP API the way the portal and an invitee do, for the
// test packages that drive a running stack.
package apitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// HTTPClient waits longer than the API's longest request (a Temporal update, 20 s).
var HTTPClient = &http.Client{Timeout: 60 * time.Second}

// Response is an HTTP answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Call sends a request to base+path with an optional bearer token and a body: nil, a string or
// []byte sent as is, or any other value marshalled to JSON. header alternates names and values.
// It does not judge the status; transport errors are returned.
func Call(base, token, method, path string, body any, header ...string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return RoundTrip(req)
}

// RoundTrip sends req and reads the whole answer.
func RoundTrip(req *http.Request) (Response, error) {
	res, err := HTTPClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: data}, nil
}
