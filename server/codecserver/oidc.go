package codecserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// The Temporal UI, behind an identity provider, forwards its user's access token to the codec
// (its codec setting passAccessToken). go-oidc checks such a token: the issuer's discovery
// document and JWKS (keys refetched when a token names an unknown one), the signature and its
// algorithm, iss, aud and exp.

const (
	// discoveryTimeout bounds one fetch of the issuer's discovery document.
	discoveryTimeout = 5 * time.Second
	// discoveryRetry is how long a failed discovery is remembered: requests in that window are
	// answered 503 at once instead of each waiting on an identity provider that is down.
	discoveryRetry = 5 * time.Second
	// idpHTTPTimeout bounds every request to the identity provider, JWKS fetches included.
	idpHTTPTimeout = 10 * time.Second
)

// errIdPUnavailable marks a token that could not be checked because the identity provider did
// not answer: the request is answered 503, not 401.
var errIdPUnavailable = errors.New("the identity provider is not answering")

// oidcVerifier verifies the UI's access tokens. Discovery is lazy: the API starts, and serves
// the static token, while the identity provider is down; the first token after it is back
// completes discovery.
type oidcVerifier struct {
	issuer, audience string
	client           *http.Client
	// timeout bounds a discovery; retry is how long its failure is remembered.
	timeout, retry time.Duration
	now            func() time.Time

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
	lastErr  error
}

func newOIDCVerifier(issuer, audience string) *oidcVerifier {
	return &oidcVerifier{
		issuer:   issuer,
		audience: audience,
		client:   &http.Client{Timeout: idpHTTPTimeout},
		timeout:  discoveryTimeout,
		retry:    discoveryRetry,
		now:      time.Now,
	}
}

// get returns the verifier, discovering the issuer first if that has not succeeded yet. One
// request discovers at a time; the others wait for its result.
func (o *oidcVerifier) get() (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if o.lastErr != nil && o.now().Sub(o.failedAt) < o.retry {
		return nil, o.lastErr
	}
	// The client's context is go-oidc's configuration: the same client, with its timeout, fetches
	// the JWKS later. A request's cancellation must not fail discovery for the others.
	cfgCtx := oidc.ClientContext(context.Background(), o.client)
	ctx, cancel := context.WithTimeout(cfgCtx, o.timeout)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, o.issuer)
	if err != nil {
		o.failedAt, o.lastErr = o.now(), errors.Join(errIdPUnavailable, err)
		return nil, o.lastErr
	}
	var disc struct {
		JWKSURL    string   `json:"jwks_uri"`
		Algorithms []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&disc); err != nil || disc.JWKSURL == "" {
		o.failedAt, o.lastErr = o.now(), errors.Join(errIdPUnavailable, errors.New("the discovery document names no jwks_uri"), err)
		return nil, o.lastErr
	}
	// The key set is go-oidc's own, watched so that a failed JWKS fetch can be told apart from
	// a bad token (go-oidc reports both as one flattened error).
	keys := watchedKeySet{remote: oidc.NewRemoteKeySet(cfgCtx, disc.JWKSURL)}
	o.verifier = oidc.NewVerifier(o.issuer, keys, &oidc.Config{
		ClientID:             o.audience,
		SupportedSigningAlgs: signingAlgs(disc.Algorithms),
		Now:                  o.now,
	})
	o.lastErr = nil
	return o.verifier, nil
}

// asymmetricAlgs are the algorithms a token may be signed with: the issuer's public keys verify
// them. A symmetric one (HS256) or "none" is never taken, whatever discovery lists.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// signingAlgs keeps the asymmetric algorithms discovery lists; none listed means RS256, the one
// OIDC requires.
func signingAlgs(listed []string) []string {
	var out []string
	for _, a := range listed {
		if slices.Contains(asymmetricAlgs, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{oidc.RS256}
	}
	return out
}

// fetchFailure is where watchedKeySet records, for one verification, that the JWKS could not
// be fetched.
type fetchFailure struct{ err error }

type fetchFailureKey struct{}

// watchedKeySet is go-oidc's RemoteKeySet, recording a failed key fetch in the context's
// fetchFailure.
type watchedKeySet struct{ remote *oidc.RemoteKeySet }

func (k watchedKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	// RemoteKeySet wraps only the error of a key fetch (transport, status, body); a token that
	// no key verifies gives an unwrapped one.
	if err != nil && errors.Unwrap(err) != nil {
		if f, ok := ctx.Value(fetchFailureKey{}).(*fetchFailure); ok {
			f.err = err
		}
	}
	return payload, err
}

// verify checks a token: nil when valid, an error wrapping errIdPUnavailable when the identity
// provider could not be reached, any other error when the token is not good.
func (o *oidcVerifier) verify(ctx context.Context, token string) error {
	v, err := o.get()
	if err != nil {
		return err
	}
	var failure fetchFailure
	if _, err := v.Verify(context.WithValue(ctx, fetchFailureKey{}, &failure), token); err != nil {
		if failure.err != nil {
			return errors.Join(errIdPUnavailable, failure.err)
		}
		return err
	}
	return nil
}
