package mcpserver

import (
	"context"
	"io"
	"net/http"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/policy"
)

// CheckScopes tells the bearer middleware whether a request's verified
// token, info, covers what the request asks for. For a POST it reads the
// body (once: the returned request carries what was read, and servePOST
// uses it), finds the operations it names (operations), and asks
// Options.Policy about each (policy.Registry.Decide). need is nil when the
// token covers every operation, and otherwise every scope the operations
// need, sorted, for the 403 insufficient_scope challenge. An operation
// that no token of this caller could use (an item without a rule, or one
// whose predicate is false for the caller) adds nothing here: no scope
// would help, and the policy's own middleware answers it as an unknown
// item. err is for a body that is not well-formed JSON-RPC (the middleware
// answers 400); a body too large or unreadable is left for ServeHTTP to
// answer as it answers any other.
func (h *Handler) CheckScopes(r *http.Request, info *auth.TokenInfo) (_ *http.Request, need []string, err error) {
	if h.opts.Policy == nil || r.Method != http.MethodPost {
		return r, nil, nil
	}
	// No ResponseWriter here: a body over the limit is reported by the
	// MaxBytesError that servePOST answers with 413.
	body, readErr := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.opts.MaxBodyBytes))
	r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, bodyRead{body, readErr}))
	if readErr != nil {
		return r, nil, nil
	}
	ops, err := operations(body)
	if err != nil {
		return r, nil, err
	}
	covered := true
	for _, op := range ops {
		a, known := h.opts.Policy.Lookup(op[0], op[1])
		if !known {
			continue
		}
		v := h.opts.Policy.Decide(info, a)
		if v == policy.Hidden {
			continue
		}
		for _, s := range a.Scopes {
			if !slices.Contains(need, s) {
				need = append(need, s)
			}
		}
		covered = covered && v == policy.Allowed
	}
	if covered {
		return r, nil, nil
	}
	slices.Sort(need)
	return r, need, nil
}

type bodyKey struct{}

// bodyRead is a POST body that CheckScopes read, or the error reading it.
type bodyRead struct {
	body []byte
	err  error
}

// readBody returns a POST's body: the one CheckScopes read, or read now.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if rb, ok := r.Context().Value(bodyKey{}).(bodyRead); ok {
		return rb.body, rb.err
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}
