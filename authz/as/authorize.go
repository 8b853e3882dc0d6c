package as

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/remotemcp/remotemcp/authz"
)

// AuthorizeRequest is an authorization request ([RFC 6749 §4.1.1] with
// PKCE and RFC 8707), as read from the query of GET /authorize.
//
// [RFC 6749 §4.1.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
type AuthorizeRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	Resource            []string

	// user is the subject our signed user cookie names, for a request the
	// user's browser did not get from another site: a step-up the
	// resource server wanted for this user and client is added to the
	// request (carryStepUp).
	user string
}

// maxParam bounds each authorization request parameter.
const maxParam = 2048

// parseAuthorizeRequest reads the query; a parameter given twice is an
// error (RFC 6749 §3.1), except resource, which RFC 8707 allows to repeat.
func parseAuthorizeRequest(q url.Values) (*AuthorizeRequest, error) {
	for k, v := range q {
		if len(v) > 1 && k != "resource" {
			return nil, authz.ErrInvalidRequest("the parameter " + k + " is repeated")
		}
		for _, s := range v {
			if len(s) > maxParam {
				return nil, authz.ErrInvalidRequest("the parameter " + k + " is too long")
			}
		}
	}
	return &AuthorizeRequest{
		ResponseType:        q.Get("response_type"),
		ClientID:            q.Get("client_id"),
		RedirectURI:         q.Get("redirect_uri"),
		Scope:               q.Get("scope"),
		State:               q.Get("state"),
		CodeChallenge:       q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"),
		Resource:            q["resource"],
	}, nil
}

// errPage is an error shown to the user rather than sent to the client:
// every error of an authorization request before the user has seen the
// consent page, so that no error is a redirect the user did not cause
// (an open redirector, RFC 9700 §4.11.2).
type errPage struct {
	status int
	title  string
	detail string
}

func (e *errPage) Error() string { return e.title + ": " + e.detail }

// redirectErr is an error to send back to the client's redirect URI: only
// the outcomes of the user's own steps, a denied consent and the upstream
// callback.
type redirectErr struct {
	redirectURI, state string
	err                *authz.Error
}

func (e *redirectErr) Error() string { return e.err.Error() }

// client finds a client: registered with us, or, for an https client id,
// known through its metadata document.
func (s *Server) client(ctx context.Context, clientID string) (*Client, error) {
	if clientID == "" {
		return nil, authz.ErrNotFound
	}
	if isDocumentClientID(clientID) {
		if s.o.Metadata == nil {
			return nil, authz.ErrNotFound
		}
		return s.o.Metadata.Fetch(ctx, clientID)
	}
	return s.st.Clients.GetClient(ctx, clientID)
}

// isDocumentClientID reports whether clientID names a Client ID Metadata
// Document (an http or https URL) rather than a registered client.
func isDocumentClientID(clientID string) bool {
	return strings.HasPrefix(clientID, "https://") || strings.HasPrefix(clientID, "http://")
}

// documentClient is the client whose client_id is a document URL, without
// its document: a public client, which is all that revocation and
// introspection need to know (see authenticateClient).
func (s *Server) documentClient(clientID string) (*Client, error) {
	if s.o.Metadata == nil {
		return nil, authz.ErrNotFound
	}
	if reason := checkClientIDURL(clientID, s.o.Metadata.allowLoopback); reason != "" {
		return nil, authz.ErrInvalidClient("client_id " + showURI(clientID) + " is not a valid client metadata document URL: " + reason)
	}
	return &Client{ClientID: clientID, Metadata: ClientMetadata{ClientID: clientID, TokenEndpointAuthMethod: authMethodNone}}, nil
}

