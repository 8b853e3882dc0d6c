// Package storetest is the contract test suite that every implementation of
// the authz stores must pass: the in-process memstore and any shared store
// (Redis) alike. It tests the behaviour authz relies on, as documented in
// the store interfaces, never an implementation's internals.
//
// Beyond the interfaces' documentation, the suite requires:
//
//   - Revocation is sticky: after RevokeGrant, PutGrant, IssueRefresh and
//     PutUpstream for that grant store nothing (they may succeed), so that a
//     write racing with the revocation cannot bring the grant back; and
//     GetGrant no longer finds the grant.
//   - A revocation outlives the grant's records, and RevokeGrant of an
//     unknown grant is remembered too.
//   - IssueRefresh replaces the family of the grant: the earlier tokens are
//     unknown.
//   - LookupRefresh finds every live token of a live family, not only the
//     current one: only RotateRefresh says whether a token may be used.
//   - A zero RefreshRotation.Grace means no grace window.
//   - PutCode refuses a hash that is stored already, used or not.
//   - Approve replaces the scopes of an earlier approval with the same key.
//
// Time is the implementation's: the suite lets it pass through
// Stores.Advance, and only where it wants records to expire does it use the
// short TTL Stores.TTL; everywhere else it uses an hour. So a store on a
// fake clock advances it, and one on a real clock (Redis) sleeps.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// Stores is one implementation under test: its eight stores (usually one
// value) and control of its clock.
type Stores struct {
	Clients  as.ClientStore
	Pending  as.PendingAuthStore
	Codes    as.CodeStore
	Grants   as.GrantStore
	Refresh  as.RefreshStore
	Upstream upstream.TokenStore
	Consent  as.ConsentStore
	StepUps  as.StepUpStore

	// Advance lets at least d pass on the stores' clock: a store with an
	// injectable clock moves it, one on a real clock sleeps. The suite runs
	// its subtests one at a time, so the clock may be shared with the
	// Stores of other subtests (a fake Redis server's). REQUIRED.
	Advance func(d time.Duration)
	// TTL is the lifetime the suite gives records that it wants to expire.
	// It checks that a record is still there up to a quarter of TTL before
	// it expires, so on a real clock TTL must be long enough for a few
	// store round trips to take less than TTL/4 (a second is plenty).
	// Default one minute.
	TTL time.Duration
	// CappedClients returns a client store, empty and of its own, that
	// holds at most max live clients (CreateClient past that returns
	// as.ErrTooManyClients). REQUIRED.
	CappedClients func(t *testing.T, max int) as.ClientStore
}

// long is the TTL of every record that the suite does not want to expire.
const long = time.Hour

// workers is how many goroutines race for one single-use record.
const workers = 16

// Run runs the contract tests. newStores is called once per subtest and must
// return stores that are ready to use; it should register its own cleanup
// with t. Stores may share their data between calls (a Redis server): every
// subtest uses fresh random keys.
func Run(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Helper()
	t.Run("Complete", func(t *testing.T) {
		s := newStores(t)
		if s.Clients == nil || s.Pending == nil || s.Codes == nil || s.Grants == nil ||
			s.Refresh == nil || s.Upstream == nil || s.Consent == nil || s.StepUps == nil || s.Advance == nil || s.CappedClients == nil {
			t.Fatalf("newStores returned incomplete Stores: %+v", s)
		}
	})
	t.Run("Fixtures", testFixtures)
	newStores = withDefaults(newStores)
	t.Run("Clients", func(t *testing.T) { testClients(t, newStores) })
	t.Run("Pending", func(t *testing.T) { testPending(t, newStores) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, newStores) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, newStores) })
	t.Run("Refresh", func(t *testing.T) { testRefresh(t, newStores) })
	t.Run("Upstream", func(t *testing.T) { testUpstream(t, newStores) })
	t.Run("Consent", func(t *testing.T) { testConsent(t, newStores) })
	t.Run("StepUps", func(t *testing.T) { testStepUps(t, newStores) })
}

func withDefaults(newStores func(t *testing.T) Stores) func(t *testing.T) Stores {
	return func(t *testing.T) Stores {
		s := newStores(t)
		if s.TTL <= 0 {
			s.TTL = time.Minute
		}
		return s
	}
}

// newID returns a random ID, unique across subtests and runs.
func newID() string { return rand.Text() }

// ctxFor returns a context for one subtest, bounded so that a store that
// hangs fails the test instead of stalling it.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// at is a fixed time for the time fields of records.
var at = time.Date(2026, 7, 28, 12, 30, 45, 123456789, time.UTC)

// The fixtures below set every field, so that a store that drops one is
// caught; testFixtures makes sure they keep doing so as fields are added.

func client(id string) *as.Client {
	return &as.Client{
		ClientID:   id,
		SecretHash: "secret-hash-" + id,
		Metadata: as.ClientMetadata{
			RedirectURIs:            []string{"https://app.example/cb", "http://127.0.0.1/cb"},
			TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			ClientName:              "Example App",
			ClientURI:               "https://app.example/",
			LogoURI:                 "https://app.example/logo.png",
			Scope:                   "notes:read notes:write",
			Contacts:                []string{"ops@app.example"},
			TOSURI:                  "https://app.example/tos",
			PolicyURI:               "https://app.example/privacy",
			SoftwareID:              "example-app",
			SoftwareVersion:         "1.2.3",
			ApplicationType:         "web",
			ClientID:                id,
		},
		IssuedAt: at,
	}
}

func pending(id string) *as.PendingAuth {
	return &as.PendingAuth{
		ID:                id,
		ClientID:          "client-" + id,
		RedirectURI:       "https://app.example/cb",
		State:             "client-state",
		CodeChallenge:     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Resource:          "https://mcp.example/mcp",
		Scopes:            []string{"notes:read", "notes:write"},
		CreatedAt:         at,
		Approved:          true,
		AutoApprovedFor:   "alice",
		UpstreamStateHash: "upstream-state-hash",
		UpstreamVerifier:  sealed(),
		Browser:           "browser-hash",
	}
}

func code(hash string) *as.AuthCode {
	return &as.AuthCode{
		Hash:          hash,
		GrantID:       "grant-" + hash,
		ClientID:      "client-" + hash,
		RedirectURI:   "https://app.example/cb",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Resource:      "https://mcp.example/mcp",
		Scopes:        []string{"notes:read", "notes:write"},
		Subject:       "alice",
		ExpiresAt:     at.Add(time.Minute),
		Email:         "alice@example.com",
		Groups:        []string{"eng", "my-org/platform"},
	}
}

func grant(id string) *as.Grant {
	return &as.Grant{
		ID:        id,
		Subject:   "alice",
		ClientID:  "client-" + id,
		Scopes:    []string{"notes:read", "notes:write"},
		Resource:  "https://mcp.example/mcp",
		CreatedAt: at,
		Upstream:  "github:12345",
		Email:     "alice@example.com",
		Groups:    []string{"eng", "my-org/platform"},
	}
}

func sealed() *upstream.Sealed {
	return &upstream.Sealed{KeyID: "k1", Nonce: []byte("twelve bytes"), Ciphertext: []byte("ciphertext and tag")}
}

// testFixtures checks that every fixture sets every field.
func testFixtures(t *testing.T) {
	for _, v := range []any{client("c"), pending("p"), code("h"), grant("g"), sealed()} {
		for _, f := range zeroFields(reflect.ValueOf(v).Elem(), "") {
			t.Errorf("fixture %T leaves %s zero: set it, so that the suite checks that stores keep it", v, f)
		}
	}
}

