package as

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/remotemcp/remotemcp/authz"
)

// Application types of a client (OIDC Dynamic Client Registration §2,
// required by MCP 2026-07-28 registration): they decide which redirect URIs
// a client may use.
const (
	// ApplicationTypeNative is a desktop, CLI or mobile app: https, http on a
	// loopback address, or a private-use URI scheme.
	ApplicationTypeNative = "native"
	// ApplicationTypeWeb is a web app: https only.
	ApplicationTypeWeb = "web"
)

// maxRedirectURILength bounds a redirect URI, in bytes.
const maxRedirectURILength = 2000

// blockedSchemes can never be a redirect target: they run code in, or read
// from, the browser's context instead of delivering the response to a
// client. They are refused whatever the application type, before the
// private-use rules are even considered. Schemes are compared in lower
// case (url.Parse lowers them), so JaVaScRiPt: is caught too.
var blockedSchemes = map[string]bool{
	"javascript":       true,
	"vbscript":         true,
	"data":             true,
	"file":             true,
	"blob":             true,
	"about":            true,
	"filesystem":       true,
	"view-source":      true,
	"jar":              true,
	"ws":               true,
	"wss":              true,
	"ftp":              true,
	"mailto":           true,
	"tel":              true,
	"sms":              true,
	"intent":           true,
	"chrome":           true,
	"chrome-extension": true,
	"moz-extension":    true,
}

// appSchemes are private-use schemes without a dot that well-known MCP
// clients register; every other private-use scheme must be in
// reverse-domain notation (RFC 8252 §7.1), which keeps one app from
// claiming a generic word.
var appSchemes = map[string]bool{
	"cursor":          true,
	"vscode":          true,
	"vscode-insiders": true,
	"claude":          true,
}

// redirectKind classifies a redirect URI that passed the checks.
type redirectKind int

const (
	redirectHTTPS      redirectKind = iota + 1 // https, any host
	redirectLoopback                           // http on 127.0.0.1, [::1] or localhost
	redirectPrivateUse                         // private-use scheme (native apps)
)

// redirectInfo is what checkRedirectURI learns about an accepted URI.
type redirectInfo struct {
	kind redirectKind
	// loopbackHost reports a loopback host, whatever the scheme.
	loopbackHost bool
}

// native reports whether the URI only suits a native app: a loopback host
// or a private-use scheme. parseClientMetadata uses it to default
// application_type.
func (i redirectInfo) native() bool {
	return i.loopbackHost || i.kind == redirectPrivateUse
}

// validateRedirectURI checks a redirect URI at registration, following
// RFC 8252 (native apps) and OAuth 2.1 §2.3.1. applicationType is
// ApplicationTypeNative, ApplicationTypeWeb, or "" when not yet known, which
// accepts what either type accepts. A refused URI gives an *Error
// invalid_redirect_uri whose description names the URI and the rule; an
// unknown applicationType gives invalid_client_metadata.
//
// The rules, in order:
//   - not empty, at most 2000 bytes;
//   - only the ASCII characters RFC 3986 allows in a URI: no space, tab,
//     newline or other control character, no non-ASCII (hosts use punycode,
//     paths percent-encoding), no backslash, quote, angle bracket, brace,
//     pipe, caret or backtick; every '%' starts a valid %XX escape (a
//     percent-encoded byte, even %0A, is just data in the path);
//   - no fragment (not even an empty '#'), no wildcard '*';
//   - absolute (has a scheme) and hierarchical: scheme:/path or
//     scheme://authority/path, never scheme:opaque;
//   - no userinfo (https://good.com@evil.com/ is refused);
//   - a host, if any, is letters, digits, '-' and '.', or a bracketed IPv6
//     literal without zone; a port, if any, is 1-65535 without leading
//     zeros and not empty;
//   - the scheme (case-insensitive) is not blocked: javascript, vbscript,
//     data, file, blob, about, filesystem, view-source, jar, ws, wss, ftp,
//     mailto, tel, sms, intent, chrome, chrome-extension, moz-extension;
//   - https: any host (names, punycode and IP literals), for both types;
//   - http: only for native apps, and only with the host 127.0.0.1, [::1]
//     or localhost (any case), on any port (RFC 8252 §7.3; OAuth 2.1 allows
//     http nowhere else); other IP literals and names are refused;
//   - any other scheme is a private-use scheme, only for native apps
//     (RFC 8252 §7.1): either reverse-domain notation (contains a '.', as
//     com.example.app:/cb) or one of cursor, vscode, vscode-insiders,
//     claude; it needs a host or a path after the scheme.
//
// Dot segments ("/../") are not special: matching is by exact string, so a
// URI registered with them only matches itself.
func validateRedirectURI(raw string, applicationType string) error {
	switch applicationType {
	case "", ApplicationTypeNative, ApplicationTypeWeb:
	default:
		return authz.ErrInvalidClientMetadata("application_type must be native or web")
	}
	if _, reason := checkRedirectURI(raw, applicationType); reason != "" {
		return authz.ErrInvalidRedirectURI("redirect_uri " + showURI(raw) + ": " + reason)
	}
	return nil
}

