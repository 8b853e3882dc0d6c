package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/storetest"
	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/internal/redistest"
)

// newClient returns a client for addr with short timeouts, closed when the
// test ends.
func newClient(t *testing.T, addr string, opts *redis.Options) *redis.Client {
	t.Helper()
	o := redis.Options{}
	if opts != nil {
		o = *opts
	}
	o.Addr = addr
	o.ContextTimeoutEnabled = true
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	rdb := redis.NewClient(&o)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newStore returns a Store, closed when the test ends.
func newStore(t *testing.T, rdb redis.UniversalClient, opts *Options) *Store {
	t.Helper()
	s := New(rdb, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// stores returns s as the contract suite's Stores. Time passes for the
// suite by moving the expiry of s's keys (advanceExpiry), not by waiting:
// the records' lifetimes are Redis key TTLs on the server's clock.
func stores(t *testing.T, s *Store) storetest.Stores {
	return storetest.Stores{
		Clients: s, Pending: s, Codes: s, Grants: s, Refresh: s, Upstream: s, Consent: s, StepUps: s,
		Advance: func(d time.Duration) { advanceExpiry(t, s.rdb, s.prefix+"*", d) },
		TTL:     time.Second,
		CappedClients: func(t *testing.T, max int) as.ClientStore {
			// A prefix of its own, so that other subtests' clients do not
			// count; its keys are deleted after the checks.
			c := newStore(t, s.rdb, &Options{KeyPrefix: "capped-" + newID() + ":", MaxClients: max})
			t.Cleanup(func() {
				checkClientIndex(t, c)
				deleteKeys(t, c.rdb, c.prefix+"*")
			})
			return c
		},
	}
}

// deleteKeys deletes the keys matching pattern, on every master.
func deleteKeys(t *testing.T, rdb redis.UniversalClient, pattern string) {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 100).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	ctx := context.Background()
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, del)
	} else {
		err = del(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Errorf("deleting %s: %v", pattern, err)
	}
}

// checkClientIndex checks that the client index of a store with
// MaxClients expires, and no later than its longest client.
func checkClientIndex(t *testing.T, s *Store) {
	ctx := context.Background()
	ttl, err := s.rdb.PTTL(ctx, s.clientIndex()).Result()
	if err != nil || ttl <= 0 || ttl > time.Hour+time.Second {
		t.Errorf("client index PTTL = %v, %v; want at most the clients' hour", ttl, err)
	}
}

// advanceExpiry makes d pass for the expiry of the keys matching pattern,
// on every master: each key expires d earlier (at once if that is past),
// as if the server's clock had moved on. A key without an expiry fails
// the test: every record must expire.
func advanceExpiry(t *testing.T, rdb redis.UniversalClient, pattern string, d time.Duration) {
	t.Helper()
	shift := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 100).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			at, err := c.PExpireTime(ctx, k).Result()
			if err != nil {
				return err
			}
			switch {
			case at == -2: // gone meanwhile (go-redis returns -2 and -1 as they are)
				continue
			case at < 0:
				return fmt.Errorf("key %s has no expiry", k)
			}
			if err := c.PExpireAt(ctx, k, time.UnixMilli(at.Milliseconds()-d.Milliseconds())).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	ctx := t.Context()
	var err error
	switch c := rdb.(type) {
	case *redis.Client:
		err = shift(ctx, c)
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, shift)
	default:
		err = fmt.Errorf("advanceExpiry: client %T", rdb)
	}
	if err != nil {
		t.Fatalf("advance the keys' expiry by %v: %v", d, err)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor waits until cond holds, for at most d. cond is about store s's
// revocation subscription, so it is tested again at each change of it.
func waitFor(t *testing.T, s *Store, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		changed := s.cache.changes()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// A scriptRecorder is a go-redis hook that records the keys of every
// script a client runs.
type scriptRecorder struct {
	mu   sync.Mutex
	keys [][]string
}

func (r *scriptRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *scriptRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (r *scriptRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "eval" || name == "evalsha" {
			args := cmd.Args()
			n, _ := strconv.Atoi(fmt.Sprint(args[2]))
			var keys []string
			for _, k := range args[3 : 3+n] {
				keys = append(keys, fmt.Sprint(k))
			}
			r.mu.Lock()
			r.keys = append(r.keys, keys)
			r.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// A commandCounter is a go-redis hook that counts the commands a client
// sends (pub/sub traffic does not pass through hooks).
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestContract(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	const prefix = "contract:"
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		return stores(t, newStore(t, rdb, &Options{KeyPrefix: prefix}))
	})

	// After the suite, and one record of every kind, every key expires.
	t.Run("EveryKeyExpires", func(t *testing.T) {
		ctx := ctxFor(t)
		putOneOfEach(t, ctx, newStore(t, rdb, &Options{KeyPrefix: prefix}))
		kinds := map[string]int{}
		family := regexp.MustCompile(`^` + prefix + `\{([a-z]+):[^}]*\}(:[a-z]+)?$`)
		iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			ttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil {
				t.Fatalf("PTTL %s: %v", key, err)
			}
			if ttl == -2 {
				continue // it expired since SCAN
			}
			if ttl <= 0 {
				t.Errorf("key %s has no TTL (PTTL %v)", key, ttl)
			}
			m := family.FindStringSubmatch(key)
			if m == nil {
				t.Errorf("key %s is not of a documented family", key)
				continue
			}
			kinds[m[1]+m[2]]++
		}
		if err := iter.Err(); err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		want := []string{"client", "code", "consent", "grant", "grant:family", "grant:revoked", "grant:tokens", "grant:upstream", "pending", "rt", "stepup"}
		if diff := cmp.Diff(want, slices.Sorted(maps.Keys(kinds))); diff != "" {
			t.Errorf("key families seen (-want +got):\n%s", diff)
		}
		t.Logf("keys by family after the contract suite: %v", kinds)
	})
}

// putOneOfEach stores a record of every kind, so that every key family
// exists.
func putOneOfEach(t *testing.T, ctx context.Context, s *Store) {
	t.Helper()
	id := newID()
	for _, err := range []error{
		s.CreateClient(ctx, &as.Client{ClientID: id}, time.Hour),
		s.PutPending(ctx, &as.PendingAuth{ID: id}, time.Hour),
		s.PutCode(ctx, &as.AuthCode{Hash: id}, time.Hour),
		s.PutGrant(ctx, &as.Grant{ID: id}, time.Hour),
		s.IssueRefresh(ctx, id, "c", id, time.Hour),
		s.PutUpstream(ctx, id, &upstream.Sealed{KeyID: "k"}, time.Hour),
		s.Approve(ctx, id, "c", "r", nil, time.Hour),
		s.MarkStepUp(ctx, id, []string{"notes:write"}, time.Hour),
		s.RevokeGrant(ctx, newID()),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TakeCode(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func newID() string { return opID() }

// TestContractCluster runs the suite on a Redis Cluster (one node that
// serves every slot): Redis refuses any script whose keys are not in one
// slot, and the test checks each script's keys with CLUSTER KEYSLOT too.
func TestContractCluster(t *testing.T) {
	t.Parallel()
	addr := redistest.StartCluster(t).Addr
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{addr}, ContextTimeoutEnabled: true,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
	})
	t.Cleanup(func() { rdb.Close() })
	rec := &scriptRecorder{}
	rdb.AddHook(rec)
	storetest.Run(t, func(t *testing.T) storetest.Stores { return stores(t, newStore(t, rdb, nil)) })
	putOneOfEach(t, ctxFor(t), newStore(t, rdb, nil))

	t.Run("ScriptKeysShareASlot", func(t *testing.T) {
		ctx := ctxFor(t)
		rec.mu.Lock()
		calls := rec.keys
		rec.mu.Unlock()
		if len(calls) == 0 {
			t.Fatal("no script ran")
		}
		multi := 0
		for _, keys := range calls {
			if len(keys) < 2 {
				continue
			}
			multi++
			var slots []int64
			for _, k := range keys {
				slot, err := rdb.ClusterKeySlot(ctx, k).Result()
				if err != nil {
					t.Fatalf("CLUSTER KEYSLOT: %v", err)
				}
				slots = append(slots, slot)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(slots)))) != 1 {
				t.Errorf("script keys %q are in slots %v", keys, slots)
			}
		}
		t.Logf("%d script calls, %d of them with several keys, each in one slot", len(calls), multi)
	})
}

// hashTag returns what Redis Cluster hashes of a key.
func hashTag(key string) string {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e]
		}
	}
	return key
}

