package memstore

import (
	"encoding/json"
	"fmt"
)

// entryOverhead is what Size charges each record beyond its encoded size:
// its map entry, heap slot and expiry.
const entryOverhead = 64

// Size returns how many records the store holds, expired or not, and an
// estimate of their bytes: each record's JSON size, its key and a fixed
// overhead. It is for tests of the store's bounds and for metrics; it
// walks every record, so it is not for a hot path.
func (s *Store) Size() (entries int, bytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	add := func(key string, v any) {
		entries++
		bytes += int64(len(key)) + entryOverhead
		if v == nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("memstore: size of %T: %v", v, err)) // every record type marshals
		}
		bytes += int64(len(b))
	}
	for k, e := range s.clients.m {
		add(k, e.val)
	}
	for k, e := range s.pending.m {
		add(k, e.val)
	}
	for k, e := range s.codes.m {
		add(k, e.val.code)
	}
	for k, e := range s.grants.m {
		add(k, e.val)
	}
	for k := range s.revoked.m {
		add(k, nil)
	}
	for k, e := range s.families.m {
		f := e.val
		add(k, nil)
		bytes += int64(len(f.clientID) + len(f.current) + len(f.previous))
		for h := range f.tokens {
			bytes += int64(len(h)) + 32
		}
	}
	for h, g := range s.refreshIndex {
		add(h, nil)
		bytes += int64(len(g))
	}
	for k, e := range s.upstream.m {
		add(k, e.val)
	}
	for k, e := range s.logins.m {
		add(k[0]+k[1], e.val)
	}
	for k, e := range s.consent.m {
		add(k.subject+k.clientID+k.redirectURI, e.val)
	}
	return entries, bytes
}
