// Package redisstore keeps notes and exports in Redis, so that every replica
// of the server sees the same notes. It implements notes.Store and
// notes.ExportStore on a go-redis UniversalClient: a single server,
// Sentinel or Cluster.
//
// # Keys
//
// Every key of one owner carries the hash tag {n:<owner>}, where <owner> is
// the hex SHA-256 of the owner ID: owner IDs may hold any bytes (braces,
// colons, NULs) and any length, and their hashes neither collide nor make
// keys grow. The tag puts all of an owner's keys in one Cluster slot, so
// that each operation is one script over declared keys. Note and export
// IDs are hash fields and zset members, never part of a key.
//
//	pattern                       type  TTL                      contents
//	<prefix>{n:<owner>}:notes     hash  NoteTTL, reset on write  note ID → note without ID and owner (JSON)
//	<prefix>{n:<owner>}:updated   zset  NoteTTL, reset on write  note ID, scored by UpdatedAt (Unix ms)
//	<prefix>{n:<owner>}:sizes     hash  NoteTTL, reset on write  note ID → notes.Size; "*" → their sum
//	<prefix>{n:<owner>}:exports   hash  until the newest export  export ID → export without ID and owner (JSON)
//	                                    expires
//	<prefix>{n:<owner>}:expiries  zset  as :exports              export ID, scored by its expiry (Unix ms,
//	                                                             Redis' clock)
//
// Notes are user data with no natural lifetime, but every key in this
// deployment has a TTL so that Redis never fills with records nobody will
// read: an owner's notes live for NoteTTL (default 400 days) after the
// owner's last Put or Delete, and then go all at once. Reads do not extend
// them, so that Get stays one read-only command: an owner who only reads
// for NoteTTL loses the notes, so choose NoteTTL well beyond any retention
// promise.
//
// Exports live for ExportTTL each (default one hour, as in memstore). An
// export's expiry is its score in :expiries, checked against Redis' clock
// on every read, and the two keys expire with the newest export. Expiries
// are distinct, so that the order of expiry is the order of storing: an
// export stored in the same millisecond as the one before lives a
// millisecond longer. Storing an export first drops the owner's expired
// ones, then, at Limits.Exports, the one stored first.
//
// # Round trips
//
// Every operation is one round trip: Get is an HGET, and Put, List, Delete,
// PutExport and GetExport are each one Lua script (EVALSHA; after Redis
// lost its script cache, as after a restart, one more round trip loads it).
// The scripts make the limit checks atomic: racing Puts can never take an
// owner past Limits.Notes or Limits.Bytes.
//
// Owner and IDs are kept byte for byte; the other strings are stored as
// JSON, so they must be valid UTF-8, which notes.Validate ensures for notes.
package redisstore
