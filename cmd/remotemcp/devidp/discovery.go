package devidp

import "net/http"

// metadata is the discovery document ([OpenID Connect Discovery 1.0 §3],
// [RFC 8414 §2]). It is honest about what the provider is: a plain OAuth
// 2.0 server with userinfo that issues no ID tokens, so jwks_uri and
// id_token_signing_alg_values_supported (which OpenID Connect Discovery
// requires of a full OpenID provider) are left out.
//
// [OpenID Connect Discovery 1.0 §3]: https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
// [RFC 8414 §2]: https://www.rfc-editor.org/rfc/rfc8414#section-2
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	// AuthorizationResponseISSParameterSupported: every authorization
	// response carries iss ([RFC 9207 §3]).
	//
	// [RFC 9207 §3]: https://www.rfc-editor.org/rfc/rfc9207#section-3
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// supportedScopes are the scopes a client may request. profile releases
// preferred_username and name from userinfo; email releases email.
var supportedScopes = []string{"openid", "profile", "email", "offline_access"}

// Endpoints are the URLs of a provider's endpoints.
type Endpoints struct{ Authorization, Token, UserInfo string }

// Endpoints are the provider's endpoint URLs as its discovery document
// names them, for a client that cannot fetch the document: the server
// that mounts the provider, before it serves.
func (p *Provider) Endpoints() Endpoints {
	return Endpoints{Authorization: p.base + "/authorize", Token: p.base + "/token", UserInfo: p.base + "/userinfo"}
}

// metadata returns the provider's discovery document.
func (p *Provider) metadata() *metadata {
	e := p.Endpoints()
	return &metadata{
		Issuer:                                     p.issuer,
		AuthorizationEndpoint:                      e.Authorization,
		TokenEndpoint:                              e.Token,
		UserinfoEndpoint:                           e.UserInfo,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:              []string{methodS256},
		TokenEndpointAuthMethodsSupported:          []string{"client_secret_basic", "client_secret_post"},
		ScopesSupported:                            append([]string(nil), supportedScopes...),
		SubjectTypesSupported:                      []string{"public"},
		ClaimsSupported:                            []string{"sub", "preferred_username", "name", "email"},
		AuthorizationResponseISSParameterSupported: true,
	}
}

// discovery serves GET <issuer path>/.well-known/openid-configuration.
func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, p.metadata())
}
