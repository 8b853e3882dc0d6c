package remotemcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/resource"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// Bounds of the background retries of an identity provider that could
// not be reached at start-up: the first retry after idpRetryFirst, each
// next one after twice the wait, at most idpRetryMax.
const (
	idpRetryFirst = time.Second
	idpRetryMax   = 30 * time.Second
)

// An idpWait is what the server needs from its identity provider before
// it can serve: the JWKS of AuthJWT (and the issuer's metadata when
// Tokens.JWKSURL is not set), or the discovery document of the upstream
// "oidc" or "google" (AuthProxy). During an outage of the provider the server still starts: it
// retries in the background with backoff, and until the first success
// /readyz answers 503 with the reason (naming the URL and what to check)
// and every path that needs the provider answers 503 with Retry-After.
// So replicas started during an outage wait for it instead of crash-looping,
// and serve as soon as it is back.
type idpWait struct {
	log   *slog.Logger
	after func(time.Duration) <-chan time.Time
	try   func(context.Context) error

	ready  atomic.Bool
	reason atomic.Pointer[string]
	// retryIn is the current wait between tries, in seconds: the
	// Retry-After of the gate.
	retryIn atomic.Int64

	stop context.CancelFunc
	done chan struct{}
}

// startIdPWait tries try once, within ctx. If it succeeds, or fails with
// an error that is not an outage (see unreachable), it returns a nil wait
// and that error: the server starts ready, or does not start. Otherwise it
// retries try in the background until it succeeds or bg is done, waiting
// with after (time.After when nil) between tries, and returns the wait.
func startIdPWait(ctx, bg context.Context, log *slog.Logger, after func(time.Duration) <-chan time.Time, try func(context.Context) error) (*idpWait, error) {
	err := try(ctx)
	if err == nil || !isUnreachable(err) {
		return nil, err
	}
	if after == nil {
		after = time.After
	}
	ctx, cancel := context.WithCancel(bg)
	w := &idpWait{log: log, after: after, try: try, stop: cancel, done: make(chan struct{})}
	w.setReason(err)
	w.retryIn.Store(int64(idpRetryFirst / time.Second))
	log.Error("the identity provider cannot be reached: starting anyway, not ready until it answers", "reason", err.Error())
	go w.run(ctx)
	return w, nil
}

func (w *idpWait) run(ctx context.Context) {
	defer close(w.done)
	wait := idpRetryFirst
	for {
		w.retryIn.Store(int64((wait + time.Second - 1) / time.Second))
		select {
		case <-ctx.Done():
			return
		case <-w.after(wait):
		}
		err := w.try(ctx)
		if err == nil {
			w.ready.Store(true)
			w.log.Info("the identity provider answers: ready")
			return
		}
		if ctx.Err() != nil {
			return
		}
		if w.setReason(err) {
			w.log.Error("the identity provider still cannot be reached", "reason", err.Error())
		} else {
			w.log.Debug("the identity provider still cannot be reached", "reason", err.Error())
		}
		wait = min(2*wait, idpRetryMax)
	}
}

// setReason records why the provider is not ready, and reports whether
// that changed.
func (w *idpWait) setReason(err error) bool {
	r := "waiting for the identity provider: " + strings.ReplaceAll(err.Error(), "\n", "; ") +
		"; check that it is up and reachable from this server (DNS, firewall, outbound proxy) and that the URL is right; retrying in the background"
	old := w.reason.Swap(&r)
	return old == nil || *old != r
}

// err is why the server is not ready yet, or nil once it is.
func (w *idpWait) err() error {
	if w == nil || w.ready.Load() {
		return nil
	}
	return errors.New(*w.reason.Load())
}

// close stops the retries.
func (w *idpWait) close() {
	w.stop()
	<-w.done
}

