package devidp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Store keeps the provider's records (pending logins, codes, tokens and
// the marks of used and revoked ones) as opaque values under keys the
// provider makes from SHA-256 digests, each until its TTL has passed. The
// default keeps them in process memory; one shared by several processes
// (Redis) lets them serve one provider together: a sign-in started on one
// finishes on another. Every method must be safe for concurrent use.
type Store interface {
	// Put stores value under key for ttl (> 0), replacing what was there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the value under key and deletes it, atomically: of
	// concurrent Takes at most one gets the value; the others, and any
	// later one, get ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Claim stores a mark under key for ttl (> 0) unless something is
	// there, atomically, and reports whether it stored it.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// ErrNotFound is what a Store returns for a key that holds nothing, or
// whose TTL has passed.
var ErrNotFound = errors.New("devidp: not found")

// Bounds of the in-memory store.
const (
	// maxEntries caps the in-memory store: a runaway client gets
	// temporarily_unavailable, not an out-of-memory server.
	maxEntries = 30000
	// sweepInterval is how often expired entries are dropped, at the
	// latest; a full store is swept at once.
	sweepInterval = time.Minute
)

// Store errors. The HTTP code turns them into OAuth errors.
var (
	// errNotFound is an unknown or expired login request, code or token.
	errNotFound = errors.New("devidp: not found or expired")
	// errReused is a code or refresh token presented a second time: the
	// grant it belongs to has been revoked.
	errReused = errors.New("devidp: already used")
	// errFull is a full in-memory store, even after a sweep.
	errFull = errors.New("devidp: too many outstanding requests")
)

// key is the SHA-256 digest of a code, token or login request id: what the
// store keeps instead of the secret itself.
type key [sha256.Size]byte

func keyOf(secret string) key { return sha256.Sum256([]byte(secret)) }

func (k key) String() string { return hex.EncodeToString(k[:]) }

// A login is an authorization request awaiting the login form.
type login struct {
	redirectURI string
	state       string
	challenge   string // S256 code_challenge
	scope       string
	expires     time.Time
}

// A grant is what a user authorized: the code and every token issued from
// it belong to it, and are revoked together.
type grant struct {
	id       string
	clientID string
	scope    string // as granted; refreshes may narrow an access token's
	username string
	email    string // empty if not given
}

// A code is an issued authorization code.
type code struct {
	grant
	redirectURI string
	challenge   string
	expires     time.Time
}

// A token is an issued access or refresh token.
type token struct {
	grant
	refresh bool
	scope   string // this token's scope
	expires time.Time
}

// issued is a fresh token pair to store. The caller draws the secrets
// before calling the store.
type issued struct {
	access, refresh               string
	accessExpires, refreshExpires time.Time
}

// The stored forms of the records.
type (
	grantRecord struct {
		ID       string `json:"id"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		Username string `json:"username"`
		Email    string `json:"email,omitempty"`
	}
	loginRecord struct {
		RedirectURI string    `json:"redirect_uri"`
		State       string    `json:"state"`
		Challenge   string    `json:"challenge"`
		Scope       string    `json:"scope"`
		Expires     time.Time `json:"expires"`
	}
	codeRecord struct {
		Grant       grantRecord `json:"grant"`
		RedirectURI string      `json:"redirect_uri"`
		Challenge   string      `json:"challenge"`
		Expires     time.Time   `json:"expires"`
	}
	tokenRecord struct {
		Grant   grantRecord `json:"grant"`
		Refresh bool        `json:"refresh,omitempty"`
		Scope   string      `json:"scope"`
		Expires time.Time   `json:"expires"`
	}
)

func (g grant) record() grantRecord {
	return grantRecord{ID: g.id, ClientID: g.clientID, Scope: g.scope, Username: g.username, Email: g.email}
}

func (r grantRecord) grant() grant {
	return grant{id: r.ID, clientID: r.ClientID, scope: r.Scope, username: r.Username, email: r.Email}
}

// records keeps the provider's records in a Store. Keys are
// "login:", "code:" or "token:" and the hex SHA-256 of the secret;
// "used:" plus a code's or refresh token's key marks it used, and
// "revoked:" plus a grant id marks the grant revoked.
type records struct {
	s Store
	// revokedTTL is how long a revocation mark is kept: as long as any
	// token issued before it can live.
	revokedTTL time.Duration
}

// put stores v as JSON under k until expires.
func (r *records) put(ctx context.Context, k string, v any, now, expires time.Time) error {
	ttl := expires.Sub(now)
	if ttl <= 0 {
		return nil // already expired: nothing to keep
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.s.Put(ctx, k, b, ttl)
}

// get reads the JSON under k into v, by get or take.
func get(ctx context.Context, read func(context.Context, string) ([]byte, error), k string, v any) error {
	b, err := read(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("devidp: record %.12s…: %w", k, err)
	}
	return nil
}

// exists reports whether k holds something.
func (r *records) exists(ctx context.Context, k string) (bool, error) {
	_, err := r.s.Get(ctx, k)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// putLogin saves a login request under id.
func (r *records) putLogin(ctx context.Context, id string, l login, now time.Time) error {
	return r.put(ctx, "login:"+keyOf(id).String(), loginRecord{RedirectURI: l.redirectURI, State: l.state,
		Challenge: l.challenge, Scope: l.scope, Expires: l.expires}, now, l.expires)
}

// login returns the login request id, leaving it in place (take: removing
// it: each login page yields at most one code or one refusal).
func (r *records) login(ctx context.Context, id string, now time.Time, take bool) (login, error) {
	read := r.s.Get
	if take {
		read = r.s.Take
	}
	var lr loginRecord
	if err := get(ctx, read, "login:"+keyOf(id).String(), &lr); err != nil {
		return login{}, err
	}
	if !now.Before(lr.Expires) {
		return login{}, errNotFound
	}
	return login{redirectURI: lr.RedirectURI, state: lr.State, challenge: lr.Challenge, scope: lr.Scope, expires: lr.Expires}, nil
}

// putCode saves an authorization code.
func (r *records) putCode(ctx context.Context, secret string, c code, now time.Time) error {
	return r.put(ctx, "code:"+keyOf(secret).String(), codeRecord{Grant: c.grant.record(), RedirectURI: c.redirectURI,
		Challenge: c.challenge, Expires: c.expires}, now, c.expires)
}

// redeemCode exchanges the code secret for the tokens in out. check sees
// the code first; if it refuses, the code stays unused (a wrong
// code_verifier or redirect_uri does not burn it). A code seen a second
// time revokes every token of its grant and returns errReused; of
// concurrent redemptions exactly one wins (a Claim on its "used:" mark).
func (r *records) redeemCode(ctx context.Context, secret string, now time.Time, check func(code) error, out issued) (grant, error) {
	k := "code:" + keyOf(secret).String()
	var cr codeRecord
	if err := get(ctx, r.s.Get, k, &cr); err != nil {
		return grant{}, err
	}
	if !now.Before(cr.Expires) {
		return grant{}, errNotFound
	}
	c := code{grant: cr.Grant.grant(), redirectURI: cr.RedirectURI, challenge: cr.Challenge, expires: cr.Expires}
	if used, err := r.exists(ctx, "used:"+k); err != nil {
		return grant{}, err
	} else if used {
		return c.grant, r.reused(ctx, c.grant, now)
	}
	if err := check(c); err != nil {
		return grant{}, err
	}
	return c.grant, r.claimAndIssue(ctx, k, c.grant, c.scope, now, c.expires, out)
}

// rotate exchanges the refresh token secret for the tokens in out. check
// sees the token first and returns the scope of the new access token; if
// it refuses, the refresh token stays valid. A refresh token seen after
// it was rotated out revokes every token of its grant and returns
// errReused.
func (r *records) rotate(ctx context.Context, secret string, now time.Time, check func(token) (string, error), out issued) (grant, error) {
	k := "token:" + keyOf(secret).String()
	t, err := r.token(ctx, k, now)
	if err != nil {
		return grant{}, err
	}
	if !t.refresh {
		return grant{}, errNotFound
	}
	if used, err := r.exists(ctx, "used:"+k); err != nil {
		return grant{}, err
	} else if used {
		return t.grant, r.reused(ctx, t.grant, now)
	}
	scope, err := check(t)
	if err != nil {
		return grant{}, err
	}
	return t.grant, r.claimAndIssue(ctx, k, t.grant, scope, now, t.expires, out)
}

// claimAndIssue marks the code or refresh token under k used (until it
// would have expired) and stores a token pair of g; a mark already there
// means another request used it first: a reuse.
func (r *records) claimAndIssue(ctx context.Context, k string, g grant, scope string, now, expires time.Time, out issued) error {
	first, err := r.s.Claim(ctx, "used:"+k, max(expires.Sub(now), time.Millisecond))
	switch {
	case err != nil:
		return err
	case !first:
		return r.reused(ctx, g, now)
	}
	if err := r.put(ctx, "token:"+keyOf(out.access).String(), tokenRecord{Grant: g.record(), Scope: scope, Expires: out.accessExpires},
		now, out.accessExpires); err != nil {
		return err
	}
	return r.put(ctx, "token:"+keyOf(out.refresh).String(), tokenRecord{Grant: g.record(), Refresh: true, Scope: g.scope, Expires: out.refreshExpires},
		now, out.refreshExpires)
}

// reused revokes g and returns errReused.
func (r *records) reused(ctx context.Context, g grant, now time.Time) error {
	if err := r.s.Put(ctx, "revoked:"+g.id, []byte{1}, r.revokedTTL); err != nil {
		return err
	}
	return errReused
}

// token returns the valid token under k, of a grant not revoked.
func (r *records) token(ctx context.Context, k string, now time.Time) (token, error) {
	var tr tokenRecord
	if err := get(ctx, r.s.Get, k, &tr); err != nil {
		return token{}, err
	}
	if !now.Before(tr.Expires) {
		return token{}, errNotFound
	}
	if revoked, err := r.exists(ctx, "revoked:"+tr.Grant.ID); err != nil {
		return token{}, err
	} else if revoked {
		return token{}, errNotFound
	}
	return token{grant: tr.Grant.grant(), refresh: tr.Refresh, scope: tr.Scope, expires: tr.Expires}, nil
}

// access returns the valid access token secret.
func (r *records) access(ctx context.Context, secret string, now time.Time) (token, error) {
	t, err := r.token(ctx, "token:"+keyOf(secret).String(), now)
	if err != nil {
		return token{}, err
	}
	if t.refresh {
		return token{}, errNotFound
	}
	return t, nil
}

// memStore is the default Store: process memory behind one mutex, at
// most maxEntries entries, expired ones swept.
type memStore struct {
	mu        sync.Mutex
	m         map[string]memEntry
	now       func() time.Time
	lastSweep time.Time
}

type memEntry struct {
	value   []byte
	expires time.Time
}

var _ Store = (*memStore)(nil)

func newMemStore(now func() time.Time) *memStore {
	return &memStore{m: map[string]memEntry{}, now: now}
}

func (s *memStore) Put(_ context.Context, k string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if _, ok := s.m[k]; !ok && !s.room(now) {
		return errFull
	}
	s.m[k] = memEntry{value: append([]byte(nil), v...), expires: now.Add(ttl)}
	return nil
}

func (s *memStore) Get(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok || !s.now().Before(e.expires) {
		return nil, ErrNotFound
	}
	return e.value, nil
}

func (s *memStore) Take(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	delete(s.m, k)
	if !ok || !s.now().Before(e.expires) {
		return nil, ErrNotFound
	}
	return e.value, nil
}

func (s *memStore) Claim(_ context.Context, k string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.m[k]; ok && now.Before(e.expires) {
		return false, nil
	}
	if !s.room(now) {
		return false, errFull
	}
	s.m[k] = memEntry{value: []byte{1}, expires: now.Add(ttl)}
	return true, nil
}

// room sweeps expired entries if it is time, or if the store is full, and
// reports whether one more entry fits. The caller holds s.mu.
func (s *memStore) room(now time.Time) bool {
	if len(s.m) >= maxEntries || now.Sub(s.lastSweep) >= sweepInterval {
		s.lastSweep = now
		for k, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, k)
			}
		}
	}
	return len(s.m) < maxEntries
}
