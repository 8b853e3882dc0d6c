package mcpserver

import (
	"context"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/remotemcp/remotemcp/policy"
)

// A legacy session is bound to its subject, not to a token: the client
// may go on with a token of other scopes (a step-up, a narrower refresh)
// or whose groups changed. With a Policy, what the lists show depends on
// these, so the session remembers a fingerprint of them (Session.View),
// and the first request that carries a different one gets the three
// list_changed notifications on its stream, before its responses, so that
// the client lists again. The stateless revision has no session to tell:
// each list is computed for the request that asks.

// listChanged are the notifications a change of view sends.
var listChanged = func() [][]byte {
	var out [][]byte
	for _, m := range []string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"} {
		data, err := jsonrpc.EncodeMessage(&jsonrpc.Request{Method: m, Params: []byte(`{}`)})
		if err != nil {
			panic("mcpserver: " + err.Error())
		}
		out = append(out, data)
	}
	return out
}()

// view fingerprints what the policy reads of a request's caller besides
// the subject, which the session is bound to: the token's scopes, and the
// groups, e-mail address and client id (policy.CallerOf). "" without a Policy (the lists are everyone's)
// or a token.
func (h *Handler) view(ctx context.Context) string {
	info := auth.TokenInfoFromContext(ctx)
	if h.opts.Policy == nil || info == nil {
		return ""
	}
	// 64-bit FNV-1a of each item, tagged with its kind, mixed and summed, so that
	// the order of scopes or groups does not matter. It allocates little
	// (the result), and a collision only costs a missed notification.
	var sum uint64
	add := func(kind byte, s string) {
		h := uint64(14695981039346656037)
		h = (h ^ uint64(kind)) * 1099511628211
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		// murmur3's finalizer, so that the sum of several is not as
		// linear as the FNV values themselves.
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9fe1a85ec53
		h ^= h >> 33
		sum += h
	}
	for _, s := range info.Scopes {
		add('s', s)
	}
	c := policy.CallerOf(info)
	for _, g := range c.Groups {
		add('g', g)
	}
	add('e', c.Email)
	add('c', c.ClientID)
	return strconv.FormatUint(sum|1, 36) // never "", which is "no view"
}

// announceView sends the list_changed notifications on c when the view of
// the request's caller is not the one the session last had, and
// remembers the new one.
func (h *Handler) announceView(ctx context.Context, sess *Session, c *conn) {
	v := h.view(ctx)
	if v == sess.View {
		return
	}
	if err := h.stores.Sessions.Update(ctx, sess.ID, func(s *Session) { s.View = v }); err != nil {
		// Told again at the next request.
		h.log.Warn("remember the caller's view", "session", shortHash(sess.ID), "error", err)
	} else {
		h.sessionChanged(ctx, sess.ID)
	}
	for _, data := range listChanged {
		c.send(data, false)
	}
}
