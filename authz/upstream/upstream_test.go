package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"
)

// Secrets of the upstream tests: none may appear in an error or a log.
const (
	testClientSecret = "client-s3cret-3f9a"
	testCode         = "code-s3cret-77d1"
	testVerifier     = "verifier-s3cret-0123456789-0123456789-0123456789"
)

// newIssuer serves a discovery document built by doc from the server's own
// URL, and returns that URL.
func newIssuer(t *testing.T, doc func(base string) map[string]any) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc(srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func oidcDoc(methods ...string) func(string) map[string]any {
	return func(base string) map[string]any {
		d := map[string]any{
			"issuer":                 base,
			"authorization_endpoint": base + "/authorize",
			"token_endpoint":         base + "/token",
			"userinfo_endpoint":      base + "/userinfo",
		}
		if methods != nil {
			d["token_endpoint_auth_methods_supported"] = methods
		}
		return d
	}
}

func TestDiscoverOIDC(t *testing.T) {
	for _, tt := range []struct {
		name    string
		methods []string
		want    oauth2.AuthStyle
	}{
		{"basic preferred", []string{"client_secret_post", "client_secret_basic"}, oauth2.AuthStyleInHeader},
		{"post only", []string{"client_secret_post", "private_key_jwt"}, oauth2.AuthStyleInParams},
		{"neither", []string{"private_key_jwt"}, oauth2.AuthStyleAutoDetect},
		{"not advertised", nil, oauth2.AuthStyleAutoDetect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			issuer := newIssuer(t, oidcDoc(tt.methods...))
			u, err := DiscoverOIDC(t.Context(), issuer, Config{
				ClientID: "client-1", ClientSecret: testClientSecret, RedirectURL: "https://mcp.example.com/callback",
			})
			if err != nil {
				t.Fatal(err)
			}
			want := oauth2.Config{
				ClientID:     "client-1",
				ClientSecret: testClientSecret,
				Endpoint:     oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/token", AuthStyle: tt.want},
				RedirectURL:  "https://mcp.example.com/callback",
				Scopes:       []string{"openid", "profile", "email"},
			}
			if diff := cmp.Diff(want, u.OAuth2, cmpopts.IgnoreUnexported(oauth2.Config{})); diff != "" {
				t.Errorf("OAuth2 (-want +got):\n%s", diff)
			}
			if u.Name != "oidc" || u.Issuer != issuer || u.UserInfoURL != issuer+"/userinfo" || u.HTTPClient == nil {
				t.Errorf("Upstream = %q %q %q %v", u.Name, u.Issuer, u.UserInfoURL, u.HTTPClient)
			}
		})
	}
}

func TestDiscoverOIDCRefuses(t *testing.T) {
	with := func(k string, v any) func(string) map[string]any {
		return func(base string) map[string]any {
			d := oidcDoc("client_secret_basic")(base)
			if v == nil {
				delete(d, k)
			} else {
				d[k] = v
			}
			return d
		}
	}
	for _, tt := range []struct {
		name string
		doc  func(string) map[string]any
		want string
	}{
		{"issuer of another server", with("issuer", "https://evil.example"), "mix-up"},
		{"issuer with a trailing slash", func(base string) map[string]any {
			return with("issuer", base+"/")(base)
		}, "mix-up"},
		{"no issuer", with("issuer", nil), "mix-up"},
		{"no authorization endpoint", with("authorization_endpoint", nil), "no authorization_endpoint"},
		{"no token endpoint", with("token_endpoint", nil), "no token_endpoint"},
		{"no userinfo endpoint", with("userinfo_endpoint", nil), "no userinfo_endpoint"},
		{"plain http endpoint", with("token_endpoint", "http://idp.example/token"), "token_endpoint: not https"},
		{"relative endpoint", with("userinfo_endpoint", "/userinfo"), "userinfo_endpoint: not an absolute URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			issuer := newIssuer(t, tt.doc)
			_, err := DiscoverOIDC(t.Context(), issuer, Config{ClientID: "c", ClientSecret: testClientSecret})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DiscoverOIDC = %v, want an error with %q", err, tt.want)
			}
			noSecrets(t, err.Error())
		})
	}
}

