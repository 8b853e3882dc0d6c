package notes_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/tools/notes"
)

func TestValidate(t *testing.T) {
	manyTags := func(n int) []string {
		var tags []string
		for i := range n {
			tags = append(tags, "t"+strings.Repeat("x", i))
		}
		return tags
	}
	for _, tt := range []struct {
		name    string
		in      notes.Note
		want    notes.Note // compared when wantErr is empty
		wantErr string     // a substring of the error
	}{
		{
			name: "trims the title",
			in:   notes.Note{Title: "  Groceries \t\n", Body: "  milk  "},
			want: notes.Note{Title: "Groceries", Body: "  milk  "},
		},
		{
			name:    "empty title",
			in:      notes.Note{Title: ""},
			wantErr: "title is required",
		},
		{
			name:    "blank title",
			in:      notes.Note{Title: " \t\n "},
			wantErr: "title is required",
		},
		{
			name: "title of exactly 200 multi-byte runes",
			in:   notes.Note{Title: strings.Repeat("é", notes.MaxTitle)},
			want: notes.Note{Title: strings.Repeat("é", notes.MaxTitle)},
		},
		{
			name:    "title of 201 runes",
			in:      notes.Note{Title: strings.Repeat("é", notes.MaxTitle+1)},
			wantErr: "title is longer than 200 characters",
		},
		{
			name: "surrounding space does not count towards the title limit",
			in:   notes.Note{Title: "  " + strings.Repeat("x", notes.MaxTitle) + "  "},
			want: notes.Note{Title: strings.Repeat("x", notes.MaxTitle)},
		},
		{
			name: "body of exactly the limit",
			in:   notes.Note{Title: "t", Body: strings.Repeat("b", notes.MaxBody)},
			want: notes.Note{Title: "t", Body: strings.Repeat("b", notes.MaxBody)},
		},
		{
			name:    "body over the limit",
			in:      notes.Note{Title: "t", Body: strings.Repeat("b", notes.MaxBody+1)},
			wantErr: "body is larger than 65536 bytes",
		},
		{
			name:    "invalid UTF-8 title",
			in:      notes.Note{Title: "bad \xff title"},
			wantErr: "valid UTF-8",
		},
		{
			name:    "invalid UTF-8 body",
			in:      notes.Note{Title: "ok", Body: "bad \xc3\x28 body"},
			wantErr: "valid UTF-8",
		},
		{
			name: "tags are trimmed, lowercased and deduplicated in order",
			in:   notes.Note{Title: "t", Tags: []string{" Work ", "home", "WORK", "", "  ", "Home", "ÄRGER"}},
			want: notes.Note{Title: "t", Tags: []string{"work", "home", "ärger"}},
		},
		{
			name: "no tags",
			in:   notes.Note{Title: "t"},
			want: notes.Note{Title: "t"},
		},
		{
			name: "exactly the maximum number of tags",
			in:   notes.Note{Title: "t", Tags: manyTags(notes.MaxTags)},
			want: notes.Note{Title: "t", Tags: manyTags(notes.MaxTags)},
		},
		{
			name:    "too many tags",
			in:      notes.Note{Title: "t", Tags: manyTags(notes.MaxTags + 1)},
			wantErr: "at most 16 tags are allowed",
		},
		{
			name: "tag of exactly the maximum length",
			in:   notes.Note{Title: "t", Tags: []string{strings.Repeat("ü", notes.MaxTag)}},
			want: notes.Note{Title: "t", Tags: []string{strings.Repeat("ü", notes.MaxTag)}},
		},
		{
			name:    "tag too long",
			in:      notes.Note{Title: "t", Tags: []string{"ok", strings.Repeat("a", notes.MaxTag+1)}},
			wantErr: "is longer than 32 characters",
		},
		{
			name: "surrounding space does not count towards the tag limit",
			in:   notes.Note{Title: "t", Tags: []string{"  " + strings.Repeat("A", notes.MaxTag) + "  "}},
			want: notes.Note{Title: "t", Tags: []string{strings.Repeat("a", notes.MaxTag)}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.in
			n.Tags = slices.Clone(tt.in.Tags)
			err := notes.Validate(&n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() error = %v, want nil", err)
			}
			if diff := cmp.Diff(tt.want, n, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Validate() note mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("Groceries", "milk, eggs", "Food,home,food")
	f.Add("   ", "", "")
	f.Add(strings.Repeat("é", notes.MaxTitle+1), "", "")
	f.Add("t", "\xff", " A , a ,\xffB")
	f.Add("\u00a0title\u3000", "body", "İstanbul,ǅ,ß")
	f.Add("x", "", strings.Repeat("t,", notes.MaxTags+1))
	f.Fuzz(func(t *testing.T, title, body, tagList string) {
		var tags []string
		if tagList != "" {
			tags = strings.Split(tagList, ",")
		}
		n := &notes.Note{Title: title, Body: body, Tags: tags}
		if err := notes.Validate(n); err != nil {
			return
		}
		if n.Title == "" || n.Title != strings.TrimSpace(n.Title) {
			t.Errorf("title %q is empty or untrimmed", n.Title)
		}
		if c := utf8.RuneCountInString(n.Title); c > notes.MaxTitle {
			t.Errorf("title has %d runes, more than %d", c, notes.MaxTitle)
		}
		if !utf8.ValidString(n.Title) || !utf8.ValidString(n.Body) {
			t.Errorf("title %q or body %q is not valid UTF-8", n.Title, n.Body)
		}
		if len(n.Body) > notes.MaxBody {
			t.Errorf("body has %d bytes, more than %d", len(n.Body), notes.MaxBody)
		}
		if len(n.Tags) > notes.MaxTags {
			t.Errorf("%d tags, more than %d", len(n.Tags), notes.MaxTags)
		}
		seen := map[string]bool{}
		for _, tag := range n.Tags {
			if tag == "" || tag != strings.TrimSpace(tag) || tag != strings.ToLower(tag) {
				t.Errorf("tag %q is empty, untrimmed or not lowercase", tag)
			}
			if utf8.RuneCountInString(tag) > notes.MaxTag {
				t.Errorf("tag %q is longer than %d runes", tag, notes.MaxTag)
			}
			if seen[tag] {
				t.Errorf("tag %q appears twice in %q", tag, n.Tags)
			}
			seen[tag] = true
		}
		// Validating a valid note again changes nothing.
		again := *n
		again.Tags = slices.Clone(n.Tags)
		if err := notes.Validate(&again); err != nil {
			t.Fatalf("Validate(valid note) = %v", err)
		}
		if diff := cmp.Diff(*n, again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Validate is not idempotent (-first +second):\n%s", diff)
		}
	})
}

func TestValidID(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"abc123", true},
		{"ABC-def_123", true},
		{"index", true}, // the resources package rules this one out itself
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"a b", false},
		{"a/b", false},
		{"../etc", false},
		{"a.b", false},
		{"exports/abc", false},
		{"é", false},
		{"a\x00", false},
		{"a\n", false},
		{"%41", false},
	} {
		t.Run(tt.id, func(t *testing.T) {
			if got := notes.ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// authContext returns a context carrying the token info the go-sdk bearer
// middleware stores for user (its context key is unexported, so the
// middleware is the only way to fill it).
func authContext(t *testing.T, user string) context.Context {
	t.Helper()
	verify := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
		return &auth.TokenInfo{UserID: user, Expiration: time.Now().Add(time.Hour)}, nil
	}
	var ctx context.Context
	h := auth.RequireBearerToken(verify, nil)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx = r.Context()
	}))
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer token")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if ctx == nil {
		t.Fatal("the bearer middleware did not call the handler")
	}
	return ctx
}

