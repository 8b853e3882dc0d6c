package resource

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// A Verifier checks an access token. It returns an error wrapping
// ErrInvalidToken for a token it refuses and ErrUnavailable when it cannot
// decide right now.
type Verifier func(ctx context.Context, token string) (*auth.TokenInfo, error)

// BearerOptions configures RequireBearer.
type BearerOptions struct {
	// ResourceMetadataURL is the RFC 9728 metadata URL put in every
	// challenge. REQUIRED.
	ResourceMetadataURL string
	// Scopes is the scope= of a 401 challenge: what basic use needs.
	Scopes []string
	// CheckScopes, if set, is asked about each request whose token is
	// valid, with what the verifier found (scopes, subject, and the
	// caller's claims in Extra): it returns the scopes the request needs
	// when the token does not grant them all and more scope would help
	// (nil otherwise), which get a 403 insufficient_scope challenge, or an
	// error for a request it cannot read (400 invalid_request). It may
	// read the body, and returns the request to pass on, which carries
	// what it read. The MCP endpoint's (*mcpserver.Handler).CheckScopes is
	// one.
	CheckScopes func(r *http.Request, info *auth.TokenInfo) (*http.Request, []string, error)
	// Admit, if set, is asked about each valid token before CheckScopes:
	// an error refuses the user (an allow-list of who may use the server)
	// with 403 and {"error":"access_denied"}, and a challenge without
	// error=, so that clients do not try another token or more scopes:
	// a 401 would send them to authorize again, only to be refused again,
	// and no scope helps. The error's text is the error_description: make
	// it safe to send.
	Admit func(info *auth.TokenInfo) error
	// InsufficientScope, if set, hears of each 403 insufficient_scope
	// before it is written: the token's info and the scopes the request
	// needs. An authorization server that issued the token can use it to
	// answer the client's next refresh (see the as package's WantStepUp).
	InsufficientScope func(r *http.Request, info *auth.TokenInfo, need []string)
	// Logger receives refused requests (never the token); nil discards.
	Logger *slog.Logger
}

// RequireBearer returns the middleware that authenticates every request of
// the MCP endpoint, of both protocol eras. On success the token's TokenInfo
// reaches the MCP layer through the go-sdk's auth.RequireBearerToken.
//
// Two go-sdk (v1.8.0) limitations shape it (TestSDKRequireBearerToken
// fails when an upgrade changes the behaviour the second one describes):
//   - The go-sdk's context key for TokenInfo is unexported, so wrapping its
//     middleware is the only way to fill req.Extra.TokenInfo. An exported
//     setter (a ContextWithTokenInfo) would let us store info directly and
//     drop the wrapping.
//   - Its challenges carry no RFC 6750 §3 error= (invalid_token,
//     insufficient_scope), and its scope check is all-or-nothing, so every
//     refusal is written here, before it runs. Once it writes error= and
//     takes a per-request scope requirement, the challenges could be its.
func RequireBearer(verify Verifier, opts *BearerOptions) func(http.Handler) http.Handler {
	if verify == nil || opts == nil || opts.ResourceMetadataURL == "" {
		panic("authz: RequireBearer needs a verifier and ResourceMetadataURL")
	}
	o := *opts
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// The go-sdk middleware re-reads the header; by then the token is
	// verified, so its verifier just hands over what we found. It also
	// re-checks TokenInfo.Expiration against the wall clock, not our
	// verifier's (injected) one and without our skew, and refuses a token
	// without an expiry (RFC 7662 makes exp optional): both were decided
	// already, so AllowMissingExpiration and a 24h ClockSkew take it out of
	// that decision. A RequireBearerTokenOptions field to skip its expiry
	// check (or a clock to pass) would replace the 24h.
	fill := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if ti, ok := ctx.Value(verifiedKey{}).(*auth.TokenInfo); ok {
			return ti, nil
		}
		return nil, auth.ErrInvalidToken
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true, ClockSkew: 24 * time.Hour})

	return func(next http.Handler) http.Handler {
		filled := fill(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions {
				next.ServeHTTP(w, r) // CORS preflight carries no credentials
				return
			}
			c := challenge{w: w, o: &o}
			if r.URL.RawQuery != "" && r.URL.Query().Has("access_token") {
				c.write(http.StatusBadRequest, authz.InvalidRequest, "send the access token in the Authorization header, not the URL", nil)
				return
			}
			token, err := bearerToken(r.Header.Values("Authorization"))
			if errors.Is(err, errNoToken) {
				c.write(http.StatusUnauthorized, "", "", o.Scopes)
				return
			}
			if err != nil {
				c.write(http.StatusBadRequest, authz.InvalidRequest, err.Error(), nil)
				return
			}
			info, err := verify(r.Context(), token)
			switch {
			case errors.Is(err, authz.ErrUnavailable):
				o.Logger.Warn("token verification unavailable", "error", err)
				w.Header().Set("Retry-After", "5")
				http.Error(w, "authorization temporarily unavailable; retry shortly", http.StatusServiceUnavailable)
				return
			case errors.Is(err, authz.ErrInvalidToken) || errors.Is(err, auth.ErrInvalidToken):
				o.Logger.Info("token refused", "reason", tokencheck.Description(err), "token", authz.Fingerprint(token))
				c.write(http.StatusUnauthorized, authz.InvalidToken, tokencheck.Description(err), o.Scopes)
				return
			case err != nil:
				// Not a verdict on the token: never show the cause.
				o.Logger.Error("token verification failed", "error", err, "token", authz.Fingerprint(token))
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
				return
			}
			if o.Admit != nil {
				if err := o.Admit(info); err != nil {
					o.Logger.Info("user refused", "sub", info.UserID, "reason", err.Error())
					c.deny(authz.WireText(err.Error()))
					return
				}
			}
			if o.CheckScopes != nil {
				var need []string
				if r, need, err = o.CheckScopes(r, info); err != nil {
					c.write(http.StatusBadRequest, authz.InvalidRequest, err.Error(), nil)
					return
				}
				if len(need) > 0 {
					if o.InsufficientScope != nil {
						o.InsufficientScope(r, info, need)
					}
					c.write(http.StatusForbidden, authz.InsufficientScope,
						"this operation needs the scopes: "+strings.Join(need, " "), need)
					return
				}
			}
			filled.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verifiedKey{}, info)))
		})
	}
}

