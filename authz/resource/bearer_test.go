package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

const (
	testMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// testToken is a valid b64token that must never be echoed back.
	testToken = "s3cr3t-T0ken.value_~+/=="
)

// staticVerifier returns a Verifier that answers info, err for testToken and
// refuses anything else.
func staticVerifier(info *auth.TokenInfo, err error) Verifier {
	return func(_ context.Context, token string) (*auth.TokenInfo, error) {
		if token != testToken {
			return nil, tokencheck.Invalid("unexpected token")
		}
		return info, err
	}
}

// or returns a unless it is empty, then b.
func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// parseChallenge parses a single RFC 7235 challenge: scheme, then
// comma-separated auth-params whose values are tokens or quoted-strings.
func parseChallenge(h string) (scheme string, params map[string]string, err error) {
	scheme, rest, _ := strings.Cut(h, " ")
	params = map[string]string{}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			return "", nil, fmt.Errorf("auth-param without '=' in %q", rest)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		var value strings.Builder
		if strings.HasPrefix(after, `"`) {
			i := 1
			for ; i < len(after); i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
					value.WriteByte(after[i])
					continue
				}
				if after[i] == '"' {
					break
				}
				value.WriteByte(after[i])
			}
			if i >= len(after) {
				return "", nil, fmt.Errorf("unterminated quoted-string in %q", after)
			}
			rest = after[i+1:]
		} else {
			v, r, _ := strings.Cut(after, ",")
			value.WriteString(strings.TrimSpace(v))
			rest = "," + r
		}
		if _, dup := params[name]; dup {
			return "", nil, fmt.Errorf("duplicate auth-param %q", name)
		}
		params[name] = value.String()
		rest = strings.TrimSpace(rest)
		if rest != "" && !strings.HasPrefix(rest, ",") {
			return "", nil, fmt.Errorf("expected ',' before %q", rest)
		}
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	}
	return scheme, params, nil
}

// checkChallenge compares a WWW-Authenticate header with want: the exact set
// of auth-params, where the value "*" stands for any non-empty value.
func checkChallenge(t *testing.T, header string, want map[string]string) {
	t.Helper()
	scheme, got, err := parseChallenge(header)
	if err != nil {
		t.Fatalf("WWW-Authenticate %q: %v", header, err)
	}
	if scheme != "Bearer" {
		t.Errorf("WWW-Authenticate scheme = %q, want Bearer", scheme)
	}
	for k, v := range want {
		if v == "*" && got[k] != "" {
			want[k] = got[k]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WWW-Authenticate %q params (-want +got):\n%s", header, diff)
	}
}

func TestParseChallenge(t *testing.T) {
	_, got, err := parseChallenge(`Bearer realm="a, \"b\"", error=invalid_token, scope="x y"`)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"realm": `a, "b"`, "error": "invalid_token", "scope": "x y"}, got); diff != "" {
		t.Errorf("parseChallenge (-want +got):\n%s", diff)
	}
}

// nextRecorder is the handler behind the middleware: it records that it ran,
// what body it read and which TokenInfo it saw.
type nextRecorder struct {
	calls atomic.Int32
	body  []byte
	info  *auth.TokenInfo
}

func (n *nextRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.calls.Add(1)
	n.body, _ = io.ReadAll(r.Body)
	n.info = auth.TokenInfoFromContext(r.Context())
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Write([]byte("next"))
}

