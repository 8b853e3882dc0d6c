// Package memstore implements every authz store in process memory: the
// embedded default for a single replica, and the store the authz
// packages' own tests run on. It passes the contract suite of package storetest, like every
// other implementation.
//
// One [Store] implements all eight store interfaces (authz/as/store.go,
// authz/as/stepup.go, authz/upstream/vaultstore.go), behind one lock, so that operations that span record types (RevokeGrant) are atomic
// too. Records are copied in and out: a caller never shares memory with the
// store. Every record has a TTL; an expired record behaves as missing at
// once, and is freed lazily: each write frees at most a few expired records
// of each kind, oldest first, so the work per call is bounded and expired
// records cannot pile up while the store is in use.
//
// Beyond what the store interfaces spell out, the store guarantees:
//
//   - Revocation is sticky. RevokeGrant deletes the grant, its refresh
//     family and its upstream tokens, and remembers the revocation for at
//     least [RevocationTTL], and at least as long as any of those records
//     would have lived. While it remembers, PutGrant, IssueRefresh and
//     PutUpstream for that grant succeed but store nothing, so that a
//     request racing with the revocation (a replayed code while the first
//     exchange is still running) cannot bring the grant back.
//   - PutCode refuses a hash it already holds, used or not: a code cannot be
//     made usable again.
//   - A refresh family remembers each token until that token's own TTL
//     passes, and at most [MaxFamilyTokens] tokens; an older token is
//     unknown (ErrNotFound) rather than Reused.
//   - A grace window needs a positive RefreshRotation.Grace: zero means no
//     grace. RefreshRotation.Now measures the window; a zero Now means the
//     store's clock. TTLs are always measured on the store's clock.
//   - Approve replaces the scopes of an earlier approval with the same key.
//   - A TTL must be positive; a nil record is an error.
package memstore

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// RevocationTTL is the shortest time a Store remembers a revoked grant.
// It outlives the access tokens of the grant (GrantRevoked is their
// revocation check) by far.
const RevocationTTL = 24 * time.Hour

// MaxFamilyTokens bounds how many refresh tokens of one family a Store
// remembers, so that a client that refreshes in a loop cannot grow it
// without bound. The current and previous tokens are always kept.
const MaxFamilyTokens = 1000

// sweepBatch is how many expired records of each kind one write frees. Any
// number above one makes expired records shrink while the store is written.
const sweepBatch = 8

// errNoTTL and errNilRecord report caller mistakes.
var (
	errNoTTL     = errors.New("memstore: ttl must be positive")
	errNilRecord = errors.New("memstore: nil record")
)

// Options configures a Store. The zero value (or nil) means the defaults.
type Options struct {
	// Now is the clock that TTLs are measured on. Default time.Now.
	Now func() time.Time
	// MaxClients bounds the live registered clients: CreateClient then
	// returns as.ErrTooManyClients for a new one. Zero means no bound.
	MaxClients int
}

// A Store holds every authz record in process memory. It implements
// ClientStore, PendingAuthStore, CodeStore, GrantStore, RefreshStore,
// upstream.TokenStore, ConsentStore and StepUpStore, and is safe for concurrent use.
type Store struct {
	now        func() time.Time
	maxClients int

	mu       sync.RWMutex
	clients  table[string, *as.Client]
	pending  table[string, *as.PendingAuth]
	codes    table[string, *codeRecord]
	grants   table[string, *as.Grant]
	revoked  table[string, struct{}]
	families table[string, *family] // by grant ID
	upstream table[string, *upstream.Sealed]
	consent  table[consentKey, []string]
	stepups  table[string, []string] // step-up marks, by key
	// refreshIndex maps every token hash of every family to its grant ID.
	// A family's entries are removed with the family.
	refreshIndex map[string]string
}

var (
	_ as.ClientStore        = (*Store)(nil)
	_ as.PendingAuthStore   = (*Store)(nil)
	_ as.CodeStore          = (*Store)(nil)
	_ as.GrantStore         = (*Store)(nil)
	_ as.RefreshStore       = (*Store)(nil)
	_ upstream.TokenStore   = (*Store)(nil)
	_ upstream.TokenSwapper = (*Store)(nil)
	_ as.ConsentStore       = (*Store)(nil)
	_ as.StepUpStore        = (*Store)(nil)
)

// New returns an empty Store.
func New(opts *Options) *Store {
	s := &Store{now: time.Now, refreshIndex: map[string]string{}}
	if opts != nil && opts.Now != nil {
		s.now = opts.Now
	}
	if opts != nil {
		s.maxClients = opts.MaxClients
	}
	s.clients.init()
	s.pending.init()
	s.codes.init()
	s.grants.init()
	s.revoked.init()
	s.families.init()
	s.families.onEvict = s.unindexFamily
	s.upstream.init()
	s.consent.init()
	s.stepups.init()
	return s
}

