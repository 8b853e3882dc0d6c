// Package memstore keeps notes and exports in process memory: the embedded
// default for a single replica.
package memstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// Store is an in-process notes.Store and notes.ExportStore.
type Store struct {
	exportTTL time.Duration
	now       func() time.Time

	mu      sync.Mutex
	notes   map[string]map[string]notes.Note // owner → id → note
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

// New returns an empty store whose exports live for exportTTL (default 1h).
func New(exportTTL time.Duration) *Store {
	if exportTTL <= 0 {
		exportTTL = time.Hour
	}
	return &Store{exportTTL: exportTTL, now: time.Now, notes: map[string]map[string]notes.Note{}, exports: map[string]exportEntry{}}
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
	if _, exists := m[n.ID]; !exists && len(m) >= notes.MaxNotesPerOwn {
		return notes.ErrLimit
	}
	m[n.ID] = *clone(*n)
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
	if _, ok := s.notes[owner][id]; !ok {
		return notes.ErrNotFound
	}
	delete(s.notes[owner], id)
	return nil
}

// PutExport implements notes.ExportStore.
func (s *Store) PutExport(_ context.Context, e *notes.Export) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.exports {
		if now.After(v.expires) {
			delete(s.exports, k)
		}
	}
	var mine []string
	for k, v := range s.exports {
		if v.e.Owner == e.Owner {
			mine = append(mine, k)
		}
	}
	if len(mine) >= notes.MaxExportsPerOwn {
		slices.SortFunc(mine, func(a, b string) int { return s.exports[a].e.CreatedAt.Compare(s.exports[b].e.CreatedAt) })
		for _, k := range mine[:len(mine)-notes.MaxExportsPerOwn+1] {
			delete(s.exports, k)
		}
	}
	s.exports[e.Owner+"\x00"+e.ID] = exportEntry{e: *e, expires: now.Add(s.exportTTL)}
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
