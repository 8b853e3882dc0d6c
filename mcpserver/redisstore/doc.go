// Package redisstore implements the mcpserver stores on Redis, so that any
// replica can serve any request of a legacy session: the session records,
// the SSE event logs that Last-Event-ID resumes, the routing of a client's
// response to the replica whose tool waits for it, and the notifications
// every replica must see. It passes the same contract tests
// (mcpserver/storetest) as the in-process memstore.
//
// # Keys and channels
//
// Every key has a TTL, and every key of a session carries the hash tag
// {s:<session ID>}, so that they share one Cluster slot ('{', '}' and '%'
// in an ID are %-escaped). <p> is Options.KeyPrefix, "remotemcp:" by
// default.
//
//	key or channel                   type     TTL          holds
//	<p>{s:<id>}:session              STRING   SessionTTL   the Session as JSON, without its subscriptions, at most
//	                                                       mcpserver.MaxSessionBytes; Get and Update extend the TTL, and so
//	                                                       does a WriteStream that checks the session (PEXPIRE)
//	<p>{s:<id>}:subs                 SET      as :session  the session's resource subscriptions (at most MaxSubscriptions
//	                                                       URIs): SetSubscription adds or removes one without the record
//	<p>{u:<sha256>}:sessions         SET      ≥ 24h        the session IDs of one subject (hex SHA-256 of it), for
//	                                                       MaxSessionsPerSubject; IDs of gone sessions are dropped at the limit
//	<p>{s:<id>}:events:<stream>      STREAM   EventTTL     one SSE stream: entry <seq>-0 is event seq (field "data": the
//	                                 or the   JSON-RPC message); 0-1 marks a stream opened before its first
//	                                 window   event, <last seq>-2 its end; at most MaxEventsPerStream events
//	<p>{s:<id>}:streams              ZSET     EventTTL     the session's open streams (score: expiry, ms), for DeleteSession
//	<p>{s:<id>}:done                 ZSET     EventTTL     the session's completed streams (member "<count>:<bytes>:<stream
//	                                                       ID>", score: end of the resume window, ms)
//	<p>{s:<id>}:logged               HASH     EventTTL     bytes (of the streams in done, for MaxLoggedBytes) and ended (a
//	                                                       count that orders done)
//	<p>{s:<id>}:lease:<stream>       HASH     as its       a request stream's writer lease (mcpserver.LeaseStore): fields
//	                                          stream       owner, until (server clock, ms) and ids (JSON array)
//	<p>inbox:{s:<id>}:<key>          channel  -            Inbox messages for one waiting request (key "resp:<id>", "req:<id>");
//	                                                       every replica receives them all (PSUBSCRIBE <p>inbox:*)
//	<p>broadcast                     channel  -            every Broadcast, as JSON
//	<p>wake                          channel  -            the key of every event stream that changed, so that waiting
//	                                                       reads on every replica look again
//
// The TTL of an open stream and of the session's keys is extended by every
// operation on the stream, reads included, so the logs of a session that
// expires without a DELETE are gone EventTTL after their last use. A
// completed stream and its lease expire ResumeWindow after its end
// (reading it does not extend it), or earlier when the session's completed
// streams exceed MaxLoggedBytes: the write that ends a stream deletes the
// oldest. So a session holds its open streams and at most the completed
// streams of the last window: a busy session does not grow with its
// calls.
//
// # Round trips
//
// Sessions.Create takes two round trips (the subject's limit, then the
// record and its subscriptions, a script; more at the limit). Sessions.Get
// (a script reading the record and its subscriptions), Delete and
// SetSubscription, and Events.Read (when events are ready) and WriteStream
// (the session check, the lease, any number of events and the end, in one
// script) take one round trip each; Sessions.Update two (a read as Get,
// then a compare-and-set script; more under contention); Events.DeleteSession
// two (a pipeline reading the session's stream lists, then a script); Events.Lease and LeaseHolder one each; Inbox.Deliver and
// Broadcaster.Publish one PUBLISH. Broadcaster.Subscribe takes one round
// trip (a PING) on the shared pub/sub connection; its stop, Inbox.Listen
// and its stop take none. Scripts run with EVALSHA; the first run
// on a server adds one round trip (NOSCRIPT, then EVAL).
//
// A legacy tools/call through an mcpserver.Handler thus costs one round
// trip once its session's record is cached on the replica (one
// WriteStream), and two or more if it runs longer than the Handler's
// StreamDelay; TestToolCallRoundTrips holds it to that.
//
// # Waiting without blocking Redis
//
// A Read that waits for events does not issue a blocking XREAD, which would
// hold a pooled connection per open SSE stream: each replica keeps one
// pub/sub connection (opened and subscribed by New, closed by the stop
// function it returns) on which it receives the wake channel, the
// broadcasts and every inbox channel, and hands each message to whoever
// waits for it on the replica. Pub/sub delivers at most once: what is
// published while that connection reconnects is lost, except that waiting
// reads look again once it is back. A silently dead connection is noticed
// by go-redis' TCP keep-alive (about 45s).
//
// The stores need Redis 6.2 or later (GETEX, exclusive XRANGE bounds).
package redisstore
