package resource

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// Credentials with characters that RFC 6749 §2.3.1 form-encoding changes.
const (
	introspectClientID = "mcp server:1"
	introspectSecret   = "p@ss/w+rd &=%é"
)

// introspectionServer is a fake RFC 7662 endpoint: it authenticates the
// caller with client_secret_basic, answers each token with a fixed response,
// and counts calls per token.
type introspectionServer struct {
	*httptest.Server
	t *testing.T

	mu        sync.Mutex
	responses map[string]any // token → JSON response
	calls     map[string]int
	status    int // 0: answer normally
}

func newIntrospectionServer(t *testing.T, responses map[string]any) *introspectionServer {
	s := &introspectionServer{t: t, responses: responses, calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *introspectionServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.t.Errorf("introspection method = %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		s.t.Errorf("introspection Content-Type = %q", ct)
	}
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("introspection form: %v", err)
	}
	if hint := r.PostForm.Get("token_type_hint"); hint != "access_token" {
		s.t.Errorf("token_type_hint = %q, want access_token", hint)
	}
	if r.URL.RawQuery != "" {
		s.t.Errorf("the token went in the URL: %q", r.URL.RawQuery)
	}
	token := r.PostForm.Get("token")
	s.mu.Lock()
	s.calls[token]++
	status, resp := s.status, s.responses[token]
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	// RFC 6749 §2.3.1: client_id and secret are form-encoded, then Basic.
	user, pass, ok := r.BasicAuth()
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if !ok || err1 != nil || err2 != nil || id != introspectClientID || secret != introspectSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspect"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	if resp == nil {
		resp = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *introspectionServer) callsFor(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[token]
}

