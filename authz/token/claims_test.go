package token

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
)

// TestUserClaims: groups and a verified e-mail address go into the token
// and come out in TokenInfo.Extra, bounded; tokens without them have
// neither key.
func TestUserClaims(t *testing.T) {
	var many []string
	for i := range MaxGroupsClaimNames + 10 {
		many = append(many, fmt.Sprintf("group-%02d", i))
	}
	long := []string{strings.Repeat("a", 1500), strings.Repeat("b", 600), "c"}
	for _, tt := range []struct {
		name       string
		user       UserClaims
		wantGroups any
		wantEmail  any
	}{
		{"none", UserClaims{}, nil, nil},
		{"both", UserClaims{Email: "alice@example.com", Groups: []string{"eng", "my-org/platform"}}, []string{"eng", "my-org/platform"}, "alice@example.com"},
		{"too many groups", UserClaims{Groups: many}, many[:MaxGroupsClaimNames], nil},
		{"too many bytes", UserClaims{Groups: long}, long[:1], nil},
		{"address too long", UserClaims{Email: strings.Repeat("a", 250) + "@example.com"}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestIssuer(t, nil)
			tok, _, _, err := f.iss.MintAccessTokenFor("user-1", "client-1", []string{"notes:read"}, "grant-1", tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) > maxAccessTokenLen {
				t.Fatalf("token of %d bytes", len(tok))
			}
			info, err := f.iss.Verify(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantGroups, info.Extra["groups"]); diff != "" {
				t.Errorf("Extra[groups] (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEmail, info.Extra["email"]); diff != "" {
				t.Errorf("Extra[email] (-want +got):\n%s", diff)
			}
			// The cached path answers the same.
			again, err := f.iss.Verify(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(info.Extra, again.Extra); diff != "" {
				t.Errorf("cached Extra (-first +second):\n%s", diff)
			}
		})
	}
}

// TestUserClaimsBiggest: the largest claims stay within the token bound.
func TestUserClaimsBiggest(t *testing.T) {
	var groups []string
	for range MaxGroupsClaimNames {
		groups = append(groups, strings.Repeat("g", MaxGroupsClaimBytes/MaxGroupsClaimNames))
	}
	f := newTestIssuer(t, nil)
	tok, _, _, err := f.iss.MintAccessTokenFor("user-1", "client-1", []string{"notes:read", "notes:write"}, "grant-1",
		UserClaims{Email: strings.Repeat("a", 240) + "@example.com", Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) > 5<<10 {
		t.Errorf("the largest token is %d bytes, more than 5 KiB", len(tok))
	}
	if _, err := f.iss.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
}

// TestUserClaimsMalformed: a groups claim that is not an array of strings,
// or an email claim that is not a string, is refused.
func TestUserClaimsMalformed(t *testing.T) {
	f := newTestIssuer(t, nil)
	base := authztest.BaseClaims(f.clock.Now()).With("iss", ourIssuer, "gid", "grant-1")
	for name, c := range map[string]authztest.Claims{
		"groups string":  base.With("groups", "eng"),
		"groups numbers": base.With("groups", []any{1, 2}),
		"email number":   base.With("email", 42),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := f.iss.Verify(t.Context(), authztest.SignAT(t, f.signer(t), c)); !errors.Is(err, authz.ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
	if _, err := f.iss.Verify(t.Context(), authztest.SignAT(t, f.signer(t), base.With("groups", []any{"eng"}))); err != nil {
		t.Errorf("a well-formed token: %v", err)
	}
}
