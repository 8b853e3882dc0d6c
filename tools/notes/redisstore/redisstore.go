package redisstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// Defaults of Options.
const (
	DefaultPrefix    = "remotemcp:"
	DefaultNoteTTL   = 400 * 24 * time.Hour
	DefaultExportTTL = time.Hour
)

// Options configures a Store. The zero value (or nil) means the defaults.
type Options struct {
	// Prefix starts every key, so that several deployments or tests can
	// share one Redis. It must not contain '{' or '}', which would move
	// the hash tag. Default DefaultPrefix.
	Prefix string
	// NoteTTL is how long an owner's notes are kept after the owner's last
	// write. Default DefaultNoteTTL (400 days).
	NoteTTL time.Duration
	// ExportTTL is how long an export is kept. Default DefaultExportTTL
	// (one hour).
	ExportTTL time.Duration
	// Limits bound each owner.
	Limits notes.Limits
}

// Store is a notes.Store and notes.ExportStore in Redis.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	noteTTL   time.Duration
	exportTTL time.Duration
	limits    notes.Limits
}

var (
	_ notes.Store       = (*Store)(nil)
	_ notes.ExportStore = (*Store)(nil)
)

// New returns a Store on rdb. It panics if rdb is nil or opts.Prefix holds
// a brace.
func New(rdb redis.UniversalClient, opts *Options) *Store {
	if rdb == nil {
		panic("redisstore: nil redis client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		panic(fmt.Sprintf("redisstore: prefix %q contains a brace", o.Prefix))
	}
	s := &Store{rdb: rdb, prefix: cmp.Or(o.Prefix, DefaultPrefix), noteTTL: o.NoteTTL, exportTTL: o.ExportTTL, limits: o.Limits.WithDefaults()}
	if s.noteTTL <= 0 {
		s.noteTTL = DefaultNoteTTL
	}
	if s.exportTTL <= 0 {
		s.exportTTL = DefaultExportTTL
	}
	// Redis keeps TTLs in milliseconds, and PEXPIRE 0 would delete.
	s.noteTTL = max(s.noteTTL, time.Millisecond)
	s.exportTTL = max(s.exportTTL, time.Millisecond)
	return s
}

// unavailable is the error of a failed Redis call: Redis could not be
// reached or refused the command, which the MCP layer answers with 503
// (notes.ErrUnavailable).
func unavailable(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w: %w", op, notes.ErrUnavailable, err)
}

// ownerKeys are the keys of one owner; see the package documentation.
type ownerKeys struct{ notes, updated, sizes, exports, expiries string }

// keys returns the owner's keys, tagged with the hash of the owner ID.
func (s *Store) keys(owner string) ownerKeys {
	h := sha256.Sum256([]byte(owner))
	base := s.prefix + "{n:" + hex.EncodeToString(h[:]) + "}:"
	return ownerKeys{base + "notes", base + "updated", base + "sizes", base + "exports", base + "expiries"}
}

// A noteRecord is a note as stored: ID and owner are the hash field and
// key. Its JSON names are the storage format, independent of Note's.
type noteRecord struct {
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Tags      []string  `json:"tags"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func decodeNote(owner, id, data string) (*notes.Note, error) {
	var r noteRecord
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return nil, fmt.Errorf("redisstore: decode note %s: %w", id, err)
	}
	return &notes.Note{ID: id, Owner: owner, Title: r.Title, Body: r.Body, Tags: r.Tags, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, nil
}

// putScript stores a note unless it is new and the owner is at the notes
// limit, or the owner's notes would pass the bytes limit. :sizes holds
// each note's notes.Size and, in field "*" (never an ID), their sum.
//
//	KEYS: notes, updated, sizes
//	ARGV: id, record, score, max notes, TTL ms, size, max bytes
//	returns 1 when stored, 0 at the notes limit, -1 past the bytes limit
var putScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
	return 0
end
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local total = tonumber(redis.call('HGET', KEYS[3], '*') or '0') - old + tonumber(ARGV[6])
if total > tonumber(ARGV[7]) then
	return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6], '*', total)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 1
`)

// Put implements notes.Store.
func (s *Store) Put(ctx context.Context, n *notes.Note) error {
	data, err := json.Marshal(noteRecord{Title: n.Title, Body: n.Body, Tags: n.Tags, CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt})
	if err != nil {
		return fmt.Errorf("redisstore: encode note %s: %w", n.ID, err)
	}
	k := s.keys(n.Owner)
	stored, err := putScript.Run(ctx, s.rdb, []string{k.notes, k.updated, k.sizes},
		n.ID, data, n.UpdatedAt.UnixMilli(), s.limits.Notes, s.noteTTL.Milliseconds(), notes.Size(n), s.limits.Bytes).Int()
	if err != nil {
		return unavailable(fmt.Sprintf("put note %s", n.ID), err)
	}
	switch stored {
	case 0:
		return notes.ErrLimit
	case -1:
		return notes.ErrQuota
	}
	return nil
}

// Get implements notes.Store.
func (s *Store) Get(ctx context.Context, owner, id string) (*notes.Note, error) {
	data, err := s.rdb.HGet(ctx, s.keys(owner).notes, id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, notes.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(fmt.Sprintf("get note %s", id), err)
	}
	return decodeNote(owner, id, data)
}

// listScript returns the owner's notes, most recently updated first, as
// id, record, id, record, …; HMGET goes in chunks to stay within Lua's
// stack for unpack.
//
//	KEYS: notes, updated
var listScript = redis.NewScript(`
local ids = redis.call('ZREVRANGE', KEYS[2], 0, -1)
local out = {}
for i = 1, #ids, 500 do
	local chunk = {}
	for j = i, math.min(i + 499, #ids) do
		chunk[#chunk + 1] = ids[j]
	end
	local vals = redis.call('HMGET', KEYS[1], unpack(chunk))
	for j = 1, #chunk do
		if vals[j] then
			out[#out + 1] = chunk[j]
			out[#out + 1] = vals[j]
		end
	end
end
return out
`)

// List implements notes.Store.
func (s *Store) List(ctx context.Context, owner string) ([]*notes.Note, error) {
	k := s.keys(owner)
	flat, err := listScript.Run(ctx, s.rdb, []string{k.notes, k.updated}).StringSlice()
	if err != nil {
		return nil, unavailable("list notes", err)
	}
	out := make([]*notes.Note, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		n, err := decodeNote(owner, flat[i], flat[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	// The scores are milliseconds and tie in member order; this puts the
	// almost sorted list in the exact order of notes.Store.
	slices.SortStableFunc(out, func(a, b *notes.Note) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// deleteScript removes a note, and its size from the owner's sum.
//
//	KEYS: notes, updated, sizes
//	ARGV: id, TTL ms
//	returns 1 when deleted, 0 when there was no such note
var deleteScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
	return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
	redis.call('DEL', KEYS[3])
else
	local size = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
	redis.call('HDEL', KEYS[3], ARGV[1])
	redis.call('HINCRBY', KEYS[3], '*', -size)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
`)

// Delete implements notes.Store.
func (s *Store) Delete(ctx context.Context, owner, id string) error {
	k := s.keys(owner)
	deleted, err := deleteScript.Run(ctx, s.rdb, []string{k.notes, k.updated, k.sizes}, id, s.noteTTL.Milliseconds()).Int()
	if err != nil {
		return unavailable(fmt.Sprintf("delete note %s", id), err)
	}
	if deleted == 0 {
		return notes.ErrNotFound
	}
	return nil
}

// An exportRecord is an export as stored: ID and owner are the hash field
// and key.
type exportRecord struct {
	MIMEType  string    `json:"mimeType"`
	Content   string    `json:"content"`
	Count     int       `json:"count"`
	CreatedAt time.Time `json:"createdAt"`
}

// putExportScript drops the owner's expired exports, then the ones stored
// first while the owner is at the limit, and stores the export with an
// expiry past every other's, so that expiry order is storing order.
//
//	KEYS: exports, expiries
//	ARGV: id, record, TTL ms, max exports
var putExportScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
for _, id in ipairs(expired) do
	redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
	local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4]) + 1
	if extra > 0 then
		for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
			redis.call('HDEL', KEYS[1], id)
		end
		redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
	end
end
local expiry = now + tonumber(ARGV[3])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= expiry then
	expiry = tonumber(last[2]) + 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[1], expiry - now)
redis.call('PEXPIRE', KEYS[2], expiry - now)
return 1
`)

// PutExport implements notes.ExportStore.
func (s *Store) PutExport(ctx context.Context, e *notes.Export) error {
	data, err := json.Marshal(exportRecord{MIMEType: e.MIMEType, Content: e.Content, Count: e.Count, CreatedAt: e.CreatedAt})
	if err != nil {
		return fmt.Errorf("redisstore: encode export %s: %w", e.ID, err)
	}
	k := s.keys(e.Owner)
	err = putExportScript.Run(ctx, s.rdb, []string{k.exports, k.expiries},
		e.ID, data, s.exportTTL.Milliseconds(), s.limits.Exports).Err()
	if err != nil {
		return unavailable(fmt.Sprintf("put export %s", e.ID), err)
	}
	return nil
}

// getExportScript returns an export that has not expired, or nil.
//
//	KEYS: exports, expiries
//	ARGV: id
var getExportScript = redis.NewScript(`
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expiry then
	return false
end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(expiry) then
	return false
end
return redis.call('HGET', KEYS[1], ARGV[1])
`)

// GetExport implements notes.ExportStore.
func (s *Store) GetExport(ctx context.Context, owner, id string) (*notes.Export, error) {
	k := s.keys(owner)
	data, err := getExportScript.Run(ctx, s.rdb, []string{k.exports, k.expiries}, id).Text()
	if errors.Is(err, redis.Nil) {
		return nil, notes.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(fmt.Sprintf("get export %s", id), err)
	}
	var r exportRecord
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return nil, fmt.Errorf("redisstore: decode export %s: %w", id, err)
	}
	return &notes.Export{ID: id, Owner: owner, MIMEType: r.MIMEType, Content: r.Content, Count: r.Count, CreatedAt: r.CreatedAt}, nil
}