// gate answers 503 with Retry-After, until the provider has answered, on
// every path that needs it (all but health checks and static metadata).
// The answer does not name the provider's URL: /readyz and the log do.
func (w *idpWait) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !w.ready.Load() && needsStore(r.URL.Path) {
			rw.Header().Set("Retry-After", strconv.FormatInt(w.retryIn.Load(), 10))
			rw.Header().Set("Cache-Control", "no-store")
			http.Error(rw, "temporarily unavailable: the identity provider cannot be reached yet; retry shortly", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// unreachableError marks a failure to reach the identity provider (no
// connection, no answer in time, a 5xx, 408 or 429): an outage to wait
// out. Any other failure (a 404, a document that is not what it should
// be, another issuer) is a configuration error that stops the start.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// unreachable marks err as an outage.
func unreachable(err error) error { return &unreachableError{err} }

func isUnreachable(err error) bool {
	var u *unreachableError
	return errors.As(err, &u) || errors.Is(err, upstream.ErrUnavailable)
}

// outageStatus reports whether an HTTP status is the provider's outage
// rather than a refusal.
func outageStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// netReason says why a request got no answer, without the library's
// wrapping: "dial tcp 10.0.0.7:443: connect: connection refused", "no
// answer within 10s".
func netReason(err error) string {
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status != 0 {
		return "HTTP " + strconv.Itoa(ue.Status)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if urlErr.Timeout() {
			return "no answer in time"
		}
		return urlErr.Err.Error()
	}
	return err.Error()
}

// probeJWKS fetches the JWK Set at jwksURL once, to say plainly what is
// wrong before the verifier's cache fetches it for good.
func probeJWKS(ctx context.Context, jwksURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return fmt.Errorf("the JWKS URL %s: %v", jwksURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return unreachable(fmt.Errorf("the JWKS at %s cannot be fetched (%s)", jwksURL, netReason(err)))
	}
	defer resp.Body.Close()
	switch {
	case outageStatus(resp.StatusCode):
		return unreachable(fmt.Errorf("the JWKS at %s answers HTTP %d", jwksURL, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("the JWKS at %s answers HTTP %d: check the JWKS URL (--jwks-url, Tokens.JWKSURL) or the jwks_uri of the issuer's metadata", jwksURL, resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil || set.Keys == nil {
		return fmt.Errorf("the JWKS at %s is not a JWK Set: check the JWKS URL (--jwks-url, Tokens.JWKSURL) or the jwks_uri of the issuer's metadata", jwksURL)
	}
	return nil
}

// startVerifier is newVerifier for AuthJWT that survives an outage of the
// identity provider: the verifier it returns refuses every token as
// unavailable (503) until the JWKS has been fetched, and the wait (nil
// when there was nothing to wait for) gates the server meanwhile. Other
// modes fetch nothing at start-up.
func startVerifier(bg context.Context, s *settings) (resource.Verifier, *idpWait, error) {
	if s.Auth != AuthJWT {
		v, err := newVerifier(bg, s)
		return v, nil, err
	}
	var verify atomic.Pointer[resource.Verifier]
	w, err := startIdPWait(bg, bg, s.Logger, s.idpRetry, func(ctx context.Context) error {
		// The cache of the verifier lives until bg is done; one that
		// failed is stopped at once, so that retries leave nothing behind.
		vctx, cancel := context.WithCancel(bg)
		v, err := newVerifier(vctx, s)
		defer func() {
			if err != nil {
				cancel()
			}
		}()
		if err != nil {
			return err
		}
		verify.Store(&v)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, token string) (*auth.TokenInfo, error) {
		v := verify.Load()
		if v == nil {
			return nil, fmt.Errorf("the JWKS has not been fetched yet: %w", authz.ErrUnavailable)
		}
		return (*v)(ctx, token)
	}, w, nil
}

// discoverUpstream is discover (upstream.DiscoverOIDC or upstream.Google)
// that survives an outage of the provider at issuer: when the discovery
// document cannot be fetched it returns a provider that the first
// successful discovery in the background fills in, and the wait that
// gates the server until then (nil when discovery succeeded at once).
// Nothing reads the provider before the gate opens: every path that could
// is behind it.
func discoverUpstream(ctx, bg context.Context, log *slog.Logger, after func(time.Duration) <-chan time.Time, issuer string,
	discover func(context.Context) (*upstream.Provider, error)) (*upstream.Provider, *idpWait, error) {
	p := &upstream.Provider{Issuer: issuer}
	doc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	w, err := startIdPWait(ctx, bg, log, after, func(ctx context.Context) error {
		d, err := discover(ctx)
		switch {
		case err == nil:
			*p = *d // before the gate opens: see above
			return nil
		case errors.Is(err, upstream.ErrUnavailable):
			return unreachable(fmt.Errorf("the discovery document %s cannot be fetched (%s)", doc, netReason(err)))
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return p, w, nil
}
