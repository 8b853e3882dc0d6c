package devidp

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strings"

	"github.com/remotemcp/remotemcp/internal/pagestyle"
)

// A page is what page.html renders: a login form, or an error.
type page struct {
	Error string     // an error that ends the flow; no form
	Login *loginForm // the login form
}

// A loginForm is the login page of one authorization request.
type loginForm struct {
	RequestID     string // the login request id, kept server-side
	ClientID      string
	RedirectURI   string
	Scope         string
	Username      string
	Email         string
	UsernameError string
	EmailError    string
	Users         []string // suggestions
}

//go:embed page.html
var pageHTML string

// pageTemplate is page.html with the stylesheet of the consent page it
// follows, so that the sign-in looks like one journey, in light and dark.
var pageTemplate = template.Must(template.New("page").Parse(strings.Replace(pageHTML, "/*pagestyle*/", pagestyle.CSS, 1)))

// render writes the page with status. The headers keep the page out of
// caches and frames, and let it load nothing at all.
func (p *Provider) render(w http.ResponseWriter, status int, pg *page) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pg); err != nil {
		p.log.Error("dev-idp: render page", "error", err)
		http.Error(w, "devidp: internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}