func TestRequireBearer(t *testing.T) {
	good := &auth.TokenInfo{UserID: "user-1", Scopes: []string{"notes:read"}, Expiration: time.Now().Add(time.Hour)}
	noTokenChallenge := `Bearer resource_metadata="` + testMetadataURL + `", scope="notes:read"`
	for _, tt := range []struct {
		name       string
		method     string
		target     string
		auth       []string // Authorization header values
		info       *auth.TokenInfo
		err        error
		wantStatus int
		// wantParams are the WWW-Authenticate auth-params; nil: no header.
		wantParams map[string]string
		// wantHeader, if set, is the exact WWW-Authenticate header.
		wantHeader     string
		wantRetryAfter bool
		wantNext       bool
	}{
		{
			name:       "no Authorization",
			wantStatus: http.StatusUnauthorized,
			wantHeader: noTokenChallenge,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "scope": "notes:read"},
		},
		{
			name:       "another scheme",
			auth:       []string{"Basic dXNlcjpwYXNz"},
			wantStatus: http.StatusUnauthorized,
			wantHeader: noTokenChallenge,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "scope": "notes:read"},
		},
		{
			name:       "empty Authorization",
			auth:       []string{""},
			wantStatus: http.StatusUnauthorized,
			wantHeader: noTokenChallenge,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "scope": "notes:read"},
		},
		{
			name:       "Bearer alone",
			auth:       []string{"Bearer"},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "Bearer and a space",
			auth:       []string{"Bearer "},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "two tokens",
			auth:       []string{"Bearer a b"},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "two Authorization headers",
			auth:       []string{"Bearer " + testToken, "Bearer " + testToken},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "character outside b64token",
			auth:       []string{"Bearer abc$def"},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "non-ASCII token",
			auth:       []string{"Bearer tökén"},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "padding only",
			auth:       []string{"Bearer ==="},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "padding in the middle",
			auth:       []string{"Bearer ab=cd"},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "token longer than 16 KiB",
			auth:       []string{"Bearer " + strings.Repeat("a", 16<<10+1)},
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "token in the query",
			target:     "/mcp?access_token=" + testToken,
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "token in the query and in the header",
			target:     "/mcp?access_token=" + testToken,
			auth:       []string{"Bearer " + testToken},
			info:       good,
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{"resource_metadata": testMetadataURL, "error": "invalid_request", "error_description": "*"},
		},
		{
			name:       "invalid token",
			auth:       []string{"Bearer " + testToken},
			err:        tokencheck.Invalid("the signature does not verify"),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{
				"resource_metadata": testMetadataURL, "scope": "notes:read",
				"error": "invalid_token", "error_description": "the signature does not verify",
			},
		},
		{
			name:       "invalid token, wrapped again",
			auth:       []string{"Bearer " + testToken},
			err:        fmt.Errorf("verify: %w", tokencheck.Invalid("the token has expired")),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{
				"resource_metadata": testMetadataURL, "scope": "notes:read",
				"error": "invalid_token", "error_description": "the token has expired",
			},
		},
		{
			name:       "description with quotes is escaped",
			auth:       []string{"Bearer " + testToken},
			err:        tokencheck.Invalid(`algorithm "HS256" is not accepted`),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{
				"resource_metadata": testMetadataURL, "scope": "notes:read",
				"error": "invalid_token", "error_description": `algorithm "HS256" is not accepted`,
			},
		},
		{
			name:           "verification unavailable",
			auth:           []string{"Bearer " + testToken},
			err:            fmt.Errorf("%w: JWKS: connection refused", authz.ErrUnavailable),
			wantStatus:     http.StatusServiceUnavailable,
			wantRetryAfter: true,
		},
		{
			name:       "valid token",
			auth:       []string{"Bearer " + testToken},
			info:       good,
			wantStatus: http.StatusOK,
			wantNext:   true,
		},
		{
			name:       "scheme is case-insensitive",
			auth:       []string{"bEARER " + testToken},
			info:       good,
			wantStatus: http.StatusOK,
			wantNext:   true,
		},
		{
			name:       "several spaces after the scheme",
			auth:       []string{"Bearer   " + testToken},
			info:       good,
			wantStatus: http.StatusOK,
			wantNext:   true,
		},
		{
			name:       "GET with a valid token",
			method:     http.MethodGet,
			auth:       []string{"Bearer " + testToken},
			info:       good,
			wantStatus: http.StatusOK,
			wantNext:   true,
		},
		{
			name:       "CORS preflight needs no token",
			method:     http.MethodOptions,
			wantStatus: http.StatusNoContent,
			wantNext:   true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			next := &nextRecorder{}
			h := RequireBearer(staticVerifier(tt.info, tt.err), &BearerOptions{
				ResourceMetadataURL: testMetadataURL,
				Scopes:              []string{"notes:read"},
				Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
			})(next)
			method, target := or(tt.method, http.MethodPost), or(tt.target, "/mcp")
			req := httptest.NewRequest(method, target, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			for _, v := range tt.auth {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body)
			}
			www := rec.Header().Get("WWW-Authenticate")
			switch {
			case tt.wantParams == nil && www != "":
				t.Errorf("WWW-Authenticate = %q, want none", www)
			case tt.wantParams != nil:
				checkChallenge(t, www, tt.wantParams)
			}
			if tt.wantHeader != "" && www != tt.wantHeader {
				t.Errorf("WWW-Authenticate = %q, want %q", www, tt.wantHeader)
			}
			if tt.wantParams != nil {
				// The body mirrors the challenge as JSON, never cached.
				var body struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Errorf("challenge body %q is not JSON: %v", rec.Body, err)
				}
				if want := or(tt.wantParams["error"], "unauthorized"); body.Error != want {
					t.Errorf("body error = %q, want %q", body.Error, want)
				}
				if body.Description == "" {
					t.Error("body has no error_description")
				}
				if got := rec.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
			}
			ra := rec.Header().Get("Retry-After")
			if n, err := strconv.Atoi(ra); tt.wantRetryAfter && (err != nil || n <= 0) {
				t.Errorf("Retry-After = %q, want a positive number of seconds", ra)
			} else if !tt.wantRetryAfter && ra != "" {
				t.Errorf("Retry-After = %q, want none", ra)
			}
			if got := next.calls.Load() == 1; got != tt.wantNext {
				t.Errorf("next handler ran: %v, want %v", got, tt.wantNext)
			}
			if tt.wantNext && method != http.MethodOptions && next.info == nil {
				t.Error("next handler saw no TokenInfo")
			}
			for where, s := range map[string]string{"body": rec.Body.String(), "WWW-Authenticate": www, "logs": logs.String()} {
				if strings.Contains(s, testToken) || strings.Contains(s, strings.TrimRight(testToken, "=")) {
					t.Errorf("the token appears in the %s: %q", where, s)
				}
			}
		})
	}
}