func TestGrantKeysShareATag(t *testing.T) {
	s := &Store{prefix: DefaultKeyPrefix}
	for _, id := range []string{"", "g", "}", "a}b", "{x}", "}{", "grant:x}:revoked"} {
		keys := s.grantKeys(id).all()
		tags := map[string]bool{}
		for _, k := range keys {
			tags[hashTag(k)] = true
		}
		if len(tags) != 1 || tags[""] {
			t.Errorf("keys of grant %q have tags %v, want one non-empty tag", id, tags)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(keys)))) != len(keys) {
			t.Errorf("keys of grant %q collide: %q", id, keys)
		}
	}
	// Keys of different grants never collide, whatever the IDs hold.
	seen := map[string]string{}
	for _, id := range []string{"x", "x}", "x}:revoked", "x}:family", "x:revoked", "x}:upstream}"} {
		for _, k := range s.grantKeys(id).all() {
			if other, ok := seen[k]; ok && other != id {
				t.Errorf("grants %q and %q share key %s", id, other, k)
			}
			seen[k] = id
		}
	}
}

func TestNewPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		rdb  redis.UniversalClient
		opts *Options
	}{
		{"nil client", nil, nil},
		{"brace in prefix", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{KeyPrefix: "{app}:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "redisstore: ") {
					t.Errorf("New panicked with %v, want a redisstore: panic", r)
				}
			}()
			New(tt.rdb, tt.opts)
		})
	}
}

