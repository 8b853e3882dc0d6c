package as

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// CallbackResult is what our callback from the upstream produced: the code
// to send the client, where, and who signed in.
type CallbackResult struct {
	Code        string
	RedirectURI string
	State       string
	Subject     string
}

// Callback completes an approved authorization after the upstream login:
// it checks the state (single-use, bound to the browser), exchanges the
// upstream code with our verifier, learns who signed in, checks them
// against Options.Allow (a refused user gets a *Denied, and nothing is
// stored), stores the upstream tokens, creates the grant (with the user's
// groups and verified e-mail for the access tokens) and issues our code,
// bound to the client, redirect URI, PKCE challenge, resource and scopes.
func (s *Server) Callback(ctx context.Context, q url.Values, browser string) (*CallbackResult, error) {
	state := q.Get("state")
	tx, secret, ok := strings.Cut(state, ".")
	if !ok || tx == "" || secret == "" || len(state) > maxParam {
		return nil, &errPage{http.StatusBadRequest, "Invalid sign-in response", "The response from the identity provider does not belong to a sign-in started here."}
	}
	p, err := s.st.Pending.TakePending(ctx, tx) // single use, whatever happens next
	if errors.Is(err, authz.ErrNotFound) {
		return nil, &errPage{http.StatusBadRequest, "This sign-in expired", "The sign-in took too long or was already finished. Go back to the app and connect again."}
	}
	if err != nil {
		return nil, err
	}
	if !p.Approved || !hashEqual(p.UpstreamStateHash, hashToken(secret)) {
		return nil, &errPage{http.StatusBadRequest, "Invalid sign-in response", "The response from the identity provider does not belong to a sign-in started here."}
	}
	if browser == "" || !hashEqual(p.Browser, hashToken(browser)) {
		return nil, &errPage{http.StatusForbidden, "Wrong browser", "This sign-in was started in another browser. Go back to the app and connect again from this browser."}
	}
	back := func(e *authz.Error) error { return &redirectErr{redirectURI: p.RedirectURI, state: p.State, err: e} }
	if e := q.Get("error"); e != "" {
		if e == string(authz.AccessDenied) {
			return nil, back(authz.ErrAccessDenied("the user did not sign in with the identity provider"))
		}
		return nil, back(authz.ErrServerError("the identity provider refused the sign-in"))
	}
	code := q.Get("code")
	if code == "" {
		return nil, back(authz.ErrServerError("the identity provider sent no code"))
	}
	verifier, err := s.vault.OpenVerifier(p.ID, p.UpstreamVerifier)
	if err != nil {
		// A key retired within the record's few minutes, or a record
		// written by a version that kept the verifier in clear.
		s.log.WarnContext(ctx, "authz: upstream verifier of a pending sign-in does not open", "err", err)
		return nil, back(authz.ErrServerError("the sign-in could not be completed; try again"))
	}
	tok, err := s.up.Exchange(ctx, code, verifier)
	if err != nil {
		s.log.WarnContext(ctx, "authz: upstream code exchange failed", "err", err)
		return nil, back(upstreamFailure(err))
	}
	id, err := s.up.FetchIdentity(ctx, tok)
	if err != nil || id.Subject == "" {
		s.log.WarnContext(ctx, "authz: upstream identity failed", "err", err)
		return nil, back(upstreamFailure(err))
	}
	subject := s.o.SubjectPrefix + id.Subject
	if err := s.o.Allow.Check(id); err != nil {
		s.log.InfoContext(ctx, "authz: sign-in refused by the allow-list", "client_id", p.ClientID, "sub", subject, "why", err.Error())
		s.event(Event{Kind: EventAuthorization, Outcome: OutcomeRefused})
		return nil, s.refusal(err, p)
	}
	email, groups := verifiedEmail(id), token.BoundGroups(id.Groups)
	if p.AutoApprovedFor != "" && p.AutoApprovedFor != subject {
		// The remembered approval was another user's: this user never
		// approved the client.
		return nil, &errPage{http.StatusForbidden, "Signed in as someone else", "You signed in as a different account than the one that approved this app. Go back to the app and connect again."}
	}
	grantID, err := s.newID(16)
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	g := &Grant{ID: grantID, Subject: subject, ClientID: p.ClientID, Scopes: p.Scopes, Resource: p.Resource, CreatedAt: now, Upstream: id.Login,
		Email: email, Groups: groups}
	if err := s.putSignIn(ctx, g, tok); err != nil {
		return nil, err
	}
	approved := p.Scopes // remembered approvals grow with step-ups: union with what was approved before
	if before, err := s.st.Consents.Approved(ctx, subject, p.ClientID, consentRedirect(p.RedirectURI)); err == nil {
		for _, sc := range before {
			if !slices.Contains(approved, sc) {
				approved = append(slices.Clone(approved), sc)
			}
		}
	}
	if err := s.st.Consents.Approve(ctx, subject, p.ClientID, consentRedirect(p.RedirectURI), approved, s.consentTTL(p.ClientID)); err != nil {
		s.log.WarnContext(ctx, "authz: remembering the approval failed", "err", err)
	}
	ours, hash, err := newAuthorizationCode(s.o.Rand)
	if err != nil {
		return nil, err
	}
	c := &AuthCode{Hash: hash, GrantID: grantID, ClientID: p.ClientID, RedirectURI: p.RedirectURI, CodeChallenge: p.CodeChallenge,
		Resource: p.Resource, Scopes: p.Scopes, Subject: subject, ExpiresAt: now.Add(s.o.CodeTTL),
		Email: email, Groups: groups}
	if err := s.st.Codes.PutCode(ctx, c, s.o.CodeTTL); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "authz: signed in", "client_id", p.ClientID, "sub", subject, "grant", grantID)
	return &CallbackResult{Code: ours, RedirectURI: p.RedirectURI, State: p.State, Subject: subject}, nil
}

// upstreamFailure maps an upstream failure to what the client is told:
// a timeout or 5xx is temporary; anything else is the upstream refusing.
func upstreamFailure(err error) *authz.Error {
	if errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return authz.ErrTemporarilyUnavailable("the identity provider is not answering; try again")
	}
	return authz.ErrServerError("the sign-in with the identity provider failed")
}

func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request) {
	browser, _ := s.browserFromCookie(r)
	res, err := s.Callback(r.Context(), r.URL.Query(), browser)
	if d, ok := errors.AsType[*Denied](err); ok {
		s.renderDenied(w, d)
		return
	}
	if err != nil {
		s.authorizeFailed(w, r, err)
		return
	}
	s.setUserCookie(w, res.Subject)
	q := url.Values{"code": {res.Code}, "iss": {s.o.Issuer}}
	if res.State != "" {
		q.Set("state", res.State)
	}
	http.Redirect(w, r, withQuery(res.RedirectURI, q), http.StatusFound)
}
