package wellknown

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

const root = "/.well-known/oauth-protected-resource"

func TestMetadataPaths(t *testing.T) {
	for _, tt := range []struct {
		name      string
		resource  string
		wantPaths []string
		wantURL   string
	}{
		{
			name:      "one path segment",
			resource:  "https://h/mcp",
			wantPaths: []string{root, root + "/mcp"},
			wantURL:   "https://h" + root + "/mcp",
		},
		{
			name:      "root with a slash",
			resource:  "https://h/",
			wantPaths: []string{root},
			wantURL:   "https://h" + root,
		},
		{
			name:      "root without a slash",
			resource:  "https://h",
			wantPaths: []string{root},
			wantURL:   "https://h" + root,
		},
		{
			name:      "several segments",
			resource:  "https://h/a/b/mcp",
			wantPaths: []string{root, root + "/a/b/mcp"},
			wantURL:   "https://h" + root + "/a/b/mcp",
		},
		{
			name:      "port kept",
			resource:  "https://mcp.example.com:8443/mcp",
			wantPaths: []string{root, root + "/mcp"},
			wantURL:   "https://mcp.example.com:8443" + root + "/mcp",
		},
		{
			name:      "loopback http",
			resource:  "http://127.0.0.1:8080/mcp",
			wantPaths: []string{root, root + "/mcp"},
			wantURL:   "http://127.0.0.1:8080" + root + "/mcp",
		},
		{
			name:      "fragment dropped",
			resource:  "https://h/mcp#x",
			wantPaths: []string{root, root + "/mcp"},
			wantURL:   "https://h" + root + "/mcp",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.wantPaths, MetadataPaths(tt.resource)); diff != "" {
				t.Errorf("MetadataPaths(%q) (-want +got):\n%s", tt.resource, diff)
			}
			if got := MetadataURL(tt.resource); got != tt.wantURL {
				t.Errorf("MetadataURL(%q) = %q, want %q", tt.resource, got, tt.wantURL)
			}
			// The URL put in WWW-Authenticate is one of the served paths.
			if paths := MetadataPaths(tt.resource); !strings.HasSuffix(tt.wantURL, paths[len(paths)-1]) {
				t.Errorf("MetadataURL(%q) is not served at %q", tt.resource, paths)
			}
		})
	}
}

func TestMetadataURLUnparsable(t *testing.T) {
	if got := MetadataURL("https://h/\x7f"); got != "" {
		t.Errorf("MetadataURL of an unparsable URL = %q, want empty", got)
	}
	if diff := cmp.Diff([]string{root}, MetadataPaths("https://h/\x7f")); diff != "" {
		t.Errorf("MetadataPaths of an unparsable URL (-want +got):\n%s", diff)
	}
}

func testMetadata() ProtectedResource {
	return ProtectedResource{
		Resource:              "https://mcp.example.com/mcp",
		AuthorizationServers:  []string{"https://mcp.example.com"},
		ScopesSupported:       []string{"notes:read"},
		ResourceName:          "remotemcp notes",
		ResourceDocumentation: "https://mcp.example.com/docs",
	}
}

func serve(h http.Handler, method string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, root+"/mcp", nil))
	return rec
}