// TestRevocationLifetime checks that the revocation mark outlives every
// record of the grant.
func TestRevocationLifetime(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	s := newStore(t, rdb, nil)
	ctx := ctxFor(t)
	for _, tt := range []struct {
		name string
		put  func(id string) error
		kept time.Duration
	}{
		{"unknown grant", func(string) error { return nil }, RevocationTTL},
		{"short-lived grant", func(id string) error { return s.PutGrant(ctx, &as.Grant{ID: id}, time.Hour) }, RevocationTTL},
		{"long-lived grant", func(id string) error { return s.PutGrant(ctx, &as.Grant{ID: id}, 30*24*time.Hour) }, 30 * 24 * time.Hour},
		{"long-lived refresh family", func(id string) error { return s.IssueRefresh(ctx, id, "c", newID(), 90*24*time.Hour) }, 90 * 24 * time.Hour},
		{"long-lived upstream tokens", func(id string) error {
			return s.PutUpstream(ctx, id, &upstream.Sealed{KeyID: "k"}, 7*24*time.Hour)
		}, 7 * 24 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := newID()
			if err := tt.put(id); err != nil {
				t.Fatalf("put: %v", err)
			}
			if err := s.RevokeGrant(ctx, id); err != nil {
				t.Fatalf("RevokeGrant: %v", err)
			}
			ttl, err := rdb.PTTL(ctx, s.grantKeys(id).revoked).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl < tt.kept-time.Minute || ttl > tt.kept {
				t.Errorf("revocation mark TTL = %v, want about %v", ttl, tt.kept)
			}
		})
	}
}

