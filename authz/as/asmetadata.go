package as

import (
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/remotemcp/remotemcp/authz"

	"encoding/json"
	"net/http"
	"strings"
)

// Metadata returns our authorization server metadata document ([RFC 8414
// §2]), also served at the OpenID configuration paths for clients that
// look there first. It is the go-sdk's wire type, the one its clients
// read; its omitempty fields are all set here but one, so that with CIMD
// off client_id_metadata_document_supported is absent, which means false.
//
// [RFC 8414 §2]: https://www.rfc-editor.org/rfc/rfc8414#section-2
func (s *Server) Metadata() *oauthex.AuthServerMeta {
	iss := s.o.Issuer
	return &oauthex.AuthServerMeta{
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
		AuthorizationResponseIssParameterSupported: true,
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
