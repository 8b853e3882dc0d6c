package devidp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
)

// The provider is mounted at its issuer's path, without stripping it.
func ExampleProvider_Handler() {
	p, err := devidp.New(devidp.Options{
		Issuer:       "http://127.0.0.1:8080/dev-idp",
		ClientID:     "remotemcp-dev",
		ClientSecret: "dev-secret",
		RedirectURIs: []string{"http://127.0.0.1:8080/oauth/callback"},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dev-idp/", p.Handler())

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8080/dev-idp/.well-known/openid-configuration", nil))
	var meta struct {
		Issuer   string `json:"issuer"`
		Token    string `json:"token_endpoint"`
		UserInfo string `json:"userinfo_endpoint"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &meta)
	fmt.Println(meta.Issuer)
	fmt.Println(meta.Token)
	fmt.Println(meta.UserInfo)
	// Output:
	// http://127.0.0.1:8080/dev-idp
	// http://127.0.0.1:8080/dev-idp/token
	// http://127.0.0.1:8080/dev-idp/userinfo
}

// New refuses an issuer that is not on a loopback host.
func ExampleNew_nonLoopback() {
	_, err := devidp.New(devidp.Options{
		Issuer:       "https://login.example.com/dev-idp",
		ClientID:     "remotemcp-dev",
		ClientSecret: "dev-secret",
		RedirectURIs: []string{"https://mcp.example.com/oauth/callback"},
	})
	fmt.Println(err != nil)
	// Output: true
}
