package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

var _ as.MetadataCache = (*Store)(nil)

// Defaults of the metadata-document cache's bounds (Options).
const (
	DefaultMaxMetadataDocuments = 10_000
	DefaultMaxMetadataBytes     = 32 << 20
	DefaultMaxMetadataPerHost   = 50
)

// errMetadataCacheFull is PutMetadata's refusal past a bound.
var errMetadataCacheFull = errors.New("metadata document cache full")

// The metadata-document cache is one family of four keys with one hash
// tag, so that a script can hold its bounds: the documents (a HASH by
// member), their expiry (a ZSET by member, ms on the server's clock), the
// documents per host (a HASH) and the bytes of all (a HASH field). A
// member is the URL's host and the SHA-256 of the URL: the host, so that
// an expired member is uncounted from its host; the hash, so that members
// stay short whatever the URL. Every key expires with the longest-lived
// member.

func (s *Store) cimdKeys() []string {
	k := s.key("cimd", "cache")
	return []string{k + ":docs", k + ":expiry", k + ":hosts", k + ":bytes"}
}

// cimdMember is the member of clientID, a document URL.
func cimdMember(clientID string) (member, host string) {
	host = "-"
	if u, err := url.Parse(clientID); err == nil && u.Hostname() != "" {
		host = strings.ToLower(u.Hostname())
	}
	sum := sha256.Sum256([]byte(clientID))
	return host + "\n" + hex.EncodeToString(sum[:]), host
}

// luaCIMD is the prelude of the cache's scripts: now() in ms on the
// server's clock, and sweep(), which drops the expired members and their
// counts.
const luaCIMD = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function drop(m)
  local len = redis.call('HSTRLEN', KEYS[1], m)
  redis.call('HDEL', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
  local host = string.match(m, '^(.*)\n')
  if redis.call('HINCRBY', KEYS[3], host, -1) <= 0 then redis.call('HDEL', KEYS[3], host) end
  redis.call('HINCRBY', KEYS[4], 'bytes', -len)
end
local function sweep(t)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', t))) do drop(m) end
end
`

// putMetadataScript caches a document unless a bound is reached: KEYS
// are cimdKeys; ARGV is member, host, document, ttl (ms), max documents,
// max bytes, max per host. A document that is cached already is replaced
// (and counted once). It returns 1 if cached, 0 at a bound.
var putMetadataScript = redis.NewScript(luaCIMD + `
local t = now()
sweep(t)
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then drop(ARGV[1]) end
local bytes = tonumber(redis.call('HGET', KEYS[4], 'bytes') or '0')
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) or bytes + #ARGV[3] > tonumber(ARGV[6]) or
    tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') >= tonumber(ARGV[7]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], string.format('%.0f', t + tonumber(ARGV[4])), ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('HINCRBY', KEYS[4], 'bytes', #ARGV[3])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
for i = 1, 4 do redis.call('PEXPIREAT', KEYS[i], last[2]) end
return 1
`)

// getMetadataScript reads a live document: KEYS are cimdKeys; ARGV[1] is
// the member. It returns the document, or nil.
var getMetadataScript = redis.NewScript(luaCIMD + `
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exp or tonumber(exp) <= now() then return false end
return redis.call('HGET', KEYS[1], ARGV[1])
`)

// GetMetadata implements as.MetadataCache: one script.
func (s *Store) GetMetadata(ctx context.Context, clientID string) (_ *as.Client, err error) {
	defer wrapf(&err, "redisstore: get cached client metadata")
	member, _ := cimdMember(clientID)
	doc, err := getMetadataScript.Run(ctx, s.rdb, s.cimdKeys(), member).Text()
	if err != nil {
		return nil, err
	}
	c, err := decode[as.Client]([]byte(doc))
	if err != nil {
		return nil, err
	}
	if c.ClientID != clientID { // a hash collision cannot happen; a bad record can
		return nil, authz.ErrNotFound
	}
	return c, nil
}

// PutMetadata implements as.MetadataCache: one script, which caches the
// document for ttl unless the cache holds Options.MaxMetadataDocuments
// documents, Options.MaxMetadataBytes bytes of them, or
// Options.MaxMetadataPerHost documents from the URL's host: then it
// caches nothing and fails (the fetcher goes on without the shared
// cache). Expired documents are dropped first.
func (s *Store) PutMetadata(ctx context.Context, c *as.Client, ttl time.Duration) (err error) {
	if c == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	defer wrapf(&err, "redisstore: cache client metadata")
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	member, host := cimdMember(c.ClientID)
	n, err := putMetadataScript.Run(ctx, s.rdb, s.cimdKeys(), member, host, b, millis(ttl),
		s.metadata.documents, s.metadata.bytes, s.metadata.perHost).Int()
	if err == nil && n == 0 {
		err = errMetadataCacheFull
	}
	return err
}