func TestOwner(t *testing.T) {
	bobCtx := authContext(t, "bob")
	if ti := auth.TokenInfoFromContext(bobCtx); ti == nil || ti.UserID != "bob" {
		t.Fatalf("TokenInfoFromContext = %+v, want bob's", ti)
	}
	for _, tt := range []struct {
		name  string
		ctx   context.Context
		extra *mcp.RequestExtra
		want  string
	}{
		{"token in extra", context.Background(), &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "alice"}}, "alice"},
		{"token in context only", bobCtx, nil, "bob"},
		{"extra without token falls back to context", bobCtx, &mcp.RequestExtra{}, "bob"},
		{"extra wins over context", bobCtx, &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "alice"}}, "alice"},
		{"no token anywhere", context.Background(), nil, notes.Anonymous},
		{"extra without token and no context token", context.Background(), &mcp.RequestExtra{}, notes.Anonymous},
		{"token without subject", context.Background(), &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Scopes: []string{"x"}}}, notes.Anonymous},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := notes.Owner(tt.ctx, tt.extra); got != tt.want {
				t.Errorf("Owner() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestURIs(t *testing.T) {
	got := []string{(&notes.Note{ID: "abc"}).URI(), (&notes.Export{ID: "xyz"}).URI(), notes.IndexURI}
	want := []string{"notes://abc", "notes://exports/xyz", "notes://index"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("URIs mismatch (-want +got):\n%s", diff)
	}
}
