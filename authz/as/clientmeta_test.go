package as

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
)

// nativeDefaults is what parseClientMetadata fills for a native client
// that sends only redirect_uris.
func nativeDefaults(redirects ...string) *ClientMetadata {
	return &ClientMetadata{
		RedirectURIs:            redirects,
		TokenEndpointAuthMethod: "none",
		GrantTypes:              []string{"authorization_code"},
		ResponseTypes:           []string{"code"},
		ApplicationType:         "native",
	}
}

func editMeta(m *ClientMetadata, edit func(*ClientMetadata)) *ClientMetadata {
	edit(m)
	return m
}

func TestParseClientMetadata(t *testing.T) {
	for _, tt := range []struct {
		name     string
		body     string
		want     *ClientMetadata
		wantCode authz.Code
		wantWhy  string
	}{
		{
			name: "only redirect_uris, loopback: native defaults",
			body: `{"redirect_uris":["http://127.0.0.1:3457/callback"]}`,
			want: nativeDefaults("http://127.0.0.1:3457/callback"),
		},
		{
			name: "conformance suite registration",
			body: `{"client_name":"conf","redirect_uris":["http://127.0.0.1:3457/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"response_types":["code"]}`,
			want: editMeta(nativeDefaults("http://127.0.0.1:3457/callback"), func(m *ClientMetadata) { m.ClientName = "conf" }),
		},
		{
			name: "mcp-remote style registration",
			body: `{"redirect_uris":["http://localhost:3334/oauth/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"MCP CLI Proxy","client_uri":"https://github.com/modelcontextprotocol/mcp-cli","software_id":"2e6dc280-f3c3-4e01-99a7-8181dbd1d23d","software_version":"0.1.0"}`,
			want: editMeta(nativeDefaults("http://localhost:3334/oauth/callback"), func(m *ClientMetadata) {
				m.GrantTypes = []string{"authorization_code", "refresh_token"}
				m.ClientName = "MCP CLI Proxy"
				m.ClientURI = "https://github.com/modelcontextprotocol/mcp-cli"
				m.SoftwareID = "2e6dc280-f3c3-4e01-99a7-8181dbd1d23d"
				m.SoftwareVersion = "0.1.0"
			}),
		},
		{
			name: "private-use schemes: native",
			body: `{"redirect_uris":["cursor://anysphere.cursor-retrieval/oauth/callback","com.example.app:/cb"]}`,
			want: nativeDefaults("cursor://anysphere.cursor-retrieval/oauth/callback", "com.example.app:/cb"),
		},
		{
			name: "https: web",
			body: `{"redirect_uris":["https://app.example.com/cb"],"client_name":"App"}`,
			want: editMeta(nativeDefaults("https://app.example.com/cb"), func(m *ClientMetadata) {
				m.ApplicationType = "web"
				m.ClientName = "App"
			}),
		},
		{
			name: "https with explicit native",
			body: `{"redirect_uris":["https://app.example.com/cb","com.example.app:/cb"],"application_type":"native"}`,
			want: nativeDefaults("https://app.example.com/cb", "com.example.app:/cb"),
		},
		{
			name: "every field",
			body: `{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"client_secret_basic","grant_types":["refresh_token","authorization_code"],"response_types":["code"],"client_name":"Émile's app","client_uri":"https://app.example.com","logo_uri":"https://app.example.com/logo.png","scope":"notes:read notes:write","contacts":["ops@example.com"],"tos_uri":"https://app.example.com/tos#top","policy_uri":"https://app.example.com/privacy","software_id":"app","software_version":"2.1","application_type":"web","client_id":"ignored-by-dcr"}`,
			want: &ClientMetadata{
				RedirectURIs:            []string{"https://app.example.com/cb"},
				TokenEndpointAuthMethod: "client_secret_basic",
				GrantTypes:              []string{"refresh_token", "authorization_code"},
				ResponseTypes:           []string{"code"},
				ClientName:              "Émile's app",
				ClientURI:               "https://app.example.com",
				LogoURI:                 "https://app.example.com/logo.png",
				Scope:                   "notes:read notes:write",
				Contacts:                []string{"ops@example.com"},
				TOSURI:                  "https://app.example.com/tos#top",
				PolicyURI:               "https://app.example.com/privacy",
				SoftwareID:              "app",
				SoftwareVersion:         "2.1",
				ApplicationType:         "web",
				ClientID:                "ignored-by-dcr",
			},
		},
		{
			name: "unknown fields are ignored",
			body: `{"redirect_uris":["http://[::1]/cb"],"jwks":{"keys":[{"kty":"EC"}]},"x":[1,{"y":null}],"Client_Name":"case variants are unknown fields","post_logout_redirect_uris":["javascript:alert(1)"]}`,
			want: nativeDefaults("http://[::1]/cb"),
		},
		{
			name: "null is absent",
			body: `{"redirect_uris":["http://[::1]/cb"],"client_name":null,"grant_types":null,"scope":null,"application_type":null}`,
			want: nativeDefaults("http://[::1]/cb"),
		},
		{
			name: "empty arrays and strings take the defaults",
			body: `{"redirect_uris":["http://[::1]/cb"],"grant_types":[],"response_types":[],"token_endpoint_auth_method":"","application_type":"","tos_uri":""}`,
			want: nativeDefaults("http://[::1]/cb"),
		},
		{
			name: "duplicates are dropped",
			body: `{"redirect_uris":["http://[::1]/cb","http://[::1]/cb"],"grant_types":["authorization_code","authorization_code"],"response_types":["code","code"]}`,
			want: nativeDefaults("http://[::1]/cb"),
		},
		{
			name: "scope is normalized",
			body: `{"redirect_uris":["http://[::1]/cb"],"scope":"  notes:read  notes:write notes:read "}`,
			want: editMeta(nativeDefaults("http://[::1]/cb"), func(m *ClientMetadata) { m.Scope = "notes:read notes:write" }),
		},
		{
			name: "client_name of 200 characters",
			body: `{"redirect_uris":["http://[::1]/cb"],"client_name":"` + strings.Repeat("é", 200) + `"}`,
			want: editMeta(nativeDefaults("http://[::1]/cb"), func(m *ClientMetadata) { m.ClientName = strings.Repeat("é", 200) }),
		},
		{
			name: "ten redirect URIs",
			body: `{"redirect_uris":["http://[::1]/0","http://[::1]/1","http://[::1]/2","http://[::1]/3","http://[::1]/4","http://[::1]/5","http://[::1]/6","http://[::1]/7","http://[::1]/8","http://[::1]/9"]}`,
			want: nativeDefaults("http://[::1]/0", "http://[::1]/1", "http://[::1]/2", "http://[::1]/3", "http://[::1]/4",
				"http://[::1]/5", "http://[::1]/6", "http://[::1]/7", "http://[::1]/8", "http://[::1]/9"),
		},

		// Not a JSON object.
		{name: "too large", body: `{"redirect_uris":["http://[::1]/cb"],"x":"` + strings.Repeat("a", 16<<10) + `"}`,
			wantCode: authz.InvalidClientMetadata, wantWhy: "larger than 16384 bytes"},
		{name: "empty body", body: ``, wantCode: authz.InvalidClientMetadata, wantWhy: "must be a JSON object"},
		{name: "null", body: `null`, wantCode: authz.InvalidClientMetadata, wantWhy: "must be a JSON object"},
		{name: "array", body: `[{"redirect_uris":["http://[::1]/cb"]}]`, wantCode: authz.InvalidClientMetadata, wantWhy: "must be a JSON object"},
		{name: "string", body: `"x"`, wantCode: authz.InvalidClientMetadata, wantWhy: "must be a JSON object"},
		{name: "truncated", body: `{"redirect_uris":["http://[::1]/cb"]`, wantCode: authz.InvalidClientMetadata, wantWhy: "not valid JSON"},
		{name: "bad JSON in an unknown field", body: `{"x":tru,"redirect_uris":["http://[::1]/cb"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "not valid JSON"},
		{name: "two objects", body: `{"redirect_uris":["http://[::1]/cb"]} {}`, wantCode: authz.InvalidClientMetadata, wantWhy: "data after the JSON object"},
		{name: "trailing garbage", body: `{"redirect_uris":["http://[::1]/cb"]}x`, wantCode: authz.InvalidClientMetadata, wantWhy: "data after the JSON object"},
		{name: "duplicate field", body: `{"redirect_uris":["https://good.com/cb"],"redirect_uris":["http://[::1]/cb"]}`,
			wantCode: authz.InvalidClientMetadata, wantWhy: "redirect_uris appears more than once"},

		// Wrong types.
		{name: "redirect_uris as a string", body: `{"redirect_uris":"http://[::1]/cb"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "redirect_uris must be an array of strings"},
		{name: "redirect_uris with a number", body: `{"redirect_uris":["http://[::1]/cb",1]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "redirect_uris must be an array of strings"},
		{name: "client_name as a number", body: `{"redirect_uris":["http://[::1]/cb"],"client_name":5}`, wantCode: authz.InvalidClientMetadata, wantWhy: "client_name must be a string"},
		{name: "grant_types as a string", body: `{"redirect_uris":["http://[::1]/cb"],"grant_types":"authorization_code"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "grant_types must be an array of strings"},
		{name: "scope as an array", body: `{"redirect_uris":["http://[::1]/cb"],"scope":["a"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "scope must be a string"},
		{name: "contacts with an object", body: `{"redirect_uris":["http://[::1]/cb"],"contacts":[{}]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "contacts must be an array of strings"},
		{name: "application_type as a bool", body: `{"redirect_uris":["http://[::1]/cb"],"application_type":true}`, wantCode: authz.InvalidClientMetadata, wantWhy: "application_type must be a string"},

		// Redirect URIs.
		{name: "no redirect_uris", body: `{"client_name":"x"}`, wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uris is required"},
		{name: "only a case variant of redirect_uris", body: `{"REDIRECT_URIS":["http://[::1]/cb"]}`, wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uris is required"},
		{name: "empty redirect_uris", body: `{"redirect_uris":[]}`, wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uris is required"},
		{name: "null redirect_uris", body: `{"redirect_uris":null}`, wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uris is required"},
		{name: "eleven redirect_uris",
			body:     `{"redirect_uris":["http://[::1]/0","http://[::1]/1","http://[::1]/2","http://[::1]/3","http://[::1]/4","http://[::1]/5","http://[::1]/6","http://[::1]/7","http://[::1]/8","http://[::1]/9","http://[::1]/10"]}`,
			wantCode: authz.InvalidRedirectURI, wantWhy: "at most 10"},
		{name: "javascript redirect", body: `{"redirect_uris":["http://[::1]/cb","JaVaScRiPt:alert(1)"]}`,
			wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uri 'JaVaScRiPt:alert(1)': scheme javascript is not allowed"},
		{name: "redirect with escaped newline", body: `{"redirect_uris":["https://good.com/cb\n"]}`,
			wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uri 'https://good.com/cb%0A': must not contain whitespace"},
		{name: "null entry", body: `{"redirect_uris":[null]}`, wantCode: authz.InvalidRedirectURI, wantWhy: "must not be empty"},
		{name: "userinfo redirect", body: `{"redirect_uris":["https://good.com@evil.com/"]}`, wantCode: authz.InvalidRedirectURI, wantWhy: "userinfo"},
		{name: "mixed https and loopback defaults to web", body: `{"redirect_uris":["https://app.example.com/cb","http://127.0.0.1/cb"]}`,
			wantCode: authz.InvalidRedirectURI, wantWhy: "web clients must use https (application_type defaulted to web"},
		{name: "explicit web with loopback", body: `{"redirect_uris":["http://127.0.0.1/cb"],"application_type":"web"}`,
			wantCode: authz.InvalidRedirectURI, wantWhy: "web clients must use https"},
		{name: "explicit web with private-use", body: `{"redirect_uris":["com.example.app:/cb"],"application_type":"web"}`,
			wantCode: authz.InvalidRedirectURI, wantWhy: "only allowed for native clients"},

		// Other fields.
		{name: "application_type case", body: `{"redirect_uris":["http://[::1]/cb"],"application_type":"Native"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "application_type must be native or web"},
		{name: "application_type other", body: `{"redirect_uris":["http://[::1]/cb"],"application_type":"browser"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "application_type"},
		{name: "private_key_jwt", body: `{"redirect_uris":["http://[::1]/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "token_endpoint_auth_method"},
		{name: "client_secret_jwt", body: `{"redirect_uris":["http://[::1]/cb"],"token_endpoint_auth_method":"client_secret_jwt"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "token_endpoint_auth_method"},
		{name: "implicit grant", body: `{"redirect_uris":["http://[::1]/cb"],"grant_types":["implicit"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "not 'implicit'"},
		{name: "client_credentials grant", body: `{"redirect_uris":["http://[::1]/cb"],"grant_types":["authorization_code","client_credentials"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "not 'client_credentials'"},
		{name: "password grant", body: `{"redirect_uris":["http://[::1]/cb"],"grant_types":["password"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "grant_types"},
		{name: "token response type", body: `{"redirect_uris":["http://[::1]/cb"],"response_types":["code","token"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "not 'token'"},
		{name: "refresh_token without authorization_code", body: `{"redirect_uris":["http://[::1]/cb"],"grant_types":["refresh_token"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "exactly when"},
		{name: "client_name too long", body: `{"redirect_uris":["http://[::1]/cb"],"client_name":"` + strings.Repeat("a", 201) + `"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "at most 200"},
		{name: "redirect_uri too long", body: `{"redirect_uris":["http://127.0.0.1/` + strings.Repeat("a", 500) + `"]}`, wantCode: authz.InvalidRedirectURI, wantWhy: "at most 512 bytes"},
		{name: "client_uri too long", body: `{"redirect_uris":["http://[::1]/cb"],"client_uri":"https://app.example.com/` + strings.Repeat("a", 500) + `"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "client_uri must be at most 512 bytes"},
		{name: "scope too long", body: `{"redirect_uris":["http://[::1]/cb"],"scope":"` + strings.Repeat("a ", 600) + `"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "scope must be at most 1024 bytes"},
		{name: "software_id too long", body: `{"redirect_uris":["http://[::1]/cb"],"software_id":"` + strings.Repeat("a", 129) + `"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "software_id must be at most 128 bytes"},
		{name: "software_version too long", body: `{"redirect_uris":["http://[::1]/cb"],"software_version":"` + strings.Repeat("a", 129) + `"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "software_version must be at most 128 bytes"},
		{name: "too many contacts", body: `{"redirect_uris":["http://[::1]/cb"],"contacts":["a","b","c","d","e","f"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "contacts may hold at most 5"},
		{name: "contact too long", body: `{"redirect_uris":["http://[::1]/cb"],"contacts":["` + strings.Repeat("a", 255) + `"]}`, wantCode: authz.InvalidClientMetadata, wantWhy: "at most 254 bytes"},
		{name: "too large once stored", body: `{"redirect_uris":` + ampersandURIs + `}`, wantCode: authz.InvalidClientMetadata, wantWhy: "once stored"},
		{name: "client_name with NUL", body: `{"redirect_uris":["http://[::1]/cb"],"client_name":"a\u0000b"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "control"},
		{name: "client_name with newline", body: `{"redirect_uris":["http://[::1]/cb"],"client_name":"Good\nApprove"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "control"},
		{name: "client_name with RTL override", body: `{"redirect_uris":["http://[::1]/cb"],"client_name":"abc\u202egpj.exe"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "control"},
		{name: "http client_uri", body: `{"redirect_uris":["http://[::1]/cb"],"client_uri":"http://app.example.com"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "client_uri 'http://app.example.com': must be an https URL"},
		{name: "javascript logo_uri", body: `{"redirect_uris":["http://[::1]/cb"],"logo_uri":"javascript:alert(1)"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "logo_uri"},
		{name: "data logo_uri", body: `{"redirect_uris":["http://[::1]/cb"],"logo_uri":"data:image/png;base64,AAAA"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "logo_uri"},
		{name: "relative tos_uri", body: `{"redirect_uris":["http://[::1]/cb"],"tos_uri":"/tos"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "tos_uri"},
		{name: "policy_uri with userinfo", body: `{"redirect_uris":["http://[::1]/cb"],"policy_uri":"https://good.com@evil.com/"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "userinfo"},
		{name: "policy_uri with space", body: `{"redirect_uris":["http://[::1]/cb"],"policy_uri":"https://good.com/a b"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "whitespace"},
		{name: "scope with a quote", body: `{"redirect_uris":["http://[::1]/cb"],"scope":"a \"b"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "invalid scope token"},
		{name: "scope with a tab", body: `{"redirect_uris":["http://[::1]/cb"],"scope":"a\tb"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "invalid scope token"},
		{name: "scope with non-ASCII", body: `{"redirect_uris":["http://[::1]/cb"],"scope":"café"}`, wantCode: authz.InvalidClientMetadata, wantWhy: "invalid scope token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseClientMetadata([]byte(tt.body))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ParseClientMetadata: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("metadata (-want +got):\n%s", diff)
				}
				return
			}
			if got != nil {
				t.Errorf("got metadata %+v with an error", got)
			}
			var e *authz.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error %s", err, tt.wantCode)
			}
			if e.Code != tt.wantCode || e.Status != 400 {
				t.Errorf("code, status = %s, %d; want %s, 400 (%s)", e.Code, e.Status, tt.wantCode, e.Description)
			}
			if !strings.Contains(e.Description, tt.wantWhy) {
				t.Errorf("description %q does not say %q", e.Description, tt.wantWhy)
			}
			if authz.WireText(e.Description) != e.Description {
				t.Errorf("description %q has characters RFC 6749 forbids", e.Description)
			}
		})
	}
}

// checkParsedMetadata checks what every accepted metadata must satisfy.
func checkParsedMetadata(t *testing.T, m *ClientMetadata) {
	t.Helper()
	if n := len(m.RedirectURIs); n < 1 || n > maxRedirectURIs {
		t.Fatalf("%d redirect URIs", n)
	}
	if m.ApplicationType != ApplicationTypeNative && m.ApplicationType != ApplicationTypeWeb {
		t.Fatalf("application_type %q", m.ApplicationType)
	}
	for _, u := range m.RedirectURIs {
		if err := validateRedirectURI(u, m.ApplicationType); err != nil {
			t.Fatalf("accepted redirect URI %q: %v", u, err)
		}
	}
	if !slices.Contains([]string{"none", "client_secret_basic", "client_secret_post"}, m.TokenEndpointAuthMethod) {
		t.Fatalf("token_endpoint_auth_method %q", m.TokenEndpointAuthMethod)
	}
	if len(m.GrantTypes) == 0 || !slices.Contains(m.GrantTypes, "authorization_code") {
		t.Fatalf("grant_types %q", m.GrantTypes)
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			t.Fatalf("grant_types %q", m.GrantTypes)
		}
	}
	if diff := cmp.Diff([]string{"code"}, m.ResponseTypes); diff != "" {
		t.Fatalf("response_types (-want +got):\n%s", diff)
	}
	if utf8.RuneCountInString(m.ClientName) > maxClientNameRunes {
		t.Fatalf("client_name of %d characters", utf8.RuneCountInString(m.ClientName))
	}
	if s, err := normalizeScope(m.Scope); err != nil || s != m.Scope {
		t.Fatalf("scope %q is not normalized (%q, %v)", m.Scope, s, err)
	}
	for _, u := range []string{m.ClientURI, m.LogoURI, m.TOSURI, m.PolicyURI} {
		if u != "" && !strings.HasPrefix(u, "https://") {
			t.Fatalf("informational URL %q is not https", u)
		}
	}
}

func FuzzParseClientMetadata(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://127.0.0.1:3457/callback"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"client_name":"App","scope":"a b a","grant_types":["authorization_code","refresh_token"]}`,
		`{"redirect_uris":["com.example.app:/cb"],"application_type":"native","token_endpoint_auth_method":"client_secret_post"}`,
		`{"redirect_uris":["https://a.example/cb","http://[::1]/cb"],"application_type":"native","logo_uri":"https://a.example/l.png"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{"redirect_uris":"x","redirect_uris":[]}`,
		`[]`, `null`, `{"a":{"b":[1,2,{"c":null}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseClientMetadata(body)
		if err != nil {
			var e *authz.Error
			if m != nil || !errors.As(err, &e) || (e.Code != authz.InvalidClientMetadata && e.Code != authz.InvalidRedirectURI) {
				t.Fatalf("refusal %v (metadata %v) is not an invalid_client_metadata/invalid_redirect_uri *Error", err, m)
			}
			if authz.WireText(e.Description) != e.Description {
				t.Fatalf("description %q has characters RFC 6749 forbids", e.Description)
			}
			return
		}
		checkParsedMetadata(t, m)
		// Parsing is idempotent: what we store parses back to itself.
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > maxClientMetadataBytes {
			return // escaping grew it past the limit
		}
		again, err := parseClientMetadata(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("re-parse (-first +second):\n%s", diff)
		}
	})
}

func TestClientMetadataGolden(t *testing.T) {
	in := `{
		"redirect_uris": ["http://127.0.0.1/callback", "cursor://anysphere.cursor-retrieval/oauth/callback"],
		"grant_types": ["authorization_code", "refresh_token"],
		"client_name": "Example MCP client",
		"client_uri": "https://client.example.com",
		"logo_uri": "https://client.example.com/logo.png",
		"scope": "notes:read  notes:write",
		"contacts": ["ops@client.example.com"],
		"tos_uri": "https://client.example.com/tos",
		"policy_uri": "https://client.example.com/privacy",
		"software_id": "example-client",
		"software_version": "1.4.2",
		"jwks_uri": "https://client.example.com/jwks.json"
	}`
	m, err := parseClientMetadata([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	first, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	authztest.CheckJSONGolden(t, "clientmeta", first)

	// marshal → unmarshal → marshal is stable, and so is parsing.
	var back ClientMetadata
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	second, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(first), string(second)); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
	reparsed, err := parseClientMetadata(first)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, reparsed); diff != "" {
		t.Errorf("re-parse (-first +second):\n%s", diff)
	}
}

func TestValidateMetadataDocument(t *testing.T) {
	const docURL = "https://client.example.com/oauth/metadata.json"
	good := func() *ClientMetadata {
		return &ClientMetadata{
			ClientID:                docURL,
			ClientName:              "Example",
			RedirectURIs:            []string{"http://127.0.0.1/cb", "https://client.example.com/cb"},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code"},
			ResponseTypes:           []string{"code"},
			ApplicationType:         "native",
		}
	}
	for _, tt := range []struct {
		name     string
		doc      *ClientMetadata
		url      string
		wantCode authz.Code
		wantWhy  string
	}{
		{name: "valid", doc: good()},
		{name: "auth method left empty", doc: editMeta(good(), func(m *ClientMetadata) { m.TokenEndpointAuthMethod = "" })},
		{name: "url with query", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientID = docURL + "?v=1" }), url: docURL + "?v=1"},

		{name: "nil document", doc: nil, wantCode: authz.InvalidClientMetadata, wantWhy: "empty"},
		{name: "client_id differs", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientID = "https://client.example.com/other.json" }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "must equal its URL"},
		{name: "client_id differs by a trailing slash", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientID = docURL + "/" }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "must equal its URL"},
		{name: "client_id differs by case", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientID = strings.ToUpper(docURL) }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "must equal its URL"},
		{name: "client_id missing", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientID = "" }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "must equal its URL"},
		{name: "client_name missing", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientName = "" }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "client_name is required"},
		{name: "client_name blank", doc: editMeta(good(), func(m *ClientMetadata) { m.ClientName = "   " }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "client_name is required"},
		{name: "redirect_uris missing", doc: editMeta(good(), func(m *ClientMetadata) { m.RedirectURIs = nil }),
			wantCode: authz.InvalidRedirectURI, wantWhy: "redirect_uris is required"},
		{name: "bad redirect URI", doc: editMeta(good(), func(m *ClientMetadata) { m.RedirectURIs = []string{"http://evil.com/cb"} }),
			wantCode: authz.InvalidRedirectURI, wantWhy: "loopback"},
		{name: "private_key_jwt", doc: editMeta(good(), func(m *ClientMetadata) { m.TokenEndpointAuthMethod = "private_key_jwt" }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "private_key_jwt is not supported"},
		{name: "client secret", doc: editMeta(good(), func(m *ClientMetadata) { m.TokenEndpointAuthMethod = "client_secret_basic" }),
			wantCode: authz.InvalidClientMetadata, wantWhy: "must be none"},
		{name: "http document URL", url: "http://client.example.com/oauth/metadata.json",
			wantCode: authz.InvalidClientMetadata, wantWhy: "must be an https URL"},
		{name: "document URL without path", url: "https://client.example.com",
			wantCode: authz.InvalidClientMetadata, wantWhy: "must have a path"},
		{name: "document URL with root path", url: "https://client.example.com/",
			wantCode: authz.InvalidClientMetadata, wantWhy: "must have a path"},
		{name: "document URL with fragment", url: docURL + "#x",
			wantCode: authz.InvalidClientMetadata, wantWhy: "fragment"},
		{name: "document URL with userinfo", url: "https://u@client.example.com/m.json",
			wantCode: authz.InvalidClientMetadata, wantWhy: "userinfo"},
		{name: "document URL with dot-dot", url: "https://client.example.com/a/../m.json",
			wantCode: authz.InvalidClientMetadata, wantWhy: "path segments"},
		{name: "document URL with encoded dot-dot", url: "https://client.example.com/a/%2e%2e/m.json",
			wantCode: authz.InvalidClientMetadata, wantWhy: "path segments"},
		{name: "document URL with dot", url: "https://client.example.com/./m.json",
			wantCode: authz.InvalidClientMetadata, wantWhy: "path segments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = docURL
			}
			doc := tt.doc
			if doc == nil && tt.name != "nil document" {
				doc = editMeta(good(), func(m *ClientMetadata) { m.ClientID = url })
			}
			err := validateMetadataDocument(doc, url)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ValidateMetadataDocument: %v", err)
				}
				return
			}
			var e *authz.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error %s", err, tt.wantCode)
			}
			if e.Code != tt.wantCode {
				t.Errorf("code = %s, want %s (%s)", e.Code, tt.wantCode, e.Description)
			}
			if !strings.Contains(e.Description, tt.wantWhy) {
				t.Errorf("description %q does not say %q", e.Description, tt.wantWhy)
			}
		})
	}
}

func TestParseThenValidateMetadataDocument(t *testing.T) {
	const docURL = "https://client.example.com/oauth/metadata.json"
	body := `{"client_id":"` + docURL + `","client_name":"Example","redirect_uris":["http://127.0.0.1/cb"],"software_statement":"ignored"}`
	m, err := parseClientMetadata([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := validateMetadataDocument(m, docURL); err != nil {
		t.Fatalf("ValidateMetadataDocument: %v", err)
	}
}

// ampersandURIs is a JSON array of 10 distinct redirect URIs of 500 bytes
// that JSON escapes to about 2 KB each.
var ampersandURIs = func() string {
	uris := make([]string, 10)
	for i := range uris {
		uris[i] = "http://127.0.0.1/" + strconv.Itoa(i) + "?" + strings.Repeat("&", 480)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(uris)
	return b.String()
}()
