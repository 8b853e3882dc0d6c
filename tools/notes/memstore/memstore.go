// Package memstore keeps notes and exports in process memory: the embedded
// default for a single replica.
//
// Its memory is bounded: each owner by notes.Limits, and all owners
// together by Options.MaxBytes (the bytes of every note, as notes.Size
// counts them, and of every export's content), past which Put and
// PutExport return notes.ErrFull until notes are deleted or exports
// expire. The records' own overhead (IDs, times, maps) adds a few hundred
// bytes per note on top.
package memstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// DefaultMaxBytes is the default of Options.MaxBytes.
const DefaultMaxBytes = 256 << 20

// Options configures a Store. The zero value (or nil) means the defaults.
type Options struct {
	// ExportTTL is how long an export lives. Default one hour.
	ExportTTL time.Duration
	// Limits bound each owner.
	Limits notes.Limits
	// MaxBytes bounds the bytes of all notes (notes.Size) and exports
	// (their content) held, of all owners together: the store's memory
	// budget. Default DefaultMaxBytes (256 MiB).
	MaxBytes int
}

// Store is an in-process notes.Store and notes.ExportStore.
type Store struct {
	exportTTL time.Duration
	limits    notes.Limits
	maxBytes  int
	now       func() time.Time

	mu      sync.Mutex
	notes   map[string]map[string]notes.Note // owner → id → note
	bytes   map[string]int                   // owner → notes.Size of their notes
	total   int                              // bytes held: notes and exports
	exports map[string]exportEntry           // owner + "\x00" + id
}

type exportEntry struct {
	e       notes.Export
	expires time.Time
}

var (
	_ notes.Store       = (*Store)(nil)
	_ notes.ExportStore = (*Store)(nil)
)

// New returns an empty store.
func New(opts *Options) *Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ExportTTL <= 0 {
		o.ExportTTL = time.Hour
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return &Store{exportTTL: o.ExportTTL, limits: o.Limits.WithDefaults(), maxBytes: o.MaxBytes, now: time.Now,
		notes: map[string]map[string]notes.Note{}, bytes: map[string]int{}, exports: map[string]exportEntry{}}
}

func clone(n notes.Note) *notes.Note {
	n.Tags = slices.Clone(n.Tags)
	return &n
}

// Put implements notes.Store.
func (s *Store) Put(_ context.Context, n *notes.Note) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.notes[n.Owner]
	if m == nil {
		m = map[string]notes.Note{}
		s.notes[n.Owner] = m
	}
	old, exists := m[n.ID]
	if !exists && len(m) >= s.limits.Notes {
		return notes.ErrLimit
	}
	grow := notes.Size(n)
	if exists {
		grow -= notes.Size(&old)
	}
	if s.bytes[n.Owner]+grow > s.limits.Bytes {
		return notes.ErrQuota
	}
	if grow > 0 && s.total+grow > s.maxBytes {
		s.dropExpiredLocked(s.now())
		if s.total+grow > s.maxBytes {
			return notes.ErrFull
		}
	}
	m[n.ID] = *clone(*n)
	s.bytes[n.Owner] += grow
	s.total += grow
	return nil
}

// Get implements notes.Store.
func (s *Store) Get(_ context.Context, owner, id string) (*notes.Note, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.notes[owner][id]
	if !ok {
		return nil, notes.ErrNotFound
	}
	return clone(n), nil
}

// List implements notes.Store.
func (s *Store) List(_ context.Context, owner string) ([]*notes.Note, error) {
	s.mu.Lock()
	out := make([]*notes.Note, 0, len(s.notes[owner]))
	for _, n := range s.notes[owner] {
		out = append(out, clone(n))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *notes.Note) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Delete implements notes.Store.
func (s *Store) Delete(_ context.Context, owner, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.notes[owner][id]
	if !ok {
		return notes.ErrNotFound
	}
	delete(s.notes[owner], id)
	s.bytes[owner] -= notes.Size(&n)
	s.total -= notes.Size(&n)
	if len(s.notes[owner]) == 0 {
		delete(s.notes, owner)
		delete(s.bytes, owner)
	}
	return nil
}

// dropExpiredLocked forgets the exports expired at now.
func (s *Store) dropExpiredLocked(now time.Time) {
	for k, v := range s.exports {
		if now.After(v.expires) {
			s.dropExportLocked(k)
		}
	}
}

func (s *Store) dropExportLocked(k string) {
	s.total -= len(s.exports[k].e.Content)
	delete(s.exports, k)
}

// PutExport implements notes.ExportStore.
func (s *Store) PutExport(_ context.Context, e *notes.Export) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.dropExpiredLocked(now)
	key := e.Owner + "\x00" + e.ID
	var mine []string
	for k, v := range s.exports {
		if v.e.Owner == e.Owner && k != key {
			mine = append(mine, k)
		}
	}
	if len(mine) >= s.limits.Exports {
		slices.SortFunc(mine, func(a, b string) int { return s.exports[a].e.CreatedAt.Compare(s.exports[b].e.CreatedAt) })
		for _, k := range mine[:len(mine)-s.limits.Exports+1] {
			s.dropExportLocked(k)
		}
	}
	if s.total-len(s.exports[key].e.Content)+len(e.Content) > s.maxBytes {
		return notes.ErrFull
	}
	s.dropExportLocked(key)
	s.exports[key] = exportEntry{e: *e, expires: now.Add(s.exportTTL)}
	s.total += len(e.Content)
	return nil
}

// GetExport implements notes.ExportStore.
func (s *Store) GetExport(_ context.Context, owner, id string) (*notes.Export, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.exports[owner+"\x00"+id]
	if !ok || s.now().After(v.expires) {
		return nil, notes.ErrNotFound
	}
	e := v.e
	return &e, nil
}
