package as

import (
	"github.com/remotemcp/remotemcp/authz"

	"encoding/json"
	"net/http"
	"strings"
)

// ServerMetadata is our authorization server metadata document ([RFC 8414
// §2]), also served at the OpenID configuration paths for clients that
// look there first. JSON names are RFC 8414's.
//
// [RFC 8414 §2]: https://www.rfc-editor.org/rfc/rfc8414#section-2
type ServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseISSParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported"`
	ServiceDocumentation                       string   `json:"service_documentation,omitempty"`
}

// Metadata returns our metadata document.
func (s *Server) Metadata() *ServerMetadata {
	iss := s.o.Issuer
	return &ServerMetadata{
		Issuer:                                     iss,
		AuthorizationEndpoint:                      iss + PathAuthorize,
		TokenEndpoint:                              iss + PathToken,
		RegistrationEndpoint:                       iss + PathRegister,
		RevocationEndpoint:                         iss + PathRevoke,
		IntrospectionEndpoint:                      iss + PathIntrospect,
		JWKSURI:                                    iss + PathJWKS,
		ScopesSupported:                            append([]string(nil), s.offered...),
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{grantAuthorizationCode, grantRefreshToken},
		TokenEndpointAuthMethodsSupported:          []string{authMethodNone, authMethodClientSecretBasic, authMethodClientSecretPost},
		RevocationEndpointAuthMethodsSupported:     []string{authMethodNone, authMethodClientSecretBasic, authMethodClientSecretPost},
		IntrospectionEndpointAuthMethodsSupported:  []string{authMethodClientSecretBasic, authMethodClientSecretPost},
		CodeChallengeMethodsSupported:              []string{methodS256},
		AuthorizationResponseISSParameterSupported: true,
		ClientIDMetadataDocumentSupported:          s.o.Metadata != nil,
	}
}

// MetadataPaths are the URL paths of our metadata document: RFC 8414 §3.1's
// (the well-known suffix inserted before the issuer's path) and both
// OpenID Connect Discovery forms (inserted and appended), which MCP
// clients try in that order.
func (s *Server) MetadataPaths() []string {
	if s.base == "" {
		return []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}
	}
	return []string{
		"/.well-known/oauth-authorization-server" + s.base,
		"/.well-known/openid-configuration" + s.base,
		s.base + "/.well-known/openid-configuration",
	}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", strings.Join([]string{"MCP-Protocol-Version", "Content-Type"}, ", "))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body, err := json.MarshalIndent(s.Metadata(), "", "  ")
	if err != nil {
		authz.WriteError(w, err)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(append(body, '\n'))
}