func (s *introspectionServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *introspectionServer) setStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func newTestIntrospector(t *testing.T, u string, clock *authztest.Clock, edit func(*IntrospectionOptions)) *Introspector {
	t.Helper()
	opts := IntrospectionOptions{
		URL:          u,
		ClientID:     introspectClientID,
		ClientSecret: introspectSecret,
		Audience:     authztest.Audience,
		Issuer:       authztest.Issuer,
		HTTPClient:   &http.Client{Timeout: 5 * time.Second},
		Now:          clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	i, err := NewIntrospector(&opts)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// activeResponse is an active introspection answer for user-1.
func activeResponse(now time.Time, kv ...any) map[string]any {
	r := map[string]any{
		"active":     true,
		"sub":        "user-1",
		"scope":      "notes:read notes:write",
		"client_id":  "client-1",
		"aud":        authztest.Audience,
		"iss":        authztest.Issuer,
		"exp":        now.Add(time.Hour).Unix(),
		"token_type": "Bearer",
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(r, kv[i].(string))
		} else {
			r[kv[i].(string)] = kv[i+1]
		}
	}
	return r
}

func TestIntrospectorVerify(t *testing.T) {
	clock := authztest.NewClock()
	now := clock.Now()
	exp := time.Unix(now.Add(time.Hour).Unix(), 0)
	full := &auth.TokenInfo{UserID: "user-1", Scopes: []string{"notes:read", "notes:write"}, Expiration: exp, Extra: map[string]any{"client_id": "client-1"}}
	for _, tt := range []struct {
		name     string
		response map[string]any
		want     *auth.TokenInfo // nil: refused
		desc     string          // why, for ErrInvalidToken
		// unavailable: the answer is unusable, so ErrUnavailable.
		unavailable bool
	}{
		{name: "active, aud as a string", response: activeResponse(now), want: full},
		{name: "active, aud as an array", response: activeResponse(now, "aud", []string{"https://api.example.com", authztest.Audience}), want: full},
		{name: "active, aud with a trailing slash", response: activeResponse(now, "aud", authztest.Audience+"/"), want: full},
		{name: "active, no iss", response: activeResponse(now, "iss", nil), want: full},
		{name: "active, no exp", response: activeResponse(now, "exp", nil), want: &auth.TokenInfo{UserID: "user-1", Scopes: []string{"notes:read", "notes:write"}, Extra: map[string]any{"client_id": "client-1"}}},
		{name: "active, no scope, no client_id", response: activeResponse(now, "scope", nil, "client_id", nil), want: &auth.TokenInfo{UserID: "user-1", Expiration: exp, Extra: map[string]any{}}},
		{name: "inactive", response: map[string]any{"active": false}, desc: "the token is not active"},
		{name: "inactive with claims", response: activeResponse(now, "active", false), desc: "the token is not active"},
		{name: "active as a string", response: activeResponse(now, "active", "true"), unavailable: true},
		{name: "wrong aud", response: activeResponse(now, "aud", "https://mcp.example.com/other"), desc: "the token was issued for another resource"},
		{name: "wrong aud in an array", response: activeResponse(now, "aud", []string{"https://mcp.example.com/other", "https://evil.example.com/mcp"}), desc: "the token was issued for another resource"},
		{name: "no aud", response: activeResponse(now, "aud", nil), desc: "the token was issued for another resource"},
		{name: "empty aud", response: activeResponse(now, "aud", ""), desc: "the token was issued for another resource"},
		{name: "empty aud array", response: activeResponse(now, "aud", []string{}), desc: "the token was issued for another resource"},
		{name: "wrong iss", response: activeResponse(now, "iss", "https://evil.example.com"), desc: "the token was issued by another authorization server"},
		{name: "expired", response: activeResponse(now, "exp", now.Add(-time.Minute).Unix()), desc: "the token has expired"},
		{name: "expires now", response: activeResponse(now, "exp", now.Unix()), desc: "the token has expired"},
		{name: "no sub", response: activeResponse(now, "sub", nil), desc: "the token has no subject"},
		{name: "token_type bearer in lower case", response: activeResponse(now, "token_type", "bearer"), want: full},
		{name: "token_type access_token", response: activeResponse(now, "token_type", "access_token"), want: full},
		{name: "token_type as an RFC 8693 URI", response: activeResponse(now, "token_type", "urn:ietf:params:oauth:token-type:access_token"), want: full},
		{name: "no token_type", response: activeResponse(now, "token_type", nil), want: full},
		{name: "token_use access_token", response: activeResponse(now, "token_use", "access_token"), want: full},
		{name: "token_type refresh_token", response: activeResponse(now, "token_type", "refresh_token"), desc: "the token is not an access token"},
		{name: "token_type Refresh", response: activeResponse(now, "token_type", "Refresh"), desc: "the token is not an access token"},
		{name: "token_type as the RFC 8693 refresh URI", response: activeResponse(now, "token_type", "urn:ietf:params:oauth:token-type:refresh_token"), desc: "the token is not an access token"},
		{name: "token_type DPoP", response: activeResponse(now, "token_type", "DPoP"), desc: "the token is not an access token"},
		{name: "token_use refresh_token", response: activeResponse(now, "token_use", "refresh_token"), desc: "the token is not an access token"},
		{name: "nbf in the past", response: activeResponse(now, "nbf", now.Add(-time.Minute).Unix()), want: full},
		{name: "nbf within the clock skew", response: activeResponse(now, "nbf", now.Add(20*time.Second).Unix()), want: full},
		{name: "nbf in the future", response: activeResponse(now, "nbf", now.Add(time.Hour).Unix()), desc: "the token is not valid yet"},
		{name: "nbf just past the clock skew", response: activeResponse(now, "nbf", now.Add(31*time.Second).Unix()), desc: "the token is not valid yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const token = "opaque-token-0123456789"
			s := newIntrospectionServer(t, map[string]any{token: tt.response})
			i := newTestIntrospector(t, s.URL, clock, nil)
			got, err := i.Verify(t.Context(), token)
			switch {
			case tt.unavailable:
				if !errors.Is(err, authz.ErrUnavailable) || errors.Is(err, authz.ErrInvalidToken) {
					t.Fatalf("Verify = %v, want ErrUnavailable only", err)
				}
				return
			case tt.want == nil:
				if !errors.Is(err, authz.ErrInvalidToken) || errors.Is(err, authz.ErrUnavailable) {
					t.Fatalf("Verify = %+v, %v; want ErrInvalidToken only", got, err)
				}
				if d := tokencheck.Description(err); d != tt.desc {
					t.Errorf("refused because %q, want %q", d, tt.desc)
				}
				if strings.Contains(err.Error(), token) {
					t.Errorf("the error quotes the token: %v", err)
				}
			default:
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("TokenInfo (-want +got):\n%s", diff)
				}
			}
			if n := s.callsFor(token); n != 1 {
				t.Errorf("endpoint called %d times, want 1", n)
			}
		})
	}
}