func TestRequireBearerLogsFingerprint(t *testing.T) {
	var logs bytes.Buffer
	h := RequireBearer(staticVerifier(nil, tokencheck.Invalid("the token has expired")), &BearerOptions{
		ResourceMetadataURL: testMetadataURL,
		Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
	})(&nextRecorder{})
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !strings.Contains(logs.String(), authz.Fingerprint(testToken)) {
		t.Errorf("logs %q do not name the token by its fingerprint %s", logs.String(), authz.Fingerprint(testToken))
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("logs %q contain the token", logs.String())
	}
}

func TestRequireBearerTokenInfo(t *testing.T) {
	want := &auth.TokenInfo{
		UserID:     "user-1",
		Scopes:     []string{"notes:read", "notes:write"},
		Expiration: time.Now().Add(time.Hour).Truncate(time.Second),
		Extra:      map[string]any{"client_id": "client-1"},
	}
	var gotToken string
	verify := func(_ context.Context, token string) (*auth.TokenInfo, error) {
		gotToken = token
		return want, nil
	}
	next := &nextRecorder{}
	h := RequireBearer(verify, &BearerOptions{ResourceMetadataURL: testMetadataURL})(next)
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %q)", rec.Code, rec.Body)
	}
	if gotToken != testToken {
		t.Errorf("verifier got token %q, want %q", gotToken, testToken)
	}
	if diff := cmp.Diff(want, next.info); diff != "" {
		t.Errorf("auth.TokenInfoFromContext (-want +got):\n%s", diff)
	}
}

func TestRequireBearerPanics(t *testing.T) {
	verify := staticVerifier(nil, nil)
	for _, tt := range []struct {
		name   string
		verify Verifier
		opts   *BearerOptions
	}{
		{name: "nil verifier", opts: &BearerOptions{ResourceMetadataURL: testMetadataURL}},
		{name: "nil options", verify: verify},
		{name: "no metadata URL", verify: verify, opts: &BearerOptions{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, "authz: ") {
					t.Errorf("recovered %v, want a panic prefixed with \"authz: \"", r)
				}
			}()
			RequireBearer(tt.verify, tt.opts)
		})
	}
}

// stepUpPolicy is the brief's example: writing needs notes:write, reading
// notes needs notes:read, and notes:write includes notes:read.
func stepUpPolicy() *ScopePolicy {
	return NewScopePolicy([]Rule{
		{Method: "tools/call", Name: "notes_create", Scopes: []string{"notes:write"}},
		{Method: "resources/read", Name: "notes://*", Scopes: []string{"notes:read"}},
		{Method: "completion/complete", Name: "notes://*", Scopes: []string{"notes:read"}},
	}, map[string][]string{"notes:write": {"notes:read"}})
}

const (
	createBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","arguments":{"title":"t"}}}`
	readBody   = `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"notes://x"}}`
	batchBody  = `[` + createBody + `,` + readBody + `]`
)