// writeLocked starts a write: it frees a bounded number of expired records
// of each kind and returns the time. s.mu must be held for writing.
func (s *Store) writeLocked() time.Time {
	now := s.now()
	s.clients.sweep(now, sweepBatch)
	s.pending.sweep(now, sweepBatch)
	s.codes.sweep(now, sweepBatch)
	s.grants.sweep(now, sweepBatch)
	s.revoked.sweep(now, sweepBatch)
	s.families.sweep(now, sweepBatch)
	s.upstream.sweep(now, sweepBatch)
	s.consent.sweep(now, sweepBatch)
	s.stepups.sweep(now, sweepBatch)
	return now
}

// len returns how many records of every kind the store holds, expired or
// not; for tests of the sweep.
func (s *Store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clients.len() + s.pending.len() + s.codes.len() + s.grants.len() + s.revoked.len() +
		s.families.len() + s.upstream.len() + s.consent.len() + s.stepups.len() + len(s.refreshIndex)
}

// Clients.

// CreateClient implements as.ClientStore. It fails if a client with the
// same ID exists and has not expired, and with as.ErrTooManyClients if the
// store holds Options.MaxClients live clients.
func (s *Store) CreateClient(_ context.Context, c *as.Client, ttl time.Duration) error {
	if c == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	c = cloneClient(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.clients.get(c.ClientID, now); ok {
		return fmt.Errorf("memstore: client %s already exists", c.ClientID)
	}
	if s.maxClients > 0 {
		// Free every expired client first: each is freed once, so this
		// costs no more than the sweep would over time.
		s.clients.sweep(now, s.clients.len())
		if s.clients.len() >= s.maxClients {
			return as.ErrTooManyClients
		}
	}
	s.clients.put(c.ClientID, c, now.Add(ttl))
	return nil
}

// GetClient implements as.ClientStore.
func (s *Store) GetClient(_ context.Context, clientID string) (*as.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients.get(clientID, s.now())
	if !ok {
		return nil, authz.ErrNotFound
	}
	return cloneClient(c), nil
}

// TouchClient implements as.ClientStore: the client then expires ttl
// from now.
func (s *Store) TouchClient(_ context.Context, clientID string, ttl time.Duration) error {
	if ttl <= 0 {
		return errNoTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	c, ok := s.clients.get(clientID, now)
	if !ok {
		return authz.ErrNotFound
	}
	s.clients.put(clientID, c, now.Add(ttl))
	return nil
}

// Pending authorizations.

// PutPending implements as.PendingAuthStore. It replaces a record with
// the same ID.
func (s *Store) PutPending(_ context.Context, p *as.PendingAuth, ttl time.Duration) error {
	if p == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	p = clonePending(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	s.pending.put(p.ID, p, now.Add(ttl))
	return nil
}

// GetPending implements as.PendingAuthStore.
func (s *Store) GetPending(_ context.Context, id string) (*as.PendingAuth, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.pending.get(id, s.now())
	if !ok {
		return nil, authz.ErrNotFound
	}
	return clonePending(p), nil
}

// TakePending implements as.PendingAuthStore.
func (s *Store) TakePending(_ context.Context, id string) (*as.PendingAuth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	p, ok := s.pending.get(id, now)
	if !ok {
		return nil, authz.ErrNotFound
	}
	s.pending.delete(id)
	return p, nil // the store no longer holds it: no copy needed
}

// Authorization codes.

// A codeRecord is a code, and whether it was taken: a taken code is kept as
// a tombstone until it expires.
type codeRecord struct {
	code *as.AuthCode
	used bool
}

// PutCode implements as.CodeStore. It fails if the store holds the hash
// already, used or not.
func (s *Store) PutCode(_ context.Context, c *as.AuthCode, ttl time.Duration) error {
	if c == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	c = cloneCode(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.codes.get(c.Hash, now); ok {
		return errors.New("memstore: authorization code already stored")
	}
	s.codes.put(c.Hash, &codeRecord{code: c}, now.Add(ttl))
	return nil
}

// TakeCode implements as.CodeStore.
func (s *Store) TakeCode(_ context.Context, hash string) (*as.AuthCode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	r, ok := s.codes.get(hash, now)
	if !ok {
		return nil, authz.ErrNotFound
	}
	if r.used {
		return cloneCode(r.code), as.ErrAlreadyUsed
	}
	r.used = true
	return cloneCode(r.code), nil
}

// Grants.

// PutGrant implements as.GrantStore. It replaces a grant with the same
// ID, and stores nothing for a revoked grant.
func (s *Store) PutGrant(_ context.Context, g *as.Grant, ttl time.Duration) error {
	if g == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	g = cloneGrant(g)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.revoked.get(g.ID, now); ok {
		return nil
	}
	s.grants.put(g.ID, g, now.Add(ttl))
	return nil
}

// GetGrant implements as.GrantStore. A revoked grant is not found.
func (s *Store) GetGrant(_ context.Context, id string) (*as.Grant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.grants.get(id, s.now())
	if !ok {
		return nil, authz.ErrNotFound
	}
	return cloneGrant(g), nil
}

// RevokeGrant implements as.GrantStore. It deletes the grant, its
// refresh family and its upstream tokens, and remembers the revocation (see
// the package documentation). Revoking an unknown grant is not an error:
// it is remembered all the same.
func (s *Store) RevokeGrant(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	until := now.Add(RevocationTTL)
	for _, exp := range []time.Time{s.revoked.expiry(id), s.grants.expiry(id), s.families.expiry(id), s.upstream.expiry(id)} {
		if exp.After(until) {
			until = exp
		}
	}
	s.revoked.put(id, struct{}{}, until)
	s.grants.delete(id)
	s.deleteFamily(id)
	s.upstream.delete(id)
	return nil
}

// GrantRevoked implements as.GrantStore. It is false for a grant the
// store never heard of.
func (s *Store) GrantRevoked(_ context.Context, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.revoked.get(id, s.now())
	return ok, nil
}

// Refresh tokens.

// A family is the refresh tokens of one grant.
type family struct {
	clientID  string
	current   string
	previous  string    // empty before the first rotation
	rotatedAt time.Time // when previous was replaced, on the caller's clock
	// tokens holds every remembered hash of the family, current and
	// previous included.
	tokens map[string]familyToken
	issued int // how many tokens the family issued
}

// A familyToken is a remembered refresh token of a family.
type familyToken struct {
	seq     int // 0 for the first token of the family, then 1, 2…
	expires time.Time
}

// IssueRefresh implements as.RefreshStore. It starts the family of the
// grant, replacing any earlier one (whose tokens are then unknown), and
// stores nothing for a revoked grant.
func (s *Store) IssueRefresh(_ context.Context, grantID, clientID, hash string, ttl time.Duration) error {
	if ttl <= 0 {
		return errNoTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.revoked.get(grantID, now); ok {
		return nil
	}
	if err := s.claimHashLocked(hash); err != nil {
		return err
	}
	s.deleteFamily(grantID)
	exp := now.Add(ttl)
	s.families.put(grantID, &family{clientID: clientID, current: hash, tokens: map[string]familyToken{hash: {expires: exp}}, issued: 1}, exp)
	s.refreshIndex[hash] = grantID
	return nil
}

// RotateRefresh implements as.RefreshStore.
func (s *Store) RotateRefresh(_ context.Context, r as.RefreshRotation) (string, as.RotateResult, error) {
	if r.TTL <= 0 {
		return "", 0, errNoTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	grantID, f, ok := s.lookupRefreshLocked(r.PresentedHash, now)
	if !ok {
		return "", 0, authz.ErrNotFound
	}
	at := r.Now
	if at.IsZero() {
		at = now
	}
	var res as.RotateResult
	switch {
	case r.PresentedHash == f.current:
		res = as.Rotated
	case r.PresentedHash == f.previous && r.ClientID == f.clientID && r.Grace > 0 && at.Sub(f.rotatedAt) <= r.Grace:
		res = as.RotatedInGrace
	default:
		// Known to the family but no longer usable: a stolen token, or a
		// thief's use of the current one came first. Kill the family.
		s.deleteFamily(grantID)
		return grantID, as.Reused, nil
	}
	if err := s.claimHashLocked(r.NewHash); err != nil {
		return "", 0, err
	}
	if res == as.Rotated {
		f.previous, f.rotatedAt = f.current, at
	}
	f.current = r.NewHash
	exp := now.Add(r.TTL)
	f.tokens[r.NewHash] = familyToken{seq: f.issued, expires: exp}
	f.issued++
	s.refreshIndex[r.NewHash] = grantID
	s.pruneFamilyLocked(f, now)
	if exp.Before(s.families.expiry(grantID)) {
		exp = s.families.expiry(grantID)
	}
	s.families.put(grantID, f, exp)
	return grantID, res, nil
}

// LookupRefresh implements as.RefreshStore: it knows every remembered
// token of a live family, not only the current one.
func (s *Store) LookupRefresh(_ context.Context, hash string) (grantID, clientID string, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	grantID, f, ok := s.lookupRefreshLocked(hash, s.now())
	if !ok {
		return "", "", authz.ErrNotFound
	}
	return grantID, f.clientID, nil
}

// lookupRefreshLocked finds the live family that holds hash, unexpired.
func (s *Store) lookupRefreshLocked(hash string, now time.Time) (string, *family, bool) {
	grantID, ok := s.refreshIndex[hash]
	if !ok {
		return "", nil, false
	}
	f, ok := s.families.get(grantID, now)
	if !ok || !now.Before(f.tokens[hash].expires) {
		return "", nil, false
	}
	return grantID, f, true
}

// claimHashLocked makes sure that a new token hash is in no family. A
// random token never collides: a hash the store remembers, even expired, is
// a bug of the caller.
func (s *Store) claimHashLocked(hash string) error {
	if _, ok := s.refreshIndex[hash]; ok {
		return errors.New("memstore: refresh token hash already issued")
	}
	return nil
}

// pruneFamilyLocked forgets the expired tokens of a family, and the first
// issued ones beyond MaxFamilyTokens. The current and previous ones are
// kept.
func (s *Store) pruneFamilyLocked(f *family, now time.Time) {
	forget := func(h string) {
		delete(f.tokens, h)
		delete(s.refreshIndex, h)
	}
	for h, tok := range f.tokens {
		if !now.Before(tok.expires) && h != f.current && h != f.previous {
			forget(h)
		}
	}
	for len(f.tokens) > MaxFamilyTokens {
		oldest, oldestSeq := "", f.issued
		for h, tok := range f.tokens {
			if h != f.current && h != f.previous && tok.seq < oldestSeq {
				oldest, oldestSeq = h, tok.seq
			}
		}
		forget(oldest)
	}
}

// deleteFamily deletes the family of a grant, if any, with its index.
func (s *Store) deleteFamily(grantID string) {
	if f, ok := s.families.peek(grantID); ok {
		s.unindexFamily(grantID, f)
		s.families.delete(grantID)
	}
}

// unindexFamily removes the index entries of a family that is going away.
func (s *Store) unindexFamily(grantID string, f *family) {
	for h := range f.tokens {
		if s.refreshIndex[h] == grantID {
			delete(s.refreshIndex, h)
		}
	}
}

// Upstream tokens.

// PutUpstream implements upstream.TokenStore. It replaces the tokens
// of the grant, and stores nothing for a revoked grant.
func (s *Store) PutUpstream(_ context.Context, grantID string, sealed *upstream.Sealed, ttl time.Duration) error {
	if sealed == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	sealed = cloneSealed(sealed)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.revoked.get(grantID, now); ok {
		return nil
	}
	s.upstream.put(grantID, sealed, now.Add(ttl))
	return nil
}

// GetUpstream implements upstream.TokenStore.
func (s *Store) GetUpstream(_ context.Context, grantID string) (*upstream.Sealed, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sealed, ok := s.upstream.get(grantID, s.now())
	if !ok {
		return nil, authz.ErrNotFound
	}
	return cloneSealed(sealed), nil
}

// SwapUpstream implements upstream.TokenSwapper: it replaces the
// record only if it is still old.
func (s *Store) SwapUpstream(_ context.Context, grantID string, old, sealed *upstream.Sealed, ttl time.Duration) (bool, error) {
	if old == nil || sealed == nil {
		return false, errNilRecord
	}
	if ttl <= 0 {
		return false, errNoTTL
	}
	sealed = cloneSealed(sealed)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.revoked.get(grantID, now); ok {
		return false, nil
	}
	cur, ok := s.upstream.get(grantID, now)
	if !ok || !sameSealed(cur, old) {
		return false, nil
	}
	s.upstream.put(grantID, sealed, now.Add(ttl))
	return true, nil
}

func sameSealed(a, b *upstream.Sealed) bool {
	return a.KeyID == b.KeyID && bytes.Equal(a.Nonce, b.Nonce) && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

// DeleteUpstream implements upstream.TokenStore. Deleting what is not
// there is not an error.
func (s *Store) DeleteUpstream(_ context.Context, grantID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeLocked()
	s.upstream.delete(grantID)
	return nil
}

// Consent.

// A consentKey identifies an approval. A struct, not a joined string, so
// that no two different triples can share a key.
type consentKey struct {
	subject, clientID, redirectURI string
}

// Approve implements as.ConsentStore. It replaces an earlier approval
// with the same subject, client and redirect URI.
func (s *Store) Approve(_ context.Context, subject, clientID, redirectURI string, scopes []string, ttl time.Duration) error {
	if ttl <= 0 {
		return errNoTTL
	}
	scopes = slices.Clone(scopes)
	if scopes == nil {
		scopes = []string{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	s.consent.put(consentKey{subject, clientID, redirectURI}, scopes, now.Add(ttl))
	return nil
}

// Approved implements as.ConsentStore. An approval of no scopes is
// found, with an empty list.
func (s *Store) Approved(_ context.Context, subject, clientID, redirectURI string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	scopes, ok := s.consent.get(consentKey{subject, clientID, redirectURI}, s.now())
	if !ok {
		return nil, authz.ErrNotFound
	}
	return slices.Clone(scopes), nil
}

// Copies. Every slice is copied, so that no caller shares memory with the
// store; the contract tests catch a field that is missed here.

func cloneClient(c *as.Client) *as.Client {
	out := *c
	m := &out.Metadata
	m.RedirectURIs = slices.Clone(m.RedirectURIs)
	m.GrantTypes = slices.Clone(m.GrantTypes)
	m.ResponseTypes = slices.Clone(m.ResponseTypes)
	m.Contacts = slices.Clone(m.Contacts)
	return &out
}

func clonePending(p *as.PendingAuth) *as.PendingAuth {
	out := *p
	out.Scopes = slices.Clone(p.Scopes)
	if p.UpstreamVerifier != nil {
		out.UpstreamVerifier = cloneSealed(p.UpstreamVerifier)
	}
	return &out
}

func cloneCode(c *as.AuthCode) *as.AuthCode {
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	out.Groups = slices.Clone(c.Groups)
	return &out
}

func cloneGrant(g *as.Grant) *as.Grant {
	out := *g
	out.Scopes = slices.Clone(g.Scopes)
	out.Groups = slices.Clone(g.Groups)
	return &out
}

func cloneSealed(s *upstream.Sealed) *upstream.Sealed {
	out := *s
	out.Nonce = slices.Clone(s.Nonce)
	out.Ciphertext = slices.Clone(s.Ciphertext)
	return &out
}

// A table is a map whose entries expire, with a heap of its entries by
// expiry so that expired ones can be freed oldest first in bounded steps.
// It is not safe for concurrent use: the Store's lock guards it.
type table[K comparable, V any] struct {
	m    map[K]*entry[K, V]
	heap entryHeap[K, V]
	// onEvict, if set, is called for each entry that sweep frees.
	onEvict func(K, V)
}

type entry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time
	index   int // in the heap
}

func (t *table[K, V]) init() { t.m = map[K]*entry[K, V]{} }

func (t *table[K, V]) len() int { return len(t.m) }

// get returns the value under k unless it is missing or expired at now.
func (t *table[K, V]) get(k K, now time.Time) (V, bool) {
	e, ok := t.m[k]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.val, true
}

// peek returns the value under k, expired or not.
func (t *table[K, V]) peek(k K) (V, bool) {
	e, ok := t.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	return e.val, true
}

// expiry returns when the entry under k expires; the zero time if there is
// none.
func (t *table[K, V]) expiry(k K) time.Time {
	if e, ok := t.m[k]; ok {
		return e.expires
	}
	return time.Time{}
}

// put stores v under k until expires, replacing any entry.
func (t *table[K, V]) put(k K, v V, expires time.Time) {
	if e, ok := t.m[k]; ok {
		e.val, e.expires = v, expires
		heap.Fix(&t.heap, e.index)
		return
	}
	e := &entry[K, V]{key: k, val: v, expires: expires}
	t.m[k] = e
	heap.Push(&t.heap, e)
}

func (t *table[K, V]) delete(k K) {
	if e, ok := t.m[k]; ok {
		heap.Remove(&t.heap, e.index)
		delete(t.m, k)
	}
}

// sweep frees up to n entries that expired at now, oldest first.
func (t *table[K, V]) sweep(now time.Time, n int) {
	for ; n > 0 && len(t.heap) > 0 && !now.Before(t.heap[0].expires); n-- {
		e := heap.Pop(&t.heap).(*entry[K, V])
		delete(t.m, e.key)
		if t.onEvict != nil {
			t.onEvict(e.key, e.val)
		}
	}
}

// entryHeap implements heap.Interface, earliest expiry first.
type entryHeap[K comparable, V any] []*entry[K, V]

func (h entryHeap[K, V]) Len() int           { return len(h) }
func (h entryHeap[K, V]) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h entryHeap[K, V]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *entryHeap[K, V]) Push(x any) {
	e := x.(*entry[K, V])
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *entryHeap[K, V]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
