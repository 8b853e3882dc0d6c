package as_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestClientAuthentication: /token, /revoke and /introspect authenticate
// the client the way it registered (none, client_secret_basic or
// client_secret_post) and refuse anything else with invalid_client
// before looking at the token; a malformed body is invalid_request.
func TestClientAuthentication(t *testing.T) {
	e := newEnv(t)
	pub, _ := e.register(t, "none")
	basic, basicSecret := e.register(t, "client_secret_basic")
	post, postSecret := e.register(t, "client_secret_post")
	basicTok := e.login(t, basic, "notes:read")
	type creds struct {
		form  url.Values
		basic *[2]string
	}
	for _, tt := range []struct {
		name string
		creds
		want string
	}{
		{"public client with a secret in the body", creds{form: url.Values{"client_id": {pub.ClientID}, "client_secret": {"guess"}}}, "invalid_client"},
		{"public client with Basic", creds{basic: &[2]string{pub.ClientID, "guess"}}, "invalid_client"},
		{"public client with an empty Basic secret", creds{basic: &[2]string{pub.ClientID, ""}}, "invalid_client"},
		{"basic client, wrong secret", creds{basic: &[2]string{basic.ClientID, basicSecret + "x"}}, "invalid_client"},
		{"basic client, another client's secret", creds{basic: &[2]string{basic.ClientID, postSecret}}, "invalid_client"},
		{"basic client, no secret", creds{form: url.Values{"client_id": {basic.ClientID}}}, "invalid_client"},
		{"basic client, right secret in the body", creds{form: url.Values{"client_id": {basic.ClientID}, "client_secret": {basicSecret}}}, "invalid_client"},
		{"post client, wrong secret", creds{form: url.Values{"client_id": {post.ClientID}, "client_secret": {"guess"}}}, "invalid_client"},
		{"post client, right secret with Basic", creds{basic: &[2]string{post.ClientID, postSecret}}, "invalid_client"},
		{"unknown client", creds{form: url.Values{"client_id": {"no-such-client"}}}, "invalid_client"},
		{"metadata document client, CIMD off", creds{form: url.Values{"client_id": {"https://app.example/client.json"}}}, "invalid_client"},
		{"no client at all", creds{}, "invalid_client"},
		{"Basic with a bad escape", creds{basic: &[2]string{"%zz", "x"}}, "invalid_client"},
		{"Basic and another client_id", creds{form: url.Values{"client_id": {pub.ClientID}}, basic: &[2]string{basic.ClientID, basicSecret}}, "invalid_request"},
		{"Basic and client_secret", creds{form: url.Values{"client_secret": {basicSecret}}, basic: &[2]string{basic.ClientID, basicSecret}}, "invalid_request"},
		{"Basic and the same client_id", creds{form: url.Values{"client_id": {basic.ClientID}}, basic: &[2]string{basic.ClientID, basicSecret}}, ""},
		{"basic client, right", creds{basic: &[2]string{basic.ClientID, basicSecret}}, ""},
		{"post client, right", creds{form: url.Values{"client_id": {post.ClientID}, "client_secret": {postSecret}}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// /introspect is the one endpoint all three may pass and that
			// changes nothing; /token and /revoke must refuse the same.
			paths := []string{"/introspect"}
			if tt.want != "" {
				paths = append(paths, "/token", "/revoke")
			}
			for _, path := range paths {
				f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {basicTok.RefreshToken}, "token": {basicTok.AccessToken}}
				for k, v := range tt.form {
					f[k] = v
				}
				r := formRequest(path, f)
				if tt.basic != nil {
					r.Header.Set("Authorization", "Basic "+basicAuthRaw(tt.basic[0], tt.basic[1]))
				}
				rec := e.serve(r, nil, nil)
				var body map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("%s: body %q: %v", path, rec.Body, err)
				}
				got, _ := body["error"].(string)
				if got != tt.want {
					t.Errorf("%s: %d %v, want error %q", path, rec.Code, body, tt.want)
				}
				if tt.want == "invalid_client" && (rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic")) {
					t.Errorf("%s: %d, WWW-Authenticate %q; want 401 with a Basic challenge", path, rec.Code, rec.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
	// None of that revoked or rotated the grant.
	if _, err := e.refresh(t, basic, basicTok.RefreshToken); err != nil {
		t.Errorf("the grant after the attempts: %v", err)
	}
}

// TestTokenEndpointsMalformed: the body of /token, /revoke and
// /introspect is a form, with each parameter once, nothing in the query.
func TestTokenEndpointsMalformed(t *testing.T) {
	e := newEnv(t)
	pub, _ := e.register(t, "none")
	body := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "token": {"x"}, "client_id": {pub.ClientID}}.Encode()
	const form = "application/x-www-form-urlencoded"
	for _, path := range []string{"/token", "/revoke", "/introspect"} {
		for _, tt := range []struct {
			name, ct, body, query string
		}{
			{"JSON body", "application/json", `{"grant_type":"refresh_token"}`, ""},
			{"text/plain", "text/plain", body, ""},
			{"no content type", "", body, ""},
			{"repeated parameter", form, body + "&client_id=" + pub.ClientID, ""},
			{"parameters in the query", form, body, "client_id=" + pub.ClientID},
			{"oversized body", form, body + "&pad=" + strings.Repeat("a", 20<<10), ""},
		} {
			p := path
			if tt.query != "" {
				p += "?" + tt.query
			}
			rec := e.serve(formRequestBody(p, tt.ct, tt.body), nil, nil)
			var got map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &got)
			if diff := cmp.Diff([]any{http.StatusBadRequest, "invalid_request"}, []any{rec.Code, got["error"]}); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", path, tt.name, diff)
			}
		}
	}
}

func formRequest(path string, f url.Values) *http.Request {
	return formRequestBody(path, "application/x-www-form-urlencoded", f.Encode())
}

func formRequestBody(path, contentType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// basicAuthRaw is the Basic credentials of id and secret as given, not
// form-encoded first.
func basicAuthRaw(id, secret string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(id, secret)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