// TestRevocationAcrossStores checks that a revocation on one Store reaches
// another through the subscription, and that the other answers
// GrantRevoked without a command to Redis.
func TestRevocationAcrossStores(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := ctxFor(t)
	a := newStore(t, newClient(t, srv.Addr, nil), nil)
	rdbB := newClient(t, srv.Addr, nil)
	counter := &commandCounter{}
	rdbB.AddHook(counter)
	b := newStore(t, rdbB, nil)
	waitFor(t, b, 5*time.Second, "store B subscribed", b.subscribed)

	id, other := newID(), newID()
	for _, g := range []string{id, other} {
		if err := a.PutGrant(ctx, &as.Grant{ID: g}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if r, err := b.GrantRevoked(ctx, g); err != nil || r {
			t.Fatalf("GrantRevoked of a live grant = %v, %v; want false, nil", r, err)
		}
	}
	// Steady state: answers from memory.
	start := counter.n.Load()
	for range 1000 {
		if r, err := b.GrantRevoked(ctx, id); err != nil || r {
			t.Fatalf("GrantRevoked of a live grant = %v, %v; want false, nil", r, err)
		}
	}
	if err := a.RevokeGrant(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, time.Second, "store B sees the revocation", func() bool {
		r, err := b.GrantRevoked(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
	if r, err := b.GrantRevoked(ctx, other); err != nil || r {
		t.Errorf("GrantRevoked of another grant = %v, %v; want false, nil", r, err)
	}
	if n := counter.n.Load() - start; n != 0 {
		t.Errorf("store B sent %d commands to Redis in steady state, want 0", n)
	}
}

// TestRevocationFallback takes store B's subscription down (an ACL that
// forbids B the channel, and a kill of its pub/sub connection), and checks
// that B then asks Redis, that it misses no revocation made meanwhile, and
// that it goes back to memory when the subscription is back.
func TestRevocationFallback(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := ctxFor(t)
	admin := newClient(t, srv.Addr, nil)
	if err := admin.Do(ctx, "ACL", "SETUSER", "b", "on", ">secret", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	a := newStore(t, admin, nil)
	rdbB := newClient(t, srv.Addr, &redis.Options{Username: "b", Password: "secret"})
	counter := &commandCounter{}
	rdbB.AddHook(counter)
	b := newStore(t, rdbB, nil)
	waitFor(t, b, 5*time.Second, "store B subscribed", b.subscribed)

	revoked := func(t *testing.T, id string) bool {
		t.Helper()
		r, err := b.GrantRevoked(ctx, id)
		if err != nil {
			t.Fatalf("GrantRevoked: %v", err)
		}
		return r
	}
	// commands returns how many commands f made B send.
	commands := func(f func()) int64 {
		n := counter.n.Load()
		f()
		return counter.n.Load() - n
	}
	gapped, live := newID(), newID()
	for _, g := range []string{gapped, live} {
		if revoked(t, g) {
			t.Fatalf("GrantRevoked of a live grant = true")
		}
	}

	// Down.
	for _, args := range [][]any{{"ACL", "SETUSER", "b", "resetchannels"}, {"CLIENT", "KILL", "USER", "b", "TYPE", "pubsub"}} {
		if err := admin.Do(ctx, args...).Err(); err != nil && !strings.Contains(err.Error(), "No such client") {
			t.Fatalf("%v: %v", args, err)
		}
	}
	waitFor(t, b, 5*time.Second, "store B unsubscribed", func() bool { return !b.subscribed() })
	if err := a.RevokeGrant(ctx, gapped); err != nil {
		t.Fatal(err)
	}
	// A revocation read from Redis is kept (it is sticky); nothing else is.
	for i, want := range []int64{1, 0} {
		var r bool
		if n := commands(func() { r = revoked(t, gapped) }); !r || n != want {
			t.Errorf("GrantRevoked #%d of a grant revoked while unsubscribed = %v with %d commands; want true with %d", i+1, r, n, want)
		}
	}
	for range 2 {
		var r bool
		if n := commands(func() { r = revoked(t, live) }); r || n != 1 {
			t.Errorf("GrantRevoked of a live grant while unsubscribed = %v with %d commands; want false with 1 (no caching)", r, n)
		}
	}

	// Back up: memory again, and the revocation made while down is known.
	if err := admin.Do(ctx, "ACL", "SETUSER", "b", "allchannels").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, 5*time.Second, "store B subscribed again", b.subscribed)
	if !revoked(t, gapped) {
		t.Errorf("GrantRevoked after resubscribing of a grant revoked while unsubscribed = false")
	}
	revoked(t, live) // cache it
	if n := commands(func() {
		if err := a.RevokeGrant(ctx, live); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, time.Second, "store B sees the revocation", func() bool { return revoked(t, live) })
		revoked(t, gapped)
	}); n != 0 {
		t.Errorf("store B sent %d commands after resubscribing, want 0", n)
	}
}

// TestRedisDown checks what operations do when Redis is down, hangs, and
// comes back empty.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// Retries bound how long a call fails: 2 tries of 2 dials.
	dialer, dialed := signalingDialer()
	rdb := newClient(t, srv.Addr, &redis.Options{MaxRetries: 1, DialerRetries: 2, DialerRetryTimeout: 50 * time.Millisecond, Dialer: dialer})
	s := newStore(t, rdb, nil)
	ctx := ctxFor(t)
	id, hash := newID(), newID()
	for _, err := range []error{
		s.PutGrant(ctx, &as.Grant{ID: id}, time.Hour),
		s.IssueRefresh(ctx, id, "c", hash, time.Hour),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, s, 5*time.Second, "subscribed", s.subscribed)
	if r, err := s.GrantRevoked(ctx, id); err != nil || r {
		t.Fatalf("GrantRevoked = %v, %v; want false, nil", r, err)
	}

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreateClient", func(ctx context.Context) error {
			return s.CreateClient(ctx, &as.Client{ClientID: newID()}, time.Hour)
		}},
		{"GetClient", func(ctx context.Context) error { _, err := s.GetClient(ctx, newID()); return err }},
		{"TakePending", func(ctx context.Context) error { _, err := s.TakePending(ctx, newID()); return err }},
		{"TakeCode", func(ctx context.Context) error { _, err := s.TakeCode(ctx, newID()); return err }},
		{"GetGrant", func(ctx context.Context) error { _, err := s.GetGrant(ctx, id); return err }},
		{"RevokeGrant", func(ctx context.Context) error { return s.RevokeGrant(ctx, newID()) }},
		{"GrantRevoked", func(ctx context.Context) error { _, err := s.GrantRevoked(ctx, newID()); return err }},
		{"LookupRefresh", func(ctx context.Context) error { _, _, err := s.LookupRefresh(ctx, hash); return err }},
		{"RotateRefresh", func(ctx context.Context) error {
			_, _, err := s.RotateRefresh(ctx, as.RefreshRotation{PresentedHash: hash, NewHash: newID(), ClientID: "c", TTL: time.Hour})
			return err
		}},
		{"GetUpstream", func(ctx context.Context) error { _, err := s.GetUpstream(ctx, id); return err }},
		{"Approved", func(ctx context.Context) error { _, err := s.Approved(ctx, "s", "c", "r"); return err }},
	}
	failFast := func(t *testing.T) {
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				start := time.Now()
				err := op.call(ctx)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("took %v, want less than 2s", d)
				}
				if err == nil || errors.Is(err, authz.ErrNotFound) || errors.Is(err, redis.Nil) {
					t.Errorf("error = %v, want a Redis error", err)
				}
			})
		}
	}

	t.Run("Killed", func(t *testing.T) {
		srv.Kill()
		waitFor(t, s, 2*time.Second, "GrantRevoked of a cached grant fails", func() bool {
			_, err := s.GrantRevoked(ctx, id)
			return err != nil
		})
		failFast(t)
	})

	t.Run("RestartedEmpty", func(t *testing.T) {
		drain(dialed)
		srv.Restart()
		awaitReconnect(t, rdb, dialed, func() error { return rdb.Ping(ctx).Err() })
		if _, err := s.GetGrant(ctx, id); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("GetGrant after Redis restarted empty error = %v, want ErrNotFound", err)
		}
		if _, _, err := s.LookupRefresh(ctx, hash); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("LookupRefresh after Redis restarted empty error = %v, want ErrNotFound", err)
		}
		waitFor(t, s, 5*time.Second, "subscribed again", s.subscribed)
		if r, err := s.GrantRevoked(ctx, id); err != nil || r {
			t.Errorf("GrantRevoked after Redis restarted empty = %v, %v; want false, nil", r, err)
		}
		// Scripts are loaded again (NOSCRIPT, then EVAL).
		if err := s.RevokeGrant(ctx, id); err != nil {
			t.Errorf("RevokeGrant after Redis restarted empty: %v", err)
		}
	})

	t.Run("Paused", func(t *testing.T) {
		srv.Pause()
		defer srv.Resume()
		waitFor(t, s, 3*time.Second, "the subscription notices", func() bool { return !s.subscribed() })
		failFast(t)
	})
}

