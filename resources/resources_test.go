package resources_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"net/http"
	"net/http/httptest"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/resources"
	"github.com/remotemcp/remotemcp/tools/notes"
	"github.com/remotemcp/remotemcp/tools/notes/memstore"
)

// TestReadAndSubscribe drives the resources through an in-memory client;
// the caller is taken from a token in the context (the way the HTTP layer
// delivers it) so that two users can be compared.
func TestReadAndSubscribe(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(nil)
	now := time.Now().UTC()
	store.Put(ctx, &notes.Note{ID: "n1", Owner: "alice", Title: "Groceries", Body: "milk", Tags: []string{"home"}, CreatedAt: now, UpdatedAt: now})
	store.PutExport(ctx, &notes.Export{ID: "e1", Owner: "alice", MIMEType: "text/markdown", Content: "# Notes export", CreatedAt: now})

	s := mcp.NewServer(&mcp.Implementation{Name: "r", Version: "1"}, nil)
	reg := policy.New(s, nil)
	r := resources.Register(reg, store, store, "")
	for _, uri := range []string{"notes://index", "notes://n1", "notes://exports/e1", "notes://{id}", "notes://exports/{id}"} {
		if a, ok := reg.Lookup("resources/read", uri); !ok || !slices.Equal(a.Scopes, []string{"notes:read"}) {
			t.Errorf("%s needs %v (known %v), want notes:read", uri, a, ok)
		}
	}
	read := func(user, uri string) (string, error) {
		st, ct := mcp.NewInMemoryTransports()
		ss, err := s.Connect(withToken(ctx, user), st, nil)
		if err != nil {
			return "", err
		}
		defer ss.Close()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
		if err != nil {
			return "", err
		}
		defer cs.Close()
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			return "", err
		}
		return res.Contents[0].Text, nil
	}
	for _, tt := range []struct {
		name, user, uri, want string
		notFound              bool
	}{
		{"index", "alice", notes.IndexURI, "[Groceries](notes://n1) — home", false},
		{"note", "alice", "notes://n1", "# Groceries\n\nmilk", false},
		{"export", "alice", "notes://exports/e1", "# Notes export", false},
		{"someone else's note", "bob", "notes://n1", "", true},
		{"someone else's export", "bob", "notes://exports/e1", "", true},
		{"someone else's index is empty", "bob", notes.IndexURI, "# Your notes (0)", false},
		{"unknown", "alice", "notes://nope", "", true},
		{"bad id", "alice", "notes://a%2Fb", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(tt.user, tt.uri)
			var rpcErr *jsonrpc.Error
			switch {
			case tt.notFound && !(errors.As(err, &rpcErr) && rpcErr.Code == jsonrpc.CodeInvalidParams):
				t.Fatalf("read %s as %s: %v, want resource not found", tt.uri, tt.user, err)
			case !tt.notFound && err != nil:
				t.Fatalf("read %s as %s: %v", tt.uri, tt.user, err)
			case !strings.Contains(got, tt.want):
				t.Errorf("read %s as %s = %q, want it to contain %q", tt.uri, tt.user, got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		user, uri string
		handled   bool
		ok        bool
	}{
		{"alice", notes.IndexURI, true, true},
		{"alice", "notes://n1", true, true},
		{"bob", "notes://n1", true, false},
		{"alice", "notes://nope", true, false},
		{"alice", "test://other", false, true},
	} {
		handled, err := r.Subscribe(withToken(ctx, tt.user), &mcp.SubscribeRequest{Params: &mcp.SubscribeParams{URI: tt.uri}})
		if handled != tt.handled || (err == nil) != tt.ok {
			t.Errorf("Subscribe(%s, %s) = %v, %v; want handled %v, ok %v", tt.user, tt.uri, handled, err, tt.handled, tt.ok)
		}
	}
}

// withToken puts the user's TokenInfo where the go-sdk's bearer middleware
// does, through the middleware itself.
func withToken(ctx context.Context, user string) context.Context {
	if user == "" {
		return ctx
	}
	var out context.Context
	h := auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
		return &auth.TokenInfo{UserID: user, Expiration: time.Now().Add(time.Hour)}, nil
	}, nil)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { out = r.Context() }))
	req := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	return out
}
