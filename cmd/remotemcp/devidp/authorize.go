package devidp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
)

// A pageError is an authorization failure shown on the provider's own page,
// never sent to a redirect URI: the client or its redirect URI is not
// trusted ([RFC 6749 §4.1.2.1]), or the login request is unknown.
//
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

// A redirectError is an authorization failure reported to the client at
// its (checked) redirect URI.
type redirectError struct {
	redirectURI, state string
	err                *oauthError
}

func (e *redirectError) Error() string { return e.err.Error() }

// A formError is a login form to show again, with what is wrong in it.
type formError struct{ form loginForm }

func (e *formError) Error() string { return "invalid login form" }

// maxState caps the state parameter, which is echoed to the client.
const maxState = 1024

// authorizePage serves GET <issuer path>/authorize: it checks the request
// and shows the login page.
func (p *Provider) authorizePage(w http.ResponseWriter, r *http.Request) {
	form, err := p.begin(r.Context(), r.URL.Query())
	var pe *pageError
	var re *redirectError
	switch {
	case errors.As(err, &re):
		p.log.Info("dev-idp: authorization request refused", "error", re.err.Code, "description", re.err.Description)
		http.Redirect(w, r, p.errorRedirect(re.redirectURI, re.state, re.err), http.StatusSeeOther)
	case errors.As(err, &pe):
		p.log.Info("dev-idp: authorization request refused", "reason", pe.msg)
		p.render(w, pe.status, &page{Error: pe.msg})
	case err != nil:
		p.log.Error("dev-idp: authorization request", "error", err)
		p.render(w, http.StatusInternalServerError, &page{Error: "The login request could not be saved. Try again."})
	default:
		p.render(w, http.StatusOK, &page{Login: form})
	}
}

// begin checks an authorization request ([RFC 6749 §4.1.1]) and saves it
// for the login form. A bad client_id or redirect_uri is a *pageError;
// any other refusal, a *redirectError.
//
// [RFC 6749 §4.1.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
func (p *Provider) begin(ctx context.Context, q url.Values) (*loginForm, error) {
	clientID, ok := single(q, "client_id")
	if !ok || clientID != p.clientID {
		return nil, &pageError{http.StatusBadRequest, fmt.Sprintf("Unknown client: client_id %q is not the configured client.", clientID)}
	}
	redirectURI, ok := single(q, "redirect_uri")
	if !ok || !slices.Contains(p.redirectURIs, redirectURI) {
		return nil, &pageError{http.StatusBadRequest, fmt.Sprintf("Invalid redirect_uri %q: it must equal one of %q exactly. You have not been redirected.", redirectURI, p.redirectURIs)}
	}
	state, ok := single(q, "state")
	refuse := func(code, desc string) error {
		return &redirectError{redirectURI, state, oauthErr(code, desc)}
	}
	if !ok {
		return nil, refuse(invalidRequest, "state must not be repeated")
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, refuse(invalidRequest, k+" must not be repeated")
		}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return nil, refuse(invalidRequest, "response_type is required")
	case rt != "code":
		return nil, refuse(unsupportedResponseType, "response_type must be code")
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return nil, refuse(invalidRequest, "response_mode must be query")
	}
	switch {
	case state == "":
		return nil, refuse(invalidRequest, "state is required")
	case len(state) > maxState:
		state = ""
		return nil, refuse(invalidRequest, fmt.Sprintf("state must be at most %d bytes", maxState))
	}
	challenge := q.Get("code_challenge")
	if err := checkChallenge(challenge, q.Get("code_challenge_method")); err != nil {
		return nil, &redirectError{redirectURI, state, err}
	}
	scope, err := parseScope(q.Get("scope"))
	if err != nil {
		return nil, &redirectError{redirectURI, state, err}
	}
	id := newSecret()
	l := login{redirectURI: redirectURI, state: state, challenge: challenge, scope: scope, expires: p.now().Add(loginLifetime)}
	if err := p.store.putLogin(ctx, id, l, p.now()); err != nil {
		return nil, &redirectError{redirectURI, state, asOAuth(err)}
	}
	return p.form(id, l), nil
}

// form is the login form for the login request id.
func (p *Provider) form(id string, l login) *loginForm {
	return &loginForm{RequestID: id, ClientID: p.clientID, RedirectURI: l.redirectURI, Scope: l.scope, Username: p.users[0], Users: p.users}
}

