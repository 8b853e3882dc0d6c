package devidp

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Bounds of the in-memory state.
const (
	// maxEntries caps each table (login requests, codes, tokens): a
	// runaway client gets temporarily_unavailable, not an out-of-memory
	// server.
	maxEntries = 10000
	// sweepInterval is how often expired entries are dropped, at the
	// latest; a full table is swept at once.
	sweepInterval = time.Minute
)

// Store errors. The HTTP code turns them into OAuth errors.
var (
	// errNotFound is an unknown or expired login request, code or token.
	errNotFound = errors.New("devidp: not found or expired")
	// errReused is a code or refresh token presented a second time: the
	// grant it belongs to has been revoked.
	errReused = errors.New("devidp: already used")
	// errFull is a table at maxEntries even after a sweep.
	errFull = errors.New("devidp: too many outstanding requests")
)

// key is the SHA-256 digest of a code, token or login request id: what the
// store keeps instead of the secret itself.
type key [sha256.Size]byte

func keyOf(secret string) key { return sha256.Sum256([]byte(secret)) }

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
	used        bool
}

// A token is an issued access or refresh token.
type token struct {
	grant
	refresh bool
	scope   string // this token's scope
	expires time.Time
	used    bool // refresh tokens: rotated out, kept to detect reuse
}

// issued is a fresh token pair to store. The caller draws the secrets
// before taking the lock.
type issued struct {
	access, refresh               string
	accessExpires, refreshExpires time.Time
}

// store is the provider's state, all in memory behind one mutex.
type store struct {
	mu        sync.Mutex
	logins    map[key]*login
	codes     map[key]*code
	tokens    map[key]*token
	lastSweep time.Time
}

func newStore() *store {
	return &store{logins: map[key]*login{}, codes: map[key]*code{}, tokens: map[key]*token{}}
}

// putLogin saves a login request under id.
func (s *store) putLogin(id string, l login, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.room(func() int { return len(s.logins) }, now) {
		return errFull
	}
	s.logins[keyOf(id)] = &l
	return nil
}

// login returns the login request id, leaving it in place.
func (s *store) login(id string, now time.Time) (login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logins[keyOf(id)]
	if !ok || !now.Before(l.expires) {
		return login{}, errNotFound
	}
	return *l, nil
}

// takeLogin removes and returns the login request id: each login page
// yields at most one code or one refusal.
func (s *store) takeLogin(id string, now time.Time) (login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(id)
	l, ok := s.logins[k]
	delete(s.logins, k)
	if !ok || !now.Before(l.expires) {
		return login{}, errNotFound
	}
	return *l, nil
}

// putCode saves an authorization code.
func (s *store) putCode(secret string, c code, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.room(func() int { return len(s.codes) }, now) {
		return errFull
	}
	s.codes[keyOf(secret)] = &c
	return nil
}

// redeemCode exchanges the code secret for the tokens in out, atomically.
// check sees the code first; if it refuses, the code stays unused (a
// wrong code_verifier or redirect_uri does not burn it). A code seen a
// second time revokes every token of its grant and returns errReused.
func (s *store) redeemCode(secret string, now time.Time, check func(code) error, out issued) (grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[keyOf(secret)]
	switch {
	case !ok || !now.Before(c.expires):
		return grant{}, errNotFound
	case c.used:
		s.revoke(c.id)
		return c.grant, errReused
	}
	if err := check(*c); err != nil {
		return grant{}, err
	}
	if err := s.putTokens(c.grant, c.scope, out, now); err != nil {
		return grant{}, err
	}
	c.used = true
	return c.grant, nil
}

// rotate exchanges the refresh token secret for the tokens in out,
// atomically. check sees the token first and returns the scope of the new
// access token; if it refuses, the refresh token stays valid. A refresh
// token seen after it was rotated out revokes every token of its grant and
// returns errReused.
func (s *store) rotate(secret string, now time.Time, check func(token) (string, error), out issued) (grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[keyOf(secret)]
	switch {
	case !ok || !t.refresh || !now.Before(t.expires):
		return grant{}, errNotFound
	case t.used:
		s.revoke(t.id)
		return t.grant, errReused
	}
	scope, err := check(*t)
	if err != nil {
		return grant{}, err
	}
	if err := s.putTokens(t.grant, scope, out, now); err != nil {
		return grant{}, err
	}
	t.used = true
	return t.grant, nil
}

// putTokens stores a token pair of g; the access token gets scope, the
// refresh token the whole grant. The caller holds s.mu.
func (s *store) putTokens(g grant, scope string, out issued, now time.Time) error {
	if !s.room(func() int { return len(s.tokens) + 1 }, now) {
		return errFull
	}
	s.tokens[keyOf(out.access)] = &token{grant: g, scope: scope, expires: out.accessExpires}
	s.tokens[keyOf(out.refresh)] = &token{grant: g, refresh: true, scope: g.scope, expires: out.refreshExpires}
	return nil
}

// access returns the valid access token secret.
func (s *store) access(secret string, now time.Time) (token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[keyOf(secret)]
	if !ok || t.refresh || !now.Before(t.expires) {
		return token{}, errNotFound
	}
	return *t, nil
}

// revoke deletes every token of the grant id. The caller holds s.mu.
func (s *store) revoke(id string) {
	for k, t := range s.tokens {
		if t.id == id {
			delete(s.tokens, k)
		}
	}
}

// room sweeps expired entries if it is time, or if the table whose size
// n reports is full, and reports whether one more entry fits in it. The
// caller holds s.mu.
func (s *store) room(n func() int, now time.Time) bool {
	if n() >= maxEntries || now.Sub(s.lastSweep) >= sweepInterval {
		s.sweep(now)
	}
	return n() < maxEntries
}

// sweep drops expired entries. The caller holds s.mu.
func (s *store) sweep(now time.Time) {
	s.lastSweep = now
	for k, l := range s.logins {
		if !now.Before(l.expires) {
			delete(s.logins, k)
		}
	}
	for k, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, t := range s.tokens {
		if !now.Before(t.expires) {
			delete(s.tokens, k)
		}
	}
}