func TestRequireBearerStepUp(t *testing.T) {
	for _, tt := range []struct {
		name       string
		method     string
		scopes     []string
		body       string
		maxBody    int64
		wantStatus int
		wantScope  string // scope= of a 403
	}{
		{name: "create with a read-only token", scopes: []string{"notes:read"}, body: createBody, wantStatus: http.StatusForbidden, wantScope: "notes:write"},
		{name: "create with no scope", body: createBody, wantStatus: http.StatusForbidden, wantScope: "notes:write"},
		{name: "create with notes:write", scopes: []string{"notes:write"}, body: createBody, wantStatus: http.StatusOK},
		{name: "read with notes:read", scopes: []string{"notes:read"}, body: readBody, wantStatus: http.StatusOK},
		{name: "read with only notes:write (hierarchy)", scopes: []string{"notes:write"}, body: readBody, wantStatus: http.StatusOK},
		{name: "read with another scope", scopes: []string{"files:read"}, body: readBody, wantStatus: http.StatusForbidden, wantScope: "notes:read"},
		{name: "batch with no scope needs both", body: batchBody, wantStatus: http.StatusForbidden, wantScope: "notes:read notes:write"},
		{name: "batch with read-only still needs both", scopes: []string{"notes:read"}, body: batchBody, wantStatus: http.StatusForbidden, wantScope: "notes:read notes:write"},
		{name: "batch with notes:write", scopes: []string{"notes:write"}, body: batchBody, wantStatus: http.StatusOK},
		{name: "batch with both", scopes: []string{"notes:read", "notes:write"}, body: batchBody, wantStatus: http.StatusOK},
		{name: "batch with leading white space", body: " \n\t" + batchBody, wantStatus: http.StatusForbidden, wantScope: "notes:read notes:write"},
		{name: "operation without a rule", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`, wantStatus: http.StatusOK},
		{name: "resource outside the pattern", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"files://x"}}`, wantStatus: http.StatusOK},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, wantStatus: http.StatusOK},
		{name: "response", body: `{"jsonrpc":"2.0","id":1,"result":{}}`, wantStatus: http.StatusOK},
		{name: "empty body", body: ``, wantStatus: http.StatusOK},
		{name: "GET is not checked", method: http.MethodGet, body: ``, wantStatus: http.StatusOK},
		{name: "body over the limit", scopes: []string{"notes:write"}, body: createBody, maxBody: 16, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "body at the limit", scopes: []string{"notes:write"}, body: createBody, maxBody: int64(len(createBody)), wantStatus: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := &nextRecorder{}
			info := &auth.TokenInfo{UserID: "user-1", Scopes: tt.scopes, Expiration: time.Now().Add(time.Hour)}
			h := RequireBearer(staticVerifier(info, nil), &BearerOptions{
				ResourceMetadataURL: testMetadataURL,
				Scopes:              []string{"notes:read"},
				Policy:              stepUpPolicy(),
				MaxBodyBytes:        tt.maxBody,
			})(next)
			req := httptest.NewRequest(or(tt.method, http.MethodPost), "/mcp", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body)
			}
			switch tt.wantStatus {
			case http.StatusForbidden:
				checkChallenge(t, rec.Header().Get("WWW-Authenticate"), map[string]string{
					"resource_metadata": testMetadataURL,
					"error":             "insufficient_scope",
					"scope":             tt.wantScope,
					"error_description": "*",
				})
				if n := next.calls.Load(); n != 0 {
					t.Errorf("next handler ran %d times", n)
				}
			case http.StatusOK:
				if n := next.calls.Load(); n != 1 {
					t.Fatalf("next handler ran %d times, want 1", n)
				}
				if diff := cmp.Diff(tt.body, string(next.body)); diff != "" {
					t.Errorf("body read by the next handler (-want +got):\n%s", diff)
				}
			default:
				if n := next.calls.Load(); n != 0 {
					t.Errorf("next handler ran %d times", n)
				}
			}
			if strings.Contains(rec.Body.String(), testToken) {
				t.Errorf("the body contains the token: %q", rec.Body)
			}
		})
	}
}

