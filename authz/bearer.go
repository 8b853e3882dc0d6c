package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
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
	// Policy names the scopes each operation needs; nil means none.
	Policy *ScopePolicy
	// MaxBodyBytes bounds the body read to find the operation. Default 4 MiB.
	MaxBodyBytes int64
	// Logger receives refused requests (never the token); nil discards.
	Logger *slog.Logger
}

// RequireBearer returns the middleware that authenticates every request of
// the MCP endpoint, of both protocol eras. On success the token's TokenInfo
// reaches the MCP layer through the go-sdk's auth.RequireBearerToken, which
// is the only way to fill req.Extra.TokenInfo; the challenges are written
// here because that middleware omits RFC 6750's error= (go-sdk #1134).
func RequireBearer(verify Verifier, opts *BearerOptions) func(http.Handler) http.Handler {
	if verify == nil || opts == nil || opts.ResourceMetadataURL == "" {
		panic("authz: RequireBearer needs a verifier and ResourceMetadataURL")
	}
	o := *opts
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// The go-sdk middleware re-reads the header; by then the token is
	// verified, so its verifier just hands over what we found.
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
			if r.URL.Query().Has("access_token") {
				c.write(http.StatusBadRequest, InvalidRequest, "send the access token in the Authorization header, not the URL", nil)
				return
			}
			token, err := bearerToken(r.Header.Values("Authorization"))
			if errors.Is(err, errNoToken) {
				c.write(http.StatusUnauthorized, "", "", o.Scopes)
				return
			}
			if err != nil {
				c.write(http.StatusBadRequest, InvalidRequest, err.Error(), nil)
				return
			}
			info, err := verify(r.Context(), token)
			switch {
			case errors.Is(err, ErrUnavailable):
				o.Logger.Warn("token verification unavailable", "error", err)
				w.Header().Set("Retry-After", "5")
				http.Error(w, "authorization temporarily unavailable; retry shortly", http.StatusServiceUnavailable)
				return
			case errors.Is(err, ErrInvalidToken) || errors.Is(err, auth.ErrInvalidToken):
				o.Logger.Info("token refused", "reason", description(err), "token", Fingerprint(token))
				c.write(http.StatusUnauthorized, InvalidToken, description(err), o.Scopes)
				return
			case err != nil:
				// Not a verdict on the token: never show the cause.
				o.Logger.Error("token verification failed", "error", err, "token", Fingerprint(token))
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
				return
			}
			if o.Policy != nil && r.Method == http.MethodPost {
				body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.MaxBodyBytes))
				if err != nil {
					http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				ops, err := operations(body)
				if err != nil {
					c.write(http.StatusBadRequest, InvalidRequest, err.Error(), nil)
					return
				}
				if need := o.Policy.Required(ops); len(need) > 0 && !o.Policy.Satisfied(info.Scopes, need) {
					c.write(http.StatusForbidden, InsufficientScope,
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

func (c challenge) write(status int, code Code, desc string, scopes []string) {
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

// operations lists the (method, name) pairs of a JSON-RPC body, reading it
// exactly as the MCP layer will: keys are case-sensitive, and the name comes
// from the field that the method defines — params.name for tools/call and
// prompts/get, params.uri for resources/*, params.ref.name or .uri for
// completion/complete. A body that is ambiguous (a duplicate key) or whose
// name field has the wrong type is an error, never "no operation": the scope
// check must not be bypassable by shaping the JSON.
func operations(body []byte) ([][2]string, error) {
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
		msg, err := fields(raw)
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
			if params, err = fields(praw); err != nil {
				return nil, err
			}
		}
		var name string
		switch method {
		case "tools/call", "prompts/get":
			name, err = stringField(params, "name")
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
			name, err = stringField(params, "uri")
		case "completion/complete":
			if rraw, ok := params["ref"]; ok {
				var ref map[string]json.RawMessage
				if ref, err = fields(rraw); err == nil {
					var typ string
					if typ, err = stringField(ref, "type"); err == nil {
						field := "name"
						if typ == "ref/resource" {
							field = "uri"
						}
						name, err = stringField(ref, field)
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

var errMalformed = errors.New("the request body is not a well-formed JSON-RPC message")

// fields decodes a JSON object, refusing duplicate keys.
func fields(raw json.RawMessage) (map[string]json.RawMessage, error) {
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

// stringField returns m[key] when it is a string, "" when absent.
func stringField(m map[string]json.RawMessage, key string) (string, error) {
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