// authorizeForm serves POST <issuer path>/authorize: the login form. On
// success it redirects (303) to the client with a code.
func (p *Provider) authorizeForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, &page{Error: "The login form could not be read."})
		return
	}
	f := r.PostForm
	location, err := p.finish(r.Context(), f.Get("request_id"), f.Get("action"), strings.TrimSpace(f.Get("username")), strings.TrimSpace(f.Get("email")))
	var pe *pageError
	var fe *formError
	switch {
	case errors.As(err, &fe):
		p.render(w, http.StatusBadRequest, &page{Login: &fe.form})
	case errors.As(err, &pe):
		p.render(w, pe.status, &page{Error: pe.msg})
	case err != nil:
		p.log.Error("dev-idp: login", "error", err)
		p.render(w, http.StatusInternalServerError, &page{Error: "The login could not be completed. Try again."})
	default:
		http.Redirect(w, r, location, http.StatusSeeOther)
	}
}

// finish completes the login request id: action "deny" refuses it, any
// other signs username in. It returns where to send the browser.
func (p *Provider) finish(ctx context.Context, id, action, username, email string) (string, error) {
	now := p.now()
	l, err := p.store.login(ctx, id, now, false)
	if err != nil {
		return "", &pageError{http.StatusBadRequest, "This login request is unknown or has expired. Start again from the application."}
	}
	if action == "deny" {
		if l, err = p.store.login(ctx, id, now, true); err != nil {
			return "", &pageError{http.StatusBadRequest, "This login request has already been used. Start again from the application."}
		}
		p.log.Info("dev-idp: login denied by the user")
		return p.errorRedirect(l.redirectURI, l.state, oauthErr(accessDenied, "the user denied the request")), nil
	}
	form := p.form(id, l)
	form.Username, form.Email = username, email
	if !validUsername(username) {
		form.UsernameError = "The username " + usernameRule + "."
	}
	if email != "" && !validEmail(email) {
		form.EmailError = "The email must be a plain address such as alice@example.test, or empty."
	}
	if form.UsernameError != "" || form.EmailError != "" {
		return "", &formError{*form}
	}
	if l, err = p.store.login(ctx, id, now, true); err != nil {
		return "", &pageError{http.StatusBadRequest, "This login request has already been used. Start again from the application."}
	}
	secret := newSecret()
	c := code{
		grant:       grant{id: newSecret(), clientID: p.clientID, scope: l.scope, username: username, email: email},
		redirectURI: l.redirectURI,
		challenge:   l.challenge,
		expires:     now.Add(codeLifetime),
	}
	if err := p.store.putCode(ctx, secret, c, now); err != nil {
		return p.errorRedirect(l.redirectURI, l.state, err), nil
	}
	p.log.Info("dev-idp: signed in", "user", username, "client", p.clientID, "code", logID(secret))
	return p.redirectTo(l.redirectURI, url.Values{"code": {secret}, "state": {l.state}}), nil
}

// usernameRule is what validUsername accepts, for messages.
const usernameRule = "must be 1 to 64 characters: letters, digits and . _ - @ +"

// validUsername reports whether s is 1 to 64 characters of [A-Za-z0-9._@+-].
func validUsername(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("._-@+", c) >= 0) {
			return false
		}
	}
	return true
}

// validEmail reports whether s is a bare email address (no display name,
// no angle brackets) of at most 254 bytes.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && len(s) <= 254 && a.Name == "" && a.Address == s
}

// parseScope checks a scope parameter ([RFC 6749 §3.3]) against
// supportedScopes and returns it with duplicates removed.
//
// [RFC 6749 §3.3]: https://www.rfc-editor.org/rfc/rfc6749#section-3.3
func parseScope(s string) (string, *oauthError) {
	var out []string
	for tok := range strings.SplitSeq(s, " ") {
		switch {
		case tok == "":
			continue
		case !slices.Contains(supportedScopes, tok):
			return "", oauthErr(invalidScope, fmt.Sprintf("unsupported scope '%s'; supported: %s", tok, strings.Join(supportedScopes, " ")))
		case !slices.Contains(out, tok):
			out = append(out, tok)
		}
	}
	return strings.Join(out, " "), nil
}

// single returns the only value of q[name], or "" if there is none; ok is
// false if the parameter is repeated ([RFC 6749 §3.1]).
//
// [RFC 6749 §3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-3.1
func single(q url.Values, name string) (v string, ok bool) {
	switch vs := q[name]; len(vs) {
	case 0:
		return "", true
	case 1:
		return vs[0], true
	}
	return "", false
}