// TestReusedRevokes checks that RotateRefresh's Reused revokes the grant
// by itself.
func TestReusedRevokes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, newClient(t, srv.Addr, nil), nil)
	ctx := ctxFor(t)
	id, t0 := newID(), newID()
	for _, err := range []error{
		s.PutGrant(ctx, &as.Grant{ID: id}, time.Hour),
		s.PutUpstream(ctx, id, &upstream.Sealed{KeyID: "k"}, time.Hour),
		s.IssueRefresh(ctx, id, "c", t0, time.Hour),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := as.RefreshRotation{PresentedHash: t0, NewHash: newID(), ClientID: "c", TTL: time.Hour}
	if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
		t.Fatalf("RotateRefresh = %v, %v; want Rotated", res, err)
	}
	r.NewHash = newID()
	if g, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Reused || g != id {
		t.Fatalf("RotateRefresh(reused) = %q, %v, %v; want %q, Reused, nil", g, res, err, id)
	}
	if revoked, err := s.GrantRevoked(ctx, id); err != nil || !revoked {
		t.Errorf("GrantRevoked after Reused = %v, %v; want true", revoked, err)
	}
	if _, err := s.GetGrant(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetGrant after Reused error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUpstream(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream after Reused error = %v, want ErrNotFound", err)
	}
}