// zeroFields returns the paths of the zero fields of a struct, recursively.
func zeroFields(v reflect.Value, prefix string) []string {
	var zero []string
	for i := range v.NumField() {
		f, name := v.Field(i), prefix+v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Time]():
			zero = append(zero, zeroFields(f, name+".")...)
		case f.IsZero() || (f.Kind() == reflect.Slice && f.Len() == 0):
			zero = append(zero, name)
		}
	}
	return zero
}

// scribble overwrites, in place, every element of every slice that v (a
// pointer to a record, or a slice) reaches: what a caller that reuses its
// buffers does.
func scribble(v any) {
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				switch e := v.Index(i); e.Kind() {
				case reflect.String:
					e.SetString("scribbled")
				case reflect.Uint8:
					e.SetUint(e.Uint() ^ 0xff)
				default:
					walk(e)
				}
			}
		}
	}
	walk(reflect.ValueOf(v))
}

func testClients(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("CreateGet", func(t *testing.T) { testClientsCreateGet(t, newStores) })
	t.Run("GetMissing", func(t *testing.T) { testClientsGetMissing(t, newStores) })
	t.Run("CreateDuplicate", func(t *testing.T) { testClientsCreateDuplicate(t, newStores) })
	t.Run("ConcurrentCreate", func(t *testing.T) { testClientsConcurrentCreate(t, newStores) })
	t.Run("TouchMissing", func(t *testing.T) { testClientsTouchMissing(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testClientsExpiry(t, newStores) })
	t.Run("TouchExtends", func(t *testing.T) { testClientsTouchExtends(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testClientsNoAliasing(t, newStores) })
	t.Run("Capped", func(t *testing.T) { testClientsCapped(t, newStores) })
}

func createClient(t *testing.T, ctx context.Context, s as.ClientStore, id string, ttl time.Duration) {
	t.Helper()
	if err := s.CreateClient(ctx, client(id), ttl); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
}

func testClientsCreateGet(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Clients
	id := newID()
	createClient(t, ctx, s, id, long)
	got, err := s.GetClient(ctx, id)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if diff := cmp.Diff(client(id), got); diff != "" {
		t.Errorf("GetClient after CreateClient (-want +got):\n%s", diff)
	}
}

func testClientsGetMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Clients
	if _, err := s.GetClient(ctx, newID()); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetClient(missing) error = %v, want ErrNotFound", err)
	}
}

func testClientsCreateDuplicate(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Clients
	id := newID()
	createClient(t, ctx, s, id, long)
	dup := client(id)
	dup.SecretHash = "mallory"
	if err := s.CreateClient(ctx, dup, long); err == nil {
		t.Errorf("second CreateClient of %s succeeded, want an error", id)
	}
	got, err := s.GetClient(ctx, id)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if diff := cmp.Diff(client(id), got); diff != "" {
		t.Errorf("a failed CreateClient changed the client (-want +got):\n%s", diff)
	}
}

func testClientsConcurrentCreate(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Clients
	id := newID()
	errs := race(func(int) error { return s.CreateClient(ctx, client(id), long) })
	if n := count(errs, nil); n != 1 {
		t.Errorf("%d of %d concurrent CreateClient calls succeeded, want 1 (errors: %v)", n, workers, errs)
	}
}

func testClientsTouchMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Clients
	if err := s.TouchClient(ctx, newID(), long); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("TouchClient(missing) error = %v, want ErrNotFound", err)
	}
}

func testClientsExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Clients, st.TTL
	id := newID()
	createClient(t, ctx, s, id, ttl)
	st.Advance(ttl * 3 / 4)
	if _, err := s.GetClient(ctx, id); err != nil {
		t.Fatalf("GetClient before the TTL: %v", err)
	}
	st.Advance(ttl / 2)
	if _, err := s.GetClient(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetClient after the TTL error = %v, want ErrNotFound", err)
	}
	if err := s.TouchClient(ctx, id, long); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("TouchClient after the TTL error = %v, want ErrNotFound", err)
	}
	// The ID of an expired client is free again.
	createClient(t, ctx, s, id, long)
}

func testClientsTouchExtends(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Clients, st.TTL
	id := newID()
	createClient(t, ctx, s, id, ttl)
	st.Advance(ttl / 2)
	if err := s.TouchClient(ctx, id, ttl); err != nil {
		t.Fatalf("TouchClient: %v", err)
	}
	st.Advance(ttl * 3 / 4) // 5/4 TTL after CreateClient, 3/4 after TouchClient
	got, err := s.GetClient(ctx, id)
	if err != nil {
		t.Fatalf("GetClient after TouchClient extended it: %v", err)
	}
	if diff := cmp.Diff(client(id), got); diff != "" {
		t.Errorf("TouchClient changed the client (-want +got):\n%s", diff)
	}
	st.Advance(ttl / 2)
	if _, err := s.GetClient(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetClient after the extended TTL error = %v, want ErrNotFound", err)
	}
}

// testClientsCapped: past its bound, a store refuses new clients with
// ErrTooManyClients, and the clients it holds keep working.
func testClientsCapped(t *testing.T, newStores func(t *testing.T) Stores) {
	const max = 3
	ctx, s := ctxFor(t), newStores(t).CappedClients(t, max)
	ids := make([]string, max)
	for i := range ids {
		ids[i] = newID()
		createClient(t, ctx, s, ids[i], long)
	}
	for range 2 {
		if err := s.CreateClient(ctx, client(newID()), long); !errors.Is(err, as.ErrTooManyClients) {
			t.Fatalf("CreateClient past the bound of %d = %v, want ErrTooManyClients", max, err)
		}
	}
	for _, id := range ids {
		if err := s.TouchClient(ctx, id, long); err != nil {
			t.Errorf("TouchClient of a client held: %v", err)
		}
		got, err := s.GetClient(ctx, id)
		if err != nil {
			t.Fatalf("GetClient of a client held: %v", err)
		}
		if diff := cmp.Diff(client(id), got); diff != "" {
			t.Errorf("GetClient (-want +got):\n%s", diff)
		}
	}
}

func testClientsNoAliasing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Clients
	id := newID()
	c := client(id)
	if err := s.CreateClient(ctx, c, long); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	scribble(c)
	got, err := s.GetClient(ctx, id)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	scribble(got)
	got, err = s.GetClient(ctx, id)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if diff := cmp.Diff(client(id), got); diff != "" {
		t.Errorf("the stored client shares memory with a caller (-want +got):\n%s", diff)
	}
}

