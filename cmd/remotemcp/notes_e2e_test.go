package main

// End-to-end tests of the notes product surface (tools, resources,
// subscriptions, prompts, completions) through the real assembled app,
// behind the go-sdk bearer middleware, driven by the go-sdk client in both
// protocol eras: stateless 2026-07-28 and the session-based 2025-11-25.
// Where the go-sdk client hides a wire detail, the 2026-07-28 tests post raw
// JSON-RPC.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/tools"
	"github.com/remotemcp/remotemcp/tools/notes"
)

const (
	notesModern = "2026-07-28"
	notesLegacy = "2025-11-25"
)

// notesEras are the protocol versions every flow is run in.
var notesEras = []string{notesModern, notesLegacy}

// notesExpiry is when the test tokens expire.
var notesExpiry = time.Now().Add(2 * time.Hour).Truncate(time.Second)

var notesScopes = []string{"notes:read", "notes:write"}

// notesVerify accepts "alice-token" and "bob-token".
func notesVerify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	user, ok := strings.CutSuffix(token, "-token")
	if !ok || (user != "alice" && user != "bob") {
		return nil, auth.ErrInvalidToken
	}
	return &auth.TokenInfo{
		UserID:     user,
		Scopes:     slices.Clone(notesScopes),
		Expiration: notesExpiry,
		Extra:      map[string]any{"client_id": "test-client"},
	}, nil
}

// notesServer is the assembled app behind the bearer middleware.
type notesServer struct {
	endpoint string
	base     http.RoundTripper // the test server's transport, without credentials
}

func notesStartServer(t *testing.T) *notesServer {
	t.Helper()
	env := map[string]string{}
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(auth.RequireBearerToken(notesVerify, nil)(a.handler))
	t.Cleanup(func() {
		a.close()
		srv.CloseClientConnections() // end long-lived SSE streams
		srv.Close()
	})
	return &notesServer{endpoint: srv.URL + "/mcp", base: srv.Client().Transport}
}

// notesBearer adds a bearer token to every request.
type notesBearer struct {
	token string
	base  http.RoundTripper
}

func (b *notesBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func (s *notesServer) httpClient(user string) *http.Client {
	return &http.Client{Transport: &notesBearer{token: user + "-token", base: s.base}}
}

// notesCtx bounds every call of a test.
func notesCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a go-sdk client session as user in the given era and checks
// that the era was not silently downgraded.
func (s *notesServer) connect(t *testing.T, user, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "notes-e2e", Version: "1.0.0"}, opts)
	return s.connectClient(t, c, user, version)
}

func (s *notesServer) connectClient(t *testing.T, c *mcp.Client, user, version string) *mcp.ClientSession {
	t.Helper()
	transport := &mcp.StreamableClientTransport{Endpoint: s.endpoint, HTTPClient: s.httpClient(user)}
	cs, err := c.Connect(notesCtx(t), transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect as %s with %s: %v", user, version, err)
	}
	t.Cleanup(func() { cs.Close() })
	if got := cs.InitializeResult().ProtocolVersion; got != version {
		t.Fatalf("negotiated protocol version %q, want %q", got, version)
	}
	return cs
}

// notesCall calls a tool and fails the test on a protocol error.
func notesCall(t *testing.T, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(notesCtx(t), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s(%v): %v", name, args, err)
	}
	return res
}

// notesOut calls a tool that must succeed and decodes its structured output.
func notesOut[T any](t *testing.T, cs *mcp.ClientSession, name string, args any) T {
	t.Helper()
	res := notesCall(t, cs, name, args)
	if res.IsError {
		t.Fatalf("%s(%v) failed: %s", name, args, notesText(res))
	}
	var out T
	notesDecode(t, res.StructuredContent, &out)
	return out
}

// notesToolError calls a tool that must fail as a tool error (isError) and
// returns its text.
func notesToolError(t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	res := notesCall(t, cs, name, args)
	if !res.IsError {
		t.Fatalf("%s(%v) succeeded, want isError; content: %s", name, args, notesText(res))
	}
	return notesText(res)
}

func notesText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func notesDecode(t *testing.T, v, out any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

func notesCreate(t *testing.T, cs *mcp.ClientSession, title, body string, tags ...string) tools.NoteOutput {
	t.Helper()
	args := map[string]any{"title": title, "body": body}
	if tags != nil {
		args["tags"] = tags
	}
	return notesOut[tools.NoteOutput](t, cs, "notes_create", args)
}

// notesExists reports whether user's notes_get finds the note.
func notesExists(t *testing.T, cs *mcp.ClientSession, id string) bool {
	t.Helper()
	res := notesCall(t, cs, "notes_get", map[string]any{"id": id})
	if res.IsError && !strings.Contains(notesText(res), "there is no note") {
		t.Fatalf("notes_get(%s): unexpected error %s", id, notesText(res))
	}
	return !res.IsError
}

// notesCode returns the JSON-RPC error code in err, or 0.
func notesCode(err error) int64 {
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}

func notesReadText(t *testing.T, cs *mcp.ClientSession, uri string) *mcp.ResourceContents {
	t.Helper()
	res, err := cs.ReadResource(notesCtx(t), &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("read %s: %d contents, want 1", uri, len(res.Contents))
	}
	return res.Contents[0]
}

// notesEventually waits up to a few seconds for cond.
func notesEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := waitFor(t, 5*time.Second, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestNotesWhoAmI(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			for _, user := range []string{"alice", "bob"} {
				cs := s.connect(t, user, version, nil)
				got := notesOut[tools.WhoAmI](t, cs, "whoami", map[string]any{})
				want := tools.WhoAmI{
					Subject:       user,
					Authenticated: true,
					ClientID:      "test-client",
					Scopes:        notesScopes,
					ExpiresAt:     notesExpiry.UTC().Format(time.RFC3339),
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("whoami as %s (-want +got):\n%s", user, diff)
				}
			}
		})
	}
}