// TestRetried checks that the operations that are not idempotent answer a
// retry of themselves (go-redis retries after a lost reply) as they
// answered the first try.
func TestRetried(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	s := newStore(t, rdb, nil)
	ctx := ctxFor(t)

	t.Run("TakeCode", func(t *testing.T) {
		hash := newID()
		if err := s.PutCode(ctx, &as.AuthCode{Hash: hash, GrantID: "g"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		keys, op := []string{s.key("code", hash)}, opID()
		var got []int64
		for _, op := range []string{op, op, opID()} {
			v, err := takeCodeScript.Run(ctx, rdb, keys, op).Slice()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v[0].(int64))
		}
		if diff := cmp.Diff([]int64{0, 0, 1}, got); diff != "" {
			t.Errorf("takes by op, op again, another op: used (-want +got):\n%s", diff)
		}
	})

	t.Run("CreateClient", func(t *testing.T) {
		key, op := s.key("client", newID()), opID()
		var got []int64
		for _, op := range []string{op, op, opID()} {
			n, err := createScript.Run(ctx, rdb, []string{key}, "{}", op, 60000).Int64()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
		if diff := cmp.Diff([]int64{1, 1, 0}, got); diff != "" {
			t.Errorf("creates by op, op again, another op (-want +got):\n%s", diff)
		}
	})

	t.Run("RotateRefresh", func(t *testing.T) {
		id, t0 := newID(), newID()
		if err := s.IssueRefresh(ctx, id, "c", t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		r := as.RefreshRotation{PresentedHash: t0, NewHash: newID(), ClientID: "c", TTL: time.Hour}
		for i := range 2 {
			if g, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated || g != id {
				t.Errorf("RotateRefresh #%d = %q, %v, %v; want %q, Rotated, nil", i+1, g, res, err, id)
			}
		}
		if g, c, err := s.LookupRefresh(ctx, r.NewHash); err != nil || g != id || c != "c" {
			t.Errorf("LookupRefresh(new) = %q, %q, %v; want %q, c, nil", g, c, err, id)
		}
	})
}

// TestFamilyBounded checks that a family does not grow without bound when
// a client refreshes in a loop, and keeps the tokens it must.
func TestFamilyBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	s := newStore(t, rdb, nil)
	ctx := ctxFor(t)
	id := newID()
	tok := func(i int) string { return fmt.Sprint(id, "-", i) }
	if err := s.IssueRefresh(ctx, id, "c", tok(0), time.Hour); err != nil {
		t.Fatal(err)
	}
	const rotations = MaxFamilyTokens + 10
	for i := range rotations {
		r := as.RefreshRotation{PresentedHash: tok(i), NewHash: tok(i + 1), ClientID: "c", Grace: time.Minute, TTL: time.Hour}
		if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
			t.Fatalf("rotation %d = %v, %v; want Rotated", i, res, err)
		}
	}
	if n, err := rdb.ZCard(ctx, s.grantKeys(id).tokens).Result(); err != nil || n != MaxFamilyTokens {
		t.Errorf("family holds %d tokens (%v), want %d", n, err, MaxFamilyTokens)
	}
	for _, tt := range []struct {
		n    int
		want error
	}{
		{rotations, nil}, {rotations - 1, nil}, {rotations - MaxFamilyTokens + 1, nil},
		{rotations - MaxFamilyTokens, authz.ErrNotFound}, {0, authz.ErrNotFound},
	} {
		if _, _, err := s.LookupRefresh(ctx, tok(tt.n)); !errors.Is(err, tt.want) {
			t.Errorf("LookupRefresh(token %d) error = %v, want %v", tt.n, err, tt.want)
		}
	}
}

// TestRoundTrips checks the round trips of each operation that the package
// documentation lists, once Redis knows the scripts.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	counter := &commandCounter{}
	rdb.AddHook(counter)
	s := newStore(t, rdb, nil)
	ctx := ctxFor(t)
	waitFor(t, s, 5*time.Second, "subscribed", s.subscribed)
	type op struct {
		name string
		call func(id string) error
		want int64
	}
	ops := []op{
		{"CreateClient", func(id string) error { return s.CreateClient(ctx, &as.Client{ClientID: id}, time.Hour) }, 1},
		{"GetClient", func(id string) error { _, err := s.GetClient(ctx, id); return err }, 1},
		{"TouchClient", func(id string) error { return s.TouchClient(ctx, id, time.Hour) }, 1},
		{"PutPending", func(id string) error { return s.PutPending(ctx, &as.PendingAuth{ID: id}, time.Hour) }, 1},
		{"GetPending", func(id string) error { _, err := s.GetPending(ctx, id); return err }, 1},
		{"TakePending", func(id string) error { _, err := s.TakePending(ctx, id); return err }, 1},
		{"PutCode", func(id string) error { return s.PutCode(ctx, &as.AuthCode{Hash: id}, time.Hour) }, 1},
		{"TakeCode", func(id string) error { _, err := s.TakeCode(ctx, id); return err }, 1},
		{"PutGrant", func(id string) error { return s.PutGrant(ctx, &as.Grant{ID: id}, time.Hour) }, 1},
		{"GetGrant", func(id string) error { _, err := s.GetGrant(ctx, id); return err }, 1},
		{"GrantRevoked (miss)", func(id string) error { _, err := s.GrantRevoked(ctx, id); return err }, 1},
		{"GrantRevoked (cached)", func(id string) error { _, err := s.GrantRevoked(ctx, id); return err }, 0},
		{"IssueRefresh", func(id string) error { return s.IssueRefresh(ctx, id, "c", id+"-0", time.Hour) }, 2},
		{"LookupRefresh", func(id string) error { _, _, err := s.LookupRefresh(ctx, id+"-0"); return err }, 2},
		{"RotateRefresh", func(id string) error {
			_, _, err := s.RotateRefresh(ctx, as.RefreshRotation{PresentedHash: id + "-0", NewHash: id + "-1", TTL: time.Hour})
			return err
		}, 3},
		{"PutUpstream", func(id string) error { return s.PutUpstream(ctx, id, &upstream.Sealed{}, time.Hour) }, 1},
		{"GetUpstream", func(id string) error { _, err := s.GetUpstream(ctx, id); return err }, 1},
		{"DeleteUpstream", func(id string) error { return s.DeleteUpstream(ctx, id) }, 1},
		{"Approve", func(id string) error { return s.Approve(ctx, id, "c", "r", nil, time.Hour) }, 1},
		{"Approved", func(id string) error { _, err := s.Approved(ctx, id, "c", "r"); return err }, 1},
		{"RevokeGrant", func(id string) error { return s.RevokeGrant(ctx, id) }, 1},
	}
	for i := range 2 { // the first pass loads the scripts
		id := newID()
		for _, op := range ops {
			n := counter.n.Load()
			if err := op.call(id); err != nil {
				t.Fatalf("%s: %v", op.name, err)
			}
			if got := counter.n.Load() - n; i == 1 && got != op.want {
				t.Errorf("%s made %d round trips, want %d", op.name, got, op.want)
			}
		}
	}
}

