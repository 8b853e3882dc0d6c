package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/remotemcp/remotemcp/authz"
)

// ErrReauthorize means the upstream tokens of a grant are gone for good: the
// record is missing, or the access token expired without a refresh token,
// or the upstream refused the refresh token (invalid_grant). The Vault has
// revoked the grant, so the client's next request gets a 401 and the user
// authorizes again.
var ErrReauthorize = errors.New("authz: the user must authorize again")

// A Locker serializes the upstream refreshes of one grant across replicas
// (a Redis lock), so that two replicas never redeem the same rotating
// upstream refresh token. Lock blocks until the lock on key (a grant id;
// namespace it) is held or ctx is done; unlock releases it. The lock should
// expire by itself in case the holder dies, after longer than a refresh
// takes (30s at most).
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// VaultOptions configures a Vault. Zero fields mean the defaults.
type VaultOptions struct {
	// RefreshBefore is how long before its expiry an upstream access token
	// is refreshed. Default 1 minute.
	RefreshBefore time.Duration
	// TTL is the lifetime of a stored record, renewed on every write.
	// Default 30 days.
	TTL time.Duration
	// ClientTimeout bounds each request of a Client. Default 30s.
	ClientTimeout time.Duration
	// Locker, if set, holds refreshes of one grant to one replica at a
	// time; nil serializes them within this process only, which is enough
	// for a single replica.
	Locker Locker
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives refresh failures and revocations (grant ids, never
	// tokens); nil discards.
	Logger *slog.Logger
	// Allow, if not empty, is checked again after every refresh of a
	// grant's upstream token, with the identity the fresh token gets: a
	// user the list no longer allows (removed from the organization,
	// the group, ...) has the grant revoked, and Token returns an error
	// matching both ErrReauthorize and ErrNotAllowed. An upstream that
	// cannot answer then keeps the grant until the next refresh.
	Allow *AllowList
	// Refreshed, if set, is told of each refresh of an upstream token:
	// "ok", "refused" (the upstream refused the refresh token: the user
	// must authorize again) or "failed" (the upstream could not be
	// reached or answered otherwise). It must be cheap and safe for
	// concurrent use.
	Refreshed func(outcome string)
}

// A Vault keeps each grant's upstream tokens, sealed with EncryptionKeys
// under the grant id (a record copied to another grant does not open), and
// hands out fresh ones: it refreshes an access token shortly before it
// expires, once per grant at a time, and rewraps records sealed under a
// retired key.
type Vault struct {
	store  TokenStore
	grants GrantRevoker
	keys   *EncryptionKeys
	up     *Provider
	o      VaultOptions

	flights singleflight.Group // one renewal per grant at a time in this process
	// joined, if set, is called once a caller waits for a renewal (a test
	// hook, nil in production).
	joined func(grantID string)
}

// renewTimeout bounds one renewal (lock, re-read, refresh, store). It does
// not follow the caller's context: a caller that gives up must not spoil
// the refresh for the others waiting on it.
const renewTimeout = 30 * time.Second

// NewVault returns a Vault. It panics on a nil dependency.
func NewVault(store TokenStore, grants GrantRevoker, keys *EncryptionKeys, up *Provider, opts *VaultOptions) *Vault {
	switch {
	case store == nil:
		panic("authz: nil UpstreamTokenStore")
	case grants == nil:
		panic("authz: nil GrantStore")
	case keys == nil:
		panic("authz: nil EncryptionKeys")
	case up == nil:
		panic("authz: nil Upstream")
	}
	var o VaultOptions
	if opts != nil {
		o = *opts
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = time.Minute
	}
	if o.TTL <= 0 {
		o.TTL = 30 * 24 * time.Hour
	}
	if o.ClientTimeout <= 0 {
		o.ClientTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Vault{store: store, grants: grants, keys: keys, up: up, o: o}
}

// Put stores the upstream tokens of a grant, sealed under the primary key.
func (v *Vault) Put(ctx context.Context, grantID string, tok *oauth2.Token) error {
	if grantID == "" || tok == nil || tok.AccessToken == "" {
		return errors.New("authz: vault put: no grant id or no access token")
	}
	return v.put(ctx, grantID, tok)
}

func (v *Vault) put(ctx context.Context, grantID string, tok *oauth2.Token) error {
	return v.putFor(ctx, grantID, tok, v.o.TTL)
}

func (v *Vault) putFor(ctx context.Context, grantID string, tok *oauth2.Token, ttl time.Duration) error {
	s, err := v.keys.SealToken(grantID, tok)
	if err != nil {
		return fmt.Errorf("authz: seal upstream token of grant %s: %w", grantID, err)
	}
	if err := v.store.PutUpstream(ctx, grantID, s, ttl); err != nil {
		return fmt.Errorf("authz: store upstream token of grant %s: %w", grantID, err)
	}
	return nil
}

// PutSignIn stores the upstream tokens of a sign-in that has not been
// completed yet (our authorization code is not redeemed): for ttl only, so
// that an abandoned sign-in does not keep them for the vault's TTL. Keep
// gives them the vault's TTL once the sign-in is completed.
func (v *Vault) PutSignIn(ctx context.Context, grantID string, tok *oauth2.Token, ttl time.Duration) error {
	if grantID == "" || tok == nil || tok.AccessToken == "" || ttl <= 0 {
		return errors.New("authz: vault put: no grant id, no access token or no lifetime")
	}
	return v.putFor(ctx, grantID, tok, min(ttl, v.o.TTL))
}

// Keep gives the upstream tokens of a grant the vault's TTL: the sign-in
// that stored them with PutSignIn was completed. It rewrites the sealed
// record as it is (through TokenSwapper when the store has it, so that a
// refresh that stored newer tokens meanwhile wins). ErrNotFound if the
// tokens are gone.
func (v *Vault) Keep(ctx context.Context, grantID string) error {
	s, err := v.store.GetUpstream(ctx, grantID)
	if err != nil {
		return fmt.Errorf("authz: keep upstream token of grant %s: %w", grantID, err)
	}
	if sw, ok := v.store.(TokenSwapper); ok {
		_, err = sw.SwapUpstream(ctx, grantID, s, s, v.o.TTL)
	} else {
		err = v.store.PutUpstream(ctx, grantID, s, v.o.TTL)
	}
	if err != nil {
		return fmt.Errorf("authz: keep upstream token of grant %s: %w", grantID, err)
	}
	return nil
}

// verifierOwner is the owner a pending sign-in's PKCE verifier is sealed
// for: its id, in a name space no grant id (random base64url) shares.
func verifierOwner(pendingID string) string { return "\x00pending\x00" + pendingID }

// SealVerifier seals our PKCE code_verifier towards the upstream for the
// pending sign-in pendingID, under the primary key: the pending record
// sits in the store until the callback, and the verifier with the
// upstream code is what redeems it.
func (v *Vault) SealVerifier(pendingID, verifier string) (*Sealed, error) {
	if pendingID == "" || verifier == "" {
		return nil, errors.New("authz: seal verifier: no pending id or no verifier")
	}
	return v.keys.Seal(verifierOwner(pendingID), []byte(verifier))
}

// OpenVerifier opens a verifier sealed by SealVerifier for pendingID; a
// record sealed for another pending sign-in, or under a key no longer
// in the ring, gives ErrVaultKey.
func (v *Vault) OpenVerifier(pendingID string, s *Sealed) (string, error) {
	b, err := v.keys.Open(verifierOwner(pendingID), s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Delete forgets the upstream tokens of a grant. Deleting a missing record
// is not an error.
func (v *Vault) Delete(ctx context.Context, grantID string) error {
	if err := v.store.DeleteUpstream(ctx, grantID); err != nil && !errors.Is(err, authz.ErrNotFound) {
		return fmt.Errorf("authz: delete upstream token of grant %s: %w", grantID, err)
	}
	return nil
}

// Token returns a fresh upstream token for a grant. An access token that
// expires within RefreshBefore is refreshed first (one refresh per grant at
// a time; the others wait for it). Errors:
//
//   - ErrReauthorize: the tokens are gone for good (missing record, expired
//     without a refresh token, or the upstream answered invalid_grant); the
//     grant has been revoked.
//   - ErrUnavailable: the refresh got no usable answer and the
//     access token has expired; the stored tokens are kept, retry later.
//     (While the old access token still works, it is returned instead.)
//   - ErrVaultKey: the record cannot be opened (its key is not in the
//     ring, or it was tampered with or moved): an operator problem, so the
//     grant is left alone.
func (v *Vault) Token(ctx context.Context, grantID string) (*oauth2.Token, error) {
	tok, s, err := v.load(ctx, grantID)
	if err != nil {
		return nil, err
	}
	if (v.stale(tok) && tok.RefreshToken != "") || v.keys.NeedsRewrap(s) {
		return v.renewShared(ctx, grantID)
	}
	return v.usable(ctx, grantID, tok)
}

// load reads and opens a grant's record.
func (v *Vault) load(ctx context.Context, grantID string) (*oauth2.Token, *Sealed, error) {
	s, err := v.store.GetUpstream(ctx, grantID)
	if errors.Is(err, authz.ErrNotFound) {
		return nil, nil, v.reauthorize(ctx, grantID, "no upstream token")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("authz: load upstream token of grant %s: %w", grantID, err)
	}
	tok, err := v.keys.OpenToken(grantID, s)
	if err != nil {
		v.o.Logger.Error("authz: upstream token record cannot be opened", "grant", grantID, "kid", s.KeyID)
		return nil, nil, fmt.Errorf("authz: open upstream token of grant %s: %w", grantID, err)
	}
	return tok, s, nil
}

// renew runs once per grant at a time: under the cross-replica lock, it
// re-reads the record (another replica or flight may have refreshed it),
// then refreshes and rewraps as needed.
func (v *Vault) renew(ctx context.Context, grantID string) (*oauth2.Token, error) {
	if v.o.Locker != nil {
		unlock, err := v.o.Locker.Lock(ctx, grantID)
		if err != nil {
			return nil, fmt.Errorf("authz: lock upstream token of grant %s: %w", grantID, err)
		}
		defer unlock()
	}
	tok, s, err := v.load(ctx, grantID)
	if err != nil {
		return nil, err
	}
	if v.stale(tok) && tok.RefreshToken != "" {
		return v.refresh(ctx, grantID, tok, s)
	}
	if v.keys.NeedsRewrap(s) {
		// Best effort: the record still opens under the old key.
		if err := v.put(ctx, grantID, tok); err != nil {
			v.o.Logger.Warn("authz: rewrap upstream token", "grant", grantID, "err", err)
		}
	}
	return v.usable(ctx, grantID, tok)
}

// refresh redeems tok's refresh token upstream and stores the result
// (sealed under the primary key, which also rewraps it).
func (v *Vault) refresh(ctx context.Context, grantID string, tok *oauth2.Token, old *Sealed) (*oauth2.Token, error) {
	fresh, err := v.up.refresh(ctx, tok.RefreshToken)
	if v.o.Refreshed != nil {
		switch {
		case err == nil:
			v.o.Refreshed("ok")
		case refused(err):
			v.o.Refreshed("refused")
		default:
			v.o.Refreshed("failed")
		}
	}
	if err != nil {
		if refused(err) {
			v.o.Logger.Info("authz: upstream refused the refresh token", "grant", grantID, "err", err)
			if derr := v.Delete(ctx, grantID); derr != nil {
				v.o.Logger.Warn("authz: delete refused upstream token", "grant", grantID, "err", derr)
			}
			return nil, v.reauthorize(ctx, grantID, "upstream refused the refresh token")
		}
		// Anything else keeps the stored tokens: an outage is not a
		// logout. A 4xx other than invalid_grant (invalid_client, ...)
		// is our configuration's fault, not the user's.
		v.o.Logger.Warn("authz: upstream token refresh failed", "grant", grantID, "err", err)
		if !v.expired(tok) {
			return tok, nil
		}
		return nil, fmt.Errorf("%w: grant %s: %w", ErrUnavailable, grantID, err)
	}
	if sw, ok := v.store.(TokenSwapper); ok && old != nil {
		// Fenced write: only over the record this refresh started from.
		sealed, err := v.keys.SealToken(grantID, fresh)
		if err != nil {
			return nil, fmt.Errorf("authz: seal upstream token of grant %s: %w", grantID, err)
		}
		swapped, err := sw.SwapUpstream(ctx, grantID, old, sealed, v.o.TTL)
		if err != nil {
			v.o.Logger.Error("authz: store refreshed upstream token", "grant", grantID, "err", err)
			return nil, fmt.Errorf("authz: store upstream token of grant %s: %w", grantID, err)
		}
		if !swapped {
			// Someone refreshed after us (our lock expired while we
			// waited on the upstream): theirs is newer; use it.
			v.o.Logger.Warn("authz: a newer upstream token was stored meanwhile; keeping it", "grant", grantID)
			cur, _, err := v.load(ctx, grantID)
			if err != nil {
				return nil, err
			}
			return v.usable(ctx, grantID, cur)
		}
		v.o.Logger.Debug("authz: upstream token refreshed", "grant", grantID, "expiry", fresh.Expiry)
		return v.recheck(ctx, grantID, fresh)
	}
	if err := v.put(ctx, grantID, fresh); err != nil {
		// The upstream may have rotated the refresh token we could not
		// store: the next refresh will tell.
		v.o.Logger.Error("authz: store refreshed upstream token", "grant", grantID, "err", err)
		return nil, err
	}
	v.o.Logger.Debug("authz: upstream token refreshed", "grant", grantID, "expiry", fresh.Expiry)
	return v.recheck(ctx, grantID, fresh)
}

// recheck asks the upstream who holds a freshly refreshed token and
// checks the allow-list again. A refused user, or an upstream that refuses
// to say, ends the grant; an upstream that does not answer keeps it.
func (v *Vault) recheck(ctx context.Context, grantID string, fresh *oauth2.Token) (*oauth2.Token, error) {
	if v.o.Allow.Empty() {
		return fresh, nil
	}
	id, err := v.up.FetchIdentity(ctx, fresh)
	if errors.Is(err, ErrUnavailable) {
		v.o.Logger.Warn("authz: allow-list re-check postponed: upstream unavailable", "grant", grantID, "err", err)
		return fresh, nil
	}
	if err == nil {
		err = v.o.Allow.Check(id)
	}
	if err == nil {
		return fresh, nil
	}
	if derr := v.Delete(ctx, grantID); derr != nil {
		v.o.Logger.Warn("authz: delete upstream token of a refused user", "grant", grantID, "err", derr)
	}
	if !errors.Is(err, ErrNotAllowed) {
		return nil, v.reauthorize(ctx, grantID, "the upstream no longer says who the user is")
	}
	return nil, fmt.Errorf("%w (%w)", v.reauthorize(ctx, grantID, "the user is no longer allowed to sign in"), ErrNotAllowed)
}

// refused reports an upstream answer that the refresh token is dead:
// invalid_grant (RFC 6749 §5.2), or GitHub's bad_refresh_token (sent with
// a 200).
func refused(err error) bool {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || re.Response == nil || re.Response.StatusCode >= 500 {
		return false
	}
	return re.ErrorCode == string(authz.InvalidGrant) || re.ErrorCode == "bad_refresh_token"
}

// usable returns tok unless it has expired, which without a refresh token
// ends the grant.
func (v *Vault) usable(ctx context.Context, grantID string, tok *oauth2.Token) (*oauth2.Token, error) {
	if v.expired(tok) {
		if err := v.Delete(ctx, grantID); err != nil {
			v.o.Logger.Warn("authz: delete expired upstream token", "grant", grantID, "err", err)
		}
		return nil, v.reauthorize(ctx, grantID, "upstream token expired without a refresh token")
	}
	return tok, nil
}

// reauthorize revokes the grant, so that the client's next request is
// refused and the user authorizes again, and returns ErrReauthorize.
func (v *Vault) reauthorize(ctx context.Context, grantID, why string) error {
	v.o.Logger.Info("authz: revoking grant", "grant", grantID, "why", why)
	if err := v.grants.RevokeGrant(ctx, grantID); err != nil && !errors.Is(err, authz.ErrNotFound) {
		v.o.Logger.Error("authz: revoke grant", "grant", grantID, "err", err)
	}
	return fmt.Errorf("%w: grant %s: %s", ErrReauthorize, grantID, why)
}

// stale reports a token that expires within RefreshBefore. A token without
// an expiry (a GitHub OAuth App's) never is.
func (v *Vault) stale(tok *oauth2.Token) bool {
	return !tok.Expiry.IsZero() && !v.o.Now().Add(v.o.RefreshBefore).Before(tok.Expiry)
}

func (v *Vault) expired(tok *oauth2.Token) bool {
	return !tok.Expiry.IsZero() && !v.o.Now().Before(tok.Expiry)
}

// Client returns an HTTP client that calls the upstream's API as the
// grant's user: it sends a fresh upstream access token as Bearer. Get one
// per operation: the token is not refreshed during the client's life. The
// token goes only to the host of each request the caller makes, never
// across a redirect to another host.
func (v *Vault) Client(ctx context.Context, grantID string) (*http.Client, error) {
	tok, err := v.Token(ctx, grantID)
	if err != nil {
		return nil, err
	}
	var base http.RoundTripper
	if v.up.HTTPClient != nil {
		base = v.up.HTTPClient.Transport
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport: &bearerTransport{token: tok.AccessToken, base: base},
		Timeout:   v.o.ClientTimeout,
	}, nil
}

// Identity asks the upstream, live, who the grant's user is (the whoami
// tool).
func (v *Vault) Identity(ctx context.Context, grantID string) (*Identity, error) {
	tok, err := v.Token(ctx, grantID)
	if err != nil {
		return nil, err
	}
	return v.up.FetchIdentity(ctx, tok)
}

// bearerTransport adds the upstream access token to requests for the host
// the caller asked for. A redirect is followed with the token only when it
// stays on the same scheme and host: x/oauth2's Transport would send it
// anywhere.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if first != req && (first.URL.Scheme != req.URL.Scheme || first.URL.Host != req.URL.Host) {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// renewShared renews grantID's tokens unless a renewal is in flight in
// this process, and waits for the result or for ctx; the other replicas
// are kept out by the Locker. The renewal runs detached from ctx's
// cancellation (but with its values), under renewTimeout: callers that
// give up do not cancel it for the others. A panic in the renewal becomes
// an error for every caller instead of a crash (singleflight's DoChan
// would re-panic on a goroutine of its own).
func (v *Vault) renewShared(ctx context.Context, grantID string) (*oauth2.Token, error) {
	ch := v.flights.DoChan(grantID, func() (tok any, err error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				tok, err = nil, fmt.Errorf("authz: upstream token renewal panicked: %v", p)
			}
		}()
		return v.renew(ctx, grantID)
	})
	if v.joined != nil {
		v.joined(grantID)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		c := *r.Val.(*oauth2.Token)
		return &c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("authz: wait for upstream token: %w", ctx.Err())
	}
}