func TestNotesCreateSearchGet(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			cs := s.connect(t, "alice", version, nil)

			created := notesCreate(t, cs, "  Groceries  ", "milk, eggs and bread", "Food", " home ", "FOOD")
			if !notes.ValidID(created.ID) {
				t.Fatalf("created note has id %q", created.ID)
			}
			if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
				t.Errorf("createdAt %v, updatedAt %v: want equal and set", created.CreatedAt, created.UpdatedAt)
			}
			wantNote := tools.NoteOutput{
				Note: notes.Note{ID: created.ID, Title: "Groceries", Body: "milk, eggs and bread", Tags: []string{"food", "home"},
					CreatedAt: created.CreatedAt, UpdatedAt: created.UpdatedAt},
				URI: "notes://" + created.ID,
			}
			if diff := cmp.Diff(wantNote, created); diff != "" {
				t.Errorf("notes_create output (-want +got):\n%s", diff)
			}
			other := notesCreate(t, cs, "Tax return", "due in April")

			summary := func(n tools.NoteOutput) tools.NoteSummary {
				return tools.NoteSummary{ID: n.ID, Title: n.Title, Tags: n.Tags, UpdatedAt: n.UpdatedAt.Format(time.RFC3339Nano), URI: n.URI}
			}
			// UpdatedAt is formatted without fractional seconds.
			ignoreTime := cmpopts.IgnoreFields(tools.NoteSummary{}, "UpdatedAt")
			for _, tt := range []struct {
				name string
				args map[string]any
				want tools.SearchOutput
			}{
				{"by body word", map[string]any{"query": "EGGS"}, tools.SearchOutput{Notes: []tools.NoteSummary{summary(created)}, Total: 1}},
				{"all words must match", map[string]any{"query": "milk april"}, tools.SearchOutput{Notes: []tools.NoteSummary{}, Total: 0}},
				{"by tag", map[string]any{"tag": " Home "}, tools.SearchOutput{Notes: []tools.NoteSummary{summary(created)}, Total: 1}},
				{"by title", map[string]any{"query": "tax"}, tools.SearchOutput{Notes: []tools.NoteSummary{summary(other)}, Total: 1}},
				{"everything, newest first", map[string]any{}, tools.SearchOutput{Notes: []tools.NoteSummary{summary(other), summary(created)}, Total: 2}},
				{"limit keeps the total", map[string]any{"limit": 1}, tools.SearchOutput{Notes: []tools.NoteSummary{summary(other)}, Total: 2}},
			} {
				t.Run("search "+tt.name, func(t *testing.T) {
					got := notesOut[tools.SearchOutput](t, cs, "notes_search", tt.args)
					if diff := cmp.Diff(tt.want, got, ignoreTime); diff != "" {
						t.Errorf("notes_search(%v) (-want +got):\n%s", tt.args, diff)
					}
				})
			}

			got := notesOut[tools.NoteOutput](t, cs, "notes_get", map[string]any{"id": created.ID})
			if diff := cmp.Diff(wantNote, got); diff != "" {
				t.Errorf("notes_get (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNotesBadInput(t *testing.T) {
	tooManyTags := make([]string, notes.MaxTags+1)
	for i := range tooManyTags {
		tooManyTags[i] = fmt.Sprint("tag", i)
	}
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			cs := s.connect(t, "alice", version, nil)
			for _, tt := range []struct {
				name string
				tool string
				args map[string]any
				want []string // substrings of the tool error
			}{
				{"empty title", "notes_create", map[string]any{"title": "   "}, []string{"title is required"}},
				{"missing title", "notes_create", map[string]any{"body": "b"}, []string{`missing properties: ["title"]`}},
				{"title of the wrong type", "notes_create", map[string]any{"title": 42}, []string{"/properties/title", `want "string"`}},
				{"tags of the wrong type", "notes_create", map[string]any{"title": "t", "tags": "a,b"}, []string{"/properties/tags", "array"}},
				{"title too long", "notes_create", map[string]any{"title": strings.Repeat("x", notes.MaxTitle+1)}, []string{"title is longer than 200 characters"}},
				{"too many tags", "notes_create", map[string]any{"title": "t", "tags": tooManyTags}, []string{"at most 16 tags"}},
				{"tag too long", "notes_create", map[string]any{"title": "t", "tags": []string{strings.Repeat("a", notes.MaxTag+1)}}, []string{"longer than 32 characters"}},
				{"body too large", "notes_create", map[string]any{"title": "t", "body": strings.Repeat("b", notes.MaxBody+1)}, []string{"body is larger than"}},
				{"search limit out of range", "notes_search", map[string]any{"limit": 101}, []string{"limit must be between 1 and 100"}},
				{"malformed id", "notes_get", map[string]any{"id": "../etc/passwd"}, []string{"is not a note id", "notes_search"}},
				{"unknown id", "notes_get", map[string]any{"id": "doesnotexist"}, []string{"there is no note", "notes_search"}},
				{"delete unknown id", "notes_delete", map[string]any{"id": "doesnotexist", "confirm": true}, []string{"there is no note"}},
				{"export format", "export_notes", map[string]any{"format": "pdf"}, []string{"format must be markdown or json"}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					text := notesToolError(t, cs, tt.tool, tt.args)
					for _, w := range tt.want {
						if !strings.Contains(text, w) {
							t.Errorf("%s error %q does not mention %q", tt.tool, text, w)
						}
					}
				})
			}
			// Nothing was stored by the failed calls.
			if got := notesOut[tools.SearchOutput](t, cs, "notes_search", map[string]any{}); got.Total != 0 {
				t.Errorf("%d notes stored after bad input, want 0: %+v", got.Total, got.Notes)
			}
		})
	}
}

func TestNotesIsolation(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			alice := s.connect(t, "alice", version, nil)
			bob := s.connect(t, "bob", version, nil)
			secret := notesCreate(t, alice, "Groceries", "alice's secret list", "private")
			export := notesOut[tools.ExportOutput](t, alice, "export_notes", map[string]any{})
			notesCreate(t, bob, "Bob's own", "nothing to see")

			t.Run("notes_get", func(t *testing.T) {
				text := notesToolError(t, bob, "notes_get", map[string]any{"id": secret.ID})
				want := fmt.Sprintf("there is no note with id %q; use notes_search to find one", secret.ID)
				if text != want {
					t.Errorf("bob's notes_get of alice's note = %q, want the not-found text %q", text, want)
				}
			})
			t.Run("notes_delete", func(t *testing.T) {
				notesToolError(t, bob, "notes_delete", map[string]any{"id": secret.ID, "confirm": true})
				if !notesExists(t, alice, secret.ID) {
					t.Error("bob deleted alice's note")
				}
			})
			t.Run("notes_search", func(t *testing.T) {
				for _, args := range []map[string]any{{}, {"query": "groceries"}, {"tag": "private"}} {
					got := notesOut[tools.SearchOutput](t, bob, "notes_search", args)
					for _, n := range got.Notes {
						if n.ID == secret.ID {
							t.Errorf("bob's notes_search(%v) found alice's note", args)
						}
					}
				}
			})
			t.Run("export_notes", func(t *testing.T) {
				out := notesOut[tools.ExportOutput](t, bob, "export_notes", map[string]any{})
				if out.Count != 1 {
					t.Errorf("bob's export has %d notes, want his 1", out.Count)
				}
				text := notesReadText(t, bob, out.URI).Text
				if strings.Contains(text, "Groceries") {
					t.Errorf("bob's export contains alice's note:\n%s", text)
				}
			})
			for _, uri := range []string{secret.URI, export.URI} {
				t.Run("read "+uri, func(t *testing.T) {
					_, err := bob.ReadResource(notesCtx(t), &mcp.ReadResourceParams{URI: uri})
					if code := notesCode(err); code != jsonrpc.CodeInvalidParams {
						t.Errorf("bob reading %s: err = %v (code %d), want code %d", uri, err, code, jsonrpc.CodeInvalidParams)
					}
				})
			}
			t.Run("read notes://index", func(t *testing.T) {
				text := notesReadText(t, bob, notes.IndexURI).Text
				if strings.Contains(text, "Groceries") || strings.Contains(text, secret.ID) || !strings.Contains(text, "Your notes (1)") {
					t.Errorf("bob's index:\n%s", text)
				}
			})
			t.Run("subscribe", func(t *testing.T) {
				if version == notesModern {
					// The go-sdk client subscribes in the background on a
					// subscriptions/listen stream and reports no error, so
					// look at the wire.
					msgs := s.raw(t, "bob", "subscriptions/listen", map[string]any{
						"notifications": map[string]any{"resourceSubscriptions": []string{secret.URI}},
					}, nil, func(notesMsg) bool { return true })
					if len(msgs) != 1 || msgs[0].Error == nil || msgs[0].Error.Code != jsonrpc.CodeInvalidParams {
						t.Errorf("bob's subscriptions/listen to alice's note: got %s, want a %d error", notesJSON(msgs), jsonrpc.CodeInvalidParams)
					}
					return
				}
				err := bob.Subscribe(notesCtx(t), &mcp.SubscribeParams{URI: secret.URI})
				if code := notesCode(err); code != jsonrpc.CodeInvalidParams {
					t.Errorf("bob subscribing to alice's note: err = %v (code %d), want code %d", err, code, jsonrpc.CodeInvalidParams)
				}
			})
			t.Run("completion", func(t *testing.T) {
				res, err := bob.Complete(notesCtx(t), notesTopic("gro"))
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Completion.Values) != 0 || res.Completion.Total != 0 {
					t.Errorf("bob's completion of %q = %+v, want nothing", "gro", res.Completion)
				}
			})
			t.Run("prompts", func(t *testing.T) {
				for _, p := range []*mcp.GetPromptParams{
					{Name: "summarize_notes"},
					{Name: "draft_note", Arguments: map[string]string{"topic": "groceries"}},
				} {
					text := notesPromptText(t, bob, p)
					if strings.Contains(text, "Groceries") || strings.Contains(text, "secret") {
						t.Errorf("bob's %s prompt contains alice's note:\n%s", p.Name, text)
					}
				}
			})
		})
	}
}