// checkRedirectURI applies validateRedirectURI's rules; it returns the
// reason for a refusal, or "" and what it learnt.
func checkRedirectURI(raw, applicationType string) (redirectInfo, string) {
	if reason := checkURIText(raw); reason != "" {
		return redirectInfo{}, reason
	}
	if strings.ContainsRune(raw, '#') {
		return redirectInfo{}, "must not contain a fragment"
	}
	if strings.ContainsRune(raw, '*') {
		return redirectInfo{}, "must not contain a wildcard (*)"
	}
	// The blocklist is checked on the raw text, before url.Parse can refuse
	// the rest for another reason and hide why.
	if scheme, _, ok := strings.Cut(raw, ":"); ok && validScheme(scheme) && blockedSchemes[strings.ToLower(scheme)] {
		return redirectInfo{}, "scheme " + strings.ToLower(scheme) + " is not allowed"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redirectInfo{}, "is not a valid URI"
	}
	if u.Scheme == "" {
		return redirectInfo{}, "must be an absolute URI"
	}
	if blockedSchemes[u.Scheme] { // unreachable: caught above
		return redirectInfo{}, "scheme " + u.Scheme + " is not allowed"
	}
	if u.Opaque != "" {
		return redirectInfo{}, "must be scheme:/path or scheme://host/path"
	}
	if u.User != nil {
		return redirectInfo{}, "must not contain userinfo"
	}
	if reason := checkAuthority(u); reason != "" {
		return redirectInfo{}, reason
	}
	info := redirectInfo{loopbackHost: isLoopbackHost(u.Hostname())}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return redirectInfo{}, "must have a host"
		}
		info.kind = redirectHTTPS
	case "http":
		if u.Host == "" {
			return redirectInfo{}, "must have a host"
		}
		if !info.loopbackHost {
			if _, err := netip.ParseAddr(u.Hostname()); err == nil {
				return redirectInfo{}, "http is only allowed on a loopback address (127.0.0.1, [::1], localhost); use https"
			}
			return redirectInfo{}, "http is only allowed for loopback hosts (127.0.0.1, [::1], localhost); use https"
		}
		if applicationType == ApplicationTypeWeb {
			return redirectInfo{}, "web clients must use https"
		}
		info.kind = redirectLoopback
	default:
		if !appSchemes[u.Scheme] && !reverseDomain(u.Scheme) {
			return redirectInfo{}, "scheme " + u.Scheme + " is not https, loopback http, or a private-use scheme in reverse-domain notation (com.example.app)"
		}
		if u.Host == "" && u.Path == "" {
			return redirectInfo{}, "must have a host or a path after the scheme"
		}
		if applicationType == ApplicationTypeWeb {
			return redirectInfo{}, "private-use scheme " + u.Scheme + " is only allowed for native clients"
		}
		info.kind = redirectPrivateUse
	}
	return info, ""
}

// checkURIText checks the characters of a URI before it is parsed: only
// RFC 3986 characters, and well-formed percent-encoding.
func checkURIText(raw string) string {
	if raw == "" {
		return "must not be empty"
	}
	if len(raw) > maxRedirectURILength {
		return "must be at most " + strconv.Itoa(maxRedirectURILength) + " bytes"
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c <= 0x20 || c == 0x7f:
			return "must not contain whitespace or control characters"
		case c >= 0x80:
			return "must be ASCII (use punycode for hosts and percent-encoding for paths)"
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "has a malformed percent-encoding"
			}
		case !uriChar(c):
			return fmt.Sprintf("must not contain the character %U", rune(c))
		}
	}
	return ""
}

// uriChar reports an RFC 3986 unreserved, gen-delims or sub-delims
// character.
func uriChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0
}

