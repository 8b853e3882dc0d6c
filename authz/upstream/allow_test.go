package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

func TestAllowListCheck(t *testing.T) {
	alice := &Identity{Subject: "1001", Login: "Alice", UniqueLogin: true, Email: "alice@Example.com", EmailVerified: true, Groups: []string{"eng", "my-org", "my-org/platform"}}
	unverified := &Identity{Subject: "1002", Login: "bob", Email: "bob@example.com"}
	for _, tt := range []struct {
		name  string
		allow *AllowList
		id    *Identity
		want  bool
	}{
		{"nil list allows everyone", nil, unverified, true},
		{"empty list allows everyone", &AllowList{}, unverified, true},
		{"user by subject", &AllowList{Users: []string{"1002"}}, unverified, true},
		{"user by login, any case", &AllowList{Users: []string{"alice"}}, alice, true},
		{"another user", &AllowList{Users: []string{"carol"}}, alice, false},
		{"an OIDC preferred_username is not a user name", &AllowList{Users: []string{"carol"}}, &Identity{Subject: "x9", Login: "carol"}, false},
		{"no Unicode folding into a login", &AllowList{Users: []string{"\u212Aim"}}, &Identity{Subject: "7", Login: "kim", UniqueLogin: true}, false},
		{"no Unicode folding into a domain", &AllowList{EmailDomains: []string{"example.\u017Fite"}}, &Identity{Subject: "8", Email: "a@example.site", EmailVerified: true}, false},
		{"subject compares exactly", &AllowList{Users: []string{"1001 "}}, alice, false},
		{"verified domain, any case", &AllowList{EmailDomains: []string{"example.com"}}, alice, true},
		{"unverified address does not count", &AllowList{EmailDomains: []string{"example.com"}}, unverified, false},
		{"subdomain is another domain", &AllowList{EmailDomains: []string{"eng.example.com"}}, alice, false},
		{"parent domain is another domain", &AllowList{EmailDomains: []string{"com"}}, alice, false},
		{"GitHub org", &AllowList{Orgs: []string{"MY-ORG"}}, alice, true},
		{"GitHub team", &AllowList{Teams: []string{"my-org/platform"}}, alice, true},
		{"GitHub team of another org", &AllowList{Teams: []string{"other/platform"}}, alice, false},
		{"group", &AllowList{Groups: []string{"eng"}}, alice, true},
		{"group compares exactly", &AllowList{Groups: []string{"ENG"}}, alice, false},
		{"any list lets in", &AllowList{Users: []string{"carol"}, Groups: []string{"eng"}}, alice, true},
		{"no identity", &AllowList{Users: []string{"carol"}}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.allow.Check(tt.id)
			if got := err == nil; got != tt.want {
				t.Fatalf("Check = %v, want allowed %v", err, tt.want)
			}
			if err != nil {
				var r *Refusal
				if !errors.Is(err, ErrNotAllowed) || !errors.As(err, &r) || r.Reason == "" || r.Detail == "" {
					t.Errorf("Check = %#v, want a *Refusal with a reason and a detail", err)
				}
				// The reason, which the user sees, names none of the lists
				// (but the account, which may be spelled as a user entry).
				if a := tt.allow; a != nil {
					for _, v := range slices.Concat(a.EmailDomains, a.Orgs, a.Teams, a.Groups) {
						if strings.Contains(r.Reason, v) {
							t.Errorf("the reason %q names %q", r.Reason, v)
						}
					}
				}
			}
		})
	}
}

