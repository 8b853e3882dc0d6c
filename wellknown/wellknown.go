// Package wellknown serves static discovery documents: the OAuth 2.0
// Protected Resource Metadata of RFC 9728 for the MCP endpoint.
//
// [RFC 9728 §3]: https://www.rfc-editor.org/rfc/rfc9728#section-3
package wellknown

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// ProtectedResource is the RFC 9728 §2 metadata document.
type ProtectedResource struct {
	// Resource is REQUIRED: the canonical URL of the MCP endpoint, byte for
	// byte what clients connect to.
	Resource string `json:"resource"`
	// AuthorizationServers lists issuer identifiers (OPTIONAL in RFC 9728,
	// REQUIRED by MCP).
	AuthorizationServers []string `json:"authorization_servers"`
	// ScopesSupported is the minimal set of scopes for basic use (RECOMMENDED).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported is ["header"]: tokens are accepted only in the
	// Authorization header.
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceName is a human-readable name (OPTIONAL).
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a URL of human-readable docs (OPTIONAL).
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
}

// MetadataPaths returns the paths at which the metadata of the resource is
// served: the root well-known path and the path-suffixed one (RFC 9728 §3.1),
// e.g. /.well-known/oauth-protected-resource/mcp for https://h/mcp.
func MetadataPaths(resource string) []string {
	const root = "/.well-known/oauth-protected-resource"
	u, err := url.Parse(resource)
	if err != nil || strings.Trim(u.Path, "/") == "" {
		return []string{root}
	}
	return []string{root, root + "/" + strings.TrimPrefix(u.Path, "/")}
}

// MetadataURL is the URL clients are pointed at in WWW-Authenticate: the
// path-suffixed well-known URL of the resource.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	paths := MetadataPaths(resource)
	// RFC 9728 §3.1: the resource's query, if any, stays on the URL.
	u.Path, u.Fragment = paths[len(paths)-1], ""
	return u.String()
}

// ProtectedResourceHandler serves m as JSON, with CORS for browser-based
// clients and a short public cache lifetime.
func ProtectedResourceHandler(m ProtectedResource) http.Handler {
	if m.Resource == "" || len(m.AuthorizationServers) == 0 {
		panic("wellknown: metadata needs resource and authorization_servers")
	}
	if m.BearerMethodsSupported == nil {
		m.BearerMethodsSupported = []string{"header"}
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic("wellknown: " + err.Error())
	}
	// Once, here: appending in the handler would write into the spare
	// capacity of the shared slice from concurrent requests (a data race
	// the cluster test found).
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "MCP-Protocol-Version, Content-Type")
		switch r.Method {
		case http.MethodOptions:
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodGet, http.MethodHead:
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		w.Write(body)
	})
}