func notesTopic(value string) *mcp.CompleteParams {
	return &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "draft_note"},
		Argument: mcp.CompleteParamsArgument{Name: "topic", Value: value},
	}
}

func notesPromptText(t *testing.T, cs *mcp.ClientSession, p *mcp.GetPromptParams) string {
	t.Helper()
	res, err := cs.GetPrompt(notesCtx(t), p)
	if err != nil {
		t.Fatalf("prompts/get %s: %v", p.Name, err)
	}
	if len(res.Messages) != 1 {
		t.Fatalf("prompt %s has %d messages, want 1", p.Name, len(res.Messages))
	}
	tc, ok := res.Messages[0].Content.(*mcp.TextContent)
	if !ok {
		t.Fatalf("prompt %s content is %T", p.Name, res.Messages[0].Content)
	}
	return tc.Text
}

// notesElicitor answers every elicitation with action and content, and
// records the messages it was shown.
type notesElicitor struct {
	action  string
	content map[string]any
	mu      sync.Mutex
	asked   []string
}

func (e *notesElicitor) handle(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	e.mu.Lock()
	e.asked = append(e.asked, req.Params.Message)
	e.mu.Unlock()
	return &mcp.ElicitResult{Action: e.action, Content: e.content}, nil
}

func (e *notesElicitor) messages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.asked)
}

func TestNotesDelete(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			owner := s.connect(t, "alice", version, nil)
			for _, tt := range []struct {
				name        string
				elicitor    *notesElicitor // nil: the client does not declare elicitation
				confirm     bool
				wantDeleted bool
				wantError   string // a substring of the tool error, if one is expected
			}{
				{name: "accepted", elicitor: &notesElicitor{action: "accept", content: map[string]any{"confirm": true}}, wantDeleted: true},
				{name: "accepted without ticking confirm", elicitor: &notesElicitor{action: "accept", content: map[string]any{"confirm": false}}},
				{name: "declined", elicitor: &notesElicitor{action: "decline"}},
				{name: "cancelled", elicitor: &notesElicitor{action: "cancel"}},
				{name: "elicitation client passing confirm is still asked", elicitor: &notesElicitor{action: "decline"}, confirm: true},
				{name: "no elicitation, no confirm", wantError: `call notes_delete again with "confirm": true`},
				{name: "no elicitation, confirm", confirm: true, wantDeleted: true},
			} {
				t.Run(tt.name, func(t *testing.T) {
					n := notesCreate(t, owner, "Delete me "+tt.name, "body")
					opts := &mcp.ClientOptions{}
					if tt.elicitor != nil {
						opts.ElicitationHandler = tt.elicitor.handle
					}
					cs := s.connect(t, "alice", version, opts)
					args := map[string]any{"id": n.ID}
					if tt.confirm {
						args["confirm"] = true
					}
					res := notesCall(t, cs, "notes_delete", args)
					switch {
					case tt.wantError != "":
						if !res.IsError || !strings.Contains(notesText(res), tt.wantError) || !strings.Contains(notesText(res), n.Title) {
							t.Errorf("notes_delete = isError %v %q, want an error naming the note and mentioning %q", res.IsError, notesText(res), tt.wantError)
						}
					case res.IsError:
						t.Fatalf("notes_delete failed: %s", notesText(res))
					default:
						var got tools.DeleteOutput
						notesDecode(t, res.StructuredContent, &got)
						want := tools.DeleteOutput{Deleted: tt.wantDeleted, ID: n.ID, Title: n.Title}
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("notes_delete output (-want +got):\n%s", diff)
						}
						if !tt.wantDeleted && !strings.Contains(notesText(res), "Kept the note") {
							t.Errorf("declined notes_delete text = %q, want it to say the note was kept", notesText(res))
						}
					}
					if tt.elicitor != nil {
						asked := tt.elicitor.messages()
						if len(asked) != 1 || !strings.Contains(asked[0], n.Title) {
							t.Errorf("the user was asked %q, want one confirmation naming %q", asked, n.Title)
						}
					}
					if got := notesExists(t, owner, n.ID); got == tt.wantDeleted {
						t.Errorf("note exists = %v after notes_delete, want %v", got, !tt.wantDeleted)
					}
				})
			}

			t.Run("no elicitation: error, then confirm", func(t *testing.T) {
				n := notesCreate(t, owner, "Two step", "")
				text := notesToolError(t, owner, "notes_delete", map[string]any{"id": n.ID})
				if !strings.Contains(text, "confirm") {
					t.Errorf("error %q does not mention confirm", text)
				}
				if !notesExists(t, owner, n.ID) {
					t.Fatal("deleted without confirmation")
				}
				got := notesOut[tools.DeleteOutput](t, owner, "notes_delete", map[string]any{"id": n.ID, "confirm": true})
				if !got.Deleted || notesExists(t, owner, n.ID) {
					t.Errorf("confirmed delete: %+v, exists afterwards = %v", got, notesExists(t, owner, n.ID))
				}
				// Deleting again is a helpful tool error.
				if text := notesToolError(t, owner, "notes_delete", map[string]any{"id": n.ID, "confirm": true}); !strings.Contains(text, "there is no note") {
					t.Errorf("second delete error = %q", text)
				}
			})
		})
	}
}