// Authorize validates an authorization request and records it as pending,
// bound to the browser b. It returns *errPage for errors to show the user:
// none is sent to the client's redirect URI, which, though registered,
// anyone may have registered, and a redirect before the user has done
// anything would send the user there unasked.
func (s *Server) Authorize(ctx context.Context, req *AuthorizeRequest, browser string) (*PendingAuth, *Client, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		var oe *authz.Error
		if errors.As(err, &oe) { // a metadata document that could not be used
			return nil, nil, &errPage{http.StatusBadRequest, "This app's registration could not be verified", oe.Description}
		}
		if errors.Is(err, authz.ErrNotFound) {
			return nil, nil, &errPage{http.StatusBadRequest, "Unknown app", "The app that sent you here is not registered with this server, or its registration expired. Go back to the app and connect again."}
		}
		return nil, nil, err
	}
	redirect := req.RedirectURI
	if redirect == "" {
		if len(c.Metadata.RedirectURIs) != 1 {
			return nil, nil, &errPage{http.StatusBadRequest, "Missing redirect URI", "The app did not say where to send you back, and it registered several places."}
		}
		redirect = c.Metadata.RedirectURIs[0]
	} else if _, ok := matchRedirectURI(c.Metadata.RedirectURIs, redirect); !ok {
		return nil, nil, &errPage{http.StatusBadRequest, "Redirect URI not registered", "The app asked to send you back to an address it did not register. For your safety, this request was stopped."}
	}
	fail := func(e *authz.Error) (*PendingAuth, *Client, error) {
		return nil, nil, &errPage{http.StatusBadRequest, "The app sent an invalid sign-in request",
			e.Description + " (" + string(e.Code) + "). Go back to the app and connect again; if this happens again, tell the app's developers."}
	}
	if req.ResponseType != responseTypeCode {
		return fail(authz.ErrUnsupportedResponseType("response_type must be code"))
	}
	if err := validateCodeChallenge(req.CodeChallenge, req.CodeChallengeMethod); err != nil {
		return fail(authz.ErrInvalidRequest(strings.TrimPrefix(err.Error(), errInvalidPKCE.Error()+": ")))
	}
	resource := s.o.Resource
	switch len(req.Resource) {
	case 0: // tolerated: the token is for our one resource anyway
	case 1:
		if !s.resourceOK(req.Resource[0]) {
			return fail(authz.ErrInvalidTarget("this server issues tokens only for " + s.o.Resource))
		}
	default:
		return fail(authz.ErrInvalidTarget("only one resource may be requested"))
	}
	scopes, err := s.narrowScopes(req.Scope)
	if err != nil {
		var oe *authz.Error
		errors.As(err, &oe)
		return fail(oe)
	}
	if scopes, err = s.carryStepUp(ctx, c.ClientID, req.user, scopes); err != nil {
		return nil, nil, err
	}
	id, err := s.newID(16)
	if err != nil {
		return nil, nil, err
	}
	p := &PendingAuth{
		ID:            id,
		ClientID:      c.ClientID,
		RedirectURI:   redirect,
		State:         req.State,
		CodeChallenge: req.CodeChallenge,
		Resource:      resource,
		Scopes:        scopes,
		CreatedAt:     s.o.Now(),
		Browser:       hashToken(browser),
	}
	if err := s.st.Pending.PutPending(ctx, p, s.o.PendingTTL); err != nil {
		return nil, nil, err
	}
	return p, c, nil
}

// Approve records the user's approval of a pending authorization and
// returns the upstream authorization URL to send the browser to. The
// upstream state is made and stored only now, after consent.
func (s *Server) Approve(ctx context.Context, p *PendingAuth, autoFor string) (string, error) {
	secret, err := s.newID(32)
	if err != nil {
		return "", err
	}
	verifier, err := s.newID(48)
	if err != nil {
		return "", err
	}
	sealed, err := s.vault.SealVerifier(p.ID, verifier)
	if err != nil {
		return "", err
	}
	p.Approved = true
	p.AutoApprovedFor = autoFor
	p.UpstreamStateHash = hashToken(secret)
	p.UpstreamVerifier = sealed
	ttl := s.o.PendingTTL - s.o.Now().Sub(p.CreatedAt)
	if ttl <= 0 {
		return "", authz.ErrNotFound
	}
	if err := s.st.Pending.PutPending(ctx, p, ttl); err != nil {
		return "", err
	}
	s.event(Event{Kind: EventAuthorization, Outcome: OutcomeConsented})
	return s.up.AuthCodeURL(p.ID+"."+secret, verifier), nil
}

func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if s.addressLimited(w, r, limitAuthorize) {
		return
	}
	req, err := parseAuthorizeRequest(r.URL.Query())
	if err != nil {
		s.renderError(w, r, &errPage{http.StatusBadRequest, "Invalid request", errDescription(err)})
		return
	}
	if s.clientLimited(w, r, limitAuthorize, req.ClientID) {
		return
	}
	browser := s.browserNonce(w, r)
	if !crossSite(r) {
		req.user = s.userFromCookie(r)
	}
	p, c, err := s.Authorize(r.Context(), req, browser)
	if err != nil {
		s.authorizeFailed(w, r, err)
		return
	}
	// A remembered approval applies only to the same user (our signed
	// user cookie), client and redirect URI, for scopes it covered, and
	// never to a request another site started (a cross-site request
	// could otherwise approve on the user's behalf).
	if sub := s.userFromCookie(r); sub != "" && !crossSite(r) {
		if approved, err := s.st.Consents.Approved(r.Context(), sub, p.ClientID, consentRedirect(p.RedirectURI)); err == nil && subset(p.Scopes, approved) {
			u, err := s.Approve(r.Context(), p, sub)
			if err != nil {
				s.authorizeFailed(w, r, err)
				return
			}
			s.log.InfoContext(r.Context(), "authz: remembered approval", "client_id", p.ClientID)
			http.Redirect(w, r, u, http.StatusFound)
			return
		}
	}
	s.renderConsent(w, r, p, c, s.mac("csrf", p.ID, browser))
}

