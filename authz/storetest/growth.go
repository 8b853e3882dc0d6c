package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz/as"
)

// The growth tests: each performs one operation many times and checks that
// what the store holds grows by at most a stated bound, whatever the count:
// the state the operation leaves is bounded by what its protocol purpose
// needs, not by how often a client repeats it. Each logs its figures
// (go test -v -run 'Contract/Growth'), which the README's key table quotes.

// Bounds of the growth tests, per grant: what a refresh family may hold
// however often it rotates (the current token, the previous one for its
// grace window, two before that to recognise their reuse, each with its
// index entry, and the family record), and what a revoked grant leaves
// (its revocation mark).
const (
	maxFamilyEntries = 8
	maxFamilyBytes   = 2048
	maxRevokedBytes  = 200
)

// growthRounds is how many times the growth tests repeat an operation.
const growthRounds = 200

// A Size is what a Stores value holds: Redis keys, or in-memory entries,
// and their bytes.
type Size struct {
	Entries int
	Bytes   int64
}

// growth is the change from a to b.
func growth(a, b Size) Size { return Size{Entries: b.Entries - a.Entries, Bytes: b.Bytes - a.Bytes} }

func testGrowth(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("RefreshRotation", func(t *testing.T) { testGrowthRefreshRotation(t, newStores) })
	t.Run("RefreshReissue", func(t *testing.T) { testGrowthRefreshReissue(t, newStores) })
	t.Run("RevokeRotatedGrant", func(t *testing.T) { testGrowthRevokeRotatedGrant(t, newStores) })
	t.Run("LoginIndex", func(t *testing.T) { testGrowthLoginIndex(t, newStores) })
}

// testGrowthLoginIndex: SwapLogin returns the grant it replaces, and one
// user and client hold one entry however often they sign in.
func testGrowthLoginIndex(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	idx, ok := st.Grants.(as.LoginIndex)
	if !ok {
		t.Skip("the grant store is not a LoginIndex")
	}
	before := st.Size(t)
	subject, prev := "user-"+newID(), ""
	for i := range growthRounds {
		id := newID()
		got, err := idx.SwapLogin(ctx, subject, "client", id, long)
		if err != nil || got != prev {
			t.Fatalf("SwapLogin %d = %q, %v; want %q", i, got, err, prev)
		}
		prev = id
	}
	if got, err := idx.SwapLogin(ctx, subject, "another client", newID(), long); err != nil || got != "" {
		t.Errorf("SwapLogin for another client = %q, %v; want none", got, err)
	}
	g := growth(before, st.Size(t))
	t.Logf("login index: %d sign-ins of one user and client, and one with another: %d entries, %d B", growthRounds, g.Entries, g.Bytes)
	if g.Entries > 2 || g.Bytes > 600 {
		t.Errorf("the login index holds %d entries, %d B; want at most 2, 600 B", g.Entries, g.Bytes)
	}
}

// rotateMany issues a family for a new grant and rotates it n times; it
// returns the grant, its client and its tokens, the issued one first.
func rotateMany(t *testing.T, ctx context.Context, s as.RefreshStore, n int) (grantID, clientID string, tokens []string) {
	t.Helper()
	grantID, clientID = newID(), "client-"+newID()
	tokens = []string{newID()}
	if err := s.IssueRefresh(ctx, grantID, clientID, tokens[0], long); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	for i := range n {
		tokens = append(tokens, newID())
		if _, res, err := s.RotateRefresh(ctx, rotation(tokens[i], tokens[i+1], clientID, at, refreshGrace)); err != nil || res != as.Rotated {
			t.Fatalf("rotation %d = %s, %v; want Rotated", i+1, resultName(res), err)
		}
	}
	return grantID, clientID, tokens
}

// testGrowthRefreshRotation: a grant that rotates growthRounds times holds
// a bounded family, and still recognises the reuse of the tokens it
// remembers: the one before the previous is Reused, not unknown.
func testGrowthRefreshRotation(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	before := st.Size(t)
	_, _, _ = rotateMany(t, ctx, st.Refresh, 1)
	one := growth(before, st.Size(t))
	mid := st.Size(t)
	grantID, clientID, tokens := rotateMany(t, ctx, st.Refresh, growthRounds)
	g := growth(mid, st.Size(t))
	t.Logf("refresh family: after 1 rotation %d entries, %d B; after %d rotations %d entries, %d B (%.1f B a rotation)",
		one.Entries, one.Bytes, growthRounds, g.Entries, g.Bytes, float64(g.Bytes)/growthRounds)
	if g.Entries > maxFamilyEntries || g.Bytes > maxFamilyBytes {
		t.Errorf("a family rotated %d times holds %d entries, %d B; want at most %d, %d B",
			growthRounds, g.Entries, g.Bytes, maxFamilyEntries, maxFamilyBytes)
	}
	older := tokens[len(tokens)-3] // the one before the previous
	if _, res, err := st.Refresh.RotateRefresh(ctx, rotation(older, newID(), clientID, at.Add(time.Second), refreshGrace)); err != nil || res != as.Reused {
		t.Errorf("replay of the token before the previous = %s, %v; want Reused", resultName(res), err)
	}
	if err := st.Grants.RevokeGrant(ctx, grantID); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
}

// testGrowthRefreshReissue: issuing a new family for the same grant again
// and again (each IssueRefresh replaces the family) holds one family.
func testGrowthRefreshReissue(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	before := st.Size(t)
	grantID := newID()
	for range growthRounds {
		if err := st.Refresh.IssueRefresh(ctx, grantID, "c", newID(), long); err != nil {
			t.Fatalf("IssueRefresh: %v", err)
		}
	}
	g := growth(before, st.Size(t))
	t.Logf("refresh family issued %d times: %d entries, %d B", growthRounds, g.Entries, g.Bytes)
	if g.Entries > maxFamilyEntries || g.Bytes > maxFamilyBytes {
		t.Errorf("a family issued %d times holds %d entries, %d B; want at most %d, %d B",
			growthRounds, g.Entries, g.Bytes, maxFamilyEntries, maxFamilyBytes)
	}
}

// testGrowthRevokeRotatedGrant: revoking a rotated grant leaves its
// revocation mark only, not its tokens' index entries.
func testGrowthRevokeRotatedGrant(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	before := st.Size(t)
	grantID, _, _ := rotateMany(t, ctx, st.Refresh, 20)
	putGrant(t, ctx, st.Grants, grant(grantID), long)
	putUpstream(t, ctx, st.Upstream, grantID, sealed(), long)
	revokeGrant(t, ctx, st.Grants, grantID)
	g := growth(before, st.Size(t))
	t.Logf("revoked grant: %d entries, %d B", g.Entries, g.Bytes)
	if g.Entries > 1 || g.Bytes > maxRevokedBytes {
		t.Errorf("a revoked grant leaves %d entries, %d B; want at most 1, %d B", g.Entries, g.Bytes, maxRevokedBytes)
	}
}