// TestNotesDeleteRequestState drives the 2026-07-28 multi-round-trip
// confirmation by hand (the go-sdk client's automatic MRTR is disabled) to
// replay requestState where it does not belong.
func TestNotesDeleteRequestState(t *testing.T) {
	s := notesStartServer(t)
	manual := func() *mcp.ClientOptions {
		e := &notesElicitor{action: "accept", content: map[string]any{"confirm": true}}
		return &mcp.ClientOptions{ElicitationHandler: e.handle, MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true}}
	}
	alice := s.connect(t, "alice", notesModern, manual())
	bob := s.connect(t, "bob", notesModern, manual())
	a1 := notesCreate(t, alice, "Alice one", "")
	a2 := notesCreate(t, alice, "Alice two", "")
	b1 := notesCreate(t, bob, "Bob one", "")

	first := notesCall(t, alice, "notes_delete", map[string]any{"id": a1.ID})
	if !first.NeedsInput() || first.RequestState == "" || first.IsError {
		t.Fatalf("first round: needsInput %v, requestState %q, isError %v; want an input request", first.NeedsInput(), first.RequestState, first.IsError)
	}
	ask, ok := first.InputRequests["confirm_delete"].(*mcp.ElicitParams)
	if !ok || !strings.Contains(ask.Message, a1.Title) {
		t.Fatalf("inputRequests = %#v, want confirm_delete eliciting about %q", first.InputRequests, a1.Title)
	}
	state := first.RequestState
	accept := mcp.InputResponseMap{"confirm_delete": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}}
	// Change a character inside the MAC (not the last one, whose low bits
	// base64 may ignore).
	i := len(state) - 5
	flipped := byte('A')
	if state[i] == 'A' {
		flipped = 'B'
	}
	tampered := state[:i] + string(flipped) + state[i+1:]

	for _, tt := range []struct {
		name     string
		cs       *mcp.ClientSession
		id       string
		state    string
		answers  mcp.InputResponseMap
		wantCode int64  // a JSON-RPC error
		wantText string // or a tool error
	}{
		{name: "bob replays it on his own note", cs: bob, id: b1.ID, state: state, answers: accept, wantCode: jsonrpc.CodeInvalidParams},
		{name: "alice replays it for another note", cs: alice, id: a2.ID, state: state, answers: accept, wantCode: jsonrpc.CodeInvalidParams},
		{name: "tampered", cs: alice, id: a1.ID, state: tampered, answers: accept, wantCode: jsonrpc.CodeInvalidParams},
		{name: "garbage", cs: alice, id: a1.ID, state: "garbage", answers: accept, wantCode: jsonrpc.CodeInvalidParams},
		{name: "bob replays it on alice's note", cs: bob, id: a1.ID, state: state, answers: accept, wantText: "there is no note"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.cs.CallTool(notesCtx(t), &mcp.CallToolParams{
				Name: "notes_delete", Arguments: map[string]any{"id": tt.id}, RequestState: tt.state, InputResponses: tt.answers,
			})
			if tt.wantCode != 0 {
				if code := notesCode(err); code != tt.wantCode {
					t.Errorf("CallTool = %+v, %v (code %d); want error code %d", res, err, code, tt.wantCode)
				}
				return
			}
			if err != nil || !res.IsError || !strings.Contains(notesText(res), tt.wantText) {
				t.Errorf("CallTool = %+v, %v; want a tool error mentioning %q", res, err, tt.wantText)
			}
		})
	}
	for _, n := range []struct {
		cs *mcp.ClientSession
		id string
	}{{alice, a1.ID}, {alice, a2.ID}, {bob, b1.ID}} {
		if !notesExists(t, n.cs, n.id) {
			t.Errorf("note %s was deleted by a rejected round", n.id)
		}
	}

	t.Run("missing answer asks again", func(t *testing.T) {
		res := notesCall(t, alice, "notes_delete", map[string]any{"id": a1.ID})
		res2, err := alice.CallTool(notesCtx(t), &mcp.CallToolParams{Name: "notes_delete", Arguments: map[string]any{"id": a1.ID}, RequestState: res.RequestState})
		if err != nil || !res2.NeedsInput() || res2.InputRequests["confirm_delete"] == nil {
			t.Errorf("retry without inputResponses = %+v, %v; want the input request again", res2, err)
		}
	})
	t.Run("proper second round deletes", func(t *testing.T) {
		res, err := alice.CallTool(notesCtx(t), &mcp.CallToolParams{
			Name: "notes_delete", Arguments: map[string]any{"id": a1.ID}, RequestState: state, InputResponses: accept,
		})
		if err != nil || res.IsError || res.NeedsInput() {
			t.Fatalf("second round = %+v, %v", res, err)
		}
		var got tools.DeleteOutput
		notesDecode(t, res.StructuredContent, &got)
		if diff := cmp.Diff(tools.DeleteOutput{Deleted: true, ID: a1.ID, Title: a1.Title}, got); diff != "" {
			t.Errorf("second round output (-want +got):\n%s", diff)
		}
		if notesExists(t, alice, a1.ID) {
			t.Error("note still exists")
		}
	})
}

// TestNotesDeleteMRTRWire checks the 2026-07-28 confirmation on the wire.
func TestNotesDeleteMRTRWire(t *testing.T) {
	s := notesStartServer(t)
	alice := s.connect(t, "alice", notesModern, nil)
	n := notesCreate(t, alice, "Wire delete", "")
	caps := map[string]any{"elicitation": map[string]any{"form": map[string]any{}}}

	msgs := s.raw(t, "alice", "tools/call", map[string]any{"name": "notes_delete", "arguments": map[string]any{"id": n.ID}}, caps, nil)
	var first struct {
		ResultType    string `json:"resultType"`
		RequestState  string `json:"requestState"`
		InputRequests map[string]struct {
			Method string `json:"method"`
			Params struct {
				Message         string         `json:"message"`
				RequestedSchema map[string]any `json:"requestedSchema"`
			} `json:"params"`
		} `json:"inputRequests"`
		Content []any `json:"content"`
	}
	notesResult(t, msgs, &first)
	ask := first.InputRequests["confirm_delete"]
	if first.ResultType != "input_required" || first.RequestState == "" || ask.Method != "elicitation/create" ||
		!strings.Contains(ask.Params.Message, n.Title) || ask.Params.RequestedSchema["properties"] == nil || first.Content != nil {
		t.Fatalf("first round on the wire: %s", notesJSON(msgs))
	}

	retry := func(action string) []notesMsg {
		answer := map[string]any{"action": action}
		if action == "accept" {
			answer["content"] = map[string]any{"confirm": true}
		}
		return s.raw(t, "alice", "tools/call", map[string]any{
			"name": "notes_delete", "arguments": map[string]any{"id": n.ID},
			"inputResponses": map[string]any{"confirm_delete": answer},
			"requestState":   first.RequestState,
		}, caps, nil)
	}
	var declined struct {
		ResultType        string             `json:"resultType"`
		StructuredContent tools.DeleteOutput `json:"structuredContent"`
	}
	notesResult(t, retry("decline"), &declined)
	if declined.ResultType != "complete" || declined.StructuredContent.Deleted || !notesExists(t, alice, n.ID) {
		t.Fatalf("declined round: %+v", declined)
	}
	var accepted struct {
		ResultType        string             `json:"resultType"`
		StructuredContent tools.DeleteOutput `json:"structuredContent"`
	}
	notesResult(t, retry("accept"), &accepted)
	want := tools.DeleteOutput{Deleted: true, ID: n.ID, Title: n.Title}
	if diff := cmp.Diff(want, accepted.StructuredContent); diff != "" || accepted.ResultType != "complete" {
		t.Errorf("accepted round: resultType %q, output (-want +got):\n%s", accepted.ResultType, diff)
	}
	if notesExists(t, alice, n.ID) {
		t.Error("note still exists after the accepted round")
	}
	// The state is bound to the note, not single-use: replaying it for the
	// deleted note now finds nothing.
	msgs = retry("accept")
	var gone mcp.CallToolResult
	notesResult(t, msgs, &gone)
	if !gone.IsError {
		t.Errorf("replay after deletion: %s, want a tool error", notesJSON(msgs))
	}
}

