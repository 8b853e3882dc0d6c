package as

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// Who may sign in: Options.Allow, checked at the callback and at every
// refresh.
//
// At the callback a refused user gets a page on our origin that says why
// and whom to ask, with a link back to the app that carries
// error=access_denied (RFC 6749 §4.1.2.1): the user must learn why, which
// an immediate redirect to the client would hide (clients show at best
// "access_denied"), and the client must still learn the outcome. The
// redirect URI is the one the user approved on our consent page, so the
// link is no open redirect. A user who closes the page instead leaves the
// client waiting until it gives up, as if they had closed the upstream's
// sign-in page.

// Denied is the error of Callback for a user the allow-list refuses.
// serveCallback renders it as a 403 page with Reason, the operator's
// contact, and a link to Back.
type Denied struct {
	// Reason says, for the user, what was checked.
	Reason string
	// Back is the client's redirect URI with error=access_denied, its
	// state and our iss.
	Back string
}

// Error implements error.
func (d *Denied) Error() string { return "authz: sign-in refused: " + d.Reason }

// Unwrap makes a Denied match upstream.ErrNotAllowed.
func (d *Denied) Unwrap() error { return upstream.ErrNotAllowed }

// refusal builds the Denied of a refused sign-in p.
func (s *Server) refusal(err error, p *PendingAuth) *Denied {
	reason := "This server does not allow your account to sign in."
	if r, ok := errors.AsType[*upstream.Refusal](err); ok {
		reason = r.Reason
	}
	q := url.Values{"error": {string(authz.AccessDenied)}, "iss": {s.o.Issuer},
		"error_description": {"the user is not allowed to use this server"}}
	if p.State != "" {
		q.Set("state", p.State)
	}
	return &Denied{Reason: reason, Back: withQuery(p.RedirectURI, q)}
}

type deniedView struct {
	Service, Upstream, Reason, Contact, Back, BackHost string
}

func (s *Server) renderDenied(w http.ResponseWriter, d *Denied) {
	v := deniedView{Service: s.o.ServiceName, Upstream: s.o.UpstreamName, Reason: d.Reason, Contact: s.o.Contact, Back: d.Back}
	if v.Contact == "" {
		v.Contact = "the administrator of " + s.o.ServiceName
	}
	if u, err := url.Parse(d.Back); err == nil {
		v.BackHost = u.Host
		if u.Host == "" {
			v.BackHost = u.Scheme + ":"
		}
	}
	pageHeaders(w)
	w.WriteHeader(http.StatusForbidden)
	_ = deniedPage.Execute(w, v)
}

// html/template keeps Back an attribute-safe URL: a redirect URI with a
// custom scheme (cursor://…) it would filter, so it is marked as trusted:
// it is the registered redirect URI the user approved, not user input.
var deniedPage = template.Must(template.New("denied").Funcs(template.FuncMap{
	"trusted": func(s string) template.URL { return template.URL(s) },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Access not allowed · {{.Service}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main aria-labelledby="title">
<h1 id="title">Your account may not use {{.Service}}</h1>
<p role="alert">You signed in with {{.Upstream}}. {{.Reason}}</p>
<p>To get access, ask {{.Contact}}. If you have another account that is allowed, go back to the app and connect again, signing in with that account.</p>
<p><a href="{{trusted .Back}}">Return to the app ({{.BackHost}})</a>: it will be told that access was denied.</p>
<footer>{{.Service}}</footer>
</main>
</body>
</html>
`))

// identityVault is the optional capability of a TokenVault to say, live,
// who a grant's user is, refreshing the upstream token first when it is
// due. *upstream.Vault has it.
type identityVault interface {
	Identity(ctx context.Context, grantID string) (*upstream.Identity, error)
}

// readmit asks the upstream again who the grant's user is, at a refresh
// of our tokens, when an allow-list is set or the grant carries groups:
// a user the list no longer allows has the grant revoked (invalid_grant),
// and the groups and e-mail address of the new access token are the
// upstream's current ones. An upstream that does not answer keeps the
// grant as it was (an outage is not a logout); one that refuses to say
// who the user is ends it when an allow-list is set.
func (s *Server) readmit(ctx context.Context, g *Grant) (*Grant, error) {
	v, ok := s.vault.(identityVault)
	if !ok || (s.o.Allow.Empty() && len(g.Groups) == 0) {
		return g, nil
	}
	id, err := v.Identity(ctx, g.ID)
	switch {
	case errors.Is(err, upstream.ErrReauthorize):
		// The vault revoked the grant (the user was refused at the
		// upstream refresh, or the upstream tokens are gone).
		s.log.InfoContext(ctx, "authz: refresh refused: the upstream grant ended", "client_id", g.ClientID, "grant", g.ID)
		return nil, authz.ErrInvalidGrant("the sign-in ended; sign in again")
	case err != nil && (errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrVaultKey) || s.o.Allow.Empty()):
		s.log.WarnContext(ctx, "authz: identity re-check postponed", "grant", g.ID, "err", err)
		return g, nil
	case err == nil:
		err = s.o.Allow.Check(id)
	}
	if err != nil {
		if rerr := s.revokeGrant(ctx, g.ID); rerr != nil {
			return nil, rerr
		}
		s.log.InfoContext(ctx, "authz: refresh refused by the allow-list; grant revoked", "client_id", g.ClientID, "sub", g.Subject, "grant", g.ID)
		return nil, authz.ErrInvalidGrant("the user is no longer allowed to use this server")
	}
	ng := *g
	ng.Email, ng.Groups = verifiedEmail(id), token.BoundGroups(id.Groups)
	return &ng, nil
}

// verifiedEmail is the user's e-mail address when the upstream vouches
// for it, else "".
func verifiedEmail(id *upstream.Identity) string {
	if !id.EmailVerified {
		return ""
	}
	return id.Email
}