// validScheme reports an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" /
// "-" / "." ).
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkAuthority checks the host and port of a parsed URI (u.Host is
// already percent-decoded, so a smuggled %2F or UTF-8 shows up here).
func checkAuthority(u *url.URL) string {
	if u.Host == "" {
		return ""
	}
	host, port := u.Hostname(), u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return "must not have an empty port"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "has an invalid port"
		}
	}
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "has an invalid IPv6 literal"
		}
		return ""
	}
	if host == "" {
		return "must have a host"
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return "has an invalid host (letters, digits, '-' and '.' only; punycode for IDN)"
		}
	}
	return ""
}

// isLoopbackHost reports the three loopback hosts of RFC 8252 §7.3 and
// OAuth 2.1: 127.0.0.1, ::1 (u.Hostname() form) and localhost. Other
// spellings (127.0.0.2, 0:0:0:0:0:0:0:1, localhost.) are not loopback here.
func isLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")
}

// reverseDomain reports a scheme in reverse-domain notation: at least two
// non-empty labels separated by dots.
func reverseDomain(scheme string) bool {
	labels := strings.Split(scheme, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
	}
	return true
}

// showURI renders an untrusted URI for an error description: single
// quoted, bytes outside printable ASCII (and quotes, backslash) percent-
// encoded, cut to 100 bytes.
func showURI(s string) string {
	const max = 100
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if b.Len() > max {
			b.WriteString("...")
			break
		}
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '\'' || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	return b.String()
}

// matchRedirectURI finds the registered redirect URI that allows requested
// at the authorization endpoint, and returns it; the response goes to
// requested itself. The match is by exact string (no case folding, no
// trailing-slash tolerance, no prefix or wildcard), with one exception
// from RFC 8252 §7.3: for a registered http URI on 127.0.0.1, [::1] or
// localhost, the requested port may differ (or be absent) as long as the
// scheme, the host and everything after the authority (path and query)
// are byte-for-byte the same, and the requested URI is itself a valid
// native redirect URI.
func matchRedirectURI(registered []string, requested string) (string, bool) {
	if requested == "" {
		return "", false
	}
	for _, r := range registered {
		if r == requested {
			return r, true
		}
	}
	req, ok := splitLoopback(requested)
	if !ok {
		return "", false
	}
	if _, reason := checkRedirectURI(requested, ApplicationTypeNative); reason != "" {
		return "", false
	}
	for _, r := range registered {
		reg, ok := splitLoopback(r)
		if !ok || reg.scheme != req.scheme || reg.host != req.host || reg.rest != req.rest {
			continue
		}
		if _, reason := checkRedirectURI(r, ApplicationTypeNative); reason != "" {
			continue
		}
		return r, true
	}
	return "", false
}

// consentRedirect is the redirect URI as a remembered approval is keyed:
// the URI itself, but without the port of an http loopback URI, which a
// native client picks anew at each sign-in (RFC 8252 §7.3) and the
// authorization endpoint lets vary (matchRedirectURI). So a native client
// has one remembered approval, not one per port it ever listened on.
func consentRedirect(uri string) string {
	p, ok := splitLoopback(uri)
	if !ok {
		return uri
	}
	return p.scheme + "://" + p.host + p.rest
}

// loopbackParts is an http loopback URI cut into its raw pieces.
type loopbackParts struct {
	scheme, host, port, rest string
}

// splitLoopback cuts an http URI on a loopback host into scheme, host,
// port and the rest (path and query), without any normalization.
func splitLoopback(s string) (loopbackParts, bool) {
	scheme, after, ok := strings.Cut(s, "://")
	if !ok || !strings.EqualFold(scheme, "http") {
		return loopbackParts{}, false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	if strings.ContainsAny(authority, "@%") {
		return loopbackParts{}, false
	}
	var host, port string
	if strings.HasPrefix(authority, "[") {
		i := strings.IndexByte(authority, ']')
		if i < 0 {
			return loopbackParts{}, false
		}
		host, port = authority[:i+1], authority[i+1:]
		if port != "" && port[0] != ':' {
			return loopbackParts{}, false
		}
		port = strings.TrimPrefix(port, ":")
		if host != "[::1]" {
			return loopbackParts{}, false
		}
	} else {
		host, port, _ = strings.Cut(authority, ":")
		if host != "127.0.0.1" && !strings.EqualFold(host, "localhost") {
			return loopbackParts{}, false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return loopbackParts{}, false
		}
	}
	return loopbackParts{scheme: scheme, host: host, port: port, rest: rest}, true
}