// TestRequireBearerStepUpParsesLikeTheSDK sends bodies that the go-sdk's MCP
// layer reads as a notes_create call or a notes:// read (it decodes JSON
// case-sensitively, ignores unknown fields, and takes a resource from
// params.uri), with a token that has no scope. Each must be refused; the
// scope check must not be bypassable by shaping the JSON.
func TestRequireBearerStepUpParsesLikeTheSDK(t *testing.T) {
	for _, tt := range []struct {
		name string
		body string
	}{
		{name: "case-variant duplicate of params.name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","NAME":"whoami","arguments":{"title":"t"}}}`},
		{name: "case-variant duplicate of method", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping","params":{"name":"notes_create","arguments":{"title":"t"}}}`},
		{name: "mistyped unknown sibling field", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","uri":1,"arguments":{"title":"t"}}}`},
		{name: "mistyped ref beside the name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","ref":"x","arguments":{"title":"t"}}}`},
		{name: "params.name beside the resource uri", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x","uri":"notes://x"}}`},
		{name: "params.name beside the completion ref", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"name":"x","ref":{"type":"ref/resource","uri":"notes://{id}"},"argument":{"name":"id","value":"1"}}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := &nextRecorder{}
			info := &auth.TokenInfo{UserID: "user-1", Expiration: time.Now().Add(time.Hour)}
			h := RequireBearer(staticVerifier(info, nil), &BearerOptions{
				ResourceMetadataURL: testMetadataURL,
				Policy:              stepUpPolicy(),
			})(next)
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden || next.calls.Load() != 0 {
				t.Errorf("status = %d and next ran %d times, want 403 and 0", rec.Code, next.calls.Load())
			}
		})
	}
}

// TestRequireBearerUnexpectedVerifierError checks that an error that is
// neither ErrInvalidToken nor ErrUnavailable does not reach the client.
func TestRequireBearerUnexpectedVerifierError(t *testing.T) {
	internal := errors.New("dial tcp 10.1.2.3:5432: connect: connection refused")
	h := RequireBearer(staticVerifier(nil, internal), &BearerOptions{ResourceMetadataURL: testMetadataURL})(&nextRecorder{})
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for where, s := range map[string]string{"body": rec.Body.String(), "WWW-Authenticate": rec.Header().Get("WWW-Authenticate")} {
		if strings.Contains(s, "10.1.2.3") {
			t.Errorf("the %s carries the verifier's internal error: %q", where, s)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		name    string
		values  []string
		want    string
		wantErr error // errNoToken, or nil with wantBad
		wantBad bool
	}{
		{name: "none", wantErr: errNoToken},
		{name: "other scheme", values: []string{"Basic abc"}, wantErr: errNoToken},
		{name: "scheme prefix", values: []string{"Bearerabc"}, wantErr: errNoToken},
		{name: "DPoP", values: []string{"DPoP abc"}, wantErr: errNoToken},
		{name: "token", values: []string{"Bearer abc"}, want: "abc"},
		{name: "lower case", values: []string{"bearer abc"}, want: "abc"},
		{name: "all b64token characters", values: []string{"Bearer AZaz09-._~+/=="}, want: "AZaz09-._~+/=="},
		{name: "several spaces", values: []string{"Bearer    abc"}, want: "abc"},
		{name: "no token", values: []string{"Bearer"}, wantBad: true},
		{name: "empty token", values: []string{"Bearer    "}, wantBad: true},
		{name: "trailing space", values: []string{"Bearer abc "}, wantBad: true},
		{name: "tab inside", values: []string{"Bearer ab\tc"}, wantBad: true},
		{name: "comma", values: []string{"Bearer a,b"}, wantBad: true},
		{name: "quote", values: []string{`Bearer "abc"`}, wantBad: true},
		{name: "two headers", values: []string{"Bearer a", "Bearer b"}, wantBad: true},
		{name: "two headers, one not bearer", values: []string{"Basic a", "Bearer b"}, wantBad: true},
		{name: "16 KiB is the limit", values: []string{"Bearer " + strings.Repeat("x", 16<<10)}, want: strings.Repeat("x", 16<<10)},
		{name: "over 16 KiB", values: []string{"Bearer " + strings.Repeat("x", 16<<10+1)}, wantBad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bearerToken(tt.values)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("bearerToken(%q) error = %v, want %v", tt.values, err, tt.wantErr)
				}
			case tt.wantBad:
				if err == nil || errors.Is(err, errNoToken) {
					t.Errorf("bearerToken(%q) error = %v, want a malformed-header error", tt.values, err)
				}
			default:
				if err != nil || got != tt.want {
					t.Errorf("bearerToken(%q) = %q, %v; want %q", tt.values, got, err, tt.want)
				}
			}
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer abc", "bearer abc==", "Bearer a b", "Basic x",
		"Bearer  ab", "Bearer ===", "Bearer a=b", "Bearer \x00", "BEARER eyJ.eyJ.sig", "Bearer\tabc", "Bearer ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		token, err := bearerToken([]string{v})
		if err != nil {
			if token != "" {
				t.Fatalf("bearerToken(%q) = %q with error %v", v, token, err)
			}
			return
		}
		if token == "" {
			t.Fatalf("bearerToken(%q) returned an empty token", v)
		}
		if strings.ContainsAny(token, " \t\r\n") {
			t.Fatalf("bearerToken(%q) = %q has white space", v, token)
		}
		if !strings.HasSuffix(v, token) {
			t.Fatalf("bearerToken(%q) = %q is not the end of the header", v, token)
		}
		again, err := bearerToken([]string{"Bearer " + token})
		if err != nil || again != token {
			t.Fatalf("bearerToken(%q) = %q, but \"Bearer \"+token parses as %q, %v", v, token, again, err)
		}
		if _, err := bearerToken([]string{v, v}); err == nil {
			t.Fatalf("bearerToken accepted two Authorization headers %q", v)
		}
	})
}

