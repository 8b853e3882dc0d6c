// Package redisstore implements every authz store in Redis, so that any
// number of replicas share their OAuth state: one [Store] implements all
// eight store interfaces (of authz/as and authz/upstream) on a go-redis
// UniversalClient (a single server, Sentinel or Cluster). It passes the
// contract suite of package storetest, like memstore. It needs Redis 6.2 or later (GETDEL).
//
// # Keys
//
// Every key starts with Options.KeyPrefix (p, default "remotemcp:") and
// carries a hash tag, so that the keys a script touches together are in
// one Cluster slot; every key has a TTL, always (a key is written with PX,
// or expired in the same script that writes it).
//
//	key                          type        TTL                                   holds
//	p{client:<client_id>}        hash        the registration TTL; TouchClient     rec: JSON as.Client; op: the call that created it
//	p{clients}                   sorted set  its longest member's expiry           client IDs scored by expiry (ms, server clock); only with MaxClients
//	p{pending:<id>}              string      PutPending's                          JSON as.PendingAuth
//	p{code:<code hash>}          hash        PutCode's, kept when taken            rec: JSON as.AuthCode; op; taken: the first taker (the tombstone)
//	p{grant:<grant_id>}          string      PutGrant's                            JSON as.Grant
//	p{grant:<grant_id>}:revoked  string      >= RevocationTTL and >= the grant's   "1": the grant is revoked (sticky)
//	p{grant:<grant_id>}:family   hash        the longest of its tokens' TTLs       client, current, previous: token hashes; rs, rn: when previous was replaced; res
//	p{grant:<grant_id>}:tokens   sorted set  as :family                            the family's token hashes, scored by expiry (µs)
//	p{grant:<grant_id>}:upstream string      PutUpstream's                         JSON upstream.Sealed (AES-GCM sealed upstream tokens)
//	p{rt:<refresh token hash>}   string      the token's TTL                       the grant ID: the index from a token to its family
//	p{consent:<sha256>}          string      Approve's                             JSON array of approved scopes; the key hashes subject, client_id, redirect_uri
//	p{stepup:<key>}              string      MarkStepUp's (minutes)                the scopes of a step-up mark, space-separated; key: a grant ID or "carry:<sha256>"
//	p revocations (channel)      pub/sub     -                                     grant IDs, published as they are revoked
//
// Token and code hashes are SHA-256 hashes (base64url): Redis never holds a token,
// code or secret. All keys of one grant share the tag {grant:<grant_id>}.
// A refresh token is found by its hash alone, so its index entry has its
// own tag: operations on refresh tokens take two steps, each atomic in
// its slot (see refresh.go), and the family is the authority.
//
// # Round trips
//
//	CreateClient, PutCode, TakeCode, PutGrant, RevokeGrant, PutUpstream   1 (a script)
//	CreateClient, TouchClient with MaxClients                             +1 (the client index, a script)
//	GetClient, TouchClient, PutPending, GetPending, TakePending (GETDEL),
//	GetGrant, GetUpstream, DeleteUpstream, Approve, Approved,
//	MarkStepUp, TakeStepUp (GETDEL)                                       1
//	GrantRevoked                                                          0 from memory; 1 (EXISTS) on a miss
//	IssueRefresh                                                          2 (claim the index entry; a script)
//	LookupRefresh                                                         2 (read the index entry; a script)
//	RotateRefresh                                                         3 (read the presented entry; claim the new one; a script)
//
// A script costs one more round trip the first time a Redis server sees
// it (EVALSHA, then EVAL). Failure paths may add one (deleting an index
// entry that led nowhere).
//
// # Guarantees
//
// Beyond the store interfaces, and as memstore:
//
//   - Revocation is sticky. RevokeGrant deletes the grant, its refresh
//     family and its upstream tokens and marks it revoked, in one script,
//     for at least [RevocationTTL] and at least as long as any of those
//     would have lived. While the mark lives, PutGrant, IssueRefresh and
//     PutUpstream for the grant succeed but store nothing (they check the
//     mark in the script that writes).
//   - RotateRefresh's Reused revokes the grant as RevokeGrant does, in the
//     script that kills the family (memstore leaves that to the caller).
//   - PutCode refuses a hash it already holds, used or not; CreateClient
//     refuses an ID that exists.
//   - A refresh family remembers each token until that token's own TTL
//     passes, and at most [MaxFamilyTokens] tokens.
//   - A grace window needs a positive RefreshRotation.Grace. The window
//     is measured on RefreshRotation.Now (a zero Now means the Store's
//     clock); TTLs and token expiry on the Redis server's clock.
//   - Approve replaces the scopes of an earlier approval with the same key.
//   - A TTL must be positive; a nil record is an error. redis.Nil never
//     leaks: a missing record is authz.ErrNotFound.
//
// go-redis retries a command after a read timeout or a broken connection,
// even if the server ran it. The scripts that are not idempotent
// (CreateClient, PutCode, TakeCode, RotateRefresh) carry an operation ID
// or compare with what they wrote, and answer their own retry as they
// answered the first try. TakePending (GETDEL) does not: its retry finds
// nothing, and the authorization must start over.
//
// # Revocations in memory
//
// GrantRevoked is on the path of every MCP request. A Store subscribes to
// the channel p+"revocations", on which RevokeGrant publishes (in its
// script, so that no revocation is made unannounced), and answers from a
// bounded cache of answers; see revocations.go for why that never misses
// a revocation made while the subscription was down: until the server has
// confirmed the subscription, and after any error or unanswered ping,
// GrantRevoked asks Redis (EXISTS), and only answers read after the
// confirmation are kept. A partitioned connection is noticed within two
// seconds; an announcement lost without the subscription failing (a
// Redis Cluster bus partition) is caught up with after
// Options.RevocationCacheTTL.
//
// When Redis is unreachable, every method returns an error (never
// ErrNotFound); when it comes back empty, records are not found and
// clients authorize again.
package redisstore
