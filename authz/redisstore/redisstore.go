package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// RevocationTTL is the shortest time a Store remembers a revoked grant. It
// outlives the access tokens of the grant (GrantRevoked is their
// revocation check) by far.
const RevocationTTL = 24 * time.Hour

// MaxFamilyTokens bounds how many refresh tokens of one family a Store
// remembers, so that a client that refreshes in a loop cannot grow it
// without bound. The current and previous tokens are always kept.
const MaxFamilyTokens = 1000

// Defaults of Options.
const (
	DefaultKeyPrefix           = "remotemcp:"
	DefaultRevocationCacheSize = 100_000
	DefaultRevocationCacheTTL  = time.Minute
)

// errNoTTL and errNilRecord report caller mistakes.
var (
	errNoTTL     = errors.New("redisstore: ttl must be positive")
	errNilRecord = errors.New("redisstore: nil record")
)

// Options configures a Store. The zero value (or nil) means the defaults.
type Options struct {
	// MaxClients bounds the live registered clients: CreateClient then
	// returns as.ErrTooManyClients for a new one. Zero means no bound.
	// The count is kept in an index of client IDs (the p{clients} key),
	// written only while a bound is set.
	MaxClients int
	// KeyPrefix starts every key and the revocation channel, so that
	// several deployments can share one Redis. It must not contain '{' or
	// '}' (the keys' hash tags follow it). Default DefaultKeyPrefix.
	KeyPrefix string
	// Logger receives the state changes of the revocation subscription.
	// Default: discard.
	Logger *slog.Logger
	// RevocationCacheSize bounds how many GrantRevoked answers a Store
	// keeps in memory. Default DefaultRevocationCacheSize.
	RevocationCacheSize int
	// RevocationCacheTTL is how long a Store keeps a GrantRevoked answer
	// before it asks Redis again. Announcements keep the answers current;
	// the TTL bounds the damage of one that is lost without the
	// subscription failing (see the package documentation). Default
	// DefaultRevocationCacheTTL.
	RevocationCacheTTL time.Duration
}

// A Store holds every authz record in Redis. It implements ClientStore,
// PendingAuthStore, CodeStore, GrantStore, RefreshStore,
// upstream.TokenStore, ConsentStore and StepUpStore, and is safe for concurrent use.
// Close stops its revocation subscription.
type Store struct {
	rdb        redis.UniversalClient
	prefix     string
	maxClients int
	channel    string
	log        *slog.Logger
	now        func() time.Time
	cache      *answerCache

	// The revocation subscription (revocations.go).
	pingEvery time.Duration
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	ps        *redis.PubSub
	closed    bool
}

var (
	_ as.ClientStore      = (*Store)(nil)
	_ as.PendingAuthStore = (*Store)(nil)
	_ as.CodeStore        = (*Store)(nil)
	_ as.GrantStore       = (*Store)(nil)
	_ as.RefreshStore     = (*Store)(nil)
	_ upstream.TokenStore = (*Store)(nil)
	_ as.ConsentStore     = (*Store)(nil)
)