func TestProtectedResourceHandlerGET(t *testing.T) {
	for _, tt := range []struct {
		name     string
		resource string
	}{
		{name: "plain", resource: "https://mcp.example.com/mcp"},
		{name: "trailing slash kept", resource: "https://mcp.example.com/mcp/"},
		{name: "characters JSON may escape", resource: "https://mcp.example.com/mcp?a=1&b=<2>"},
		{name: "non-ASCII", resource: "https://mcp.example.com/ñotes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := testMetadata()
			m.Resource = tt.resource
			rec := serve(ProtectedResourceHandler(m), http.MethodGet)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			for h, want := range map[string]string{
				"Content-Type":                "application/json",
				"Access-Control-Allow-Origin": "*",
			} {
				if got := rec.Header().Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=") || strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control = %q, want a max-age", cc)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			want := map[string]any{
				"resource":                 tt.resource,
				"authorization_servers":    []any{"https://mcp.example.com"},
				"scopes_supported":         []any{"notes:read"},
				"bearer_methods_supported": []any{"header"},
				"resource_name":            "remotemcp notes",
				"resource_documentation":   "https://mcp.example.com/docs",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProtectedResourceHandlerMethods(t *testing.T) {
	h := ProtectedResourceHandler(testMetadata())
	for _, tt := range []struct {
		method     string
		wantStatus int
		wantAllow  bool
	}{
		{method: http.MethodGet, wantStatus: http.StatusOK},
		{method: http.MethodHead, wantStatus: http.StatusOK},
		{method: http.MethodOptions, wantStatus: http.StatusNoContent},
		{method: http.MethodPost, wantStatus: http.StatusMethodNotAllowed, wantAllow: true},
		{method: http.MethodPut, wantStatus: http.StatusMethodNotAllowed, wantAllow: true},
		{method: http.MethodDelete, wantStatus: http.StatusMethodNotAllowed, wantAllow: true},
	} {
		t.Run(tt.method, func(t *testing.T) {
			rec := serve(h, tt.method)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			allow := rec.Header().Get("Allow")
			if tt.wantAllow && (!strings.Contains(allow, "GET") || !strings.Contains(allow, "OPTIONS")) {
				t.Errorf("Allow = %q, want GET and OPTIONS", allow)
			}
			if !tt.wantAllow && allow != "" {
				t.Errorf("Allow = %q, want none", allow)
			}
			if tt.method == http.MethodOptions {
				if rec.Body.Len() != 0 {
					t.Errorf("preflight body = %q, want empty", rec.Body)
				}
				if got := rec.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(got, "GET") {
					t.Errorf("Access-Control-Allow-Methods = %q, want GET", got)
				}
			}
		})
	}
}

func TestProtectedResourceHandlerServer(t *testing.T) {
	srv := httptest.NewServer(ProtectedResourceHandler(testMetadata()))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, srv.URL+root+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: status %d, Content-Type %q; want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestProtectedResourceGolden(t *testing.T) {
	rec := serve(ProtectedResourceHandler(testMetadata()), http.MethodGet)
	golden := filepath.Join("testdata", "protected_resource.golden.json")
	if *update {
		if err := os.WriteFile(golden, rec.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var wantJSON, gotJSON any
	if err := json.Unmarshal(want, &wantJSON); err != nil {
		t.Fatalf("golden file: %v", err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &gotJSON); err != nil {
		t.Fatalf("body: %v", err)
	}
	if diff := cmp.Diff(wantJSON, gotJSON); diff != "" {
		t.Errorf("metadata differs from %s (-want +got):\n%s", golden, diff)
	}
}

func TestProtectedResourceRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    ProtectedResource
	}{
		{name: "full", m: func() ProtectedResource { m := testMetadata(); m.BearerMethodsSupported = []string{"header"}; return m }()},
		{name: "minimal", m: ProtectedResource{Resource: "https://h/mcp", AuthorizationServers: []string{"https://as"}, BearerMethodsSupported: []string{"header"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first, err := json.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			var back ProtectedResource
			if err := json.Unmarshal(first, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.m, back); diff != "" {
				t.Errorf("unmarshal (-want +got):\n%s", diff)
			}
			second, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Errorf("marshal → unmarshal → marshal changed the JSON:\n%s\n%s", first, second)
			}
		})
	}
}

func TestProtectedResourceOmitsEmptyOptionalFields(t *testing.T) {
	rec := serve(ProtectedResourceHandler(ProtectedResource{Resource: "https://h/mcp", AuthorizationServers: []string{"https://as"}}), http.MethodGet)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                 "https://h/mcp",
		"authorization_servers":    []any{"https://as"},
		"bearer_methods_supported": []any{"header"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

func TestProtectedResourceHandlerSnapshotsMetadata(t *testing.T) {
	m := testMetadata()
	h := ProtectedResourceHandler(m)
	m.AuthorizationServers[0] = "https://evil.example.com"
	m.ScopesSupported[0] = "admin"
	body := serve(h, http.MethodGet).Body.String()
	if strings.Contains(body, "evil") || strings.Contains(body, "admin") {
		t.Errorf("changing the caller's slices after construction changed the served metadata: %s", body)
	}
}

func TestProtectedResourceHandlerPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    ProtectedResource
	}{
		{name: "no resource", m: ProtectedResource{AuthorizationServers: []string{"https://as"}}},
		{name: "nil authorization servers", m: ProtectedResource{Resource: "https://h/mcp"}},
		{name: "empty authorization servers", m: ProtectedResource{Resource: "https://h/mcp", AuthorizationServers: []string{}}},
		{name: "nothing", m: ProtectedResource{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, "wellknown: ") {
					t.Errorf("recovered %v, want a panic prefixed with \"wellknown: \"", r)
				}
			}()
			ProtectedResourceHandler(tt.m)
		})
	}
}

// TestMetadataURLKeepsQuery: RFC 9728 §3.1 inserts the well-known suffix
// between the host and the path and/or query components of the resource
// identifier, so a query is part of the metadata URL.
func TestMetadataURLKeepsQuery(t *testing.T) {
	if got, want := MetadataURL("https://h/mcp?tenant=a"), "https://h"+root+"/mcp?tenant=a"; got != want {
		t.Errorf("MetadataURL = %q, want %q", got, want)
	}
}

// TestProtectedResourceHandlerConcurrent: concurrent requests get the same
// document (run with -race: the handler once appended to a shared slice).
func TestProtectedResourceHandlerConcurrent(t *testing.T) {
	h := ProtectedResourceHandler(ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://as.example.com"}})
	want := httptest.NewRecorder()
	h.ServeHTTP(want, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
			if rec.Body.String() != want.Body.String() {
				t.Errorf("concurrent answer differs:\n%s\nwant\n%s", rec.Body, want.Body)
			}
		})
	}
	wg.Wait()
}
