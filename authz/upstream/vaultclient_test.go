package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz"
)

// Token values of the vault tests: none may appear in an error or a log.
const (
	oldAccess  = "at-0ld-s3cret-a1"
	oldRefresh = "rt-0ld-s3cret-r1"
	newAccess  = "at-n3w-s3cret-a2"
	newRefresh = "rt-n3w-s3cret-r2"
)

// vaultSecrets lists every secret a vault test handles.
var vaultSecrets = []string{oldAccess, oldRefresh, newAccess, newRefresh, testClientSecret}

// fakeStores is a minimal in-test TokenStore and GrantRevoker.
type fakeStores struct {
	mu      sync.Mutex
	sealed  map[string]*Sealed
	ttl     map[string]time.Duration
	revoked map[string]bool
	puts    int
}

var (
	_ TokenStore   = (*fakeStores)(nil)
	_ GrantRevoker = (*fakeStores)(nil)
)

func newFakeStores() *fakeStores {
	return &fakeStores{sealed: map[string]*Sealed{}, ttl: map[string]time.Duration{}, revoked: map[string]bool{}}
}

func cloneSealed(s *Sealed) *Sealed {
	return &Sealed{KeyID: s.KeyID, Nonce: bytes.Clone(s.Nonce), Ciphertext: bytes.Clone(s.Ciphertext)}
}

func (f *fakeStores) PutUpstream(_ context.Context, id string, s *Sealed, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sealed[id], f.ttl[id] = cloneSealed(s), ttl
	f.puts++
	return nil
}

func (f *fakeStores) GetUpstream(_ context.Context, id string) (*Sealed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sealed[id]
	if !ok {
		return nil, authz.ErrNotFound
	}
	return cloneSealed(s), nil
}

func (f *fakeStores) DeleteUpstream(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sealed, id)
	return nil
}

func (f *fakeStores) RevokeGrant(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[id] = true
	return nil
}

func (f *fakeStores) GrantRevoked(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revoked[id], nil
}

func (f *fakeStores) record(id string) *Sealed {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sealed[id]; ok {
		return cloneSealed(s)
	}
	return nil
}

// fakeUpstream is an upstream token and userinfo endpoint with fault
// injection: token answers each refresh request.
type fakeUpstream struct {
	up        *Provider
	refreshes atomic.Int32
	// userinfo, if set, is the userinfo answer instead of alice's.
	userinfo atomic.Pointer[string]
	mu       sync.Mutex
	forms    []map[string]string
}