func testPending(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("PutGetTake", func(t *testing.T) { testPendingPutGetTake(t, newStores) })
	t.Run("Missing", func(t *testing.T) { testPendingMissing(t, newStores) })
	t.Run("PutReplaces", func(t *testing.T) { testPendingPutReplaces(t, newStores) })
	t.Run("ConcurrentTake", func(t *testing.T) { testPendingConcurrentTake(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testPendingExpiry(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testPendingNoAliasing(t, newStores) })
}

func putPending(t *testing.T, ctx context.Context, s as.PendingAuthStore, p *as.PendingAuth, ttl time.Duration) {
	t.Helper()
	if err := s.PutPending(ctx, p, ttl); err != nil {
		t.Fatalf("PutPending: %v", err)
	}
}

func testPendingPutGetTake(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Pending
	id := newID()
	putPending(t, ctx, s, pending(id), long)
	got, err := s.GetPending(ctx, id)
	if err != nil {
		t.Fatalf("GetPending: %v", err)
	}
	if diff := cmp.Diff(pending(id), got); diff != "" {
		t.Errorf("GetPending (-want +got):\n%s", diff)
	}
	got, err = s.TakePending(ctx, id)
	if err != nil {
		t.Fatalf("TakePending: %v", err)
	}
	if diff := cmp.Diff(pending(id), got); diff != "" {
		t.Errorf("TakePending (-want +got):\n%s", diff)
	}
	if _, err := s.TakePending(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("second TakePending error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetPending(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetPending after TakePending error = %v, want ErrNotFound", err)
	}
}

func testPendingMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Pending
	if _, err := s.GetPending(ctx, newID()); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetPending(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := s.TakePending(ctx, newID()); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("TakePending(missing) error = %v, want ErrNotFound", err)
	}
}

func testPendingPutReplaces(t *testing.T, newStores func(t *testing.T) Stores) {
	// The consent step stores the approved record over the first one.
	ctx, s := ctxFor(t), newStores(t).Pending
	id := newID()
	first := pending(id)
	first.Approved, first.UpstreamStateHash, first.UpstreamVerifier = false, "", nil
	putPending(t, ctx, s, first, long)
	putPending(t, ctx, s, pending(id), long)
	got, err := s.TakePending(ctx, id)
	if err != nil {
		t.Fatalf("TakePending: %v", err)
	}
	if diff := cmp.Diff(pending(id), got); diff != "" {
		t.Errorf("TakePending after a second PutPending (-want +got):\n%s", diff)
	}
}

func testPendingConcurrentTake(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Pending
	id := newID()
	putPending(t, ctx, s, pending(id), long)
	got := make([]*as.PendingAuth, workers)
	errs := race(func(i int) (err error) {
		got[i], err = s.TakePending(ctx, id)
		return err
	})
	if n := count(errs, nil); n != 1 {
		t.Fatalf("%d of %d concurrent TakePending calls succeeded, want 1 (errors: %v)", n, workers, errs)
	}
	if n := count(errs, authz.ErrNotFound); n != workers-1 {
		t.Errorf("%d of %d concurrent TakePending calls got ErrNotFound, want %d (errors: %v)", n, workers, workers-1, errs)
	}
	winner := got[slices.Index(errs, nil)]
	if diff := cmp.Diff(pending(id), winner); diff != "" {
		t.Errorf("the winning TakePending (-want +got):\n%s", diff)
	}
}

func testPendingExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Pending, st.TTL
	id := newID()
	putPending(t, ctx, s, pending(id), ttl)
	st.Advance(ttl * 3 / 4)
	if _, err := s.GetPending(ctx, id); err != nil {
		t.Fatalf("GetPending before the TTL: %v", err)
	}
	st.Advance(ttl / 2)
	if _, err := s.GetPending(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetPending after the TTL error = %v, want ErrNotFound", err)
	}
	if _, err := s.TakePending(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("TakePending after the TTL error = %v, want ErrNotFound", err)
	}
}

func testPendingNoAliasing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Pending
	id := newID()
	p := pending(id)
	putPending(t, ctx, s, p, long)
	scribble(p)
	got, err := s.GetPending(ctx, id)
	if err != nil {
		t.Fatalf("GetPending: %v", err)
	}
	scribble(got)
	got, err = s.TakePending(ctx, id)
	if err != nil {
		t.Fatalf("TakePending: %v", err)
	}
	if diff := cmp.Diff(pending(id), got); diff != "" {
		t.Errorf("the stored record shares memory with a caller (-want +got):\n%s", diff)
	}
}

func testCodes(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("TakeOnce", func(t *testing.T) { testCodesTakeOnce(t, newStores) })
	t.Run("Missing", func(t *testing.T) { testCodesMissing(t, newStores) })
	t.Run("PutDuplicate", func(t *testing.T) { testCodesPutDuplicate(t, newStores) })
	t.Run("ConcurrentTake", func(t *testing.T) { testCodesConcurrentTake(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testCodesExpiry(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testCodesNoAliasing(t, newStores) })
}

func putCode(t *testing.T, ctx context.Context, s as.CodeStore, c *as.AuthCode, ttl time.Duration) {
	t.Helper()
	if err := s.PutCode(ctx, c, ttl); err != nil {
		t.Fatalf("PutCode: %v", err)
	}
}

// takeCode calls TakeCode and checks the record it returns, if any.
func takeCode(t *testing.T, ctx context.Context, s as.CodeStore, hash string) error {
	t.Helper()
	got, err := s.TakeCode(ctx, hash)
	switch {
	case err == nil || errors.Is(err, as.ErrAlreadyUsed):
		if diff := cmp.Diff(code(hash), got); diff != "" {
			t.Errorf("TakeCode record (error %v) (-want +got):\n%s", err, diff)
		}
	case errors.Is(err, authz.ErrNotFound):
		if got != nil {
			t.Errorf("TakeCode with ErrNotFound returned a record: %+v", got)
		}
	default:
		t.Fatalf("TakeCode: %v", err)
	}
	return err
}

func testCodesTakeOnce(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Codes
	hash := newID()
	putCode(t, ctx, s, code(hash), long)
	if err := takeCode(t, ctx, s, hash); err != nil {
		t.Fatalf("first TakeCode error = %v, want nil", err)
	}
	for i := range 2 {
		if err := takeCode(t, ctx, s, hash); !errors.Is(err, as.ErrAlreadyUsed) {
			t.Errorf("TakeCode #%d error = %v, want ErrAlreadyUsed", i+2, err)
		}
	}
}

func testCodesMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Codes
	if err := takeCode(t, ctx, s, newID()); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("TakeCode(missing) error = %v, want ErrNotFound", err)
	}
}

func testCodesPutDuplicate(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Codes
	hash := newID()
	putCode(t, ctx, s, code(hash), long)
	if err := s.PutCode(ctx, code(hash), long); err == nil {
		t.Errorf("second PutCode of an unused code succeeded, want an error")
	}
	if err := takeCode(t, ctx, s, hash); err != nil {
		t.Fatalf("TakeCode error = %v, want nil", err)
	}
	if err := s.PutCode(ctx, code(hash), long); err == nil {
		t.Errorf("PutCode of a used code succeeded, want an error")
	}
	if err := takeCode(t, ctx, s, hash); !errors.Is(err, as.ErrAlreadyUsed) {
		t.Errorf("TakeCode after a refused PutCode error = %v, want ErrAlreadyUsed", err)
	}
}

func testCodesConcurrentTake(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Codes
	hash := newID()
	putCode(t, ctx, s, code(hash), long)
	got := make([]*as.AuthCode, workers)
	errs := race(func(i int) (err error) {
		got[i], err = s.TakeCode(ctx, hash)
		return err
	})
	if n := count(errs, nil); n != 1 {
		t.Fatalf("%d of %d concurrent TakeCode calls succeeded, want 1 (errors: %v)", n, workers, errs)
	}
	if n := count(errs, as.ErrAlreadyUsed); n != workers-1 {
		t.Errorf("%d of %d concurrent TakeCode calls got ErrAlreadyUsed, want %d (errors: %v)", n, workers, workers-1, errs)
	}
	for i, c := range got {
		if diff := cmp.Diff(code(hash), c); diff != "" {
			t.Errorf("TakeCode #%d (error %v) (-want +got):\n%s", i, errs[i], diff)
		}
	}
}

func testCodesExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	for _, tt := range []struct {
		name string
		take bool // take the code once before it expires
		want error
	}{
		{"unused", false, nil},
		{"used", true, as.ErrAlreadyUsed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, st := ctxFor(t), newStores(t)
			s, ttl := st.Codes, st.TTL
			hash := newID()
			putCode(t, ctx, s, code(hash), ttl)
			if tt.take {
				if err := takeCode(t, ctx, s, hash); err != nil {
					t.Fatalf("TakeCode error = %v, want nil", err)
				}
			}
			st.Advance(ttl * 3 / 4)
			if err := takeCode(t, ctx, s, hash); !errors.Is(err, tt.want) {
				t.Errorf("TakeCode before the TTL error = %v, want %v", err, tt.want)
			}
			st.Advance(ttl / 2)
			if err := takeCode(t, ctx, s, hash); !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("TakeCode after the TTL error = %v, want ErrNotFound", err)
			}
		})
	}
}

func testCodesNoAliasing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Codes
	hash := newID()
	c := code(hash)
	putCode(t, ctx, s, c, long)
	scribble(c)
	got, err := s.TakeCode(ctx, hash)
	if err != nil {
		t.Fatalf("TakeCode: %v", err)
	}
	scribble(got)
	if err := takeCode(t, ctx, s, hash); !errors.Is(err, as.ErrAlreadyUsed) {
		t.Errorf("second TakeCode error = %v, want ErrAlreadyUsed", err)
	}
}

func testGrants(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("PutGet", func(t *testing.T) { testGrantsPutGet(t, newStores) })
	t.Run("Missing", func(t *testing.T) { testGrantsMissing(t, newStores) })
	t.Run("Revoke", func(t *testing.T) { testGrantsRevoke(t, newStores) })
	t.Run("RevokeUnknown", func(t *testing.T) { testGrantsRevokeUnknown(t, newStores) })
	t.Run("RevokeOutlivesGrant", func(t *testing.T) { testGrantsRevokeOutlivesGrant(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testGrantsExpiry(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testGrantsNoAliasing(t, newStores) })
	t.Run("RevokeCascades", func(t *testing.T) { testGrantsRevokeCascades(t, newStores) })
	t.Run("RevokeIsSticky", func(t *testing.T) { testGrantsRevokeIsSticky(t, newStores) })
}

func putGrant(t *testing.T, ctx context.Context, s as.GrantStore, g *as.Grant, ttl time.Duration) {
	t.Helper()
	if err := s.PutGrant(ctx, g, ttl); err != nil {
		t.Fatalf("PutGrant: %v", err)
	}
}

func grantRevoked(t *testing.T, ctx context.Context, s as.GrantStore, id string) bool {
	t.Helper()
	r, err := s.GrantRevoked(ctx, id)
	if err != nil {
		t.Fatalf("GrantRevoked: %v", err)
	}
	return r
}

func revokeGrant(t *testing.T, ctx context.Context, s as.GrantStore, id string) {
	t.Helper()
	if err := s.RevokeGrant(ctx, id); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
}

func testGrantsPutGet(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Grants
	id := newID()
	putGrant(t, ctx, s, grant(id), long)
	got, err := s.GetGrant(ctx, id)
	if err != nil {
		t.Fatalf("GetGrant: %v", err)
	}
	if diff := cmp.Diff(grant(id), got); diff != "" {
		t.Errorf("GetGrant (-want +got):\n%s", diff)
	}
	if grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked of a live grant = true")
	}
	// PutGrant replaces.
	g := grant(id)
	g.Scopes = []string{"notes:read"}
	putGrant(t, ctx, s, g, long)
	got, err = s.GetGrant(ctx, id)
	if err != nil {
		t.Fatalf("GetGrant: %v", err)
	}
	if diff := cmp.Diff(g, got); diff != "" {
		t.Errorf("GetGrant after a second PutGrant (-want +got):\n%s", diff)
	}
}

func testGrantsMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Grants
	id := newID()
	if _, err := s.GetGrant(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetGrant(missing) error = %v, want ErrNotFound", err)
	}
	if grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked of an unknown grant = true")
	}
}

func testGrantsRevoke(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Grants
	id, other := newID(), newID()
	putGrant(t, ctx, s, grant(id), long)
	putGrant(t, ctx, s, grant(other), long)
	revokeGrant(t, ctx, s, id)
	if !grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked after RevokeGrant = false")
	}
	if _, err := s.GetGrant(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetGrant after RevokeGrant error = %v, want ErrNotFound", err)
	}
	revokeGrant(t, ctx, s, id) // idempotent
	if !grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked after a second RevokeGrant = false")
	}
	if grantRevoked(t, ctx, s, other) {
		t.Errorf("RevokeGrant revoked another grant")
	}
	if _, err := s.GetGrant(ctx, other); err != nil {
		t.Errorf("GetGrant of another grant after RevokeGrant: %v", err)
	}
}

func testGrantsRevokeUnknown(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Grants
	id := newID()
	revokeGrant(t, ctx, s, id)
	if !grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked after RevokeGrant of an unknown grant = false")
	}
}

func testGrantsRevokeOutlivesGrant(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Grants, st.TTL
	id := newID()
	putGrant(t, ctx, s, grant(id), ttl)
	revokeGrant(t, ctx, s, id)
	st.Advance(2 * ttl)
	if !grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked after the grant's TTL = false: the revocation must outlive the grant")
	}
}

func testGrantsExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Grants, st.TTL
	id := newID()
	putGrant(t, ctx, s, grant(id), ttl)
	st.Advance(ttl * 3 / 4)
	if _, err := s.GetGrant(ctx, id); err != nil {
		t.Fatalf("GetGrant before the TTL: %v", err)
	}
	st.Advance(ttl / 2)
	if _, err := s.GetGrant(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetGrant after the TTL error = %v, want ErrNotFound", err)
	}
	if grantRevoked(t, ctx, s, id) {
		t.Errorf("GrantRevoked of an expired grant = true")
	}
}

func testGrantsNoAliasing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Grants
	id := newID()
	g := grant(id)
	putGrant(t, ctx, s, g, long)
	scribble(g)
	got, err := s.GetGrant(ctx, id)
	if err != nil {
		t.Fatalf("GetGrant: %v", err)
	}
	scribble(got)
	got, err = s.GetGrant(ctx, id)
	if err != nil {
		t.Fatalf("GetGrant: %v", err)
	}
	if diff := cmp.Diff(grant(id), got); diff != "" {
		t.Errorf("the stored grant shares memory with a caller (-want +got):\n%s", diff)
	}
}