// notesProgress records progress notifications.
type notesProgress struct {
	mu    sync.Mutex
	got   []mcp.ProgressNotificationParams
	first chan struct{}
	once  sync.Once
}

func notesNewProgress() *notesProgress { return &notesProgress{first: make(chan struct{})} }

func (p *notesProgress) handle(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p.mu.Lock()
	p.got = append(p.got, *req.Params)
	p.mu.Unlock()
	p.once.Do(func() { close(p.first) })
}

func (p *notesProgress) all() []mcp.ProgressNotificationParams {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func TestNotesExport(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			progress := notesNewProgress()
			cs := s.connect(t, "alice", version, &mcp.ClientOptions{ProgressNotificationHandler: progress.handle})
			var titles []string
			for i := range 5 {
				n := notesCreate(t, cs, fmt.Sprintf("Export note %d", i), fmt.Sprintf("body %d", i), "export")
				titles = append(titles, n.Title)
			}
			notesCreate(t, cs, "Not tagged", "left out by the tag filter")

			params := &mcp.CallToolParams{Name: "export_notes", Arguments: map[string]any{"tag": "export"}}
			params.SetProgressToken("export-1")
			res, err := cs.CallTool(notesCtx(t), params)
			if err != nil || res.IsError {
				t.Fatalf("export_notes = %+v, %v", res, err)
			}
			var out tools.ExportOutput
			notesDecode(t, res.StructuredContent, &out)
			if out.Count != 5 || out.MIMEType != "text/markdown" || !strings.HasPrefix(out.URI, "notes://exports/") {
				t.Errorf("export output = %+v", out)
			}

			notesEventually(t, "5 progress notifications", func() bool { return len(progress.all()) >= 5 })
			var want []mcp.ProgressNotificationParams
			for i := range 5 {
				want = append(want, mcp.ProgressNotificationParams{
					ProgressToken: "export-1", Progress: float64(i + 1), Total: 5,
					Message: fmt.Sprintf("exported %d of 5 notes", i+1),
				})
			}
			if diff := cmp.Diff(want, progress.all(), cmpopts.IgnoreFields(mcp.ProgressNotificationParams{}, "Meta")); diff != "" {
				t.Errorf("progress notifications (-want +got):\n%s", diff)
			}

			var link *mcp.ResourceLink
			for _, c := range res.Content {
				if l, ok := c.(*mcp.ResourceLink); ok {
					link = l
				}
			}
			if link == nil || link.URI != out.URI || link.MIMEType != "text/markdown" {
				t.Fatalf("result content %s has no resource_link to %s", notesJSON(res.Content), out.URI)
			}
			rc := notesReadText(t, cs, link.URI)
			if rc.URI != out.URI || rc.MIMEType != "text/markdown" || !strings.HasPrefix(rc.Text, "# Notes export\n") {
				t.Errorf("export resource = %+v", rc)
			}
			for _, title := range titles {
				if !strings.Contains(rc.Text, "## "+title+"\n") {
					t.Errorf("export does not contain %q:\n%s", title, rc.Text)
				}
			}
			if strings.Contains(rc.Text, "Not tagged") {
				t.Errorf("export contains a note without the tag:\n%s", rc.Text)
			}
			if size := link.Size; size == nil || *size != int64(len(rc.Text)) {
				t.Errorf("resource_link size = %v, want %d", size, len(rc.Text))
			}

			t.Run("json", func(t *testing.T) {
				out := notesOut[tools.ExportOutput](t, cs, "export_notes", map[string]any{"format": "JSON"})
				rc := notesReadText(t, cs, out.URI)
				var got []notes.Note
				if err := json.Unmarshal([]byte(rc.Text), &got); err != nil {
					t.Fatalf("json export %q: %v", rc.Text, err)
				}
				if out.Count != 6 || len(got) != 6 || rc.MIMEType != "application/json" || out.MIMEType != "application/json" {
					t.Errorf("json export: output %+v, %d notes, mime %q", out, len(got), rc.MIMEType)
				}
				if strings.Contains(rc.Text, "alice") || strings.Contains(strings.ToLower(rc.Text), `"owner"`) {
					t.Errorf("json export reveals the owner:\n%s", rc.Text)
				}
			})
			t.Run("unknown export", func(t *testing.T) {
				_, err := cs.ReadResource(notesCtx(t), &mcp.ReadResourceParams{URI: "notes://exports/doesnotexist"})
				if code := notesCode(err); code != jsonrpc.CodeInvalidParams {
					t.Errorf("reading an unknown export: %v (code %d), want %d", err, code, jsonrpc.CodeInvalidParams)
				}
			})
		})
	}
}

// notesExportsRunning counts export_notes handlers running in this process.
func notesExportsRunning() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "remotemcp/tools.(*toolset).export(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestNotesExportCancel(t *testing.T) {
	const count = 80 // at the default 25ms a note, a full export takes 2s
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			progress := notesNewProgress()
			cs := s.connect(t, "alice", version, &mcp.ClientOptions{ProgressNotificationHandler: progress.handle})
			for i := range count {
				notesCreate(t, cs, fmt.Sprint("Bulk ", i), "")
			}
			// Another test's export may still be winding down.
			// Past 5s, the test goes on with base of them.
			var base int
			waitFor(t, 5*time.Second, func() error {
				if base = notesExportsRunning(); base > 0 {
					return fmt.Errorf("%d exports running", base)
				}
				return nil
			})

			ctx, cancel := context.WithCancel(notesCtx(t))
			defer cancel()
			params := &mcp.CallToolParams{Name: "export_notes", Arguments: map[string]any{}}
			params.SetProgressToken("cancel-me")
			type result struct {
				res *mcp.CallToolResult
				err error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				res, err := cs.CallTool(ctx, params)
				done <- result{res, err}
			}()
			select {
			case <-progress.first:
			case r := <-done:
				t.Fatalf("export_notes ended before any progress: %+v, %v", r.res, r.err)
			case <-time.After(10 * time.Second):
				t.Fatal("no progress notification")
			}
			if n := notesExportsRunning(); n != base+1 {
				t.Fatalf("%d export handlers running before the cancellation, want %d", n, base+1)
			}
			cancel()
			cancelled := time.Now()
			select {
			case r := <-done:
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("cancelled export_notes = %+v, %v; want context.Canceled", r.res, r.err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("export_notes did not return after its context was cancelled")
			}
			// The server's handler stops too, long before it could have
			// finished (and stored) the export.
			err := waitFor(t, time.Until(cancelled.Add(750*time.Millisecond)), func() error {
				if n := notesExportsRunning(); n > base {
					return fmt.Errorf("%d export handlers running", n)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("the export handler still runs %v after the cancellation", time.Since(cancelled))
			}
			if elapsed := time.Since(start); elapsed >= count*25*time.Millisecond {
				t.Fatalf("the check came too late (%v) to tell a stopped export from a finished one", elapsed)
			}
			got := progress.all()
			if len(got) == 0 || len(got) >= count {
				t.Errorf("%d progress notifications, want some but fewer than %d", len(got), count)
			}
			for i, p := range got {
				if p.Progress != float64(i+1) || p.Total != count {
					t.Errorf("progress #%d = %v/%v", i, p.Progress, p.Total)
				}
			}
			// The session is still usable.
			if who := notesOut[tools.WhoAmI](t, cs, "whoami", map[string]any{}); who.Subject != "alice" {
				t.Errorf("whoami after the cancellation = %+v", who)
			}
		})
	}
}