func newFakeUpstream(t *testing.T, token http.HandlerFunc) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		f.refreshes.Add(1)
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, map[string]string{
			"grant_type": r.PostForm.Get("grant_type"), "refresh_token": r.PostForm.Get("refresh_token"),
			"client_id": id, "client_secret": secret,
		})
		f.mu.Unlock()
		token(w, r)
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+newAccess && r.Header.Get("Authorization") != "Bearer "+oldAccess {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if u := f.userinfo.Load(); u != nil {
			w.Write([]byte(*u))
			return
		}
		w.Write([]byte(`{"sub":"user-1","preferred_username":"alice","name":"Alice","email":"alice@example.com","email_verified":true}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.Timeout = 300 * time.Millisecond
	f.up = &Provider{
		Name: "dev",
		OAuth2: oauth2.Config{
			ClientID:     "client-1",
			ClientSecret: testClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader,
			},
		},
		UserInfoURL: srv.URL + "/userinfo",
		HTTPClient:  hc,
	}
	return f
}

// issue answers a refresh with a new access token, and a new refresh token
// when rotate is set.
func issue(rotate bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		resp := map[string]any{"access_token": newAccess, "token_type": "Bearer", "expires_in": 3600}
		if rotate {
			resp["refresh_token"] = newRefresh
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}
}

// answer answers with a status and a body that echoes the refresh token,
// as a careless upstream might.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(strings.ReplaceAll(body, "$RT", r.PostForm.Get("refresh_token"))))
	}
}

// syncBuffer is a log sink safe for the refresh goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type vaultFixture struct {
	vault  *Vault
	stores *fakeStores
	up     *fakeUpstream
	logs   *syncBuffer
}

func newVaultFixture(t *testing.T, token http.HandlerFunc, opts *VaultOptions) *vaultFixture {
	t.Helper()
	fx := &vaultFixture{stores: newFakeStores(), up: newFakeUpstream(t, token), logs: &syncBuffer{}}
	if opts == nil {
		opts = &VaultOptions{}
	}
	opts.Logger = slog.New(slog.NewTextHandler(fx.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fx.vault = NewVault(fx.stores, fx.stores, testRing(t, "k1", "k1"), fx.up.up, opts)
	return fx
}

// put stores a token that expires in ttl.
func (fx *vaultFixture) put(t *testing.T, grantID string, ttl time.Duration, refresh string) {
	t.Helper()
	tok := &oauth2.Token{AccessToken: oldAccess, TokenType: "Bearer", RefreshToken: refresh, Expiry: time.Now().Add(ttl)}
	if err := fx.vault.Put(t.Context(), grantID, tok); err != nil {
		t.Fatal(err)
	}
}

// stored opens the grant's record as the vault would.
func (fx *vaultFixture) stored(t *testing.T, grantID string) *oauth2.Token {
	t.Helper()
	s := fx.stores.record(grantID)
	if s == nil {
		return nil
	}
	tok, err := fx.vault.keys.OpenToken(grantID, s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkNoSecrets fails if an error or the logs hold a token or secret.
func (fx *vaultFixture) checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	for _, secret := range vaultSecrets {
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error holds a secret: %v", err)
		}
		if strings.Contains(fx.logs.String(), secret) {
			t.Errorf("the logs hold a secret:\n%s", fx.logs)
		}
	}
}

func TestVaultTokenFresh(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	fx.put(t, "g1", time.Hour, oldRefresh)
	tok, err := fx.vault.Token(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != oldAccess || tok.RefreshToken != oldRefresh {
		t.Errorf("Token = %+v", tok)
	}
	if n := fx.up.refreshes.Load(); n != 0 {
		t.Errorf("%d refreshes of a fresh token", n)
	}
	if fx.stores.ttl["g1"] != 30*24*time.Hour {
		t.Errorf("record TTL = %v, want 30 days", fx.stores.ttl["g1"])
	}
}

func TestVaultNoExpiry(t *testing.T) {
	// GitHub OAuth App tokens do not expire and come without a refresh token.
	fx := newVaultFixture(t, issue(true), nil)
	if err := fx.vault.Put(t.Context(), "g1", &oauth2.Token{AccessToken: oldAccess}); err != nil {
		t.Fatal(err)
	}
	tok, err := fx.vault.Token(t.Context(), "g1")
	if err != nil || tok.AccessToken != oldAccess {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
}

func TestVaultRefreshBeforeExpiry(t *testing.T) {
	for _, tt := range []struct {
		name        string
		rotate      bool
		wantRefresh string
	}{
		{"upstream rotates the refresh token", true, newRefresh},
		{"upstream omits the refresh token", false, oldRefresh},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx := newVaultFixture(t, issue(tt.rotate), &VaultOptions{RefreshBefore: time.Minute})
			fx.put(t, "g1", 30*time.Second, oldRefresh) // valid, but within RefreshBefore
			tok, err := fx.vault.Token(t.Context(), "g1")
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != newAccess || tok.RefreshToken != tt.wantRefresh {
				t.Errorf("Token = %q, %q; want %q, %q", tok.AccessToken, tok.RefreshToken, newAccess, tt.wantRefresh)
			}
			got := fx.stored(t, "g1")
			if got.AccessToken != newAccess || got.RefreshToken != tt.wantRefresh || time.Until(got.Expiry) < 50*time.Minute {
				t.Errorf("stored %q, %q, expiry in %v", got.AccessToken, got.RefreshToken, time.Until(got.Expiry))
			}
			want := []map[string]string{{
				"grant_type": "refresh_token", "refresh_token": oldRefresh, "client_id": "client-1", "client_secret": testClientSecret,
			}}
			if diff := cmp.Diff(want, fx.up.forms); diff != "" {
				t.Errorf("refresh requests (-want +got):\n%s", diff)
			}
			// The refreshed token is served from the store.
			if _, err := fx.vault.Token(t.Context(), "g1"); err != nil {
				t.Fatal(err)
			}
			if n := fx.up.refreshes.Load(); n != 1 {
				t.Errorf("%d refreshes, want 1", n)
			}
			fx.checkNoSecrets(t, nil)
		})
	}
}

func TestVaultSingleFlight(t *testing.T) {
	release := make(chan struct{})
	fx := newVaultFixture(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		issue(true)(w, r)
	}, nil)
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	joins := make(chan string, 64)
	fx.vault.joined = func(grantID string) { joins <- grantID }

	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			tok, err := fx.vault.Token(t.Context(), "g1")
			if err == nil && tok.AccessToken != newAccess {
				err = errors.New("got the old access token")
			}
			errs <- err
		})
	}
	// Let the callers pile up behind the one refresh in flight.
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-joins:
		case <-deadline:
			t.Fatal("the callers did not all wait for the refresh within 10s")
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := fx.up.refreshes.Load(); got != 1 {
		t.Errorf("%d upstream refreshes for %d concurrent callers, want 1", got, n)
	}
}

// fakeLocker plays another replica: while we wait for the lock, it
// refreshes the grant itself.
type fakeLocker struct {
	locks    atomic.Int32
	unlocks  atomic.Int32
	whileWay func()
}

func (l *fakeLocker) Lock(_ context.Context, key string) (func(), error) {
	l.locks.Add(1)
	if l.whileWay != nil {
		l.whileWay()
	}
	return func() { l.unlocks.Add(1) }, nil
}

func TestVaultLockerRereads(t *testing.T) {
	locker := &fakeLocker{}
	fx := newVaultFixture(t, issue(true), &VaultOptions{Locker: locker})
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	locker.whileWay = func() {
		// The other replica stores its refreshed token before releasing.
		tok := &oauth2.Token{AccessToken: newAccess, RefreshToken: newRefresh, Expiry: time.Now().Add(time.Hour)}
		if err := fx.vault.Put(context.Background(), "g1", tok); err != nil {
			t.Error(err)
		}
	}
	tok, err := fx.vault.Token(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != newAccess || tok.RefreshToken != newRefresh {
		t.Errorf("Token = %q, %q: the record was not re-read under the lock", tok.AccessToken, tok.RefreshToken)
	}
	if n := fx.up.refreshes.Load(); n != 0 {
		t.Errorf("%d upstream refreshes; the other replica's token should have been used", n)
	}
	if locker.locks.Load() != 1 || locker.unlocks.Load() != 1 {
		t.Errorf("locks %d, unlocks %d", locker.locks.Load(), locker.unlocks.Load())
	}
}

func TestVaultLockerError(t *testing.T) {
	fx := newVaultFixture(t, issue(true), &VaultOptions{Locker: lockerFunc(func(context.Context, string) (func(), error) {
		return nil, errors.New("redis: connection refused")
	})})
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	_, err := fx.vault.Token(t.Context(), "g1")
	if err == nil || errors.Is(err, ErrReauthorize) {
		t.Fatalf("Token = %v, want a lock error", err)
	}
	if fx.up.refreshes.Load() != 0 || fx.stores.revoked["g1"] {
		t.Error("refreshed or revoked without the lock")
	}
}

type lockerFunc func(context.Context, string) (func(), error)

func (f lockerFunc) Lock(ctx context.Context, key string) (func(), error) { return f(ctx, key) }

func TestVaultReauthorize(t *testing.T) {
	for _, tt := range []struct {
		name  string
		token http.HandlerFunc
		ttl   time.Duration
	}{
		{"invalid_grant 400", answer(400, "application/json", `{"error":"invalid_grant","error_description":"token $RT revoked"}`), -time.Minute},
		{"invalid_grant 401", answer(401, "application/json", `{"error":"invalid_grant"}`), -time.Minute},
		{"invalid_grant while the access token still works", answer(400, "application/json", `{"error":"invalid_grant"}`), 30 * time.Second},
		{"GitHub bad_refresh_token", answer(200, "application/x-www-form-urlencoded", `error=bad_refresh_token&error_description=$RT`), -time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx := newVaultFixture(t, tt.token, nil)
			fx.put(t, "g1", tt.ttl, oldRefresh)
			_, err := fx.vault.Token(t.Context(), "g1")
			if !errors.Is(err, ErrReauthorize) {
				t.Fatalf("Token = %v, want ErrReauthorize", err)
			}
			if !fx.stores.revoked["g1"] {
				t.Error("the grant was not revoked")
			}
			if fx.stores.record("g1") != nil {
				t.Error("the dead upstream tokens were kept")
			}
			fx.checkNoSecrets(t, err)
		})
	}
}

func TestVaultUpstreamUnavailable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tt := range []struct {
		name     string
		token    http.HandlerFunc
		tokenURL string
	}{
		{name: "503", token: answer(503, "text/plain", "refresh_token=$RT: try later")},
		{name: "500 with an OAuth error", token: answer(500, "application/json", `{"error":"server_error","error_description":"$RT"}`)},
		{name: "429", token: answer(429, "application/json", `{"error":"slow_down"}`)},
		{name: "timeout", token: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{name: "connection refused", tokenURL: closed.URL + "/token"},
		{name: "garbage", token: answer(200, "application/json", `{"access_token":`)},
		{name: "our client is refused", token: answer(401, "application/json", `{"error":"invalid_client"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx := newVaultFixture(t, tt.token, nil)
			if tt.tokenURL != "" {
				fx.up.up.OAuth2.Endpoint.TokenURL = tt.tokenURL
			}
			fx.put(t, "g1", -time.Second, oldRefresh) // expired
			before := fx.stores.record("g1")
			start := time.Now()
			_, err := fx.vault.Token(t.Context(), "g1")
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrReauthorize) {
				t.Fatalf("Token = %v, want ErrUpstreamUnavailable", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Token took %v", d)
			}
			if fx.stores.revoked["g1"] {
				t.Error("an upstream outage revoked the grant")
			}
			if diff := cmp.Diff(before, fx.stores.record("g1")); diff != "" {
				t.Errorf("the stored tokens changed (-before +after):\n%s", diff)
			}
			fx.checkNoSecrets(t, err)

			// While the old access token still works, it is served instead.
			fx.put(t, "g2", 30*time.Second, oldRefresh)
			tok, err := fx.vault.Token(t.Context(), "g2")
			if err != nil || tok.AccessToken != oldAccess {
				t.Errorf("Token before expiry = %+v, %v; want the old token", tok, err)
			}
			fx.checkNoSecrets(t, err)
		})
	}
}

func TestVaultMissingOrDead(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	_, err := fx.vault.Token(t.Context(), "nope")
	if !errors.Is(err, ErrReauthorize) || !fx.stores.revoked["nope"] {
		t.Errorf("missing record: Token = %v, revoked %v", err, fx.stores.revoked["nope"])
	}

	fx.put(t, "g1", -time.Second, "") // expired, no refresh token
	_, err = fx.vault.Token(t.Context(), "g1")
	if !errors.Is(err, ErrReauthorize) || !fx.stores.revoked["g1"] {
		t.Errorf("expired without a refresh token: Token = %v, revoked %v", err, fx.stores.revoked["g1"])
	}
	if fx.up.refreshes.Load() != 0 {
		t.Error("refreshed without a refresh token")
	}

	fx.put(t, "g2", 30*time.Second, "") // expiring, no refresh token: still usable
	if tok, err := fx.vault.Token(t.Context(), "g2"); err != nil || tok.AccessToken != oldAccess {
		t.Errorf("expiring without a refresh token: Token = %+v, %v", tok, err)
	}
}

func TestVaultRewrap(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	fx.put(t, "g1", time.Hour, oldRefresh) // sealed under k1
	before := fx.stores.record("g1")

	rotated := NewVault(fx.stores, fx.stores, testRing(t, "k2", "k1", "k2"), fx.up.up, nil)
	tok, err := rotated.Token(t.Context(), "g1")
	if err != nil || tok.AccessToken != oldAccess {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
	after := fx.stores.record("g1")
	if after.KeyID != "k2" {
		t.Fatalf("record key = %q, want k2", after.KeyID)
	}
	// Only the new key is needed now.
	got, err := testRing(t, "k2", "k2").OpenToken("g1", after)
	if err != nil || got.AccessToken != oldAccess || got.RefreshToken != oldRefresh {
		t.Errorf("rewrapped record = %+v, %v", got, err)
	}
	if _, err := testRing(t, "k2", "k2").OpenToken("g1", before); !errors.Is(err, ErrVaultKey) {
		t.Errorf("the old record opens without k1: %v", err)
	}
	if fx.up.refreshes.Load() != 0 {
		t.Error("a rewrap refreshed the token")
	}

	// A refresh under the new primary also rewraps.
	fx.put(t, "g2", 10*time.Second, oldRefresh)
	if _, err := rotated.Token(t.Context(), "g2"); err != nil {
		t.Fatal(err)
	}
	if kid := fx.stores.record("g2").KeyID; kid != "k2" {
		t.Errorf("refreshed record key = %q, want k2", kid)
	}
}

func TestVaultRecordBoundToGrant(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	fx.put(t, "g1", time.Hour, oldRefresh)
	// An attacker with write access to the store copies alice's record
	// under their own grant.
	if err := fx.stores.PutUpstream(t.Context(), "g2", fx.stores.record("g1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	tok, err := fx.vault.Token(t.Context(), "g2")
	if !errors.Is(err, ErrVaultKey) || tok != nil {
		t.Fatalf("Token of a moved record = %+v, %v; want ErrVaultKey", tok, err)
	}
	if errors.Is(err, ErrReauthorize) || fx.stores.revoked["g2"] {
		t.Error("an unopenable record revoked the grant (a key-ring mistake would log everyone out)")
	}
	fx.checkNoSecrets(t, err)
}

func TestVaultCallerCancel(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	fx := newVaultFixture(t, func(w http.ResponseWriter, r *http.Request) {
		arrive(arrived)
		<-release
		issue(true)(w, r)
	}, nil)
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := fx.vault.Token(ctx, "g1")
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Token = %v, want context.Canceled", err)
	}
	// The refresh goes on for the others, and its result is stored.
	close(release)
	tok, err := fx.vault.Token(t.Context(), "g1")
	if err != nil || tok.AccessToken != newAccess {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
	if n := fx.up.refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

func TestVaultPutDelete(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	for _, tok := range []*oauth2.Token{nil, {}, {RefreshToken: oldRefresh}} {
		if err := fx.vault.Put(t.Context(), "g1", tok); err == nil {
			t.Errorf("Put(%+v) succeeded", tok)
		}
	}
	if err := fx.vault.Put(t.Context(), "", &oauth2.Token{AccessToken: oldAccess}); err == nil {
		t.Error("Put without a grant id succeeded")
	}
	fx.put(t, "g1", time.Hour, oldRefresh)
	if s := fx.stores.record("g1"); bytes.Contains(s.Ciphertext, []byte(oldAccess)) || bytes.Contains(s.Ciphertext, []byte(oldRefresh)) {
		t.Error("the record holds the tokens in clear")
	}
	if err := fx.vault.Delete(t.Context(), "g1"); err != nil {
		t.Fatal(err)
	}
	if err := fx.vault.Delete(t.Context(), "g1"); err != nil {
		t.Errorf("second Delete = %v", err)
	}
	if _, err := fx.vault.Token(t.Context(), "g1"); !errors.Is(err, ErrReauthorize) {
		t.Errorf("Token after Delete = %v", err)
	}
}

func TestVaultIdentity(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	id, err := fx.vault.Identity(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{Subject: "user-1", Login: "alice", Name: "Alice", Email: "alice@example.com", EmailVerified: true}
	if diff := cmp.Diff(want, id, cmpIgnoreRaw); diff != "" {
		t.Errorf("Identity (-want +got):\n%s", diff)
	}
	if fx.up.refreshes.Load() != 1 {
		t.Error("Identity did not refresh the expiring token first")
	}
}

var cmpIgnoreRaw = cmp.Options{cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Raw" }, cmp.Ignore()), cmpopts.IgnoreUnexported(Identity{})}

func TestVaultClient(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	fx.put(t, "g1", time.Hour, oldRefresh)

	var otherAuth atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth.Store(r.Header.Get("Authorization"))
		io.WriteString(w, "other")
	}))
	defer other.Close()
	var apiAuth []string
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		apiAuth = append(apiAuth, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/repos", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/download", http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer api.Close()

	c, err := fx.vault.Client(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 30*time.Second {
		t.Errorf("Timeout = %v", c.Timeout)
	}
	for _, path := range []string{"/repos", "/moved", "/elsewhere"} {
		resp, err := c.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{
		"/repos Bearer " + oldAccess,
		"/moved Bearer " + oldAccess,
		"/repos Bearer " + oldAccess, // a redirect on the same host keeps the token
		"/elsewhere Bearer " + oldAccess,
	}
	if diff := cmp.Diff(want, apiAuth); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
	if got := otherAuth.Load(); got != "" {
		t.Errorf("a redirect to another host carried %q", got)
	}

	if _, err := fx.vault.Client(t.Context(), "missing"); !errors.Is(err, ErrReauthorize) {
		t.Errorf("Client of a missing grant = %v", err)
	}
}

func TestNewVaultPanics(t *testing.T) {
	s := newFakeStores()
	keys := testRing(t, "k1", "k1")
	up := GitHub(Config{})
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"store", func() { NewVault(nil, s, keys, up, nil) }},
		{"grants", func() { NewVault(s, nil, keys, up, nil) }},
		{"keys", func() { NewVault(s, s, nil, up, nil) }},
		{"upstream", func() { NewVault(s, s, keys, nil, nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(p.(string), "authz: nil ") {
					t.Errorf("panic = %v", p)
				}
			}()
			tt.f()
		})
	}
}

// swapStores adds the fence (TokenSwapper) to fakeStores.
type swapStores struct{ *fakeStores }

func (f swapStores) SwapUpstream(_ context.Context, id string, old, s *Sealed, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.sealed[id]
	if !ok || f.revoked[id] || cur.KeyID != old.KeyID || !bytes.Equal(cur.Nonce, old.Nonce) || !bytes.Equal(cur.Ciphertext, old.Ciphertext) {
		return false, nil
	}
	f.sealed[id], f.ttl[id] = cloneSealed(s), ttl
	f.puts++
	return true, nil
}

// TestVaultFencedRefresh: a replica whose refresh outlived its lock (the
// upstream was slow) must not overwrite the newer token another replica
// stored meanwhile: the compare-and-swap write refuses, and the vault
// serves the newer token.
func TestVaultFencedRefresh(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	fx := newVaultFixture(t, func(w http.ResponseWriter, r *http.Request) {
		arrive(arrived)
		<-release
		issue(true)(w, r)
	}, nil)
	stores := swapStores{fx.stores}
	fx.vault = NewVault(stores, stores, fx.vault.keys, fx.up.up, &VaultOptions{Logger: slog.New(slog.NewTextHandler(fx.logs, nil))})
	fx.put(t, "g1", 10*time.Second, oldRefresh)

	done := make(chan error, 1)
	var got *oauth2.Token
	go func() {
		var err error
		got, err = fx.vault.Token(t.Context(), "g1")
		done <- err
	}()
	// Wait until the slow refresh is at the upstream, then let "another
	// replica" store its newer token, then let the slow one finish.
	<-arrived
	other := &oauth2.Token{AccessToken: "other-replica-access", RefreshToken: "other-replica-refresh", Expiry: time.Now().Add(time.Hour)}
	if err := fx.vault.Put(t.Context(), "g1", other); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != other.AccessToken {
		t.Errorf("Token = %q; want the newer token %q that the other replica stored", got.AccessToken, other.AccessToken)
	}
	if s := fx.stored(t, "g1"); s.AccessToken != other.AccessToken || s.RefreshToken != other.RefreshToken {
		t.Errorf("stored %q/%q: the stalled refresh overwrote the newer token", s.AccessToken, s.RefreshToken)
	}
}

// arrive reports, without blocking, that a request reached the upstream.
func arrive(arrived chan<- struct{}) {
	select {
	case arrived <- struct{}{}:
	default:
	}
}

// TestVaultSealVerifier: a pending sign-in's PKCE verifier is sealed for
// its pending id (nothing of it in clear), opens for that id only, and
// never as a grant's token record of the same name.
func TestVaultSealVerifier(t *testing.T) {
	fx := newVaultFixture(t, issue(true), nil)
	const verifier = "upstream-pkce-verifier-0123456789abcdefghijklmnopqrstu"
	s, err := fx.vault.SealVerifier("p1", verifier)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(s)
	if strings.Contains(string(raw), verifier) || s.KeyID != "k1" {
		t.Errorf("sealed verifier %s: want it under k1, not in clear", raw)
	}
	got, err := fx.vault.OpenVerifier("p1", s)
	if err != nil || got != verifier {
		t.Fatalf("OpenVerifier = %q, %v; want the verifier", got, err)
	}
	for _, tc := range []struct {
		name string
		open func() error
	}{
		{"another pending id", func() error { _, err := fx.vault.OpenVerifier("p2", s); return err }},
		{"as a grant's token record", func() error { _, err := fx.vault.keys.Open("p1", s); return err }},
		{"no record", func() error { _, err := fx.vault.OpenVerifier("p1", nil); return err }},
	} {
		if err := tc.open(); !errors.Is(err, ErrVaultKey) {
			t.Errorf("%s: error %v, want ErrVaultKey", tc.name, err)
		}
	}
	if _, err := fx.vault.SealVerifier("", verifier); err == nil {
		t.Error("SealVerifier without a pending id succeeded")
	}
}