func testGrantsRevokeCascades(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	id, other := newID(), newID()
	for _, g := range []string{id, other} {
		putGrant(t, ctx, st.Grants, grant(g), long)
		if err := st.Refresh.IssueRefresh(ctx, g, "client-"+g, "rt-"+g, long); err != nil {
			t.Fatalf("IssueRefresh: %v", err)
		}
		if err := st.Upstream.PutUpstream(ctx, g, sealed(), long); err != nil {
			t.Fatalf("PutUpstream: %v", err)
		}
	}
	// Rotate once, so that the family holds more than one token.
	if _, _, err := st.Refresh.RotateRefresh(ctx, rotation("rt-"+id, "rt2-"+id, "client-"+id, at, time.Minute)); err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	revokeGrant(t, ctx, st.Grants, id)

	for _, h := range []string{"rt-" + id, "rt2-" + id} {
		if _, _, err := st.Refresh.LookupRefresh(ctx, h); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("LookupRefresh of the revoked grant's token error = %v, want ErrNotFound", err)
		}
		if _, _, err := st.Refresh.RotateRefresh(ctx, rotation(h, newID(), "client-"+id, at, time.Minute)); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("RotateRefresh of the revoked grant's token error = %v, want ErrNotFound", err)
		}
	}
	if _, err := st.Upstream.GetUpstream(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream of the revoked grant error = %v, want ErrNotFound", err)
	}
	// The other grant keeps everything.
	if g, c, err := st.Refresh.LookupRefresh(ctx, "rt-"+other); err != nil || g != other || c != "client-"+other {
		t.Errorf("LookupRefresh of another grant's token = %q, %q, %v; want %q, %q, nil", g, c, err, other, "client-"+other)
	}
	if _, err := st.Upstream.GetUpstream(ctx, other); err != nil {
		t.Errorf("GetUpstream of another grant: %v", err)
	}
}

func testGrantsRevokeIsSticky(t *testing.T, newStores func(t *testing.T) Stores) {
	// A code replayed while its first exchange runs revokes the grant
	// before the exchange stores the refresh token: what the exchange
	// writes afterwards must not bring the grant back.
	ctx, st := ctxFor(t), newStores(t)
	id := newID()
	revokeGrant(t, ctx, st.Grants, id)
	if err := st.Grants.PutGrant(ctx, grant(id), long); err != nil {
		t.Logf("PutGrant after RevokeGrant: %v", err)
	}
	if err := st.Refresh.IssueRefresh(ctx, id, "client-"+id, "rt-"+id, long); err != nil {
		t.Logf("IssueRefresh after RevokeGrant: %v", err)
	}
	if err := st.Upstream.PutUpstream(ctx, id, sealed(), long); err != nil {
		t.Logf("PutUpstream after RevokeGrant: %v", err)
	}
	if !grantRevoked(t, ctx, st.Grants, id) {
		t.Errorf("GrantRevoked after PutGrant of a revoked grant = false")
	}
	if _, err := st.Grants.GetGrant(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetGrant of a revoked grant put again error = %v, want ErrNotFound", err)
	}
	if _, _, err := st.Refresh.LookupRefresh(ctx, "rt-"+id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("LookupRefresh of a token issued after RevokeGrant error = %v, want ErrNotFound", err)
	}
	if _, _, err := st.Refresh.RotateRefresh(ctx, rotation("rt-"+id, newID(), "client-"+id, at, time.Minute)); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("RotateRefresh of a token issued after RevokeGrant error = %v, want ErrNotFound", err)
	}
	if _, err := st.Upstream.GetUpstream(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream of tokens put after RevokeGrant error = %v, want ErrNotFound", err)
	}
}

// rotation returns a RefreshRotation with a long TTL.
func rotation(presented, next, clientID string, now time.Time, grace time.Duration) as.RefreshRotation {
	return as.RefreshRotation{PresentedHash: presented, NewHash: next, ClientID: clientID, Now: now, Grace: grace, TTL: long}
}

// refreshGrace is the grace window of the rotation cases.
const refreshGrace = 30 * time.Second

// A refreshStep presents token number presented (0 is the issued one, n the
// one step n made) and expects want, or ErrNotFound if want is zero.
// Each step offers a new token; after is the time since the first step.
type refreshStep struct {
	presented int
	after     time.Duration
	clientID  string // default: the family's client
	grace     time.Duration
	want      as.RotateResult
}

// A refreshCase is a sequence of rotations of one family.
type refreshCase struct {
	name  string
	steps []refreshStep
	// live and gone are the tokens that LookupRefresh must find, and
	// must not find, after the steps.
	live, gone []int
}

// refreshCases are the rotation sequences that testRefresh runs.
var refreshCases = []refreshCase{
	{
		name:  "current rotates",
		steps: []refreshStep{{presented: 0, grace: refreshGrace, want: as.Rotated}, {presented: 1, grace: refreshGrace, want: as.Rotated}},
		live:  []int{0, 1, 2},
	},
	{
		name: "previous within grace",
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: refreshGrace / 2, grace: refreshGrace, want: as.RotatedInGrace},
			{presented: 2, after: refreshGrace / 2, grace: refreshGrace, want: as.Rotated},
		},
		live: []int{0, 1, 2, 3},
	},
	{
		name: "previous at the end of grace",
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: refreshGrace, grace: refreshGrace, want: as.RotatedInGrace},
		},
		live: []int{0, 1, 2},
	},
	{
		name: "grace does not move with a retry",
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: refreshGrace / 2, grace: refreshGrace, want: as.RotatedInGrace},
			{presented: 0, after: refreshGrace, grace: refreshGrace, want: as.RotatedInGrace},
			{presented: 0, after: refreshGrace + time.Second, grace: refreshGrace, want: as.Reused},
		},
		gone: []int{0, 1, 2, 3, 4},
	},
	{
		name: "previous past grace",
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: refreshGrace + time.Second, grace: refreshGrace, want: as.Reused},
			{presented: 1, after: refreshGrace + time.Second, grace: refreshGrace},
		},
		gone: []int{0, 1, 2, 3},
	},
	{
		name: "previous within grace by another client",
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: time.Second, clientID: "mallory", grace: refreshGrace, want: as.Reused},
		},
		gone: []int{0, 1, 2},
	},
	{
		name: "zero grace",
		steps: []refreshStep{
			{presented: 0, want: as.Rotated},
			{presented: 0, want: as.Reused},
		},
		gone: []int{0, 1, 2},
	},
	{
		name: "older than previous",
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 1, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: time.Second, grace: refreshGrace, want: as.Reused},
		},
		gone: []int{0, 1, 2, 3},
	},
	{
		name: "replaced by a retry within grace",
		// The answer to step 1 was lost; the client retried with token
		// 0 and got token 2. Token 1 is no longer current.
		steps: []refreshStep{
			{presented: 0, grace: refreshGrace, want: as.Rotated},
			{presented: 0, after: time.Second, grace: refreshGrace, want: as.RotatedInGrace},
			{presented: 1, after: 2 * time.Second, grace: refreshGrace, want: as.Reused},
			{presented: 2, after: 2 * time.Second, grace: refreshGrace},
		},
		gone: []int{0, 1, 2, 3, 4},
	},
}