func TestIntrospectorUnavailable(t *testing.T) {
	const token = "opaque-token-0123456789"
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T) (url string, edit func(*IntrospectionOptions))
	}{
		{name: "500", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			s := newIntrospectionServer(t, nil)
			s.setStatus(http.StatusInternalServerError)
			return s.URL, nil
		}},
		{name: "503", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			s := newIntrospectionServer(t, nil)
			s.setStatus(http.StatusServiceUnavailable)
			return s.URL, nil
		}},
		{name: "401 for our credentials", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			s := newIntrospectionServer(t, map[string]any{token: activeResponse(time.Now())})
			return s.URL, func(o *IntrospectionOptions) { o.ClientSecret = "wrong" }
		}},
		{name: "unreachable", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			s := newIntrospectionServer(t, nil)
			s.Close()
			return s.URL, nil
		}},
		{name: "not JSON", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
			t.Cleanup(s.Close)
			return s.URL, nil
		}},
		{name: "too slow", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			release := make(chan struct{})
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-time.After(5 * time.Second):
				}
			}))
			t.Cleanup(s.Close)
			t.Cleanup(func() { close(release) }) // runs first
			return s.URL, func(o *IntrospectionOptions) { o.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} }
		}},
		{name: "bad URL", setup: func(t *testing.T) (string, func(*IntrospectionOptions)) {
			return "http://in valid/", nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, edit := tt.setup(t)
			i := newTestIntrospector(t, u, authztest.NewClock(), edit)
			for attempt := range 2 { // failures are not cached
				_, err := i.Verify(t.Context(), token)
				if !errors.Is(err, authz.ErrUnavailable) || errors.Is(err, authz.ErrInvalidToken) {
					t.Fatalf("attempt %d: Verify = %v, want ErrUnavailable only", attempt+1, err)
				}
				if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), introspectSecret) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
			rec, _ := bearerThrough(i.Verify, token)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
				t.Errorf("RequireBearer status = %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
			}
		})
	}
}

func TestIntrospectorFailureNotCached(t *testing.T) {
	const token = "opaque-token-0123456789"
	clock := authztest.NewClock()
	s := newIntrospectionServer(t, map[string]any{token: activeResponse(clock.Now())})
	i := newTestIntrospector(t, s.URL, clock, nil)
	s.setStatus(http.StatusBadGateway)
	if _, err := i.Verify(t.Context(), token); !errors.Is(err, authz.ErrUnavailable) {
		t.Fatalf("Verify with the endpoint down = %v, want ErrUnavailable", err)
	}
	s.setStatus(0)
	if _, err := i.Verify(t.Context(), token); err != nil {
		t.Fatalf("Verify once the endpoint is back: %v", err)
	}
	if n := s.callsFor(token); n != 2 {
		t.Errorf("endpoint called %d times, want 2", n)
	}
}

