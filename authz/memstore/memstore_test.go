package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/storetest"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// A fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
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

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Stores {
		clock := newClock()
		s := New(&Options{Now: clock.Now})
		return storetest.Stores{
			Clients: s, Pending: s, Codes: s, Grants: s, Refresh: s, Upstream: s, Consent: s, StepUps: s,
			Advance: clock.Advance,
			CappedClients: func(_ *testing.T, max int) as.ClientStore {
				return New(&Options{Now: clock.Now, MaxClients: max})
			},
		}
	})
}

// TestMaxClientsExpiry: a client that expires frees its place under
// MaxClients at once.
func TestMaxClientsExpiry(t *testing.T) {
	ctx, clock := context.Background(), newClock()
	s := New(&Options{Now: clock.Now, MaxClients: 2})
	for _, id := range []string{"a", "b"} {
		if err := s.CreateClient(ctx, &as.Client{ClientID: id}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateClient(ctx, &as.Client{ClientID: "c"}, time.Hour); !errors.Is(err, as.ErrTooManyClients) {
		t.Fatalf("third client = %v, want ErrTooManyClients", err)
	}
	if err := s.TouchClient(ctx, "b", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := s.CreateClient(ctx, &as.Client{ClientID: "c"}, time.Hour); err != nil {
		t.Fatalf("a client after one expired: %v", err)
	}
	if err := s.CreateClient(ctx, &as.Client{ClientID: "d"}, time.Hour); !errors.Is(err, as.ErrTooManyClients) {
		t.Fatalf("past the bound again = %v, want ErrTooManyClients", err)
	}
}

func TestRevocationLifetime(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		// put stores the grant's records, with their TTLs.
		put func(s *Store, id string) error
		// kept is how long the revocation must be remembered.
		kept time.Duration
	}{
		{"unknown grant", func(*Store, string) error { return nil }, RevocationTTL},
		{"short-lived grant", func(s *Store, id string) error {
			return s.PutGrant(ctx, &as.Grant{ID: id}, time.Hour)
		}, RevocationTTL},
		{"long-lived grant", func(s *Store, id string) error {
			return s.PutGrant(ctx, &as.Grant{ID: id}, 30*24*time.Hour)
		}, 30 * 24 * time.Hour},
		{"long-lived refresh family", func(s *Store, id string) error {
			return s.IssueRefresh(ctx, id, "c", "rt-"+id, 90*24*time.Hour)
		}, 90 * 24 * time.Hour},
		{"long-lived upstream tokens", func(s *Store, id string) error {
			return s.PutUpstream(ctx, id, &upstream.Sealed{KeyID: "k"}, 7*24*time.Hour)
		}, 7 * 24 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			s := New(&Options{Now: clock.Now})
			if err := tt.put(s, "g"); err != nil {
				t.Fatalf("put: %v", err)
			}
			if err := s.RevokeGrant(ctx, "g"); err != nil {
				t.Fatalf("RevokeGrant: %v", err)
			}
			var got []bool
			for _, d := range []time.Duration{tt.kept - time.Second, 2 * time.Second} {
				clock.Advance(d)
				// Writes sweep; the revocation must survive them until it expires.
				if err := s.PutGrant(ctx, &as.Grant{ID: "other"}, time.Minute); err != nil {
					t.Fatalf("PutGrant: %v", err)
				}
				r, err := s.GrantRevoked(ctx, "g")
				if err != nil {
					t.Fatalf("GrantRevoked: %v", err)
				}
				got = append(got, r)
			}
			if diff := cmp.Diff([]bool{true, false}, got); diff != "" {
				t.Errorf("GrantRevoked just before and after %v (-want +got):\n%s", tt.kept, diff)
			}
		})
	}
}

// TestSweep checks that expired records do not accumulate: writes free
// them, a few at a time.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	const n = 500
	clock := newClock()
	s := New(&Options{Now: clock.Now})
	for i := range n {
		id := fmt.Sprint(i)
		for _, err := range []error{
			s.CreateClient(ctx, &as.Client{ClientID: id}, time.Minute),
			s.PutPending(ctx, &as.PendingAuth{ID: id}, time.Minute),
			s.PutCode(ctx, &as.AuthCode{Hash: id}, time.Minute),
			s.PutGrant(ctx, &as.Grant{ID: id}, time.Minute),
			s.IssueRefresh(ctx, id, "c", "rt-"+id, time.Minute),
			s.PutUpstream(ctx, id, &upstream.Sealed{KeyID: "k"}, time.Minute),
			s.Approve(ctx, id, "c", "r", nil, time.Minute),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := s.RotateRefresh(ctx, as.RefreshRotation{PresentedHash: "rt-0", NewHash: "rt2-0", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	if got := s.len(); got < 7*n {
		t.Fatalf("len = %d before expiry, want at least %d", got, 7*n)
	}
	clock.Advance(time.Minute)
	// Each write frees up to sweepBatch records of each kind.
	for range n/sweepBatch + 1 {
		if err := s.DeleteUpstream(ctx, "none"); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.len(); got != 1 {
		t.Errorf("len = %d after the TTL and %d writes, want 1 (the revocation)", got, n/sweepBatch+1)
	}
	clock.Advance(RevocationTTL)
	if err := s.DeleteUpstream(ctx, "none"); err != nil {
		t.Fatal(err)
	}
	if got := s.len(); got != 0 {
		t.Errorf("len = %d after the revocation expired, want 0", got)
	}
}

// TestFamilyBounded checks that a family does not grow without bound when
// a client refreshes in a loop, and that it keeps the tokens it must.
func TestFamilyBounded(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := New(&Options{Now: clock.Now})
	if err := s.IssueRefresh(ctx, "g", "c", "t0", time.Hour); err != nil {
		t.Fatal(err)
	}
	const rotations = MaxFamilyTokens + 100
	for i := range rotations {
		r := as.RefreshRotation{PresentedHash: fmt.Sprint("t", i), NewHash: fmt.Sprint("t", i+1), ClientID: "c", Grace: time.Minute, TTL: time.Hour}
		if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
			t.Fatalf("rotation %d = %v, %v; want Rotated", i, res, err)
		}
	}
	if got := s.len(); got > MaxFamilyTokens+1 {
		t.Errorf("len = %d after %d rotations, want at most %d", got, rotations, MaxFamilyTokens+1)
	}
	for _, tt := range []struct {
		hash string
		want error
	}{
		{fmt.Sprint("t", rotations), nil},                               // current
		{fmt.Sprint("t", rotations-1), nil},                             // previous
		{fmt.Sprint("t", rotations-MaxFamilyTokens+1), nil},             // oldest kept
		{fmt.Sprint("t", rotations-MaxFamilyTokens), authz.ErrNotFound}, // forgotten
		{"t0", authz.ErrNotFound},
	} {
		if _, _, err := s.LookupRefresh(ctx, tt.hash); !errors.Is(err, tt.want) {
			t.Errorf("LookupRefresh(%s) error = %v, want %v", tt.hash, err, tt.want)
		}
	}

	// Tokens past their own TTL are forgotten at the next rotation.
	clock.Advance(time.Hour)
	if err := s.IssueRefresh(ctx, "g2", "c", "u0", 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		clock.Advance(time.Hour - time.Second)
		r := as.RefreshRotation{PresentedHash: fmt.Sprint("u", i), NewHash: fmt.Sprint("u", i+1), ClientID: "c", TTL: time.Hour}
		if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
			t.Fatalf("rotation %d = %v, %v; want Rotated", i, res, err)
		}
	}
	// u0 lives 3h and is kept; u1 lived 1h and is forgotten; u2 is the
	// previous and u3 the current token.
	for _, tt := range []struct {
		hash string
		want error
	}{
		{"u0", nil}, {"u1", authz.ErrNotFound}, {"u2", nil}, {"u3", nil},
	} {
		if _, _, err := s.LookupRefresh(ctx, tt.hash); !errors.Is(err, tt.want) {
			t.Errorf("LookupRefresh(%s) error = %v, want %v", tt.hash, err, tt.want)
		}
	}
}

func TestRotateNewHashCollision(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	for _, err := range []error{
		s.IssueRefresh(ctx, "a", "c", "a0", time.Hour),
		s.IssueRefresh(ctx, "b", "c", "b0", time.Hour),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.IssueRefresh(ctx, "c", "c", "a0", time.Hour); err == nil {
		t.Errorf("IssueRefresh with another family's token succeeded")
	}
	for _, next := range []string{"a0", "b0"} {
		r := as.RefreshRotation{PresentedHash: "a0", NewHash: next, ClientID: "c", TTL: time.Hour}
		if _, res, err := s.RotateRefresh(ctx, r); err == nil {
			t.Errorf("RotateRefresh to %s = %v, nil; want an error", next, res)
		}
	}
	// The refused calls changed nothing.
	for h, want := range map[string]string{"a0": "a", "b0": "b"} {
		if g, _, err := s.LookupRefresh(ctx, h); err != nil || g != want {
			t.Errorf("LookupRefresh(%s) = %q, %v; want %q, nil", h, g, err, want)
		}
	}
	r := as.RefreshRotation{PresentedHash: "a0", NewHash: "a1", ClientID: "c", TTL: time.Hour}
	if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
		t.Errorf("RotateRefresh after refused ones = %v, %v; want Rotated", res, err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
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
	if got := s.len(); got != 0 {
		t.Errorf("len = %d after refused writes, want 0", got)
	}
}

func TestApprovedNoScopes(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	if err := s.Approve(ctx, "s", "c", "r", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Approved(ctx, "s", "c", "r")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Approved after approving no scopes = %#v, %v; want an empty list, nil", got, err)
	}
}