func testRefresh(t *testing.T, newStores func(t *testing.T) Stores) {
	for _, tt := range refreshCases {
		t.Run(tt.name, func(t *testing.T) { testRefreshRotation(t, newStores, tt) })
	}
	t.Run("ReusedKillsFamily", func(t *testing.T) { testRefreshReusedKillsFamily(t, newStores) })
	t.Run("Unknown", func(t *testing.T) { testRefreshUnknown(t, newStores) })
	t.Run("FamiliesAreSeparate", func(t *testing.T) { testRefreshFamiliesAreSeparate(t, newStores) })
	t.Run("IssueReplacesFamily", func(t *testing.T) { testRefreshIssueReplacesFamily(t, newStores) })
	t.Run("ConcurrentRotate", func(t *testing.T) { testRefreshConcurrentRotate(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testRefreshExpiry(t, newStores) })
	t.Run("RotateExtends", func(t *testing.T) { testRefreshRotateExtends(t, newStores) })
}

func testRefreshRotation(t *testing.T, newStores func(t *testing.T) Stores, tt refreshCase) {
	ctx, s := ctxFor(t), newStores(t).Refresh
	grantID, clientID := newID(), "client-"+newID()
	tokens := []string{newID()}
	if err := s.IssueRefresh(ctx, grantID, clientID, tokens[0], long); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	for i, st := range tt.steps {
		tokens = append(tokens, newID())
		r := rotation(tokens[st.presented], tokens[i+1], clientID, at.Add(st.after), st.grace)
		if st.clientID != "" {
			r.ClientID = st.clientID
		}
		g, res, err := s.RotateRefresh(ctx, r)
		if st.want == 0 {
			if !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("step %d: RotateRefresh(token %d) = %q, %s, %v; want ErrNotFound", i+1, st.presented, g, resultName(res), err)
			}
			continue
		}
		if err != nil || res != st.want || g != grantID {
			t.Errorf("step %d: RotateRefresh(token %d) = %q, %s, %v; want %q, %s, nil", i+1, st.presented, g, resultName(res), err, grantID, resultName(st.want))
		}
	}
	for _, n := range tt.live {
		if g, c, err := s.LookupRefresh(ctx, tokens[n]); err != nil || g != grantID || c != clientID {
			t.Errorf("LookupRefresh(token %d) = %q, %q, %v; want %q, %q, nil", n, g, c, err, grantID, clientID)
		}
	}
	for _, n := range tt.gone {
		if n >= len(tokens) {
			continue
		}
		if g, c, err := s.LookupRefresh(ctx, tokens[n]); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("LookupRefresh(token %d) = %q, %q, %v; want ErrNotFound", n, g, c, err)
		}
	}
}

func testRefreshReusedKillsFamily(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Refresh
	grantID, clientID := newID(), "client-"+newID()
	t0, t1, t2 := newID(), newID(), newID()
	if err := s.IssueRefresh(ctx, grantID, clientID, t0, long); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	if _, res, err := s.RotateRefresh(ctx, rotation(t0, t1, clientID, at, 0)); err != nil || res != as.Rotated {
		t.Fatalf("RotateRefresh = %s, %v; want Rotated", resultName(res), err)
	}
	if _, res, err := s.RotateRefresh(ctx, rotation(t0, t2, clientID, at, 0)); err != nil || res != as.Reused {
		t.Fatalf("RotateRefresh(reused) = %s, %v; want Reused", resultName(res), err)
	}
	for _, h := range []string{t0, t1, t2} {
		for i := range 2 { // and a dead family stays dead
			if g, res, err := s.RotateRefresh(ctx, rotation(h, newID(), clientID, at, time.Hour)); !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("RotateRefresh #%d of a dead family's token = %q, %s, %v; want ErrNotFound", i, g, resultName(res), err)
			}
		}
	}
}

func testRefreshUnknown(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Refresh
	grantID, clientID, t0 := newID(), "client-"+newID(), newID()
	if err := s.IssueRefresh(ctx, grantID, clientID, t0, long); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	if _, _, err := s.LookupRefresh(ctx, newID()); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("LookupRefresh(unknown) error = %v, want ErrNotFound", err)
	}
	if g, res, err := s.RotateRefresh(ctx, rotation(newID(), newID(), clientID, at, time.Minute)); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("RotateRefresh(unknown) = %q, %s, %v; want ErrNotFound", g, resultName(res), err)
	}
	// An unknown token says nothing about the family.
	if _, res, err := s.RotateRefresh(ctx, rotation(t0, newID(), clientID, at, time.Minute)); err != nil || res != as.Rotated {
		t.Errorf("RotateRefresh of the current token after an unknown one = %s, %v; want Rotated", resultName(res), err)
	}
}

func testRefreshFamiliesAreSeparate(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Refresh
	a, b := newID(), newID()
	a0, a1, b0, b1 := newID(), newID(), newID(), newID()
	for _, f := range []struct{ grant, token string }{{a, a0}, {b, b0}} {
		if err := s.IssueRefresh(ctx, f.grant, "client", f.token, long); err != nil {
			t.Fatalf("IssueRefresh: %v", err)
		}
	}
	if _, res, err := s.RotateRefresh(ctx, rotation(a0, a1, "client", at, 0)); err != nil || res != as.Rotated {
		t.Fatalf("RotateRefresh = %s, %v; want Rotated", resultName(res), err)
	}
	if _, res, err := s.RotateRefresh(ctx, rotation(a0, newID(), "client", at, 0)); err != nil || res != as.Reused {
		t.Fatalf("RotateRefresh(reused) = %s, %v; want Reused", resultName(res), err)
	}
	g, res, err := s.RotateRefresh(ctx, rotation(b0, b1, "client", at, 0))
	if err != nil || res != as.Rotated || g != b {
		t.Errorf("RotateRefresh in another family = %q, %s, %v; want %q, Rotated, nil", g, resultName(res), err, b)
	}
}

func testRefreshIssueReplacesFamily(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Refresh
	grantID := newID()
	t0, t1, n0 := newID(), newID(), newID()
	if err := s.IssueRefresh(ctx, grantID, "client-a", t0, long); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	if _, _, err := s.RotateRefresh(ctx, rotation(t0, t1, "client-a", at, time.Minute)); err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	if err := s.IssueRefresh(ctx, grantID, "client-b", n0, long); err != nil {
		t.Fatalf("second IssueRefresh: %v", err)
	}
	for _, h := range []string{t0, t1} {
		if _, _, err := s.LookupRefresh(ctx, h); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("LookupRefresh of a replaced family's token error = %v, want ErrNotFound", err)
		}
		if _, res, err := s.RotateRefresh(ctx, rotation(h, newID(), "client-a", at, time.Minute)); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("RotateRefresh of a replaced family's token = %s, %v; want ErrNotFound", resultName(res), err)
		}
	}
	if g, c, err := s.LookupRefresh(ctx, n0); err != nil || g != grantID || c != "client-b" {
		t.Errorf("LookupRefresh of the new family's token = %q, %q, %v; want %q, client-b, nil", g, c, err, grantID)
	}
}

func testRefreshConcurrentRotate(t *testing.T, newStores func(t *testing.T) Stores) {
	for _, tt := range []struct {
		name  string
		grace time.Duration
		// want counts the results: one Rotated, and every other call
		// either in grace, or the first loser Reused and the rest
		// ErrNotFound (result 0) as the family is dead.
		want map[string]int
	}{
		{"within grace", time.Minute, map[string]int{"Rotated": 1, "RotatedInGrace": workers - 1}},
		{"no grace", 0, map[string]int{"Rotated": 1, "Reused": 1, "none": workers - 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := ctxFor(t), newStores(t).Refresh
			grantID, clientID, t0 := newID(), "client-"+newID(), newID()
			if err := s.IssueRefresh(ctx, grantID, clientID, t0, long); err != nil {
				t.Fatalf("IssueRefresh: %v", err)
			}
			next := make([]string, workers)
			res := make([]as.RotateResult, workers)
			errs := race(func(i int) (err error) {
				next[i] = newID()
				_, res[i], err = s.RotateRefresh(ctx, rotation(t0, next[i], clientID, at, tt.grace))
				if errors.Is(err, authz.ErrNotFound) {
					return nil
				}
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("RotateRefresh #%d: %v", i, err)
				}
			}
			got := map[string]int{}
			for _, r := range res {
				got[resultName(r)]++
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results of %d concurrent rotations of one token (-want +got):\n%s", workers, diff)
			}
			// Within grace, every rotation's new token joined the family.
			if tt.grace > 0 {
				for i, h := range next {
					if g, c, err := s.LookupRefresh(ctx, h); err != nil || g != grantID || c != clientID {
						t.Errorf("LookupRefresh(new token #%d) = %q, %q, %v; want %q, %q, nil", i, g, c, err, grantID, clientID)
					}
				}
			}
		})
	}
}

func testRefreshExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Refresh, st.TTL
	grantID, clientID, t0, t1 := newID(), "client-"+newID(), newID(), newID()
	if err := s.IssueRefresh(ctx, grantID, clientID, t0, ttl); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	st.Advance(ttl * 3 / 4)
	if _, _, err := s.LookupRefresh(ctx, t0); err != nil {
		t.Fatalf("LookupRefresh before the TTL: %v", err)
	}
	st.Advance(ttl / 2)
	if _, _, err := s.LookupRefresh(ctx, t0); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("LookupRefresh after the TTL error = %v, want ErrNotFound", err)
	}
	r := rotation(t0, t1, clientID, at, time.Minute)
	if g, res, err := s.RotateRefresh(ctx, r); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("RotateRefresh after the TTL = %q, %s, %v; want ErrNotFound", g, resultName(res), err)
	}
}

func testRefreshRotateExtends(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Refresh, st.TTL
	grantID, clientID, t0, t1 := newID(), "client-"+newID(), newID(), newID()
	if err := s.IssueRefresh(ctx, grantID, clientID, t0, ttl); err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	st.Advance(ttl / 2)
	r := rotation(t0, t1, clientID, at, time.Minute)
	r.TTL = ttl
	if _, res, err := s.RotateRefresh(ctx, r); err != nil || res != as.Rotated {
		t.Fatalf("RotateRefresh = %s, %v; want Rotated", resultName(res), err)
	}
	st.Advance(ttl * 3 / 4) // 5/4 TTL after IssueRefresh, 3/4 after RotateRefresh
	if g, c, err := s.LookupRefresh(ctx, t1); err != nil || g != grantID || c != clientID {
		t.Errorf("LookupRefresh of the rotated token = %q, %q, %v; want %q, %q, nil", g, c, err, grantID, clientID)
	}
	st.Advance(ttl / 2)
	if _, _, err := s.LookupRefresh(ctx, t1); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("LookupRefresh after the rotated token's TTL error = %v, want ErrNotFound", err)
	}
}

func testUpstream(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("Swap", func(t *testing.T) { testUpstreamSwap(t, newStores) })
	t.Run("PutGetDelete", func(t *testing.T) { testUpstreamPutGetDelete(t, newStores) })
	t.Run("Missing", func(t *testing.T) { testUpstreamMissing(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testUpstreamExpiry(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testUpstreamNoAliasing(t, newStores) })
}

func putUpstream(t *testing.T, ctx context.Context, s upstream.TokenStore, grantID string, v *upstream.Sealed, ttl time.Duration) {
	t.Helper()
	if err := s.PutUpstream(ctx, grantID, v, ttl); err != nil {
		t.Fatalf("PutUpstream: %v", err)
	}
}

func testUpstreamSwap(t *testing.T, newStores func(t *testing.T) Stores) {
	// The fence of the vault's refresh: SwapUpstream replaces only
	// the record it was given, never a newer one, and never revives a
	// revoked grant's tokens.
	st := newStores(t)
	ctx, s := ctxFor(t), st.Upstream
	sw, ok := s.(upstream.TokenSwapper)
	if !ok {
		t.Fatal("the UpstreamTokenStore does not implement authz.UpstreamTokenSwapper (the vault then writes refreshed tokens without a fence)")
	}
	id := newID()
	putUpstream(t, ctx, s, id, sealed(), long)
	newer := &upstream.Sealed{KeyID: "k2", Nonce: []byte("newer nonce!"), Ciphertext: []byte("newer")}
	stale := &upstream.Sealed{KeyID: "k2", Nonce: []byte("stale nonce!"), Ciphertext: []byte("stale")}
	if ok, err := sw.SwapUpstream(ctx, id, sealed(), newer, long); err != nil || !ok {
		t.Fatalf("SwapUpstream over the current record = %v, %v; want true", ok, err)
	}
	// A stalled holder still believes the old record is current.
	if ok, err := sw.SwapUpstream(ctx, id, sealed(), stale, long); err != nil || ok {
		t.Fatalf("SwapUpstream over a replaced record = %v, %v; want false", ok, err)
	}
	got, err := s.GetUpstream(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(newer, got); diff != "" {
		t.Errorf("after a refused swap (-want +got):\n%s", diff)
	}
	if ok, err := sw.SwapUpstream(ctx, newID(), sealed(), newer, long); err != nil || ok {
		t.Errorf("SwapUpstream of a missing record = %v, %v; want false", ok, err)
	}
	if err := st.Grants.RevokeGrant(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, err := sw.SwapUpstream(ctx, id, newer, stale, long); err != nil || ok {
		t.Errorf("SwapUpstream of a revoked grant = %v, %v; want false", ok, err)
	}
	if _, err := s.GetUpstream(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream of a revoked grant after a swap: %v, want ErrNotFound", err)
	}
}

func testUpstreamPutGetDelete(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Upstream
	id, other := newID(), newID()
	putUpstream(t, ctx, s, id, sealed(), long)
	putUpstream(t, ctx, s, other, sealed(), long)
	got, err := s.GetUpstream(ctx, id)
	if err != nil {
		t.Fatalf("GetUpstream: %v", err)
	}
	if diff := cmp.Diff(sealed(), got); diff != "" {
		t.Errorf("GetUpstream (-want +got):\n%s", diff)
	}
	// PutUpstream replaces (a refreshed upstream token).
	next := &upstream.Sealed{KeyID: "k2", Nonce: []byte("other nonce!"), Ciphertext: []byte("other ciphertext")}
	putUpstream(t, ctx, s, id, next, long)
	got, err = s.GetUpstream(ctx, id)
	if err != nil {
		t.Fatalf("GetUpstream: %v", err)
	}
	if diff := cmp.Diff(next, got); diff != "" {
		t.Errorf("GetUpstream after a second PutUpstream (-want +got):\n%s", diff)
	}
	if err := s.DeleteUpstream(ctx, id); err != nil {
		t.Fatalf("DeleteUpstream: %v", err)
	}
	if _, err := s.GetUpstream(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream after DeleteUpstream error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUpstream(ctx, id); err != nil && !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("second DeleteUpstream: %v", err)
	}
	if _, err := s.GetUpstream(ctx, other); err != nil {
		t.Errorf("GetUpstream of another grant after DeleteUpstream: %v", err)
	}
}

func testUpstreamMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Upstream
	if _, err := s.GetUpstream(ctx, newID()); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream(missing) error = %v, want ErrNotFound", err)
	}
}

func testUpstreamExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Upstream, st.TTL
	id := newID()
	putUpstream(t, ctx, s, id, sealed(), ttl)
	st.Advance(ttl * 3 / 4)
	if _, err := s.GetUpstream(ctx, id); err != nil {
		t.Fatalf("GetUpstream before the TTL: %v", err)
	}
	st.Advance(ttl / 2)
	if _, err := s.GetUpstream(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("GetUpstream after the TTL error = %v, want ErrNotFound", err)
	}
}

func testUpstreamNoAliasing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Upstream
	id := newID()
	v := sealed()
	putUpstream(t, ctx, s, id, v, long)
	scribble(v)
	got, err := s.GetUpstream(ctx, id)
	if err != nil {
		t.Fatalf("GetUpstream: %v", err)
	}
	scribble(got)
	got, err = s.GetUpstream(ctx, id)
	if err != nil {
		t.Fatalf("GetUpstream: %v", err)
	}
	if diff := cmp.Diff(sealed(), got); diff != "" {
		t.Errorf("the stored tokens share memory with a caller (-want +got):\n%s", diff)
	}
}