func TestNotesResources(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			cs := s.connect(t, "alice", version, nil)
			empty := notesReadText(t, cs, notes.IndexURI)
			if empty.Text != "# Your notes (0)\n\n" {
				t.Errorf("empty index = %q", empty.Text)
			}
			a := notesCreate(t, cs, "Groceries", "milk", "food", "home")
			b := notesCreate(t, cs, "Tax return", "due in April")

			t.Run("list", func(t *testing.T) {
				res, err := cs.ListResources(notesCtx(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				var uris []string
				for _, r := range res.Resources {
					uris = append(uris, r.URI)
				}
				if !slices.Contains(uris, notes.IndexURI) {
					t.Errorf("resources/list = %q, want %s", uris, notes.IndexURI)
				}
				tmpl, err := cs.ListResourceTemplates(notesCtx(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				var templates []string
				for _, r := range tmpl.ResourceTemplates {
					templates = append(templates, r.URITemplate)
				}
				for _, want := range []string{"notes://{id}", "notes://exports/{id}"} {
					if !slices.Contains(templates, want) {
						t.Errorf("resources/templates/list = %q, want %s", templates, want)
					}
				}
			})
			t.Run("index", func(t *testing.T) {
				rc := notesReadText(t, cs, notes.IndexURI)
				want := fmt.Sprintf("# Your notes (2)\n\n- [Tax return](%s)\n- [Groceries](%s) — food, home\n", b.URI, a.URI)
				if diff := cmp.Diff(want, rc.Text); diff != "" || rc.MIMEType != "text/markdown" || rc.URI != notes.IndexURI {
					t.Errorf("index %s %s (-want +got):\n%s", rc.URI, rc.MIMEType, diff)
				}
			})
			t.Run("note", func(t *testing.T) {
				got := notesReadText(t, cs, a.URI)
				want := &mcp.ResourceContents{URI: a.URI, MIMEType: "text/markdown", Text: "# Groceries\n\nmilk\n"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("read %s (-want +got):\n%s", a.URI, diff)
				}
			})
			for _, uri := range []string{"notes://doesnotexist", "notes://exports/doesnotexist"} {
				t.Run("unknown "+uri, func(t *testing.T) {
					_, err := cs.ReadResource(notesCtx(t), &mcp.ReadResourceParams{URI: uri})
					if code := notesCode(err); code != jsonrpc.CodeInvalidParams {
						t.Errorf("read %s: %v (code %d), want code %d in %s", uri, err, code, jsonrpc.CodeInvalidParams, version)
					}
				})
			}
			t.Run("deleted note", func(t *testing.T) {
				n := notesCreate(t, cs, "Short-lived", "")
				notesReadText(t, cs, n.URI)
				notesOut[tools.DeleteOutput](t, cs, "notes_delete", map[string]any{"id": n.ID, "confirm": true})
				_, err := cs.ReadResource(notesCtx(t), &mcp.ReadResourceParams{URI: n.URI})
				if code := notesCode(err); code != jsonrpc.CodeInvalidParams {
					t.Errorf("read %s after deleting it: %v (code %d), want code %d", n.URI, err, code, jsonrpc.CodeInvalidParams)
				}
			})
			if version != notesModern {
				return
			}
			t.Run("cacheScope", func(t *testing.T) {
				res, err := cs.ReadResource(notesCtx(t), &mcp.ReadResourceParams{URI: a.URI})
				if err != nil {
					t.Fatal(err)
				}
				if res.CacheScope != "private" || res.TTLMs != 0 {
					t.Errorf("client sees cacheScope %q, ttlMs %d; want private, 0", res.CacheScope, res.TTLMs)
				}
				for _, uri := range []string{notes.IndexURI, a.URI} {
					msgs := s.raw(t, "alice", "resources/read", map[string]any{"uri": uri}, nil, nil)
					var wire map[string]any
					notesResult(t, msgs, &wire)
					if wire["cacheScope"] != "private" || wire["ttlMs"] != float64(0) {
						t.Errorf("resources/read %s on the wire: %s; want cacheScope private, ttlMs 0", uri, notesJSON(msgs))
					}
				}
			})
		})
	}
}

// notesUpdates records notifications/resources/updated and subscription
// acknowledgements of one client.
type notesUpdates struct {
	uris chan string
	acks chan []string
}

func notesNewUpdates() *notesUpdates {
	return &notesUpdates{uris: make(chan string, 256), acks: make(chan []string, 64)}
}

func (u *notesUpdates) client() *mcp.Client {
	c := mcp.NewClient(&mcp.Implementation{Name: "notes-e2e", Version: "1.0.0"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			select {
			case u.uris <- req.Params.URI:
			default:
			}
		},
	})
	c.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.SubscriptionsAcknowledgedParams); ok {
				select {
				case u.acks <- p.Notifications.ResourceSubscriptions:
				default:
				}
			}
			return next(ctx, method, req)
		}
	})
	return c
}

// subscribe subscribes to uri and, in 2026-07-28, where the go-sdk client
// opens the subscriptions/listen stream in the background, waits for the
// server's acknowledgement.
func (u *notesUpdates) subscribe(t *testing.T, cs *mcp.ClientSession, uri string) {
	t.Helper()
	if err := cs.Subscribe(notesCtx(t), &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatalf("subscribe %s: %v", uri, err)
	}
	if cs.InitializeResult().ProtocolVersion < notesModern {
		return
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-u.acks:
			if slices.Contains(got, uri) {
				return
			}
		case <-timeout:
			t.Fatalf("no subscriptions/acknowledged for %s", uri)
		}
	}
}

