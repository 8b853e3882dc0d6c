package wellknown_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/remotemcp/remotemcp/wellknown"
)

func ExampleProtectedResourceHandler() {
	const resource = "https://mcp.example.com/mcp"
	h := wellknown.ProtectedResourceHandler(wellknown.ProtectedResource{
		Resource:             resource,
		AuthorizationServers: []string{"https://auth.example.com"},
		ScopesSupported:      []string{"notes:read"},
	})
	// Serve the document at the root and at the path-suffixed well-known
	// path; point WWW-Authenticate challenges at MetadataURL.
	mux := http.NewServeMux()
	for _, p := range wellknown.MetadataPaths(resource) {
		mux.Handle("GET "+p, h)
	}
	fmt.Println(wellknown.MetadataURL(resource))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)
	// Output:
	// https://mcp.example.com/.well-known/oauth-protected-resource/mcp
	// 200 application/json
	// {
	//   "resource": "https://mcp.example.com/mcp",
	//   "authorization_servers": [
	//     "https://auth.example.com"
	//   ],
	//   "scopes_supported": [
	//     "notes:read"
	//   ],
	//   "bearer_methods_supported": [
	//     "header"
	//   ]
	// }
}
