package as

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
)

// redirectCase is one row of the redirect URI table: ok lists the
// application types that accept raw; the others must refuse it with
// invalid_redirect_uri and a description containing why.
type redirectCase struct {
	name string
	raw  string
	ok   []string // of "native", "web", "" (unknown)
	why  string
}

var (
	allTypes   = []string{ApplicationTypeNative, ApplicationTypeWeb, ""}
	nativeOnly = []string{ApplicationTypeNative, ""}
)

var redirectCases = []redirectCase{
	// Accepted.
	{name: "https", raw: "https://app.example.com/callback", ok: allTypes},
	{name: "https with query", raw: "https://app.example.com/cb?tenant=a&x=1", ok: allTypes},
	{name: "https with port", raw: "https://app.example.com:8443/cb", ok: allTypes},
	{name: "https without path", raw: "https://app.example.com", ok: allTypes},
	{name: "https punycode host", raw: "https://xn--bcher-kva.example/cb", ok: allTypes},
	{name: "https IPv6 literal", raw: "https://[2001:db8::1]/cb", ok: allTypes},
	{name: "https IPv4 literal", raw: "https://203.0.113.5:8443/cb", ok: allTypes},
	{name: "https localhost", raw: "https://localhost/cb", ok: allTypes},
	{name: "mixed-case https scheme", raw: "HTTPS://App.Example.com/cb", ok: allTypes},
	{name: "percent-encoded newline is path data", raw: "https://good.com/cb%0a", ok: allTypes},
	{name: "percent-encoded slash is path data", raw: "https://good.com/a%2Fb", ok: allTypes},
	{name: "dot segments are not special", raw: "https://good.com/cb/../evil", ok: allTypes},
	{name: "at sign in the path is not userinfo", raw: "https://good.com/@evil.com", ok: allTypes},
	{name: "http 127.0.0.1", raw: "http://127.0.0.1/callback", ok: nativeOnly},
	{name: "http 127.0.0.1 any port", raw: "http://127.0.0.1:53123/callback", ok: nativeOnly},
	{name: "http 127.0.0.1 no path", raw: "http://127.0.0.1:8080", ok: nativeOnly},
	{name: "http [::1]", raw: "http://[::1]:8080/cb", ok: nativeOnly},
	{name: "http localhost", raw: "http://localhost:3000/oauth/callback", ok: nativeOnly},
	{name: "http LOCALHOST", raw: "http://LOCALHOST:3000/cb", ok: nativeOnly},
	{name: "reverse-domain scheme", raw: "com.example.app:/oauth2redirect/example-provider", ok: nativeOnly},
	{name: "reverse-domain scheme with authority", raw: "com.example.app://callback", ok: nativeOnly},
	{name: "cursor", raw: "cursor://anysphere.cursor-retrieval/oauth/user-abc/callback", ok: nativeOnly},
	{name: "vscode", raw: "vscode://vscode.github-authentication/did-authenticate?windowId=1", ok: nativeOnly},
	{name: "vscode-insiders", raw: "vscode-insiders://ms-vscode.remote/cb", ok: nativeOnly},
	{name: "claude", raw: "claude://claude.ai/oauth/callback", ok: nativeOnly},
	{name: "mixed-case private-use scheme", raw: "Com.Example.App:/cb", ok: nativeOnly},

	// Refused for every application type.
	{name: "empty", raw: "", why: "must not be empty"},
	{name: "too long", raw: "https://good.com/" + strings.Repeat("a", 1984), why: "at most 2000 bytes"},
	{name: "javascript", raw: "javascript:alert(1)", why: "scheme javascript is not allowed"},
	{name: "JaVaScRiPt", raw: "JaVaScRiPt:alert(1)", why: "scheme javascript is not allowed"},
	{name: "javascript with authority", raw: "javascript://%0aalert(1)", why: "scheme javascript is not allowed"},
	{name: "javascript with comment trick", raw: "javascript://good.com/%0Aalert(document.domain)", why: "scheme javascript is not allowed"},
	{name: "data", raw: "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", why: "scheme data is not allowed"},
	{name: "data with markup", raw: "data:text/html,<script>alert(1)</script>", why: "U+003C"},
	{name: "DATA", raw: "DATA:text/plain,x", why: "scheme data is not allowed"},
	{name: "vbscript", raw: "vbscript:msgbox(1)", why: "scheme vbscript is not allowed"},
	{name: "file", raw: "file:///etc/passwd", why: "scheme file is not allowed"},
	{name: "blob", raw: "blob:https://good.com/550e8400-e29b-41d4-a716-446655440000", why: "scheme blob is not allowed"},
	{name: "about", raw: "about:blank", why: "scheme about is not allowed"},
	{name: "ws", raw: "ws://localhost/cb", why: "scheme ws is not allowed"},
	{name: "leading space", raw: " https://good.com/cb", why: "whitespace"},
	{name: "trailing space", raw: "https://good.com/cb ", why: "whitespace"},
	{name: "inner space", raw: "https://good.com/c b", why: "whitespace"},
	{name: "tab", raw: "https://good.com/\tcb", why: "whitespace"},
	{name: "tab in scheme", raw: "java\tscript:alert(1)", why: "whitespace"},
	{name: "newline", raw: "https://good.com/cb\n", why: "whitespace"},
	{name: "CRLF", raw: "https://good.com/cb\r\nLocation: https://evil.com", why: "whitespace"},
	{name: "NUL", raw: "https://good.com/cb\x00.evil.com", why: "control"},
	{name: "DEL", raw: "https://good.com/cb\x7f", why: "control"},
	{name: "non-ASCII host", raw: "https://bücher.example/cb", why: "ASCII"},
	{name: "right-to-left override", raw: "https://good.com/\u202ecb", why: "ASCII"},
	{name: "userinfo", raw: "https://good.com@evil.com/", why: "userinfo"},
	{name: "user and password", raw: "https://user:pass@good.com/cb", why: "userinfo"},
	{name: "empty userinfo", raw: "https://@good.com/cb", why: "userinfo"},
	{name: "userinfo on loopback", raw: "http://good.com@127.0.0.1/cb", why: "userinfo"},
	{name: "backslash before at", raw: `https://evil.com\@good.com`, why: "U+005C"},
	{name: "backslashes as slashes", raw: `https:\\evil.com\cb`, why: "U+005C"},
	{name: "backslash in path", raw: `https://good.com/cb\..\evil`, why: "U+005C"},
	{name: "fragment", raw: "https://good.com/cb#frag", why: "fragment"},
	{name: "empty fragment", raw: "https://good.com/cb#", why: "fragment"},
	{name: "wildcard host", raw: "https://*.good.com/cb", why: "wildcard"},
	{name: "wildcard path", raw: "https://good.com/*", why: "wildcard"},
	{name: "relative", raw: "/callback", why: "absolute"},
	{name: "scheme-relative", raw: "//good.com/cb", why: "absolute"},
	{name: "https without host", raw: "https:///cb", why: "host"},
	{name: "https opaque", raw: "https:good.com/cb", why: "scheme:/path"},
	{name: "port zero", raw: "https://good.com:0/cb", why: "port"},
	{name: "port too large", raw: "https://good.com:65536/cb", why: "port"},
	{name: "port with leading zero", raw: "https://good.com:0443/cb", why: "port"},
	{name: "empty port", raw: "https://good.com:/cb", why: "empty port"},
	{name: "encoded slash in host", raw: "https://good.com%2fevil.com/cb", why: "not a valid URI"},
	{name: "encoded UTF-8 in host", raw: "https://b%C3%BCcher.example/cb", why: "invalid host"},
	{name: "underscore host", raw: "https://a_b.example/cb", why: "invalid host"},
	{name: "IPv6 zone", raw: "https://[fe80::1%25eth0]/cb", why: "IPv6"},
	{name: "malformed percent-encoding", raw: "https://good.com/%zz", why: "percent-encoding"},
	{name: "truncated percent-encoding", raw: "https://good.com/%4", why: "percent-encoding"},
	{name: "angle brackets", raw: "https://good.com/cb<script>", why: "U+003C"},
	{name: "double quote", raw: `https://good.com/"cb`, why: "U+0022"},
	{name: "http other host", raw: "http://evil.com/cb", why: "loopback"},
	{name: "http private IP", raw: "http://10.0.0.1/cb", why: "loopback address"},
	{name: "http LAN IP with port", raw: "http://192.168.1.1:8080/", why: "loopback address"},
	{name: "http 127.0.0.2", raw: "http://127.0.0.2/cb", why: "loopback address"},
	{name: "http 0.0.0.0", raw: "http://0.0.0.0:8080/cb", why: "loopback address"},
	{name: "http mapped loopback", raw: "http://[::ffff:127.0.0.1]/cb", why: "loopback address"},
	{name: "http long-form ::1", raw: "http://[0:0:0:0:0:0:0:1]/cb", why: "loopback address"},
	{name: "http localhost subdomain", raw: "http://localhost.evil.com/cb", why: "loopback"},
	{name: "http localhost with dot", raw: "http://localhost./cb", why: "loopback"},
	{name: "http loopback lookalike", raw: "http://127.0.0.1.nip.io/cb", why: "loopback"},
	{name: "http opaque", raw: "http:127.0.0.1/cb", why: "scheme:/path"},
	{name: "http without host", raw: "http:///cb", why: "host"},
	{name: "generic private-use scheme", raw: "myapp://callback", why: "reverse-domain"},
	{name: "private-use scheme with empty label", raw: "com..app:/cb", why: "reverse-domain"},
	{name: "private-use opaque", raw: "com.example.app:cb", why: "scheme:/path"},
	{name: "private-use with nothing", raw: "com.example.app:", why: "host or a path"},
	{name: "private-use empty authority", raw: "com.example.app://", why: "host or a path"},
	{name: "private-use userinfo", raw: "com.example.app://user@cb/x", why: "userinfo"},

	// Refused for web clients only.
	{name: "web http loopback", raw: "http://127.0.0.1:8080/cb", ok: nativeOnly, why: "web clients must use https"},
	{name: "web private-use", raw: "com.example.app:/cb", ok: nativeOnly, why: "only allowed for native clients"},
	{name: "web cursor", raw: "cursor://anysphere.cursor-retrieval/cb", ok: nativeOnly, why: "only allowed for native clients"},
}

