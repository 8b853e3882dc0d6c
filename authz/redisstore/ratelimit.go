package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/as"
)

var errBadLimit = errors.New("redisstore: rate limit and window must be positive")

// A RateLimiter implements as.RateLimiter on Redis, so that every
// replica counts against the same budgets. It keeps GCRA's one number per
// key: the theoretical arrival time, in microseconds of the Redis server's
// clock (TIME), so that replicas whose clocks differ still agree. Each
// Allow is one script (one round trip, atomic), on one key
// "<prefix>{ratelimit:<key>}" whose TTL ends with its arrival time: a key
// never outlives one window.
//
// go-redis may retry a script after a read timeout even when the server
// ran it; such a request is then counted twice, which errs on the side of
// limiting and is rare enough not to matter.
type RateLimiter struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ as.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter returns a RateLimiter on rdb. Only opts.KeyPrefix is used
// (default DefaultKeyPrefix). It panics if rdb is nil or the prefix has a
// brace.
func NewRateLimiter(rdb redis.UniversalClient, opts *Options) *RateLimiter {
	if rdb == nil {
		panic("redisstore: nil redis client")
	}
	prefix := DefaultKeyPrefix
	if opts != nil && opts.KeyPrefix != "" {
		prefix = opts.KeyPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		panic("redisstore: KeyPrefix must not contain braces")
	}
	return &RateLimiter{rdb: rdb, prefix: prefix}
}

// rateLimitScript is GCRA: KEYS[1] holds the arrival time (µs); ARGV is
// the interval T = window/limit and the window, both µs. It returns
// {1, 0} and moves the arrival time if the request is allowed, or {0,
// microseconds until one would be}, changing nothing.
var rateLimitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if not tat or tat < now then tat = now end
local nexttat = tat + interval
local allowat = nexttat - window
if allowat > now then return {0, allowat - now} end
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', string.format('%.0f', math.ceil((nexttat - now) / 1000)))
return {1, 0}
`)

// Allow implements as.RateLimiter.
func (l *RateLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if limit <= 0 || window <= 0 {
		return false, 0, errBadLimit
	}
	defer wrapf(&err, "rate limit %s", key)
	w := max(window.Microseconds(), 1)
	interval := max(w/int64(limit), 1)
	res, err := rateLimitScript.Run(ctx, l.rdb, []string{l.prefix + "{ratelimit:" + key + "}"}, interval, w).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("unexpected script result %v", res)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}