type verifiedKey struct{}

// challenge writes RFC 6750 §3 responses.
type challenge struct {
	w http.ResponseWriter
	o *BearerOptions
}

func (c challenge) write(status int, code authz.Code, desc string, scopes []string) {
	params := []string{"resource_metadata=" + quote(c.o.ResourceMetadataURL)}
	if len(scopes) > 0 {
		params = append(params, "scope="+quote(strings.Join(scopes, " ")))
	}
	if code != "" {
		params = append(params, "error="+quote(string(code)))
	}
	if desc != "" {
		params = append(params, "error_description="+quote(desc))
	}
	h := c.w.Header()
	h.Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	c.w.WriteHeader(status)
	body := map[string]string{}
	if code != "" {
		body["error"] = string(code)
	} else {
		body["error"] = "unauthorized"
	}
	if desc != "" {
		body["error_description"] = desc
	} else {
		body["error_description"] = "this MCP server needs an access token; see resource_metadata in WWW-Authenticate"
	}
	json.NewEncoder(c.w).Encode(body)
}

// deny writes the 403 of a user Admit refused.
func (c challenge) deny(desc string) {
	h := c.w.Header()
	h.Set("WWW-Authenticate", "Bearer resource_metadata="+quote(c.o.ResourceMetadataURL))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusForbidden)
	json.NewEncoder(c.w).Encode(map[string]string{"error": string(authz.AccessDenied), "error_description": desc})
}

var errNoToken = errors.New("no bearer token")

// bearerToken extracts the token of an RFC 6750 §2.1 Authorization header.
// No header, or another scheme, is errNoToken (401 without an error code);
// a malformed Bearer header is an error for invalid_request.
func bearerToken(values []string) (string, error) {
	if len(values) == 0 {
		return "", errNoToken
	}
	if len(values) > 1 {
		return "", errors.New("send exactly one Authorization header")
	}
	v := values[0]
	scheme, token, found := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken
	}
	token = strings.TrimLeft(token, " ")
	if !found || token == "" {
		return "", errors.New("the Bearer authorization header has no token")
	}
	if len(token) > 16<<10 {
		return "", errors.New("the access token is too long")
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	trimmed := strings.TrimRight(token, "=")
	if trimmed == "" {
		return "", errors.New("the access token is malformed")
	}
	for i := 0; i < len(trimmed); i++ {
		ch := trimmed[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~+/", ch) >= 0) {
			return "", errors.New("the access token is malformed")
		}
	}
	return token, nil
}

// quote renders an auth-param value as an RFC 7235 quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			// Control characters cannot appear in a header; drop them.
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