func TestValidateRedirectURI(t *testing.T) {
	for _, tt := range redirectCases {
		for _, app := range allTypes {
			t.Run(tt.name+"/"+app, func(t *testing.T) {
				err := validateRedirectURI(tt.raw, app)
				wantOK := false
				for _, a := range tt.ok {
					wantOK = wantOK || a == app
				}
				if wantOK {
					if err != nil {
						t.Fatalf("ValidateRedirectURI(%q, %q) = %v, want nil", tt.raw, app, err)
					}
					return
				}
				var e *authz.Error
				if !errors.As(err, &e) {
					t.Fatalf("ValidateRedirectURI(%q, %q) = %v, want an *Error", tt.raw, app, err)
				}
				if e.Code != authz.InvalidRedirectURI || e.Status != 400 {
					t.Errorf("code, status = %s, %d; want invalid_redirect_uri, 400", e.Code, e.Status)
				}
				if tt.why != "" && !strings.Contains(e.Description, tt.why) {
					t.Errorf("description %q does not say %q", e.Description, tt.why)
				}
				if authz.WireText(e.Description) != e.Description {
					t.Errorf("description %q has characters RFC 6749 forbids", e.Description)
				}
			})
		}
	}
}

func TestValidateRedirectURIApplicationType(t *testing.T) {
	err := validateRedirectURI("https://good.com/cb", "Native")
	var e *authz.Error
	if !errors.As(err, &e) || e.Code != authz.InvalidClientMetadata {
		t.Fatalf("unknown application type: got %v, want invalid_client_metadata", err)
	}
}

