package main

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
)

// newVerifier builds the token verifier of --auth jwt or introspect.
func newVerifier(ctx context.Context, cfg *config) (resource.Verifier, error) {
	switch cfg.Auth {
	case "jwt":
		jwks := cfg.JWKSURL
		if jwks == "" {
			var err error
			if jwks, err = discoverJWKS(ctx, cfg.Issuer); err != nil {
				return nil, err
			}
		}
		if err := probeJWKS(ctx, jwks); err != nil {
			return nil, err
		}
		v, err := resource.NewJWTVerifier(ctx, &resource.JWTOptions{Issuer: cfg.Issuer, JWKSURL: jwks, Audience: cfg.audience(), ClockSkew: cfg.clockSkew()})
		if err != nil {
			return nil, err
		}
		return v.Verify, nil
	case "introspect":
		v, err := resource.NewIntrospector(&resource.IntrospectionOptions{
			URL: cfg.IntrospectionURL, ClientID: cfg.IntrospectClientID, ClientSecret: cfg.IntrospectSecret,
			Audience: cfg.audience(), Issuer: cfg.Issuer, ClockSkew: cfg.clockSkew(),
		})
		if err != nil {
			return nil, err
		}
		return v.Verify, nil
	}
	return nil, fmt.Errorf("no verifier for --auth %q", cfg.Auth)
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
	return "", fmt.Errorf("discover the JWKS of %s (set --jwks-url to skip discovery): %w", issuer, errors.Join(errs...))
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
	if err := checkURL("jwks_uri", m.JWKSURI, true); err != nil {
		return "", err
	}
	return m.JWKSURI, nil
}