// New returns a Store on rdb, and starts its revocation subscription. The
// caller keeps ownership of rdb, which should have ContextTimeoutEnabled
// set so that request deadlines bound every call. New panics if rdb is nil
// or the key prefix contains a brace.
func New(rdb redis.UniversalClient, opts *Options) *Store {
	if rdb == nil {
		panic("redisstore: nil redis client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		panic("redisstore: KeyPrefix must not contain braces")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RevocationCacheSize <= 0 {
		o.RevocationCacheSize = DefaultRevocationCacheSize
	}
	if o.RevocationCacheTTL <= 0 {
		o.RevocationCacheTTL = DefaultRevocationCacheTTL
	}
	s := &Store{
		rdb:        rdb,
		prefix:     o.KeyPrefix,
		maxClients: o.MaxClients,
		channel:    o.KeyPrefix + "revocations",
		log:        o.Logger,
		now:        time.Now,
		pingEvery:  pingEvery,
		done:       make(chan struct{}),
	}
	s.cache = newAnswerCache(o.RevocationCacheSize, o.RevocationCacheTTL, func() time.Time { return s.now() })
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.watch()
	return s
}

// Keys. Every key is the prefix, then a hash tag "{kind:id}", then, for
// the records of a grant, a suffix: all keys of one grant share the tag,
// and so one Cluster slot. The tag is never empty, and a brace in an ID
// cannot split one record's keys across slots (the tag then ends at that
// brace, for every key of the record alike).

func (s *Store) key(kind, id string) string { return s.prefix + "{" + kind + ":" + id + "}" }

// grantKeys are the keys of one grant.
type grantKeys struct {
	grant, revoked, family, tokens, upstream string
}

func (s *Store) grantKeys(id string) grantKeys {
	k := s.key("grant", id)
	return grantKeys{grant: k, revoked: k + ":revoked", family: k + ":family", tokens: k + ":tokens", upstream: k + ":upstream"}
}

// all returns the keys in the order the scripts take them.
func (k grantKeys) all() []string {
	return []string{k.grant, k.revoked, k.family, k.tokens, k.upstream}
}

// consentKey hashes the triple, each part length-prefixed, so that no two
// triples share a key however their parts are split.
func (s *Store) consentKey(subject, clientID, redirectURI string) string {
	h := sha256.New()
	for _, p := range []string{subject, clientID, redirectURI} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return s.key("consent", hex.EncodeToString(h.Sum(nil)))
}

// Helpers.

// wrapf adds context to an error from Redis. The store's sentinels pass
// unchanged, and redis.Nil becomes authz.ErrNotFound, so that it never
// leaks.
func wrapf(err *error, format string, args ...any) {
	switch {
	case *err == nil, errors.Is(*err, authz.ErrNotFound), errors.Is(*err, as.ErrAlreadyUsed):
	case errors.Is(*err, redis.Nil):
		*err = authz.ErrNotFound
	default:
		*err = fmt.Errorf(format+": %w", append(args, *err)...)
	}
}

// millis converts a TTL to whole milliseconds, rounding up so that a
// positive TTL stays positive.
func millis(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }

// opID returns a random operation ID, with which a script recognises its
// own retry.
func opID() string { return rand.Text() }

func get[T any](ctx context.Context, rdb redis.Cmdable, key string) (*T, error) {
	b, err := rdb.Get(ctx, key).Bytes()
	if err != nil {
		return nil, err
	}
	return decode[T](b)
}

func decode[T any](b []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}

// create stores rec under key once (createScript).
func (s *Store) create(ctx context.Context, key string, rec any, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errNoTTL
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	n, err := createScript.Run(ctx, s.rdb, []string{key}, b, opID(), millis(ttl)).Int()
	return n == 1, err
}

// Clients.

// CreateClient implements as.ClientStore. It fails if a client with the
// same ID exists, and with as.ErrTooManyClients if the store holds
// Options.MaxClients live clients. The bound is checked in the client
// index first (its own slot), then the client is created: a creation
// that fails after that leaves its ID counted until its TTL passes.
func (s *Store) CreateClient(ctx context.Context, c *as.Client, ttl time.Duration) (err error) {
	if c == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	if s.maxClients > 0 {
		n, err := clientIndexScript.Run(ctx, s.rdb, []string{s.clientIndex()}, c.ClientID, millis(ttl), s.maxClients).Int()
		if err != nil {
			return fmt.Errorf("redisstore: create client %s: %w", c.ClientID, err)
		}
		if n == 0 {
			return as.ErrTooManyClients
		}
	}
	defer wrapf(&err, "redisstore: create client %s", c.ClientID)
	ok, err := s.create(ctx, s.key("client", c.ClientID), c, ttl)
	if err == nil && !ok {
		err = errors.New("already exists")
	}
	return err
}

// GetClient implements as.ClientStore.
func (s *Store) GetClient(ctx context.Context, clientID string) (_ *as.Client, err error) {
	defer wrapf(&err, "redisstore: get client %s", clientID)
	b, err := s.rdb.HGet(ctx, s.key("client", clientID), "rec").Bytes()
	if err != nil {
		return nil, err
	}
	return decode[as.Client](b)
}

// TouchClient implements as.ClientStore: the client then expires ttl
// from now.
func (s *Store) TouchClient(ctx context.Context, clientID string, ttl time.Duration) (err error) {
	if ttl <= 0 {
		return errNoTTL
	}
	defer wrapf(&err, "redisstore: touch client %s", clientID)
	ok, err := s.rdb.PExpire(ctx, s.key("client", clientID), ttl).Result()
	if err == nil && !ok {
		err = authz.ErrNotFound
	}
	if err == nil && s.maxClients > 0 {
		err = clientIndexScript.Run(ctx, s.rdb, []string{s.clientIndex()}, clientID, millis(ttl), 0).Err()
	}
	return err
}

// clientIndex is the key of the client index (clientIndexScript).
func (s *Store) clientIndex() string { return s.prefix + "{clients}" }

// Pending authorizations.

// PutPending implements as.PendingAuthStore. It replaces a record with
// the same ID.
func (s *Store) PutPending(ctx context.Context, p *as.PendingAuth, ttl time.Duration) (err error) {
	if p == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	defer wrapf(&err, "redisstore: put pending authorization")
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.key("pending", p.ID), b, ttl).Err()
}