func TestAllowListCheckSeesEveryGroup(t *testing.T) {
	var groups []string
	for i := range 150 {
		groups = append(groups, fmt.Sprintf("g%03d", i))
	}
	m := map[string]any{"sub": "1", "groups": toAny(groups)}
	id, err := parseOIDCIdentity(m)
	if err != nil {
		t.Fatal(err)
	}
	id.allGroups = tokencheck.Bound(tokencheck.ClaimNames(m["groups"]), 0)
	id.Groups = tokencheck.Bound(id.allGroups, MaxGroups)
	if len(id.Groups) != MaxGroups {
		t.Errorf("%d groups kept, want %d", len(id.Groups), MaxGroups)
	}
	if err := (&AllowList{Groups: []string{"g149"}}).Check(id); err != nil {
		t.Errorf("a group past the bound is not seen by Check: %v", err)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func TestAllowListValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		allow   AllowList
		wantErr string
	}{
		{"ok", AllowList{Users: []string{"alice"}, EmailDomains: []string{"example.com"}, Orgs: []string{"my-org"}, Teams: []string{"my-org/platform"}, Groups: []string{"eng admins"}}, ""},
		{"empty", AllowList{}, ""},
		{"address instead of domain", AllowList{EmailDomains: []string{"alice@example.com"}}, "not a domain name"},
		{"wildcard domain", AllowList{EmailDomains: []string{"*.example.com"}}, "not a domain name"},
		{"single label", AllowList{EmailDomains: []string{"localhost"}}, "not a domain name"},
		{"URL", AllowList{EmailDomains: []string{"https://example.com"}}, "not a domain name"},
		{"empty user", AllowList{Users: []string{""}}, "non-empty"},
		{"spaces", AllowList{Groups: []string{" eng"}}, "surrounding spaces"},
		{"team without org", AllowList{Teams: []string{"platform"}}, "org/team-slug"},
		{"org with slash", AllowList{Orgs: []string{"my-org/platform"}}, "not an organization"},
		{"too long", AllowList{Groups: []string{strings.Repeat("g", MaxGroupLen+1)}}, "at most"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.allow.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestFetchIdentityOIDCGroups(t *testing.T) {
	long := strings.Repeat("x", MaxGroupLen+1)
	for _, tt := range []struct {
		name, claim, body string
		want              []string
	}{
		{"array", "", `{"sub":"1","groups":["eng","admins","eng",""]}`, []string{"admins", "eng"}},
		{"single string", "", `{"sub":"1","groups":"eng"}`, []string{"eng"}},
		{"object keys (ZITADEL roles)", "urn:zitadel:iam:org:project:roles", `{"sub":"1","urn:zitadel:iam:org:project:roles":{"reader":{"1":"a"},"writer":{"1":"a"}}}`, []string{"reader", "writer"}},
		{"other claim ignored", "roles", `{"sub":"1","groups":["eng"]}`, nil},
		{"not strings", "", `{"sub":"1","groups":[1,true,{"a":1}]}`, nil},
		{"too long dropped, not cut", "", `{"sub":"1","groups":["eng","` + long + `"]}`, []string{"eng"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := userinfoServer(t, "application/json", http.StatusOK, tt.body)
			u := NewOIDC("oidc", "https://idp.example.com", OIDCEndpoints{UserInfoEndpoint: srv.URL}, Config{HTTPClient: srv.Client()})
			u.GroupsClaim = tt.claim
			id, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, id.Groups); diff != "" {
				t.Errorf("Groups (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeGitHub is GitHub's REST API as the sign-in reads it, on loopback:
// /user, /user/emails, /user/orgs and /user/teams (paginated), for the
// token "at-1". orgs is how many organizations the user is in; failOrgs
// makes /user/orgs answer that status.
type fakeGitHub struct {
	orgs, failOrgs int
	publicEmail    bool
	calls          []string
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer at-1" {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	g.calls = append(g.calls, r.URL.Path+"?"+r.URL.RawQuery)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/user":
		email := "null"
		if g.publicEmail {
			email = `"octocat@github.com"`
		}
		fmt.Fprintf(w, `{"login":"octocat","id":583231,"email":%s}`, email)
	case "/user/emails":
		w.Write([]byte(`[{"email":"old@example.org","primary":false,"verified":true},{"email":"octo@example.com","primary":true,"verified":true}]`))
	case "/user/orgs":
		if g.failOrgs != 0 {
			http.Error(w, `{"message":"no"}`, g.failOrgs)
			return
		}
		var items []string
		for i := (page - 1) * per; i < min(page*per, g.orgs); i++ {
			items = append(items, fmt.Sprintf(`{"login":"org-%03d"}`, i))
		}
		fmt.Fprintf(w, "[%s]", strings.Join(items, ","))
	case "/user/teams":
		w.Write([]byte(`[{"slug":"platform","organization":{"login":"org-000"}},{"slug":"","organization":{"login":"x"}}]`))
	default:
		http.NotFound(w, r)
	}
}

func TestFetchIdentityGitHubMemberships(t *testing.T) {
	gh := &fakeGitHub{orgs: 101}
	srv := httptest.NewServer(gh)
	t.Cleanup(srv.Close)
	u := GitHub(Config{HTTPClient: srv.Client()})
	u.UserInfoURL = srv.URL + "/user"
	u.UseGitHubMemberships()
	if got := strings.Join(u.OAuth2.Scopes, " "); got != "read:user user:email read:org" {
		t.Errorf("scopes = %q", got)
	}
	id, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"})
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "octo@example.com" || !id.EmailVerified {
		t.Errorf("email = %q verified %v, want the primary verified address", id.Email, id.EmailVerified)
	}
	if len(id.Groups) != MaxGroups || id.Groups[0] != "org-000" {
		t.Errorf("groups = %v, want the first %d of 102", id.Groups, MaxGroups)
	}
	if err := (&AllowList{Orgs: []string{"org-100"}}).Check(id); err != nil {
		t.Errorf("the 101st organization (second page) is not seen: %v", err)
	}
	if err := (&AllowList{Teams: []string{"org-000/platform"}}).Check(id); err != nil {
		t.Errorf("the team is not seen: %v", err)
	}
	want := []string{"/user?", "/user/emails?", "/user/orgs?per_page=100&page=1", "/user/orgs?per_page=100&page=2", "/user/teams?per_page=100&page=1"}
	if diff := cmp.Diff(want, gh.calls); diff != "" {
		t.Errorf("API calls (-want +got):\n%s", diff)
	}

	t.Run("public email, no memberships", func(t *testing.T) {
		gh := &fakeGitHub{publicEmail: true}
		srv := httptest.NewServer(gh)
		t.Cleanup(srv.Close)
		u := GitHub(Config{HTTPClient: srv.Client()})
		u.UserInfoURL = srv.URL + "/user"
		id, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"})
		if err != nil {
			t.Fatal(err)
		}
		if id.Email != "octocat@github.com" || !id.EmailVerified || id.Groups != nil || len(gh.calls) != 1 {
			t.Errorf("identity %+v after calls %v", id, gh.calls)
		}
	})
	t.Run("orgs refused", func(t *testing.T) {
		srv := httptest.NewServer(&fakeGitHub{failOrgs: http.StatusForbidden})
		t.Cleanup(srv.Close)
		u := GitHub(Config{HTTPClient: srv.Client()})
		u.UserInfoURL = srv.URL + "/user"
		u.UseGitHubMemberships()
		_, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"})
		if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "memberships: HTTP 403") {
			t.Errorf("FetchIdentity = %v, want a memberships refusal", err)
		}
	})
	t.Run("orgs unavailable", func(t *testing.T) {
		srv := httptest.NewServer(&fakeGitHub{failOrgs: http.StatusBadGateway})
		t.Cleanup(srv.Close)
		u := GitHub(Config{HTTPClient: srv.Client()})
		u.UserInfoURL = srv.URL + "/user"
		u.UseGitHubMemberships()
		if _, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("FetchIdentity = %v, want ErrUnavailable", err)
		}
	})
}

func TestVaultRefreshRechecksAllowList(t *testing.T) {
	fx := newVaultFixture(t, issue(true), &VaultOptions{Allow: &AllowList{Groups: []string{"eng"}}})
	member := `{"sub":"user-1","groups":["eng"]}`
	fx.up.userinfo.Store(&member)
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	if _, err := fx.vault.Token(t.Context(), "g1"); err != nil {
		t.Fatalf("a member's refresh: %v", err)
	}
	if fx.stores.revoked["g1"] {
		t.Fatal("a member's grant was revoked")
	}

	removed := `{"sub":"user-1","groups":["sales"]}`
	fx.up.userinfo.Store(&removed)
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	_, err := fx.vault.Token(t.Context(), "g1")
	if !errors.Is(err, ErrReauthorize) || !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("refresh of a removed user = %v, want ErrReauthorize and ErrNotAllowed", err)
	}
	if !fx.stores.revoked["g1"] || fx.stores.record("g1") != nil {
		t.Error("the removed user's grant was not revoked, or the upstream tokens kept")
	}
	if _, err := fx.vault.Token(t.Context(), "g1"); !errors.Is(err, ErrReauthorize) {
		t.Errorf("next use = %v, want ErrReauthorize", err)
	}
	fx.checkNoSecrets(t, err)
}

func TestVaultRefreshRecheckOutageKeepsGrant(t *testing.T) {
	fx := newVaultFixture(t, issue(true), &VaultOptions{Allow: &AllowList{Groups: []string{"eng"}}})
	fx.up.up.UserInfoURL = "http://127.0.0.1:1/userinfo" // nothing listens
	fx.put(t, "g1", 10*time.Second, oldRefresh)
	tok, err := fx.vault.Token(t.Context(), "g1")
	if err != nil || tok.AccessToken != newAccess {
		t.Fatalf("Token = %v, %v; want the refreshed token while the userinfo endpoint is down", tok, err)
	}
	if fx.stores.revoked["g1"] {
		t.Error("an outage revoked the grant")
	}
}

// FuzzClaimGroups: whatever an upstream puts in the groups claim, the
// groups are sorted, unique, within MaxGroups and MaxGroupLen, and a
// check against them does not fail but by refusing.
func FuzzClaimGroups(f *testing.F) {
	f.Add(`["eng","admins","eng",""]`)
	f.Add(`"eng"`)
	f.Add(`{"reader":{"1":"a"},"writer":null}`)
	f.Add(`[1,true,null,{"a":1},["x"]]`)
	f.Fuzz(func(t *testing.T, claim string) {
		var v any
		if json.Unmarshal([]byte(claim), &v) != nil {
			return
		}
		all := tokencheck.Bound(tokencheck.ClaimNames(v), 0)
		g := tokencheck.Bound(all, MaxGroups)
		if len(g) > MaxGroups || !slices.IsSorted(g) || len(slices.Compact(slices.Clone(g))) != len(g) {
			t.Fatalf("groups %q", g)
		}
		for _, x := range all {
			if x == "" || len(x) > MaxGroupLen {
				t.Fatalf("group %q kept", x)
			}
		}
		id := &Identity{Subject: "1", Groups: g, allGroups: all}
		if err := (&AllowList{Groups: []string{"eng"}}).Check(id); err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("Check = %v", err)
		}
	})
}
