package as

import (
	"crypto/hmac"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/internal/pagestyle"
)

// Cookie names. The __Host- prefix makes the browser refuse them unless
// they are Secure, host-only and for path /, so no sibling subdomain can
// plant or overwrite one. Browsers treat http://127.0.0.1 and
// http://localhost as secure contexts, so this holds in development too.
const (
	// browserCookie holds a random nonce (with its MAC) that binds a
	// pending authorization to the browser that started it: the consent
	// form and our callback must come from that browser.
	browserCookie = "__Host-remotemcp-browser"
	// userCookie remembers, signed, which user last signed in through this
	// browser, so that a remembered approval can apply. It holds no secret
	// and no approval: those stay server-side.
	userCookie = "__Host-remotemcp-user"
)

const (
	browserCookieAge = 24 * time.Hour
	userCookieAge    = 30 * 24 * time.Hour
)

func (s *Server) setCookie(w http.ResponseWriter, name, value string, age time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(age.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// browserNonce returns this browser's binding nonce, setting the cookie if
// it has none (or a bad one).
func (s *Server) browserNonce(w http.ResponseWriter, r *http.Request) string {
	if n, ok := s.browserFromCookie(r); ok {
		return n
	}
	n, err := s.newID(24)
	if err != nil {
		n = hashToken(time.Now().String()) // unreachable: crypto/rand does not fail
	}
	s.setCookie(w, browserCookie, n+"."+s.mac("browser", n), browserCookieAge)
	return n
}

func (s *Server) browserFromCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(browserCookie)
	if err != nil {
		return "", false
	}
	n, mac, ok := strings.Cut(c.Value, ".")
	if !ok || n == "" || !s.macOK(mac, "browser", n) {
		return "", false
	}
	return n, true
}

// setUserCookie remembers subject for this browser.
func (s *Server) setUserCookie(w http.ResponseWriter, subject string) {
	exp := strconv.FormatInt(s.o.Now().Add(userCookieAge).Unix(), 10)
	sub := base64.RawURLEncoding.EncodeToString([]byte(subject))
	s.setCookie(w, userCookie, sub+"."+exp+"."+s.mac("user", sub, exp), userCookieAge)
}

func (s *Server) userFromCookie(r *http.Request) string {
	c, err := r.Cookie(userCookie)
	if err != nil {
		return ""
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 || !s.macOK(parts[2], "user", parts[0], parts[1]) {
		return ""
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || s.o.Now().Unix() > exp {
		return ""
	}
	sub, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return ""
	}
	return string(sub)
}

func hashEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// pageHeaders are the headers of every HTML page: no framing anywhere
// (clickjacking of the Allow button), no caching, no referrer to other
// origins (the URL holds the request), and a CSP that allows only the page's own inline
// style.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser posts the
	// consent form with Origin: null. The URL (the authorization request)
	// still never leaves for another origin.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

type consentView struct {
	Service, Upstream    string
	ClientName, ClientID string
	Unnamed              bool
	RedirectHost         string
	RedirectURI          string
	LocalRedirect        bool
	MetadataDocument     bool
	Scopes               []ScopeInfo
	Action, TX, CSRF     string
}

func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, p *PendingAuth, c *Client, csrf string) {
	v := consentView{
		Service: s.o.ServiceName, Upstream: s.o.UpstreamName,
		ClientName: c.Metadata.ClientName, ClientID: c.ClientID,
		RedirectURI: p.RedirectURI, Action: s.o.Issuer + PathConsent, TX: p.ID,
		MetadataDocument: isDocumentClientID(c.ClientID),
	}
	v.CSRF = csrf
	if v.ClientName == "" {
		v.Unnamed = true
		v.ClientName = "An unnamed app"
	}
	if u, err := url.Parse(p.RedirectURI); err == nil {
		v.RedirectHost = u.Host
		if u.Host == "" {
			v.RedirectHost = u.Scheme + ":"
		}
		v.LocalRedirect = isLoopbackHost(u.Hostname())
	}
	for _, sc := range s.o.Scopes {
		for _, name := range p.Scopes {
			if sc.Name == name {
				v.Scopes = append(v.Scopes, sc)
			}
		}
	}
	pageHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = consentPage.Execute(w, v)
}

type errorView struct {
	Service, Title, Detail string
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, e *errPage) {
	pageHeaders(w)
	w.WriteHeader(e.status)
	_ = errorPage.Execute(w, errorView{Service: s.o.ServiceName, Title: e.title, Detail: e.detail})
}

// pageStyle is the look of every page here, shared with the development
// identity provider's sign-in page.
const pageStyle = pagestyle.CSS

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Allow {{.ClientName}} to use {{.Service}}?</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main aria-labelledby="title">
<h1 id="title">Allow {{if .Unnamed}}an unnamed app{{else}}“{{.ClientName}}”{{end}} to use {{.Service}}?</h1>
<p class="sub">Next you sign in with {{.Upstream}}. {{.Service}} keeps that sign-in to itself: the app never sees it.</p>
{{if .LocalRedirect}}<p class="warn" role="note">This app receives the result on this computer ({{.RedirectHost}}). Only continue if you just started connecting an app on this computer.</p>{{end}}
<dl>
<dt>App</dt><dd>{{.ClientName}}{{if .MetadataDocument}} <br><small>identified by <code>{{.ClientID}}</code></small>{{end}}</dd>
<dt>Sends you back to</dt><dd><strong>{{.RedirectHost}}</strong><br><small><code>{{.RedirectURI}}</code></small></dd>
<dt>It will be able to</dt><dd><ul>{{range .Scopes}}<li>{{.Description}} <small>(<code>{{.Name}}</code>)</small></li>{{end}}</ul></dd>
</dl>
<form method="post" action="{{.Action}}">
<input type="hidden" name="tx" value="{{.TX}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<div class="actions">
<button type="submit" name="decision" value="approve" class="primary">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>
<footer>If you did not start connecting this app, choose Deny.</footer>
</main>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · {{.Service}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main aria-labelledby="title">
<h1 id="title">{{.Title}}</h1>
<p role="alert">{{.Detail}}</p>
<footer>{{.Service}}</footer>
</main>
</body>
</html>
`))

// consentTTL is how long an approval of clientID is remembered: ConsentTTL,
// but no longer than a registered client lives unused (ClientTTL), so that
// approvals do not outlive their client by much. A metadata-document
// client is not stored, and keeps ConsentTTL.
func (s *Server) consentTTL(clientID string) time.Duration {
	if isDocumentClientID(clientID) {
		return s.o.ConsentTTL
	}
	return min(s.o.ConsentTTL, s.o.ClientTTL)
}