func TestOperations(t *testing.T) {
	for _, tt := range []struct {
		name    string
		body    string
		want    [][2]string
		wantErr bool
	}{
		{name: "tool call", body: createBody, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "resource read", body: readBody, want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "prompt", body: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize"}}`, want: [][2]string{{"prompts/get", "summarize"}}},
		{
			name: "completion of a prompt argument",
			body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"tag","value":"w"}}}`,
			want: [][2]string{{"completion/complete", "summarize"}},
		},
		{
			name: "completion of a resource template",
			body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"notes://{id}"},"argument":{"name":"id","value":"1"}}}`,
			want: [][2]string{{"completion/complete", "notes://{id}"}},
		},
		{name: "no params", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, want: [][2]string{{"tools/list", ""}}},
		{name: "batch", body: batchBody, want: [][2]string{{"tools/call", "notes_create"}, {"resources/read", "notes://x"}}},
		{name: "batch duplicates dropped", body: `[` + createBody + `,` + createBody + `]`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "batch skips responses", body: `[{"jsonrpc":"2.0","id":9,"result":{}},` + readBody + `]`, want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "batch after white space", body: "\r\n [" + readBody + "]", want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "response", body: `{"jsonrpc":"2.0","id":1,"result":{}}`, want: nil},
		{name: "empty batch", body: `[]`, want: nil},
		{name: "keys are case-sensitive", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping","params":{"name":"notes_create","NAME":"whoami"}}`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "the method decides the field", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x","uri":"notes://x"}}`, want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "other fields may have any type", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","uri":1,"ref":"x"}}`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "empty", body: ``, want: nil},
		{name: "not JSON", body: `hello`, wantErr: true},
		{name: "duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"notes_create"}}`, wantErr: true},
		{name: "duplicate method", body: `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"notes_create"}}`, wantErr: true},
		{name: "name of the wrong type", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["notes_create"]}}`, wantErr: true},
		{name: "method of the wrong type", body: `{"jsonrpc":"2.0","id":1,"method":1}`, wantErr: true},
		{name: "null name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}`, want: [][2]string{{"tools/call", ""}}},
		{name: "escaped keys and values", body: `{"jsonrpc":"2.0","id":1,"m\u0065thod":"tools\/call","params":{"n\u0061me":"notes_\u0063reate"}}`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "escaped duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","n\u0061me":"notes_create"}}`, wantErr: true},
		{name: "invalid UTF-8 is replaced", body: "{\"method\":\"tools/call\",\"params\":{\"name\":\"notes_\xff\"}}", want: [][2]string{{"tools/call", "notes_\ufffd"}}},
		{name: "white space everywhere", body: " { \"method\" : \"prompts/get\" , \"params\" : { \"name\" : \"summarize\" } } \n", want: [][2]string{{"prompts/get", "summarize"}}},
		{name: "duplicate key among many", body: `{"method":"tools/call","params":{` + manyKeys(40) + `,"name":"a","k7":1}}`, wantErr: true},
		{name: "many keys", body: `{"method":"tools/call","params":{` + manyKeys(40) + `,"name":"a"}}`, want: [][2]string{{"tools/call", "a"}}},
		{name: "null params", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`, want: [][2]string{{"tools/call", ""}}},
		{name: "params not an object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}`, wantErr: true},
		{name: "ref not an object", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":null}}`, wantErr: true},
		{name: "batch element not an object", body: `[` + createBody + `,null]`, wantErr: true},
		{name: "a second message after the first", body: readBody + createBody, wantErr: true},
		{name: "trailing data", body: createBody + ` x`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := operations([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("operations(%s) error = %v, want error: %v", tt.body, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("operations(%s) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// manyKeys is n members "k0":0, "k1":1, … of a JSON object.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", "k"+strconv.Itoa(i), i)
	}
	return b.String()
}

func FuzzOperations(f *testing.F) {
	for _, s := range []string{createBody, readBody, batchBody, ``, `[`, `{`, `[1,2]`, `null`, `[null]`, `{"method":1}`,
		`{"method":"m","params":{"ref":{"name":"n"}}}`, `{"method":"m","params":[]}`, " [" + readBody + "]",
		`{"m\u0065thod":"tools/call","params":{"name":"a","n\u0061me":"b"}}`, `{"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"x\"y"}}}`,
		readBody + createBody} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := operations(body)
		// The same reading as encoding/json's decoder, except that a body
		// with more than one JSON value is refused (the decoder read the
		// first only).
		want, wantErr := decodedOperations(body)
		if trimmed := bytes.Trim(body, " \t\r\n"); wantErr == nil && len(trimmed) > 0 && !json.Valid(trimmed) {
			want, wantErr = nil, errMalformed
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("operations(%q) error = %v, decodedOperations: %v", body, err, wantErr)
		}
		if diff := cmp.Diff(want, ops); diff != "" {
			t.Fatalf("operations(%q) (-decodedOperations +operations):\n%s", body, diff)
		}
		if err != nil {
			return
		}
		for i, op := range ops {
			if op[0] == "" {
				t.Fatalf("operations(%q) has an operation without a method: %q", body, ops)
			}
			if slices.Contains(ops[:i], op) {
				t.Fatalf("operations(%q) has a duplicate: %q", body, ops)
			}
		}
		NewScopePolicy([]Rule{{Method: "tools/call", Name: "x*", Scopes: []string{"s"}}}, nil).Required(ops)
	})
}

// decodedOperations is what operations was before it walked the bytes:
// the same reading with encoding/json's decoder (a map per object). The
// fuzz test holds operations to it.
func decodedOperations(body []byte) ([][2]string, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil // no operation; the MCP layer refuses the empty body
	}
	var raws []json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, errMalformed
		}
	} else {
		raws = []json.RawMessage{trimmed}
	}
	var ops [][2]string
	for _, raw := range raws {
		msg, err := decodedFields(raw)
		if err != nil {
			return nil, err
		}
		mraw, ok := msg["method"]
		if !ok {
			continue // a response: no operation
		}
		var method string
		if json.Unmarshal(mraw, &method) != nil || method == "" {
			return nil, errMalformed
		}
		var params map[string]json.RawMessage
		if praw, ok := msg["params"]; ok && !bytes.Equal(bytes.TrimSpace(praw), []byte("null")) {
			if params, err = decodedFields(praw); err != nil {
				return nil, err
			}
		}
		var name string
		switch method {
		case "tools/call", "prompts/get":
			name, err = decodedStringField(params, "name")
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
			name, err = decodedStringField(params, "uri")
		case "completion/complete":
			if rraw, ok := params["ref"]; ok {
				var ref map[string]json.RawMessage
				if ref, err = decodedFields(rraw); err == nil {
					var typ string
					if typ, err = decodedStringField(ref, "type"); err == nil {
						field := "name"
						if typ == "ref/resource" {
							field = "uri"
						}
						name, err = decodedStringField(ref, field)
					}
				}
			}
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ops, [2]string{method, name}) {
			ops = append(ops, [2]string{method, name})
		}
	}
	return ops, nil
}

// decodedFields decodes a JSON object, refusing duplicate keys.
func decodedFields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errMalformed
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, errMalformed
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errMalformed
		}
		if _, dup := out[key]; dup {
			return nil, errors.New("the request body repeats the key " + strconv.Quote(key))
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, errMalformed
	}
	return out, nil
}

// decodedStringField returns m[key] when it is a string, "" when absent.
func decodedStringField(m map[string]json.RawMessage, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", errMalformed
	}
	return s, nil
}