// warmUp creates notes until one's index update arrives: a legacy session's
// GET stream starts in the background and delivers only what happens after
// it is up. It then drains what is pending.
func (u *notesUpdates) warmUp(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	for i := range 50 {
		notesCreate(t, cs, fmt.Sprint("warm-up ", i), "")
		select {
		case uri := <-u.uris:
			if uri == notes.IndexURI {
				u.drain()
				return
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("no notifications/resources/updated for notes://index")
}

// drain discards what arrives until nothing has for a while, and returns it.
func (u *notesUpdates) drain() []string {
	var got []string
	for {
		select {
		case uri := <-u.uris:
			got = append(got, uri)
		case <-time.After(300 * time.Millisecond):
			return got
		}
	}
}

// collect waits for n updates, then for anything extra, and returns them
// sorted.
func (u *notesUpdates) collect(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case uri := <-u.uris:
			got = append(got, uri)
		case <-timeout:
			t.Fatalf("got updates %q, want %d", got, n)
		}
	}
	got = append(got, u.drain()...)
	slices.Sort(got)
	return got
}

func TestNotesSubscriptions(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			aliceUpdates, bobUpdates := notesNewUpdates(), notesNewUpdates()
			alice := s.connectClient(t, aliceUpdates.client(), "alice", version)
			bob := s.connectClient(t, bobUpdates.client(), "bob", version)

			watched := notesCreate(t, alice, "Watched", "")
			unwatched := notesCreate(t, alice, "Unwatched", "")
			other := notesCreate(t, alice, "Other", "")
			aliceUpdates.subscribe(t, alice, watched.URI)
			aliceUpdates.subscribe(t, alice, other.URI)
			aliceUpdates.subscribe(t, alice, notes.IndexURI)
			bobUpdates.subscribe(t, bob, notes.IndexURI)
			aliceUpdates.warmUp(t, alice)
			bobUpdates.warmUp(t, bob)

			t.Run("create", func(t *testing.T) {
				notesCreate(t, alice, "New", "")
				if diff := cmp.Diff([]string{notes.IndexURI}, aliceUpdates.collect(t, 1)); diff != "" {
					t.Errorf("alice's updates after a create (-want +got):\n%s", diff)
				}
			})
			t.Run("delete watched", func(t *testing.T) {
				notesOut[tools.DeleteOutput](t, alice, "notes_delete", map[string]any{"id": watched.ID, "confirm": true})
				want := []string{notes.IndexURI, watched.URI}
				slices.Sort(want)
				if diff := cmp.Diff(want, aliceUpdates.collect(t, 2)); diff != "" {
					t.Errorf("alice's updates after deleting a watched note (-want +got):\n%s", diff)
				}
			})
			t.Run("delete unwatched", func(t *testing.T) {
				notesOut[tools.DeleteOutput](t, alice, "notes_delete", map[string]any{"id": unwatched.ID, "confirm": true})
				if diff := cmp.Diff([]string{notes.IndexURI}, aliceUpdates.collect(t, 1)); diff != "" {
					t.Errorf("alice's updates after deleting an unwatched note (-want +got):\n%s", diff)
				}
			})
			t.Run("bob hears nothing of alice", func(t *testing.T) {
				if got := bobUpdates.drain(); len(got) != 0 {
					t.Errorf("bob got alice's updates %q", got)
				}
				// ...but does hear about his own notes.
				notesCreate(t, bob, "Bob's", "")
				if diff := cmp.Diff([]string{notes.IndexURI}, bobUpdates.collect(t, 1)); diff != "" {
					t.Errorf("bob's updates after his create (-want +got):\n%s", diff)
				}
				if got := aliceUpdates.drain(); len(got) != 0 {
					t.Errorf("alice got bob's updates %q", got)
				}
			})
			t.Run("unsubscribe", func(t *testing.T) {
				if err := alice.Unsubscribe(notesCtx(t), &mcp.UnsubscribeParams{URI: notes.IndexURI}); err != nil {
					t.Fatal(err)
				}
				// In 2026-07-28 unsubscribing closes a stream, which the
				// server notices a moment later.
				for i := range 20 {
					notesCreate(t, alice, fmt.Sprint("after unsubscribe ", i), "")
					if got := aliceUpdates.drain(); len(got) == 0 {
						return
					}
				}
				t.Error("index updates keep arriving after unsubscribing")
			})
		})
	}
}