// consentScopes are the scopes that the consent tests approve.
var consentScopes = []string{"notes:read", "notes:write"}

func testConsent(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("ApproveApproved", func(t *testing.T) { testConsentApproveApproved(t, newStores) })
	t.Run("Missing", func(t *testing.T) { testConsentMissing(t, newStores) })
	t.Run("KeysAreExact", func(t *testing.T) { testConsentKeysAreExact(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testConsentExpiry(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testConsentNoAliasing(t, newStores) })
}

func approveConsent(t *testing.T, ctx context.Context, s as.ConsentStore, subject, clientID, redirectURI string, scopes []string, ttl time.Duration) {
	t.Helper()
	if err := s.Approve(ctx, subject, clientID, redirectURI, scopes, ttl); err != nil {
		t.Fatalf("Approve: %v", err)
	}
}

func testConsentApproveApproved(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Consent
	subject := newID()
	approveConsent(t, ctx, s, subject, "https://app.example/client.json", "https://app.example/cb", consentScopes, long)
	got, err := s.Approved(ctx, subject, "https://app.example/client.json", "https://app.example/cb")
	if err != nil {
		t.Fatalf("Approved: %v", err)
	}
	if diff := cmp.Diff(consentScopes, got); diff != "" {
		t.Errorf("Approved (-want +got):\n%s", diff)
	}
	// Approve replaces.
	approveConsent(t, ctx, s, subject, "https://app.example/client.json", "https://app.example/cb", []string{"notes:read"}, long)
	got, err = s.Approved(ctx, subject, "https://app.example/client.json", "https://app.example/cb")
	if err != nil {
		t.Fatalf("Approved: %v", err)
	}
	if diff := cmp.Diff([]string{"notes:read"}, got); diff != "" {
		t.Errorf("Approved after a second Approve (-want +got):\n%s", diff)
	}
}

func testConsentMissing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Consent
	if got, err := s.Approved(ctx, newID(), "client", "https://app.example/cb"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("Approved(missing) = %v, %v; want ErrNotFound", got, err)
	}
}

func testConsentKeysAreExact(t *testing.T, newStores func(t *testing.T) Stores) {
	// Each case approves one triple and asks for another: none may
	// find the approval, however a store joins the parts of its key.
	type key struct{ subject, clientID, redirectURI string }
	for _, tt := range []struct {
		name          string
		approved, ask key
	}{
		{"separator moves from subject to client", key{"a:b", "c", "https://x/cb"}, key{"a", "b:c", "https://x/cb"}},
		{"separator moves from client to redirect", key{"a", "b:c", "d"}, key{"a", "b", "c:d"}},
		{"NUL separator", key{"a\x00b", "c", "d"}, key{"a", "b\x00c", "d"}},
		{"pipe separator", key{"a|b", "c", "d"}, key{"a", "b|c", "d"}},
		{"slash separator", key{"a", "https://app.example/c", "b"}, key{"a", "https:", "/app.example/c/b"}},
		{"empty client", key{"a", "", "bc"}, key{"a", "bc", ""}},
		{"empty redirect", key{"ab", "c", ""}, key{"a", "bc", ""}},
		{"other subject", key{"alice", "c", "d"}, key{"bob", "c", "d"}},
		{"other client", key{"a", "client-1", "d"}, key{"a", "client-2", "d"}},
		{"trailing slash", key{"a", "c", "https://app.example/cb"}, key{"a", "c", "https://app.example/cb/"}},
		{"case", key{"a", "c", "https://app.example/cb"}, key{"a", "c", "https://app.example/CB"}},
		{"loopback port", key{"a", "c", "http://127.0.0.1:1234/cb"}, key{"a", "c", "http://127.0.0.1:5678/cb"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := ctxFor(t), newStores(t).Consent
			p := newID() // isolates the subtest in a shared store
			approveConsent(t, ctx, s, p+tt.approved.subject, tt.approved.clientID, tt.approved.redirectURI, consentScopes, long)
			if got, err := s.Approved(ctx, p+tt.ask.subject, tt.ask.clientID, tt.ask.redirectURI); !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("Approved(%q) after Approve(%q) = %v, %v; want ErrNotFound", tt.ask, tt.approved, got, err)
			}
			got, err := s.Approved(ctx, p+tt.approved.subject, tt.approved.clientID, tt.approved.redirectURI)
			if err != nil {
				t.Fatalf("Approved(%q): %v", tt.approved, err)
			}
			if diff := cmp.Diff(consentScopes, got); diff != "" {
				t.Errorf("Approved(%q) (-want +got):\n%s", tt.approved, diff)
			}
		})
	}
}

func testConsentExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, st := ctxFor(t), newStores(t)
	s, ttl := st.Consent, st.TTL
	subject := newID()
	approveConsent(t, ctx, s, subject, "client", "https://app.example/cb", consentScopes, ttl)
	st.Advance(ttl * 3 / 4)
	if _, err := s.Approved(ctx, subject, "client", "https://app.example/cb"); err != nil {
		t.Fatalf("Approved before the TTL: %v", err)
	}
	st.Advance(ttl / 2)
	if _, err := s.Approved(ctx, subject, "client", "https://app.example/cb"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("Approved after the TTL error = %v, want ErrNotFound", err)
	}
}

func testConsentNoAliasing(t *testing.T, newStores func(t *testing.T) Stores) {
	ctx, s := ctxFor(t), newStores(t).Consent
	subject := newID()
	in := slices.Clone(consentScopes)
	approveConsent(t, ctx, s, subject, "client", "https://app.example/cb", in, long)
	scribble(in)
	got, err := s.Approved(ctx, subject, "client", "https://app.example/cb")
	if err != nil {
		t.Fatalf("Approved: %v", err)
	}
	scribble(got)
	got, err = s.Approved(ctx, subject, "client", "https://app.example/cb")
	if err != nil {
		t.Fatalf("Approved: %v", err)
	}
	if diff := cmp.Diff(consentScopes, got); diff != "" {
		t.Errorf("the stored approval shares memory with a caller (-want +got):\n%s", diff)
	}
}

// race runs f in workers goroutines at once and returns their errors.
func race(f func(i int) error) []error {
	errs := make([]error, workers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range workers {
		done.Go(func() {
			start.Wait()
			errs[i] = f(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

// count returns how many of errs are target (errors.Is), or nil if target
// is nil.
func count(errs []error, target error) int {
	n := 0
	for _, err := range errs {
		if (target == nil && err == nil) || (target != nil && errors.Is(err, target)) {
			n++
		}
	}
	return n
}

// resultName makes RotateResult values readable in failures.
func resultName(r as.RotateResult) string {
	switch r {
	case as.Rotated:
		return "Rotated"
	case as.RotatedInGrace:
		return "RotatedInGrace"
	case as.Reused:
		return "Reused"
	case 0:
		return "none"
	}
	return fmt.Sprintf("RotateResult(%d)", int(r))
}