func TestValidateRedirectURINamesTheURI(t *testing.T) {
	for _, tt := range []struct {
		name string
		raw  string
		want string
	}{
		{"plain", "javascript:alert(1)", "redirect_uri 'javascript:alert(1)': scheme javascript is not allowed"},
		{"control characters are escaped", "https://good.com/a\nb", "redirect_uri 'https://good.com/a%0Ab': must not contain whitespace or control characters"},
		{"quotes are escaped", `https://good.com/'"`, "redirect_uri 'https://good.com/%27%22': must not contain the character U+0022"},
		{"long URIs are cut", "https://good.com/" + strings.Repeat("a", 200) + "#",
			"redirect_uri 'https://good.com/" + strings.Repeat("a", 83) + "...': must not contain a fragment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRedirectURI(tt.raw, ApplicationTypeNative)
			var e *authz.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if diff := cmp.Diff(tt.want, e.Description); diff != "" {
				t.Errorf("description (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzValidateRedirectURI(f *testing.F) {
	for _, tt := range redirectCases {
		f.Add(tt.raw, ApplicationTypeNative)
		f.Add(tt.raw, ApplicationTypeWeb)
	}
	f.Add("https://good.com/cb", "")
	f.Fuzz(func(t *testing.T, raw, app string) {
		err := validateRedirectURI(raw, app)
		if err != nil {
			var e *authz.Error
			if !errors.As(err, &e) || (e.Code != authz.InvalidRedirectURI && e.Code != authz.InvalidClientMetadata) {
				t.Fatalf("refusal is not an invalid_redirect_uri *Error: %v", err)
			}
			if authz.WireText(e.Description) != e.Description {
				t.Fatalf("description %q has characters RFC 6749 forbids", e.Description)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted %q does not parse: %v", raw, perr)
		}
		if !u.IsAbs() || u.Opaque != "" {
			t.Fatalf("accepted %q is not an absolute hierarchical URI", raw)
		}
		if u.User != nil || u.Fragment != "" || strings.ContainsAny(raw, "#*\\ \t\r\n") {
			t.Fatalf("accepted %q has userinfo, a fragment or a forbidden character", raw)
		}
		if blockedSchemes[strings.ToLower(u.Scheme)] {
			t.Fatalf("accepted %q has a blocked scheme", raw)
		}
		switch u.Scheme {
		case "https":
			if u.Host == "" {
				t.Fatalf("accepted https %q without host", raw)
			}
		case "http":
			if app == ApplicationTypeWeb || !isLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted http %q for %q", raw, app)
			}
		default:
			if app == ApplicationTypeWeb {
				t.Fatalf("accepted private-use %q for a web client", raw)
			}
		}
	})
}

var registeredForMatch = []string{
	"https://app.example.com/cb",
	"https://app.example.com:8443/cb",
	"http://127.0.0.1/callback",
	"http://[::1]:8080/cb",
	"http://localhost:3000/cb?x=1",
	"com.example.app:/oauth",
}

func TestMatchRedirectURI(t *testing.T) {
	for _, tt := range []struct {
		name       string
		registered []string
		requested  string
		want       string // "" means no match
	}{
		{name: "exact https", requested: "https://app.example.com/cb", want: "https://app.example.com/cb"},
		{name: "exact private-use", requested: "com.example.app:/oauth", want: "com.example.app:/oauth"},
		{name: "exact loopback", requested: "http://127.0.0.1/callback", want: "http://127.0.0.1/callback"},
		{name: "loopback port added", requested: "http://127.0.0.1:51234/callback", want: "http://127.0.0.1/callback"},
		{name: "IPv6 loopback port removed", requested: "http://[::1]/cb", want: "http://[::1]:8080/cb"},
		{name: "IPv6 loopback port changed", requested: "http://[::1]:9/cb", want: "http://[::1]:8080/cb"},
		{name: "localhost port changed, same query", requested: "http://localhost:4000/cb?x=1", want: "http://localhost:3000/cb?x=1"},

		{name: "empty", requested: ""},
		{name: "nothing registered", registered: []string{}, requested: "https://app.example.com/cb"},
		{name: "trailing slash", requested: "https://app.example.com/cb/"},
		{name: "path case", requested: "https://app.example.com/CB"},
		{name: "host case", requested: "https://APP.example.com/cb"},
		{name: "scheme case", requested: "HTTPS://app.example.com/cb"},
		{name: "prefix", requested: "https://app.example.com/cb/extra"},
		{name: "added query", requested: "https://app.example.com/cb?x"},
		{name: "fragment", requested: "https://app.example.com/cb#x"},
		{name: "https port may not differ", requested: "https://app.example.com:9443/cb"},
		{name: "https default port spelled out", requested: "https://app.example.com:443/cb"},
		{name: "userinfo", requested: "https://app.example.com@evil.com/cb"},
		{name: "encoded path", requested: "https://app.example.com/%63b"},
		{name: "private-use suffix", requested: "com.example.app:/oauth/x"},
		{name: "loopback other host", requested: "http://localhost:51234/callback"},
		{name: "loopback other path", requested: "http://127.0.0.1:5/callback/"},
		{name: "loopback query dropped", requested: "http://localhost:4000/cb"},
		{name: "loopback query changed", requested: "http://localhost:4000/cb?x=2"},
		{name: "loopback https", requested: "https://127.0.0.1:5/callback"},
		{name: "loopback scheme case", requested: "HTTP://127.0.0.1:5/callback"},
		{name: "loopback userinfo", requested: "http://x@127.0.0.1:5/callback"},
		{name: "loopback fragment", requested: "http://127.0.0.1:5/callback#x"},
		{name: "loopback bad port", requested: "http://127.0.0.1:abc/callback"},
		{name: "loopback port out of range", requested: "http://127.0.0.1:99999/callback"},
		{name: "loopback empty port", requested: "http://127.0.0.1:/callback"},
		{name: "loopback control character", requested: "http://127.0.0.1:5/callback\n"},
		{name: "loopback host lookalike", requested: "http://127.0.0.1.evil.com:5/callback"},
		{name: "loopback registered with another scheme case",
			registered: []string{"HTTP://127.0.0.1/callback"}, requested: "http://127.0.0.1:5/callback"},
		{name: "invalid registered loopback entry is not a port template",
			registered: []string{"http://127.0.0.1/cb#x"}, requested: "http://127.0.0.1:5/cb#x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			registered := tt.registered
			if registered == nil {
				registered = registeredForMatch
			}
			got, ok := matchRedirectURI(registered, tt.requested)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("MatchRedirectURI(%q) = %q, %v; want %q", tt.requested, got, ok, tt.want)
			}
		})
	}
}

func FuzzMatchRedirectURI(f *testing.F) {
	f.Add(strings.Join(registeredForMatch, "\n"), "http://127.0.0.1:5/callback")
	f.Add("http://localhost/cb", "http://localhost:1/cb")
	f.Add("http://[::1]/cb?a", "http://[::1]:65535/cb?a")
	f.Add("https://a.com/cb", "https://a.com/cb")
	f.Add("http://127.0.0.1:80/x", "http://127.0.0.1:/x")
	f.Fuzz(func(t *testing.T, list, requested string) {
		registered := strings.Split(list, "\n")
		got, ok := matchRedirectURI(registered, requested)
		if !ok {
			if got != "" {
				t.Fatalf("no match but returned %q", got)
			}
			return
		}
		found := false
		for _, r := range registered {
			found = found || r == got
		}
		if !found {
			t.Fatalf("returned %q, which is not registered", got)
		}
		if got == requested {
			return
		}
		// Otherwise only the port of a loopback http URI may differ.
		if err := validateRedirectURI(requested, ApplicationTypeNative); err != nil {
			t.Fatalf("loopback match of an invalid URI %q: %v", requested, err)
		}
		g, err1 := url.Parse(got)
		r, err2 := url.Parse(requested)
		if err1 != nil || err2 != nil {
			t.Fatalf("loopback match of unparsable URIs %q, %q", got, requested)
		}
		if g.Scheme != "http" || r.Scheme != "http" || !isLoopbackHost(r.Hostname()) ||
			g.Hostname() != r.Hostname() || g.EscapedPath() != r.EscapedPath() || g.RawQuery != r.RawQuery ||
			g.User != nil || r.User != nil || g.Fragment != "" || r.Fragment != "" {
			t.Fatalf("%q matched %q but they differ in more than the port", requested, got)
		}
		if strip := func(s, port string) string {
			if port == "" {
				return s
			}
			return strings.Replace(s, ":"+port, "", 1)
		}; strip(got, g.Port()) != strip(requested, r.Port()) {
			t.Fatalf("%q matched %q but they differ in more than the port", requested, got)
		}
	})
}