// authorizeFailed renders an error of Authorize, Approve or the callback
// where it belongs: a page, a redirect to the (registered) client, or a
// 503 page.
func (s *Server) authorizeFailed(w http.ResponseWriter, r *http.Request, err error) {
	var page *errPage
	var red *redirectErr
	switch {
	case errors.As(err, &page):
		s.renderError(w, r, page)
	case errors.As(err, &red):
		s.redirectError(w, r, red, http.StatusFound)
	default:
		s.logErr(r, "authorize", err)
		s.renderError(w, r, &errPage{http.StatusServiceUnavailable, "Something went wrong", "The server could not handle this sign-in. Try again in a moment."})
	}
}

// redirectError sends an OAuth error back to a registered redirect URI,
// with state and iss (RFC 9207: on error responses too).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, e *redirectErr, status int) {
	q := url.Values{"error": {string(e.err.Code)}, "iss": {s.o.Issuer}}
	if d := authz.WireText(e.err.Description); d != "" {
		q.Set("error_description", d)
	}
	if e.state != "" {
		q.Set("state", e.state)
	}
	http.Redirect(w, r, withQuery(e.redirectURI, q), status)
}

// withQuery appends parameters to a URI that may already have a query.
func withQuery(uri string, q url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.Encode()
}

// serveConsent takes the consent form: approve or deny.
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, &errPage{http.StatusBadRequest, "Invalid request", "The form could not be read."})
		return
	}
	// A cross-site form post is refused outright: the CSRF token would
	// refuse it too, but this needs no secret to hold.
	if crossSiteForm(r, s.o.Issuer) {
		s.renderError(w, r, &errPage{http.StatusForbidden, "Request refused", "This approval did not come from this site's own page."})
		return
	}
	tx, csrf, decision := r.PostForm.Get("tx"), r.PostForm.Get("csrf"), r.PostForm.Get("decision")
	browser, ok := s.browserFromCookie(r)
	if !ok || tx == "" || !s.macOK(csrf, "csrf", tx, browser) {
		s.renderError(w, r, &errPage{http.StatusForbidden, "This page expired", "The approval could not be verified for this browser. Go back to the app and connect again."})
		return
	}
	p, err := s.st.Pending.GetPending(r.Context(), tx)
	if err != nil || !hashEqual(p.Browser, hashToken(browser)) {
		if err != nil && !errors.Is(err, authz.ErrNotFound) {
			s.authorizeFailed(w, r, err)
			return
		}
		s.renderError(w, r, &errPage{http.StatusBadRequest, "This page expired", "The sign-in took too long or was already finished. Go back to the app and connect again."})
		return
	}
	switch decision {
	case "approve":
		u, err := s.Approve(r.Context(), p, "")
		if err != nil {
			s.authorizeFailed(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "authz: consent approved", "client_id", p.ClientID)
		http.Redirect(w, r, u, http.StatusSeeOther)
	case "deny":
		if _, err := s.st.Pending.TakePending(r.Context(), tx); err != nil && !errors.Is(err, authz.ErrNotFound) {
			s.logErr(r, "consent deny", err)
		}
		s.log.InfoContext(r.Context(), "authz: consent denied", "client_id", p.ClientID)
		s.event(Event{Kind: EventAuthorization, Outcome: OutcomeDenied})
		s.redirectError(w, r, &redirectErr{p.RedirectURI, p.State, authz.ErrAccessDenied("the user denied the request")}, http.StatusSeeOther)
	default:
		s.renderError(w, r, &errPage{http.StatusBadRequest, "Invalid request", "Choose Allow or Deny."})
	}
}

// crossSite reports whether a navigation was started by another site
// (Sec-Fetch-Site, sent by every current browser). Only "none" (the user
// or an app opened the URL) and "same-origin" count as not cross-site; a
// request without the header gets the consent page too.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "none", "same-origin":
		return false
	}
	return true
}

// crossSiteForm reports whether a form post came from another origin,
// by Sec-Fetch-Site or, failing that, Origin (where "null" is refused).
func crossSiteForm(r *http.Request, issuer string) bool {
	// Sec-Fetch-Site, when present, is the browser's own verdict; Origin
	// may then be "null" (a page with a strict referrer policy posts
	// Origin: null), which says nothing.
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		return sfs != "same-origin"
	}
	if o := r.Header.Get("Origin"); o != "" {
		iu, err := url.Parse(issuer)
		if err != nil || !strings.EqualFold(o, iu.Scheme+"://"+iu.Host) {
			return true
		}
	}
	return false
}

func subset(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// errDescription is the wire-safe description of an *Error, or a generic
// text.
func errDescription(err error) string {
	var oe *authz.Error
	if errors.As(err, &oe) && oe.Description != "" {
		return oe.Description
	}
	return "The request is not valid."
}
