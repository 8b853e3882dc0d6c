package memstore

import (
	"container/heap"
	"context"
	"slices"
	"time"

	"github.com/remotemcp/remotemcp/authz"
)

// MaxStepUps bounds the step-up marks a Store holds. Past it, a new mark
// replaces the one closest to expiry: losing a mark only means that one
// client that refreshes on 403 insufficient_scope must try again.
const MaxStepUps = 10_000

// MarkStepUp implements as.StepUpStore.
func (s *Store) MarkStepUp(_ context.Context, key string, scopes []string, ttl time.Duration) error {
	if ttl <= 0 {
		return errNoTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	if _, ok := s.stepups.peek(key); !ok {
		for s.stepups.len() >= MaxStepUps {
			e := heap.Pop(&s.stepups.heap).(*entry[string, []string])
			delete(s.stepups.m, e.key)
		}
	}
	s.stepups.put(key, slices.Clone(scopes), now.Add(ttl))
	return nil
}

// TakeStepUp implements as.StepUpStore.
func (s *Store) TakeStepUp(_ context.Context, key string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.writeLocked()
	scopes, ok := s.stepups.get(key, now)
	if !ok {
		return nil, authz.ErrNotFound
	}
	s.stepups.delete(key)
	return scopes, nil
}
