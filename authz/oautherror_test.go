package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz/authztest"
)

type writtenError struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

func recordError(err error) writtenError {
	rec := httptest.NewRecorder()
	WriteError(rec, err)
	h := make(map[string]string)
	for k := range rec.Header() {
		h[k] = rec.Header().Get(k)
	}
	return writtenError{Status: rec.Code, Headers: h, Body: rec.Body.Bytes()}
}

func TestWriteError(t *testing.T) {
	noStore := func(extra ...string) map[string]string {
		h := map[string]string{
			"Content-Type":  "application/json",
			"Cache-Control": "no-store",
			"Pragma":        "no-cache",
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	basic := noStore("Www-Authenticate", `Basic realm="remotemcp"`)
	for _, tt := range []struct {
		name       string
		err        error
		wantStatus int
		wantHeader map[string]string
		wantBody   string
	}{
		{"invalid_request", ErrInvalidRequest("missing code_verifier"), 400, noStore(),
			`{"error":"invalid_request","error_description":"missing code_verifier"}`},
		{"invalid_client is a 401 with a Basic challenge", ErrInvalidClient("unknown client"), 401, basic,
			`{"error":"invalid_client","error_description":"unknown client"}`},
		{"invalid_client stays 401 whatever Status says", &Error{Code: InvalidClient, Status: 400}, 401, basic,
			`{"error":"invalid_client"}`},
		{"invalid_grant", ErrInvalidGrant("code already used"), 400, noStore(),
			`{"error":"invalid_grant","error_description":"code already used"}`},
		{"unauthorized_client", ErrUnauthorizedClient(""), 400, noStore(), `{"error":"unauthorized_client"}`},
		{"unsupported_grant_type", ErrUnsupportedGrantType("password"), 400, noStore(),
			`{"error":"unsupported_grant_type","error_description":"password"}`},
		{"invalid_scope", ErrInvalidScope(""), 400, noStore(), `{"error":"invalid_scope"}`},
		{"access_denied", ErrAccessDenied("the user said no"), 403, noStore(),
			`{"error":"access_denied","error_description":"the user said no"}`},
		{"unsupported_response_type", ErrUnsupportedResponseType(""), 400, noStore(), `{"error":"unsupported_response_type"}`},
		{"server_error", ErrServerError(""), 500, noStore(), `{"error":"server_error"}`},
		{"temporarily_unavailable", ErrTemporarilyUnavailable("upstream down"), 503, noStore(),
			`{"error":"temporarily_unavailable","error_description":"upstream down"}`},
		{"invalid_redirect_uri", ErrInvalidRedirectURI("redirect_uri 'x': must be an absolute URI"), 400, noStore(),
			`{"error":"invalid_redirect_uri","error_description":"redirect_uri 'x': must be an absolute URI"}`},
		{"invalid_client_metadata", ErrInvalidClientMetadata("client_name must be a string"), 400, noStore(),
			`{"error":"invalid_client_metadata","error_description":"client_name must be a string"}`},
		{"error_uri", &Error{Code: InvalidRequest, URI: "https://docs.example.com/errors#x"}, 400, noStore(),
			`{"error":"invalid_request","error_uri":"https://docs.example.com/errors#x"}`},
		{"zero status uses the code's default", &Error{Code: InvalidGrant}, 400, noStore(), `{"error":"invalid_grant"}`},
		{"invalid status uses the code's default", &Error{Code: ServerError, Status: 42}, 500, noStore(), `{"error":"server_error"}`},
		{"explicit status is kept", &Error{Code: InvalidRequest, Status: 413}, 413, noStore(), `{"error":"invalid_request"}`},
		{"a wrapped Error is written without the wrapper's text",
			fmt.Errorf("register client secret=hunter2: %w", ErrInvalidClientMetadata("bad scope")), 400, noStore(),
			`{"error":"invalid_client_metadata","error_description":"bad scope"}`},
		{"any other error is an opaque 500", errors.New("redis: connection refused to 10.0.0.3 password=hunter2"), 500, noStore(),
			`{"error":"server_error"}`},
		{"nil error is an opaque 500", nil, 500, noStore(), `{"error":"server_error"}`},
		{"nil *Error is an opaque 500", (*Error)(nil), 500, noStore(), `{"error":"server_error"}`},
		{"Error without code is an opaque 500", &Error{Description: "oops"}, 500, noStore(), `{"error":"server_error"}`},
		{"description is cut to the RFC 6749 charset", ErrInvalidRequest("bad \"x\"\\y\nz\u00e9"), 400, noStore(),
			`{"error":"invalid_request","error_description":"bad ?x??y?z?"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := recordError(tt.err)
			if got.Status != tt.wantStatus {
				t.Errorf("status = %d, want %d", got.Status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantHeader, got.Headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			var want, body any
			if err := json.Unmarshal([]byte(tt.wantBody), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got.Body, &body); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, got.Body)
			}
			if diff := cmp.Diff(want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteErrorGolden(t *testing.T) {
	all := map[string]writtenError{
		"invalid_request":         recordError(ErrInvalidRequest("missing code_verifier")),
		"invalid_client":          recordError(ErrInvalidClient("client authentication failed")),
		"invalid_grant":           recordError(ErrInvalidGrant("the authorization code was already used")),
		"invalid_redirect_uri":    recordError(ErrInvalidRedirectURI("redirect_uri 'javascript:alert(1)': scheme javascript is not allowed")),
		"invalid_client_metadata": recordError(ErrInvalidClientMetadata("grant_types may only hold authorization_code and refresh_token, not 'password'")),
		"internal":                recordError(errors.New("store: dial tcp 10.0.0.3:6379: connection refused")),
	}
	got, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	authztest.CheckJSONGolden(t, "oautherror", got)
}

func TestErrorRoundTrip(t *testing.T) {
	in := &Error{Code: InvalidRedirectURI, Description: "no", URI: "https://example.com/e", Status: 400}
	b1, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Error
	if err := json.Unmarshal(b1, &out); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(&out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(b1), string(b2)); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(`{"error":"invalid_redirect_uri","error_description":"no","error_uri":"https://example.com/e"}`, string(b1)); diff != "" {
		t.Errorf("wire form (-want +got):\n%s", diff)
	}
}

func TestOAuthErrorConstructorsAreFresh(t *testing.T) {
	a := ErrInvalidGrant("first")
	a.Description = "changed"
	a.Status = 418
	b := ErrInvalidGrant("second")
	if diff := cmp.Diff(&Error{Code: InvalidGrant, Description: "second", Status: 400}, b); diff != "" {
		t.Errorf("constructor shares state (-want +got):\n%s", diff)
	}
	if got, want := a.Error(), "invalid_grant: changed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := ErrServerError("").Error(), "server_error"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(fmt.Errorf("wrap: %w", ErrInvalidScope("x")), &e) || e.Code != InvalidScope {
		t.Errorf("errors.As did not find the *Error")
	}
}