func TestIntrospectorCache(t *testing.T) {
	clock := authztest.NewClock()
	now := clock.Now()
	const (
		longLived  = "token-long-lived"
		shortLived = "token-short-lived"
		inactive   = "token-inactive"
		other      = "token-other"
	)
	s := newIntrospectionServer(t, map[string]any{
		longLived:  activeResponse(now),
		shortLived: activeResponse(now, "exp", now.Add(30*time.Second).Unix()),
		inactive:   map[string]any{"active": false},
		other:      activeResponse(now, "sub", "user-2"),
	})
	i := newTestIntrospector(t, s.URL, clock, func(o *IntrospectionOptions) {
		o.MaxCache = 2 * time.Minute
		o.NegativeCache = 5 * time.Second
	})
	verify := func(token string) error {
		t.Helper()
		_, err := i.Verify(t.Context(), token)
		return err
	}
	expect := func(step string, want map[string]int) {
		t.Helper()
		got := map[string]int{}
		for tok := range want {
			got[tok] = s.callsFor(tok)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: endpoint calls per token (-want +got):\n%s", step, diff)
		}
	}

	for range 3 {
		if err := verify(longLived); err != nil {
			t.Fatal(err)
		}
		if err := verify(shortLived); err != nil {
			t.Fatal(err)
		}
		if err := verify(inactive); !errors.Is(err, authz.ErrInvalidToken) {
			t.Fatalf("Verify(inactive) = %v, want ErrInvalidToken", err)
		}
	}
	info, err := i.Verify(t.Context(), other)
	if err != nil || info.UserID != "user-2" {
		t.Fatalf("Verify(other) = %+v, %v; want user-2 (tokens are cached apart)", info, err)
	}
	expect("first use", map[string]int{longLived: 1, shortLived: 1, inactive: 1, other: 1})

	clock.Advance(4 * time.Second)
	verify(longLived)
	verify(shortLived)
	if err := verify(inactive); !errors.Is(err, authz.ErrInvalidToken) {
		t.Fatalf("Verify(inactive, cached) = %v, want ErrInvalidToken", err)
	}
	expect("within NegativeCache", map[string]int{longLived: 1, shortLived: 1, inactive: 1})

	clock.Advance(time.Second) // 5s: the negative answer is forgotten
	verify(inactive)
	expect("after NegativeCache", map[string]int{longLived: 1, shortLived: 1, inactive: 2})

	clock.Advance(24 * time.Second) // 29s: still before the short token's exp
	verify(shortLived)
	expect("before exp", map[string]int{shortLived: 1})

	clock.Advance(time.Second) // 30s: exp passed, ask again (and it has expired)
	if err := verify(shortLived); !errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("Verify(short-lived) after its exp = %v, want ErrInvalidToken", err)
	}
	expect("at exp", map[string]int{shortLived: 2})

	clock.Advance(89 * time.Second) // 1m59s
	verify(longLived)
	expect("within MaxCache", map[string]int{longLived: 1})

	clock.Advance(time.Second) // 2m: MaxCache reached
	if err := verify(longLived); err != nil {
		t.Fatal(err)
	}
	expect("after MaxCache", map[string]int{longLived: 2})
	verify(longLived)
	expect("cached again", map[string]int{longLived: 2})
}

func TestIntrospectorCachedAnswerIsTheSame(t *testing.T) {
	clock := authztest.NewClock()
	const token = "opaque-token-0123456789"
	s := newIntrospectionServer(t, map[string]any{token: activeResponse(clock.Now())})
	i := newTestIntrospector(t, s.URL, clock, nil)
	first, err := i.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	second, err := i.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached TokenInfo differs (-first +second):\n%s", diff)
	}
	if n := s.total(); n != 1 {
		t.Errorf("endpoint called %d times, want 1", n)
	}
}

func TestIntrospectorConcurrent(t *testing.T) {
	clock := authztest.NewClock()
	s := newIntrospectionServer(t, map[string]any{
		"a": activeResponse(clock.Now()),
		"b": map[string]any{"active": false},
	})
	i := newTestIntrospector(t, s.URL, clock, nil)
	var wg sync.WaitGroup
	for n := range 40 {
		wg.Go(func() {
			token := []string{"a", "b"}[n%2]
			_, err := i.Verify(t.Context(), token)
			if token == "a" && err != nil || token == "b" && !errors.Is(err, authz.ErrInvalidToken) {
				t.Errorf("Verify(%s) = %v", token, err)
			}
		})
	}
	wg.Wait()
}

func TestNewIntrospectorOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts IntrospectionOptions
	}{
		{name: "no URL", opts: IntrospectionOptions{ClientID: "c", ClientSecret: "s", Audience: authztest.Audience}},
		{name: "no audience", opts: IntrospectionOptions{URL: "https://as.example.com/introspect", ClientID: "c", ClientSecret: "s"}},
		{name: "no client id", opts: IntrospectionOptions{URL: "https://as.example.com/introspect", ClientSecret: "s", Audience: authztest.Audience}},
		{name: "no secret", opts: IntrospectionOptions{URL: "https://as.example.com/introspect", ClientID: "c", Audience: authztest.Audience}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if i, err := NewIntrospector(&tt.opts); err == nil {
				t.Errorf("NewIntrospector(%+v) = %v, nil; want an error", tt.opts, i)
			}
		})
	}
}
