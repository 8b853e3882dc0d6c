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

// TestRequireBearerCheckScopes: the MCP layer's verdict on a request's
// scopes becomes a 403 insufficient_scope challenge naming what it needs, or
// a 400 for a body it cannot read; on success the request it returns (which
// carries the body it read) goes on, with the token's TokenInfo, which
// CheckScopes is given too. InsufficientScope hears of each 403, with the
// token's info and the scopes needed, and of nothing else.
func TestRequireBearerCheckScopes(t *testing.T) {
	type ctxKey struct{}
	for _, tt := range []struct {
		name       string
		need       []string
		err        error
		wantStatus int
		wantScope  string
	}{
		{name: "covered", wantStatus: http.StatusOK},
		{name: "one scope missing", need: []string{"notes:write"}, wantStatus: http.StatusForbidden, wantScope: "notes:write"},
		{name: "several", need: []string{"notes:read", "notes:write"}, wantStatus: http.StatusForbidden, wantScope: "notes:read notes:write"},
		{name: "unreadable body", err: errors.New("the request body is not a well-formed JSON-RPC message"), wantStatus: http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got, heardInfo *auth.TokenInfo
			var heard []string
			heardCalls := 0
			next := &nextRecorder{}
			info := &auth.TokenInfo{UserID: "user-1", Scopes: []string{"notes:read"}, Expiration: time.Now().Add(time.Hour)}
			h := RequireBearer(staticVerifier(info, nil), &BearerOptions{
				ResourceMetadataURL: testMetadataURL,
				Scopes:              []string{"notes:read"},
				CheckScopes: func(r *http.Request, i *auth.TokenInfo) (*http.Request, []string, error) {
					got = i
					io.ReadAll(r.Body) // read once, here
					r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "checked"))
					r.Body = io.NopCloser(strings.NewReader("body passed on"))
					return r, tt.need, tt.err
				},
				InsufficientScope: func(_ *http.Request, info *auth.TokenInfo, need []string) {
					heardCalls++
					heardInfo, heard = info, need
				},
			})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Context().Value(ctxKey{}) != "checked" {
					t.Error("the next handler did not get the request CheckScopes returned")
				}
				next.ServeHTTP(w, r)
			}))
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body)
			}
			if got != info {
				t.Errorf("CheckScopes was given %+v, want the verifier's TokenInfo %+v", got, info)
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
				if heardCalls != 1 || heardInfo != info || !slices.Equal(heard, tt.need) {
					t.Errorf("InsufficientScope heard %d times, of %v needing %v; want once, of the token's info, needing %v", heardCalls, heardInfo, heard, tt.need)
				}
			case http.StatusOK:
				if n := next.calls.Load(); n != 1 || string(next.body) != "body passed on" || next.info == nil || next.info.UserID != "user-1" {
					t.Errorf("next handler ran %d times with body %q and token info %v", n, next.body, next.info)
				}
			default:
				if n := next.calls.Load(); n != 0 {
					t.Errorf("next handler ran %d times", n)
				}
				checkChallenge(t, rec.Header().Get("WWW-Authenticate"), map[string]string{
					"resource_metadata": testMetadataURL,
					"error":             "invalid_request",
					"error_description": "*",
				})
			}
			if strings.Contains(rec.Body.String(), testToken) {
				t.Errorf("the body contains the token: %q", rec.Body)
			}
			if tt.wantStatus != http.StatusForbidden && heardCalls != 0 {
				t.Errorf("InsufficientScope heard of a %d", tt.wantStatus)
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
