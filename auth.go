package remotemcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/authz/resource"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/wellknown"
)

// authenticate is mcpHandler behind the bearer-token check of s.Auth
// (mcpHandler itself with AuthNone), and mounts on mux what that mode
// serves: the protected-resource metadata and, with AuthProxy (px), the
// authorization server. The wait, if not nil, is for an identity provider
// that could not be reached yet.
func authenticate(bg context.Context, s *settings, mux *http.ServeMux, mcpHandler *mcpserver.Handler, px *proxy) (http.Handler, *idpWait, error) {
	if s.Auth == AuthNone {
		return mcpHandler, nil, nil
	}
	var verify resource.Verifier
	var wait *idpWait
	authServer := s.Tokens.AuthorizationServer
	if px != nil {
		verify, wait = px.issuer.Verify, px.wait
		px.mount(mux)
		authServer = px.base
	} else {
		var err error
		if verify, wait, err = startVerifier(bg, s); err != nil {
			return nil, nil, err
		}
	}
	metadata := wellknown.ProtectedResourceHandler(wellknown.ProtectedResource{
		Resource:             s.endpoint(),
		AuthorizationServers: []string{authServer},
		ScopesSupported:      s.RequiredScopes,
		ResourceName:         s.ResourceName,
	})
	for _, p := range wellknown.MetadataPaths(s.endpoint()) {
		mux.Handle(p, metadata)
	}
	bopts := &resource.BearerOptions{
		ResourceMetadataURL: wellknown.MetadataURL(s.endpoint()),
		Scopes:              s.RequiredScopes,
		CheckScopes:         mcpHandler.CheckScopes,
		Admit:               s.SignIn.admit(s.Auth),
		Logger:              s.Logger.With("component", "authz"),
	}
	if px != nil {
		bopts.InsufficientScope = px.wantStepUp
	}
	return resource.RequireBearer(verify, bopts)(mcpHandler), wait, nil
}

// newVerifier builds the token verifier of AuthJWT or AuthIntrospect.
func newVerifier(ctx context.Context, s *settings) (resource.Verifier, error) {
	t := &s.Tokens
	switch s.Auth {
	case AuthJWT:
		jwks := t.JWKSURL
		if jwks == "" {
			var err error
			if jwks, err = discoverJWKS(ctx, t.Issuer); err != nil {
				return nil, err
			}
		}
		if err := probeJWKS(ctx, jwks); err != nil {
			return nil, err
		}
		v, err := resource.NewJWTVerifier(ctx, &resource.JWTOptions{Issuer: t.Issuer, JWKSURL: jwks, Audience: s.audience(), ClockSkew: s.ClockSkew,
			GroupsClaim: s.SignIn.GroupsClaim, CacheLookup: s.metrics.cacheLookup()})
		if err != nil {
			return nil, err
		}
		return v.Verify, nil
	case AuthIntrospect:
		v, err := resource.NewIntrospector(&resource.IntrospectionOptions{
			URL: t.IntrospectionURL, ClientID: t.ClientID, ClientSecret: t.ClientSecret,
			Audience: s.audience(), Issuer: t.Issuer, ClockSkew: s.ClockSkew,
			GroupsClaim: s.SignIn.GroupsClaim,
		})
		if err != nil {
			return nil, err
		}
		return v.Verify, nil
	}
	return nil, fmt.Errorf("no verifier for auth %q", s.Auth)
}

// discoverJWKS reads jwks_uri from the issuer's metadata: RFC 8414 first,
// then OpenID Connect discovery. The document's issuer must be the
// configured one, byte for byte.
func discoverJWKS(ctx context.Context, issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", err
	}
	path := strings.TrimSuffix(u.Path, "/")
	candidates := []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var errs []error
	for _, c := range candidates {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		jwks, err := fetchJWKSURI(ctx, client, c, issuer)
		cancel()
		if err == nil {
			return jwks, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", c, err))
	}
	return "", fmt.Errorf("discover the JWKS of %s (set the JWKS URL, --jwks-url, to skip discovery): %w", issuer, errors.Join(errs...))
}

func fetchJWKSURI(ctx context.Context, client *http.Client, metadataURL, issuer string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metadataURL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", unreachable(errors.New(netReason(err)))
	}
	defer resp.Body.Close()
	switch {
	case outageStatus(resp.StatusCode):
		return "", unreachable(fmt.Errorf("HTTP %d", resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var m struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return "", err
	}
	if m.Issuer != issuer {
		return "", fmt.Errorf("metadata names issuer %q, not %q", m.Issuer, issuer)
	}
	if err := CheckURL("jwks_uri", m.JWKSURI); err != nil {
		return "", err
	}
	return m.JWKSURI, nil
}

// CheckURL checks that v, the value of the setting called name, is an
// absolute https URL, or http on loopback: what New asks of every URL in
// Options. Its error names the setting and the fix.
func CheckURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%s %q: want an absolute https URL", name, v)
	}
	if u.Scheme == "http" && !mcpserver.IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%s %q: plain http is only allowed on loopback; use https", name, v)
	}
	return nil
}
