package upstream

import (
	"slices"

	"golang.org/x/oauth2"
)

// OIDCEndpoints are an OpenID provider's endpoints, for NewOIDC.
type OIDCEndpoints struct {
	AuthorizationEndpoint, TokenEndpoint, UserInfoEndpoint string
}

// NewOIDC is DiscoverOIDC with the endpoints given instead of
// discovered: for a provider in the same process (the development identity
// provider, which cannot answer its discovery request before the server
// that serves it starts) or one whose discovery document is not reachable.
// Everything after discovery is the same code path. name is Upstream.Name.
func NewOIDC(name, issuer string, ep OIDCEndpoints, cfg Config) *Provider {
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email"}
	}
	return &Provider{
		Name:   name,
		Issuer: issuer,
		OAuth2: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:   ep.AuthorizationEndpoint,
				TokenURL:  ep.TokenEndpoint,
				AuthStyle: oauth2.AuthStyleInHeader,
			},
			RedirectURL: cfg.RedirectURL,
			Scopes:      slices.Clone(scopes),
		},
		UserInfoURL: ep.UserInfoEndpoint,
		HTTPClient:  cfg.client(),
		accept:      "application/json",
		parse:       parseStaticIdentity,
	}
}

// parseStaticIdentity is parseOIDCIdentity for a provider in the same
// process, whose user names are its own: unique, so an allow-list may
// name them.
func parseStaticIdentity(m map[string]any) (*Identity, error) {
	id, err := parseOIDCIdentity(m)
	if err == nil {
		id.UniqueLogin = id.Login != ""
	}
	return id, err
}