// GetPending implements as.PendingAuthStore.
func (s *Store) GetPending(ctx context.Context, id string) (_ *as.PendingAuth, err error) {
	defer wrapf(&err, "redisstore: get pending authorization")
	return get[as.PendingAuth](ctx, s.rdb, s.key("pending", id))
}

// TakePending implements as.PendingAuthStore, with GETDEL.
func (s *Store) TakePending(ctx context.Context, id string) (_ *as.PendingAuth, err error) {
	defer wrapf(&err, "redisstore: take pending authorization")
	b, err := s.rdb.GetDel(ctx, s.key("pending", id)).Bytes()
	if err != nil {
		return nil, err
	}
	return decode[as.PendingAuth](b)
}

// Authorization codes.

// PutCode implements as.CodeStore. It fails if the store holds the hash
// already, used or not.
func (s *Store) PutCode(ctx context.Context, c *as.AuthCode, ttl time.Duration) (err error) {
	if c == nil {
		return errNilRecord
	}
	defer wrapf(&err, "redisstore: put authorization code")
	ok, err := s.create(ctx, s.key("code", c.Hash), c, ttl)
	if err == nil && !ok {
		err = errors.New("already stored")
	}
	return err
}

// TakeCode implements as.CodeStore. A taken code stays, marked, until
// its TTL ends.
func (s *Store) TakeCode(ctx context.Context, hash string) (_ *as.AuthCode, err error) {
	defer wrapf(&err, "redisstore: take authorization code")
	v, err := takeCodeScript.Run(ctx, s.rdb, []string{s.key("code", hash)}, opID()).Slice()
	if err != nil {
		return nil, err
	}
	if len(v) != 2 {
		return nil, fmt.Errorf("unexpected reply %v", v)
	}
	rec, _ := v[1].(string)
	c, err := decode[as.AuthCode]([]byte(rec))
	if err != nil {
		return nil, err
	}
	if used, _ := v[0].(int64); used == 1 {
		return c, as.ErrAlreadyUsed
	}
	return c, nil
}

// Upstream tokens.

// PutUpstream implements upstream.TokenStore. It replaces the tokens
// of the grant, and stores nothing for a revoked grant.
func (s *Store) PutUpstream(ctx context.Context, grantID string, sealed *upstream.Sealed, ttl time.Duration) (err error) {
	if sealed == nil {
		return errNilRecord
	}
	defer wrapf(&err, "redisstore: put upstream tokens of grant %s", grantID)
	k := s.grantKeys(grantID)
	return s.putUnlessRevoked(ctx, k.upstream, k.revoked, sealed, ttl)
}

// putUnlessRevoked stores rec under key unless the revocation mark exists.
func (s *Store) putUnlessRevoked(ctx context.Context, key, revoked string, rec any, ttl time.Duration) error {
	if ttl <= 0 {
		return errNoTTL
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return putUnlessRevokedScript.Run(ctx, s.rdb, []string{key, revoked}, b, millis(ttl)).Err()
}

// GetUpstream implements upstream.TokenStore.
func (s *Store) GetUpstream(ctx context.Context, grantID string) (_ *upstream.Sealed, err error) {
	defer wrapf(&err, "redisstore: get upstream tokens of grant %s", grantID)
	return get[upstream.Sealed](ctx, s.rdb, s.grantKeys(grantID).upstream)
}

// DeleteUpstream implements upstream.TokenStore. Deleting what is not
// there is not an error.
func (s *Store) DeleteUpstream(ctx context.Context, grantID string) (err error) {
	defer wrapf(&err, "redisstore: delete upstream tokens of grant %s", grantID)
	return s.rdb.Del(ctx, s.grantKeys(grantID).upstream).Err()
}

// Consent.

// Approve implements as.ConsentStore. It replaces an earlier approval
// with the same subject, client and redirect URI.
func (s *Store) Approve(ctx context.Context, subject, clientID, redirectURI string, scopes []string, ttl time.Duration) (err error) {
	if ttl <= 0 {
		return errNoTTL
	}
	defer wrapf(&err, "redisstore: approve client %s", clientID)
	if scopes == nil {
		scopes = []string{}
	}
	b, err := json.Marshal(scopes)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.consentKey(subject, clientID, redirectURI), b, ttl).Err()
}

// Approved implements as.ConsentStore. An approval of no scopes is
// found, with an empty list.
func (s *Store) Approved(ctx context.Context, subject, clientID, redirectURI string) (_ []string, err error) {
	defer wrapf(&err, "redisstore: approval of client %s", clientID)
	scopes, err := get[[]string](ctx, s.rdb, s.consentKey(subject, clientID, redirectURI))
	if err != nil {
		return nil, err
	}
	if *scopes == nil {
		return []string{}, nil
	}
	return *scopes, nil
}