func TestRefreshHashCollision(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, newClient(t, srv.Addr, nil), nil)
	ctx := ctxFor(t)
	a, b, a0, b0 := newID(), newID(), newID(), newID()
	for _, err := range []error{s.IssueRefresh(ctx, a, "c", a0, time.Hour), s.IssueRefresh(ctx, b, "c", b0, time.Hour)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.IssueRefresh(ctx, newID(), "c", a0, time.Hour); err == nil {
		t.Errorf("IssueRefresh with another family's token succeeded")
	}
	r := as.RefreshRotation{PresentedHash: a0, NewHash: b0, ClientID: "c", TTL: time.Hour}
	if _, res, err := s.RotateRefresh(ctx, r); err == nil {
		t.Errorf("RotateRefresh to another family's token = %v, nil; want an error", res)
	}
	// The refused calls changed nothing.
	for h, want := range map[string]string{a0: a, b0: b} {
		if g, _, err := s.LookupRefresh(ctx, h); err != nil || g != want {
			t.Errorf("LookupRefresh = %q, %v; want %q, nil", g, err, want)
		}
	}
	r.NewHash = newID()
	if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
		t.Errorf("RotateRefresh after refused ones = %v, %v; want Rotated", res, err)
	}
}

// TestClosedClient checks that a Store whose client is closed stops its
// subscription and Close returns.
func TestClosedClient(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	s := New(rdb, nil)
	waitFor(t, s, 5*time.Second, "subscribed", s.subscribed)
	rdb.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not end after the client was closed")
	}
	if _, err := s.GrantRevoked(t.Context(), newID()); err == nil {
		t.Errorf("GrantRevoked on a closed client succeeded")
	}
	s.Close()
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := &Store{} // never reaches Redis
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"CreateClient nil", s.CreateClient(ctx, nil, time.Hour), errNilRecord},
		{"CreateClient ttl", s.CreateClient(ctx, &as.Client{ClientID: "c"}, 0), errNoTTL},
		{"TouchClient ttl", s.TouchClient(ctx, "c", -time.Second), errNoTTL},
		{"PutPending nil", s.PutPending(ctx, nil, time.Hour), errNilRecord},
		{"PutPending ttl", s.PutPending(ctx, &as.PendingAuth{ID: "p"}, 0), errNoTTL},
		{"PutCode nil", s.PutCode(ctx, nil, time.Hour), errNilRecord},
		{"PutCode ttl", s.PutCode(ctx, &as.AuthCode{Hash: "h"}, 0), errNoTTL},
		{"PutGrant nil", s.PutGrant(ctx, nil, time.Hour), errNilRecord},
		{"PutGrant ttl", s.PutGrant(ctx, &as.Grant{ID: "g"}, 0), errNoTTL},
		{"IssueRefresh ttl", s.IssueRefresh(ctx, "g", "c", "h", 0), errNoTTL},
		{"RotateRefresh ttl", func() error { _, _, err := s.RotateRefresh(ctx, as.RefreshRotation{}); return err }(), errNoTTL},
		{"PutUpstream nil", s.PutUpstream(ctx, "g", nil, time.Hour), errNilRecord},
		{"PutUpstream ttl", s.PutUpstream(ctx, "g", &upstream.Sealed{}, 0), errNoTTL},
		{"Approve ttl", s.Approve(ctx, "s", "c", "r", nil, 0), errNoTTL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Errorf("error = %v, want %v", tt.err, tt.want)
			}
		})
	}
}