func TestNotesPrompts(t *testing.T) {
	for _, version := range notesEras {
		t.Run(version, func(t *testing.T) {
			s := notesStartServer(t)
			cs := s.connect(t, "alice", version, nil)
			groceries := notesCreate(t, cs, "Groceries", "milk and eggs", "food")
			garden := notesCreate(t, cs, "Garden plan", "tomatoes", "home")
			notesCreate(t, cs, "Tax return", "due in April", "finance")
			notesCreate(t, cs, "Return policy", "30 days", "finance")

			for _, tt := range []struct {
				name    string
				params  *mcp.GetPromptParams
				want    []string
				notWant []string
			}{
				{"summarize all", &mcp.GetPromptParams{Name: "summarize_notes"},
					[]string{"Summarize", "## Groceries (" + groceries.URI + ")\nmilk and eggs", "## Garden plan", "## Tax return", "## Return policy"}, nil},
				{"summarize by tag", &mcp.GetPromptParams{Name: "summarize_notes", Arguments: map[string]string{"tag": " HOME "}},
					[]string{"## Garden plan (" + garden.URI + ")"}, []string{"Groceries", "Tax return"}},
				{"summarize unknown tag", &mcp.GetPromptParams{Name: "summarize_notes", Arguments: map[string]string{"tag": "nope"}},
					nil, []string{"## "}},
				{"draft with related notes", &mcp.GetPromptParams{Name: "draft_note", Arguments: map[string]string{"topic": "weekly groceries"}},
					[]string{`"weekly groceries"`, "Build on these related notes", "## Groceries (" + groceries.URI + ")\nmilk and eggs"}, []string{"Garden plan", "Tax return"}},
				{"draft without related notes", &mcp.GetPromptParams{Name: "draft_note", Arguments: map[string]string{"topic": "holidays"}},
					[]string{`"holidays"`, "notes_create"}, []string{"Build on these related notes", "Groceries"}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					text := notesPromptText(t, cs, tt.params)
					for _, w := range tt.want {
						if !strings.Contains(text, w) {
							t.Errorf("prompt does not contain %q:\n%s", w, text)
						}
					}
					for _, w := range tt.notWant {
						if strings.Contains(text, w) {
							t.Errorf("prompt contains %q:\n%s", w, text)
						}
					}
				})
			}
			t.Run("draft without topic", func(t *testing.T) {
				if _, err := cs.GetPrompt(notesCtx(t), &mcp.GetPromptParams{Name: "draft_note"}); err == nil {
					t.Error("draft_note without a topic succeeded")
				}
			})

			for _, tt := range []struct {
				params *mcp.CompleteParams
				want   mcp.CompletionResultDetails
			}{
				{notesTopic("gro"), mcp.CompletionResultDetails{Values: []string{"Groceries"}, Total: 1}},
				{notesTopic("GRO"), mcp.CompletionResultDetails{Values: []string{"Groceries"}, Total: 1}},
				{notesTopic("plan"), mcp.CompletionResultDetails{Values: []string{"Garden plan"}, Total: 1}},
				{notesTopic("re"), mcp.CompletionResultDetails{Values: []string{"Return policy", "Tax return"}, Total: 2}}, // prefix matches first
				{notesTopic("zzz"), mcp.CompletionResultDetails{Values: []string{}}},
				{&mcp.CompleteParams{
					Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "summarize_notes"},
					Argument: mcp.CompleteParamsArgument{Name: "tag", Value: "gro"},
				}, mcp.CompletionResultDetails{Values: []string{}}},
			} {
				t.Run(fmt.Sprintf("complete %s %s=%q", tt.params.Ref.Name, tt.params.Argument.Name, tt.params.Argument.Value), func(t *testing.T) {
					res, err := cs.Complete(notesCtx(t), tt.params)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(tt.want, res.Completion, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("completion (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestNotesPromptLimits checks how many notes a prompt embeds. The prompt
// logic does not depend on the era, so it runs in 2026-07-28 only.
func TestNotesPromptLimits(t *testing.T) {
	s := notesStartServer(t)
	cs := s.connect(t, "alice", notesModern, nil)
	for i := range 51 {
		notesCreate(t, cs, fmt.Sprint("Tagged ", i), "", "many")
	}
	for i := range 20 {
		notesCreate(t, cs, fmt.Sprint("Untagged ", i), "")
	}
	for i := range 12 {
		notesCreate(t, cs, fmt.Sprint("Related topic ", i), "")
	}
	long := notesCreate(t, cs, "Long body", strings.Repeat("é", 3000))

	t.Run("summarize all", func(t *testing.T) {
		text := notesPromptText(t, cs, &mcp.GetPromptParams{Name: "summarize_notes"})
		if got := strings.Count(text, "\n## "); got != 50 {
			t.Errorf("%d notes embedded, want 50", got)
		}
		if want := fmt.Sprintf("(%d more notes omitted)", 51+20+12+1-50); !strings.Contains(text, want) {
			t.Errorf("prompt does not say %q:\n%s", want, text[max(0, len(text)-300):])
		}
		// The long body is cut at 2000 bytes without splitting a rune.
		if !strings.Contains(text, "## Long body ("+long.URI+")\n"+strings.Repeat("é", 1000)+" …\n") {
			t.Errorf("long body not truncated to 1000 é + ellipsis")
		}
	})
	t.Run("draft caps related notes at 10", func(t *testing.T) {
		text := notesPromptText(t, cs, &mcp.GetPromptParams{Name: "draft_note", Arguments: map[string]string{"topic": "related"}})
		if got := strings.Count(text, "\n## Related topic "); got != 10 {
			t.Errorf("%d related notes embedded, want 10", got)
		}
	})
	t.Run("completion caps values at 100", func(t *testing.T) {
		for i := range 17 {
			notesCreate(t, cs, fmt.Sprint("Extra ", i), "")
		}
		res, err := cs.Complete(notesCtx(t), notesTopic(""))
		if err != nil {
			t.Fatal(err)
		}
		if c := res.Completion; len(c.Values) != 100 || c.Total != 101 || !c.HasMore {
			t.Errorf("completion of \"\": %d values, total %d, hasMore %v; want 100, 101, true", len(c.Values), c.Total, c.HasMore)
		}
	})
	t.Run("summarize by tag", func(t *testing.T) {
		// Only notes with the tag count as omitted (regression: the count
		// once included every note, here "(34 more notes omitted)").
		text := notesPromptText(t, cs, &mcp.GetPromptParams{Name: "summarize_notes", Arguments: map[string]string{"tag": "many"}})
		if got := strings.Count(text, "\n## Tagged "); got != 50 {
			t.Errorf("%d tagged notes embedded, want 50", got)
		}
		if !strings.Contains(text, "(1 more notes omitted)") {
			t.Errorf("prompt does not say (1 more notes omitted):\n%s", text[max(0, len(text)-300):])
		}
	})
}

// TestNotesLegacySessionOwnership checks that a legacy session belongs to
// the user who opened it: another user's requests carrying its ID are
// answered as if it did not exist.
func TestNotesLegacySessionOwnership(t *testing.T) {
	s := notesStartServer(t)
	post := func(user, sid, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(notesCtx(t), http.MethodPost, s.endpoint, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", notesLegacy)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := s.httpClient(user).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(data)
	}
	resp, body := post("alice", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %q %s", resp.StatusCode, sid, body)
	}
	post("alice", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`

	resp, body = post("bob", sid, call)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "-32001") {
		t.Errorf("bob using alice's session: %d %s; want 404 with -32001", resp.StatusCode, body)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequestWithContext(notesCtx(t), method, s.endpoint, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", notesLegacy)
		r, err := s.httpClient("bob").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("bob's %s of alice's session: %d, want 404", method, r.StatusCode)
		}
	}
	resp, body = post("alice", sid, call)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `\"subject\":\"alice\"`) {
		t.Errorf("alice's own session after bob's attempts: %d %s", resp.StatusCode, body)
	}
}

// notesMsg is a JSON-RPC message as read off the wire.
type notesMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func notesJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// raw posts one 2026-07-28 request as user, with the per-request _meta the
// revision requires, and returns the messages of the response until until
// returns true (default: until the response).
func (s *notesServer) raw(t *testing.T, user, method string, params, caps map[string]any, until func(notesMsg) bool) []notesMsg {
	t.Helper()
	if caps == nil {
		caps = map[string]any{}
	}
	params = notesCopy(params)
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    notesModern,
		"io.modelcontextprotocol/clientCapabilities": caps,
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "notes-raw", "version": "1.0.0"},
	}
	body := notesJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", notesModern)
	req.Header.Set("Mcp-Method", method)
	switch method {
	case "tools/call", "prompts/get":
		req.Header.Set("Mcp-Name", fmt.Sprint(params["name"]))
	case "resources/read":
		req.Header.Set("Mcp-Name", fmt.Sprint(params["uri"]))
	}
	resp, err := s.httpClient(user).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", method, err)
	}
	defer resp.Body.Close()
	if until == nil {
		until = func(m notesMsg) bool { return m.ID != nil && (m.Result != nil || m.Error != nil) }
	}
	var msgs []notesMsg
	add := func(data []byte) bool {
		var m notesMsg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: bad message %q: %v", method, data, err)
		}
		msgs = append(msgs, m)
		return until(m)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			t.Fatalf("%s: status %d, empty body", method, resp.StatusCode)
		}
		add(data)
		return msgs
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok && strings.TrimSpace(d) != "" {
			if add([]byte(strings.TrimSpace(d))) {
				return msgs
			}
		}
	}
	if len(msgs) == 0 || !until(msgs[len(msgs)-1]) {
		t.Fatalf("%s: stream ended (%v) after %s", method, sc.Err(), notesJSON(msgs))
	}
	return msgs
}

// notesCopy returns a shallow copy of m.
func notesCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// notesResult decodes the result of the last message, which must be a
// successful response.
func notesResult(t *testing.T, msgs []notesMsg, out any) {
	t.Helper()
	last := msgs[len(msgs)-1]
	if last.Error != nil || last.Result == nil {
		t.Fatalf("want a result, got %s", notesJSON(msgs))
	}
	if err := json.Unmarshal(last.Result, out); err != nil {
		t.Fatalf("decode %s: %v", last.Result, err)
	}
}