func TestDiscoverOIDCTransport(t *testing.T) {
	other := newIssuer(t, oidcDoc())
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other+"/.well-known/openid-configuration", http.StatusFound)
		}, "upstream discovery: HTTP 302"},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusInternalServerError)
		}, "upstream discovery: HTTP 500"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"issuer":"` + strings.Repeat("a", maxDiscoveryBytes) + `"}`))
		}, "upstream discovery: no usable answer"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>"))
		}, "not JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			_, err := DiscoverOIDC(t.Context(), srv.URL, Config{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DiscoverOIDC = %v, want an error with %q", err, tt.want)
			}
		})
	}

	for _, issuer := range []string{"http://idp.example", "https://idp.example/?q=1", "https://idp.example#x", "idp.example", "https://user:pw@idp.example"} {
		if _, err := DiscoverOIDC(t.Context(), issuer, Config{}); err == nil {
			t.Errorf("DiscoverOIDC(%q) succeeded", issuer)
		}
	}
}

func TestGoogleAuthCodeURL(t *testing.T) {
	issuer := newIssuer(t, oidcDoc("client_secret_post", "client_secret_basic"))
	u, err := google(t.Context(), issuer, Config{ClientID: "client-1", RedirectURL: "https://mcp.example.com/callback"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "google" {
		t.Errorf("Name = %q", u.Name)
	}
	got, err := url.Parse(u.AuthCodeURL("state-1", testVerifier))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"access_type":           {"offline"},
		"prompt":                {"consent"},
		"client_id":             {"client-1"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(testVerifier)},
		"code_challenge_method": {"S256"},
		"redirect_uri":          {"https://mcp.example.com/callback"},
		"response_type":         {"code"},
		"scope":                 {"openid profile email"},
		"state":                 {"state-1"},
	}
	if diff := cmp.Diff(want, got.Query()); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	if got.Scheme+"://"+got.Host+got.Path != issuer+"/authorize" {
		t.Errorf("AuthCodeURL = %s", got)
	}
	if strings.Contains(got.String(), testVerifier) {
		t.Error("the authorization URL holds the verifier")
	}
}

func TestGitHubAuthCodeURL(t *testing.T) {
	u := GitHub(Config{ClientID: "Iv1.abc", ClientSecret: testClientSecret, RedirectURL: "https://mcp.example.com/callback"})
	got, err := url.Parse(u.AuthCodeURL("state-1", testVerifier))
	if err != nil {
		t.Fatal(err)
	}
	if got.Host != "github.com" || got.Path != "/login/oauth/authorize" {
		t.Errorf("AuthCodeURL = %s", got)
	}
	q := got.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(testVerifier) {
		t.Errorf("PKCE parameters = %v", q)
	}
	if q.Get("scope") != "read:user user:email" || q.Get("client_id") != "Iv1.abc" {
		t.Errorf("query = %v", q)
	}
	if u.OAuth2.Endpoint.TokenURL != "https://github.com/login/oauth/access_token" || u.UserInfoURL != "https://api.github.com/user" {
		t.Errorf("endpoints = %+v, %s", u.OAuth2.Endpoint, u.UserInfoURL)
	}
	if strings.Contains(got.String(), testClientSecret) {
		t.Error("the authorization URL holds the client secret")
	}
}

func TestExchange(t *testing.T) {
	for _, tt := range []struct {
		name        string
		status      int
		body        string
		wantErr     string
		unavailable bool
	}{
		{name: "ok", status: 200, body: `{"access_token":"at-new","token_type":"Bearer","refresh_token":"rt-new","expires_in":3600}`},
		{name: "invalid_grant", status: 400, body: `{"error":"invalid_grant","error_description":"bad code ` + testCode + `"}`,
			wantErr: "authz: upstream token exchange: invalid_grant (HTTP 400)"},
		{name: "outage", status: 503, body: "code=" + testCode + "&code_verifier=" + testVerifier,
			wantErr: "authz: upstream token exchange: HTTP 503", unavailable: true},
		{name: "no access token", status: 200, body: `{"token_type":"Bearer"}`,
			wantErr: "authz: upstream token exchange: no usable answer", unavailable: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id, secret, _ := r.BasicAuth()
				if r.FormValue("grant_type") != "authorization_code" || r.FormValue("code") != testCode ||
					r.FormValue("code_verifier") != testVerifier || id != "client-1" || secret != testClientSecret {
					http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			u := &Provider{
				OAuth2: oauth2.Config{ClientID: "client-1", ClientSecret: testClientSecret,
					Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader}},
				HTTPClient: srv.Client(),
			}
			tok, err := u.Exchange(t.Context(), testCode, testVerifier)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tok.AccessToken != "at-new" || tok.RefreshToken != "rt-new" || tok.Expiry.IsZero() {
					t.Errorf("token = %+v", tok)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Exchange = %v, want %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.unavailable {
				t.Errorf("errors.Is(ErrUpstreamUnavailable) = %v", got)
			}
			noSecrets(t, err.Error())
		})
	}
}

func TestUpstreamErrorTransient(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want bool
	}{
		{Error{}, true},
		{Error{Status: 500}, true},
		{Error{Status: 503, Code: "invalid_grant"}, true},
		{Error{Status: 429}, true},
		{Error{Status: 408}, true},
		{Error{Status: 400, Code: "temporarily_unavailable"}, true},
		{Error{Status: 200}, true},
		{Error{Status: 400, Code: "invalid_grant"}, false},
		{Error{Status: 200, Code: "bad_refresh_token"}, false},
		{Error{Status: 401}, false},
		{Error{Status: 403}, false},
	} {
		if got := errors.Is(&tt.e, ErrUnavailable); got != tt.want {
			t.Errorf("%+v: unavailable = %v, want %v", tt.e, got, tt.want)
		}
	}
}

// userinfoServer answers GET with body for the access token "at-1".
func userinfoServer(t *testing.T, wantAccept string, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if got := r.Header.Get("Accept"); got != wantAccept {
			t.Errorf("Accept = %q, want %q", got, wantAccept)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchIdentityGitHub(t *testing.T) {
	for _, tt := range []struct {
		name    string
		body    string
		want    *Identity
		wantErr string
	}{
		{
			name: "user",
			// An id above 2^53: decoding it as a float64 would round it.
			body: `{"login":"octocat","id":9007199254740993,"name":"The Octocat","email":"octocat@github.com","site_admin":false}`,
			want: &Identity{Subject: "9007199254740993", Login: "octocat", UniqueLogin: true, Name: "The Octocat", Email: "octocat@github.com", EmailVerified: true},
		},
		{
			name: "no public name or email",
			body: `{"login":"ghost","id":10137,"name":null,"email":null}`,
			want: &Identity{Subject: "10137", Login: "ghost", UniqueLogin: true},
		},
		{name: "no id", body: `{"login":"octocat"}`, wantErr: "no numeric id"},
		{name: "string id", body: `{"login":"octocat","id":"583231"}`, wantErr: "no numeric id"},
		{name: "negative id", body: `{"id":-1}`, wantErr: "not a positive integer"},
		{name: "fractional id", body: `{"id":1.5}`, wantErr: "not a positive integer"},
		{name: "zero id", body: `{"id":0}`, wantErr: "not a positive integer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := userinfoServer(t, "application/vnd.github+json", http.StatusOK, tt.body)
			u := GitHub(Config{HTTPClient: srv.Client()})
			u.UserInfoURL = srv.URL
			got, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FetchIdentity = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Raw["login"] != got.Login {
				t.Errorf("Raw = %v", got.Raw)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Identity{}, "Raw"), cmpopts.IgnoreUnexported(Identity{})); diff != "" {
				t.Errorf("Identity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetchIdentityOIDC(t *testing.T) {
	for _, tt := range []struct {
		name    string
		body    string
		want    *Identity
		wantErr string
	}{
		{
			name: "full",
			body: `{"sub":"248289761001","name":"Jane Doe","preferred_username":"j.doe","email":"janedoe@example.com","email_verified":true}`,
			want: &Identity{Subject: "248289761001", Login: "j.doe", Name: "Jane Doe", Email: "janedoe@example.com", EmailVerified: true},
		},
		{
			name: "unverified email",
			body: `{"sub":"1","email":"someone@example.com","email_verified":false}`,
			want: &Identity{Subject: "1"},
		},
		{
			name: "email without email_verified",
			body: `{"sub":"1","email":"someone@example.com"}`,
			want: &Identity{Subject: "1", Email: "someone@example.com"},
		},
		{name: "no sub", body: `{"name":"Jane Doe"}`, wantErr: "no sub"},
		{name: "numeric sub", body: `{"sub":42}`, wantErr: "no sub"},
		{name: "not an object", body: `["sub"]`, wantErr: "upstream userinfo: no usable answer"},
		{name: "null", body: `null`, wantErr: "upstream userinfo: no usable answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := userinfoServer(t, "application/json", http.StatusOK, tt.body)
			u := &Provider{Name: "oidc", UserInfoURL: srv.URL, HTTPClient: srv.Client(), accept: "application/json", parse: parseOIDCIdentity}
			got, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: "at-1"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FetchIdentity = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Identity{}, "Raw"), cmpopts.IgnoreUnexported(Identity{})); diff != "" {
				t.Errorf("Identity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetchIdentityFailures(t *testing.T) {
	const secretToken = "at-s3cret-userinfo"
	for _, tt := range []struct {
		name        string
		status      int
		body        string
		wantErr     string
		unavailable bool
	}{
		{"rejected token", 401, `{"error":"invalid_token","token":"` + secretToken + `"}`, "authz: upstream userinfo: HTTP 401", false},
		{"outage", 502, secretToken, "authz: upstream userinfo: HTTP 502", true},
		{"too large", 200, `{"sub":"1","pad":"` + strings.Repeat("x", maxUserInfoBytes) + `"}`, "authz: upstream userinfo: no usable answer", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			u := &Provider{UserInfoURL: srv.URL, HTTPClient: srv.Client()}
			_, err := u.FetchIdentity(t.Context(), &oauth2.Token{AccessToken: secretToken})
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("FetchIdentity = %v, want %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.unavailable {
				t.Errorf("errors.Is(ErrUpstreamUnavailable) = %v", got)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		u := &Provider{UserInfoURL: srv.URL, HTTPClient: srv.Client()}
		_, err := u.FetchIdentity(ctx, &oauth2.Token{AccessToken: secretToken})
		if err == nil || err.Error() != "authz: upstream userinfo: timeout" || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("FetchIdentity = %v", err)
		}
	})

	t.Run("no token", func(t *testing.T) {
		u := &Provider{UserInfoURL: "https://idp.example/userinfo"}
		if _, err := u.FetchIdentity(t.Context(), &oauth2.Token{}); err == nil {
			t.Fatal("FetchIdentity without a token succeeded")
		}
	})
}

// noSecrets fails if s holds one of the upstream tests' secrets.
func noSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testClientSecret, testCode, testVerifier} {
		if strings.Contains(s, secret) {
			t.Errorf("%q holds a secret", s)
		}
	}
}