// A fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestAnswerCache(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
	c := newAnswerCache(3, time.Minute, clock.Now)
	get := func(id string) string {
		r, ok := c.get(id)
		switch {
		case !ok:
			return "miss"
		case r:
			return "revoked"
		}
		return "live"
	}

	// Unconfirmed: only revocations are kept.
	epoch, _ := c.state()
	c.read("a", false, epoch)
	c.read("b", true, epoch)
	c.revoked("c")
	if diff := cmp.Diff([]string{"miss", "revoked", "revoked"}, []string{get("a"), get("b"), get("c")}); diff != "" {
		t.Errorf("unconfirmed (-want +got):\n%s", diff)
	}

	// Confirmation empties the cache; a read from before it is not kept.
	c.setHealthy(true)
	c.read("a", false, epoch)
	epoch, _ = c.state()
	c.read("b", false, epoch)
	if diff := cmp.Diff([]string{"miss", "live", "miss"}, []string{get("a"), get("b"), get("c")}); diff != "" {
		t.Errorf("confirmed (-want +got):\n%s", diff)
	}

	// An announcement wins over a read, whichever comes first.
	c.revoked("d")
	c.read("d", false, epoch)
	c.read("e", false, epoch)
	c.revoked("e")
	if diff := cmp.Diff([]string{"revoked", "revoked"}, []string{get("d"), get("e")}); diff != "" {
		t.Errorf("announcements (-want +got):\n%s", diff)
	}

	// Bounded: "b" was the oldest.
	c.revoked("h")
	if n := c.len(); n != 3 {
		t.Errorf("len = %d, want 3", n)
	}
	if got := get("b"); got != "miss" {
		t.Errorf("oldest entry beyond the bound = %s, want miss", got)
	}

	// Entries expire.
	clock.Advance(time.Minute)
	if got := get("e"); got != "miss" {
		t.Errorf("expired entry = %s, want miss", got)
	}
	c.read("f", false, epoch)
	if n := c.len(); n != 1 {
		t.Errorf("len = %d after expiry and one add, want 1", n)
	}

	// Losing the subscription empties the cache, and reads from the
	// confirmed epoch are no longer kept.
	c.setHealthy(false)
	c.read("g", false, epoch)
	if diff := cmp.Diff([]string{"miss", "miss"}, []string{get("f"), get("g")}); diff != "" {
		t.Errorf("after the subscription is lost (-want +got):\n%s", diff)
	}
}

// signalingDialer returns a go-redis Dialer that reports each connection it
// makes on the returned channel (without blocking).
func signalingDialer() (func(ctx context.Context, network, addr string) (net.Conn, error), chan struct{}) {
	dialed := make(chan struct{}, 1)
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			select {
			case dialed <- struct{}{}:
			default:
			}
		}
		return c, err
	}, dialed
}

// drain empties a signal channel.
func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// awaitReconnect waits until try, a command on rdb, succeeds after a Redis
// restart. The pool's idle connections to the old process fail once each
// (a failed try drops one, so the next try follows at once); then, after
// enough failed dials, go-redis's pool stops dialing until a dial of its
// own, in the background, gets through: that dial is waited for.
func awaitReconnect(t *testing.T, rdb *redis.Client, dialed chan struct{}, try func() error) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		err := try()
		if err == nil {
			return
		}
		if rdb.PoolStats().IdleConns > 0 {
			continue
		}
		select {
		case <-dialed:
		case <-deadline:
			t.Fatalf("Redis does not answer after the restart: %v", err)
		}
	}
}

// TestCloseQuiet: closing the Store, as a server does at shutdown (before
// it closes the Redis client), ends the revocation subscription without a
// warning: the subscription was not lost, it was ended.
func TestCloseQuiet(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for i := range 10 {
		var logs bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		rdb := newClient(t, srv.Addr, nil)
		s := New(rdb, &Options{Logger: log})
		waitFor(t, s, 5*time.Second, "subscribed", s.subscribed)
		s.Close()
		rdb.Close()
		mu.Lock()
		got := logs.String()
		mu.Unlock()
		if got != "" {
			t.Fatalf("round %d: a normal Close logged:\n%s", i, got)
		}
	}
}

// lockedWriter is an io.Writer shared under a mutex.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
