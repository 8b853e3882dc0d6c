package main

// Black-box checks with the real MCP clients people run, pinned in
// .ci/npm/package.json and installed by .ci/deps.sh (make test runs it):
//
//   - MCP Inspector v2 CLI (@modelcontextprotocol/inspector), both eras, with
//     and without OAuth;
//   - mcp-remote (mcp-remote-client, and the mcp-remote stdio proxy with its
//     2026-07-28 bridge, --protocol auto) with and without OAuth.
//
// OAuth runs against the real authorization server of oauth_e2e_test.go
// (oidc-provider, whose interaction page logs alice in with plain 303s). The
// clients open the authorization URL with $BROWSER; rcBrowser's script only
// writes the URL to a file, and the test itself plays the browser: it
// follows the redirects with a cookie jar until the authorization server
// sends it to the client's loopback callback listener.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rcTimeout bounds every client process.
const rcTimeout = 90 * time.Second

// rcConnectTimeout (ms) replaces the Inspector CLI's default of 15 s, too
// short on a loaded machine; it stays below rcTimeout.
const rcConnectTimeout = "60000"

// rcClients locates the pinned Node 22 and the real clients' entry points.
type rcClients struct {
	node       string
	dir        string // .cache/npm
	inspector  string // bin mcp-inspector of @modelcontextprotocol/inspector
	remote     string // bin mcp-remote (stdio proxy)
	remoteTest string // bin mcp-remote-client (one-shot test client)
}

func rcInstall(t *testing.T) *rcClients {
	t.Helper()
	node, dir := oauthNode(t)
	bin := func(pkg, name string) string {
		raw, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
		if err != nil {
			t.Fatalf("%s is not installed (is it pinned in .ci/npm/package.json?): %v", pkg, err)
		}
		var p struct {
			Version string            `json:"version"`
			Bin     map[string]string `json:"bin"`
		}
		if err := json.Unmarshal(raw, &p); err != nil || p.Bin[name] == "" {
			t.Fatalf("%s/package.json has no bin %q: %v", pkg, name, err)
		}
		return filepath.Join(dir, "node_modules", pkg, p.Bin[name])
	}
	return &rcClients{
		node:       node,
		dir:        dir,
		inspector:  bin("@modelcontextprotocol/inspector", "mcp-inspector"),
		remote:     bin("mcp-remote", "mcp-remote"),
		remoteTest: bin("mcp-remote", "mcp-remote-client"),
	}
}

// rcRun runs node with args, bounded by rcTimeout, in its own process group
// so that whatever it spawns (a stdio proxy, a browser script) dies with it.
// HOME is a fresh temporary folder: neither client writes to the real one.
func rcRun(t *testing.T, c *rcClients, env []string, stdin io.Reader, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), rcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.node, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "NO_COLOR=1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if stdin != nil { // else /dev/null: never interactive
		cmd.Stdin = stdin
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	// Leave no stragglers behind (e.g. a stdio proxy still shutting down).
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, rcTimeout)
	}
	return []byte(out.String()), errb.String(), err
}

// rcInspectorJSON runs the Inspector CLI with --format json and decodes its
// one JSON object; it fails the test if the CLI fails.
func rcInspectorJSON(t *testing.T, c *rcClients, env []string, args ...string) map[string]any {
	t.Helper()
	out, stderr, err := rcRun(t, c, env, nil, append([]string{c.inspector, "--cli"}, append(args, "--format", "json")...)...)
	if err != nil {
		t.Fatalf("inspector %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("inspector %s printed %q: %v\nstderr: %s", strings.Join(args, " "), out, err, stderr)
	}
	if got["result"] == nil {
		t.Fatalf("inspector %s: no result in %s\nstderr: %s", strings.Join(args, " "), out, stderr)
	}
	return got
}

// rcPath digs into decoded JSON: keys for objects, ints for arrays.
func rcPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func rcToolNames(t *testing.T, res map[string]any) []string {
	t.Helper()
	var names []string
	tools, _ := rcPath(res, "result", "tools").([]any)
	for _, tool := range tools {
		if n, ok := rcPath(tool, "name").(string); ok {
			names = append(names, n)
		}
	}
	return names
}

// rcRequest is what rcRecorder saw of one request to /mcp.
type rcRequest struct {
	method, protocolVersion, sessionID string
}

// rcRecorder wraps the server's handler and remembers the era markers of
// every request, so a test can tell which era a client really spoke.
type rcRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []rcRequest
}

func (r *rcRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/mcp" {
		r.mu.Lock()
		r.seen = append(r.seen, rcRequest{req.Method, req.Header.Get("MCP-Protocol-Version"), req.Header.Get("Mcp-Session-Id")})
		r.mu.Unlock()
	}
	r.next.ServeHTTP(w, req)
}

func (r *rcRecorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *rcRecorder) since(mark int) []rcRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen[mark:])
}

// rcCheckEra asserts that the requests since mark were all of one era:
// legacy = an Mcp-Session-Id session and no 2026-07-28 header; modern =
// 2026-07-28 on every POST and never a session.
func rcCheckEra(t *testing.T, reqs []rcRequest, era string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("the client sent nothing to /mcp")
	}
	sessions := 0
	for _, r := range reqs {
		if r.sessionID != "" {
			sessions++
		}
		switch era {
		case "legacy":
			if r.protocolVersion == "2026-07-28" {
				t.Errorf("legacy client sent %s with MCP-Protocol-Version 2026-07-28", r.method)
			}
		case "modern":
			if r.sessionID != "" {
				t.Errorf("modern client sent %s with Mcp-Session-Id %s", r.method, r.sessionID)
			}
			if r.method == http.MethodPost && r.protocolVersion != "2026-07-28" {
				t.Errorf("modern client sent a POST with MCP-Protocol-Version %q", r.protocolVersion)
			}
		}
	}
	if era == "legacy" && sessions == 0 {
		t.Errorf("legacy client never used a session: %+v", reqs)
	}
}

// rcNoAuthServer is remotemcp with --auth none on an httptest listener.
func rcNoAuthServer(t *testing.T) (url string, rec *rcRecorder) {
	t.Helper()
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec = &rcRecorder{next: a.handler}
	srv := httptest.NewServer(rec)
	t.Cleanup(func() { srv.Close(); a.close() })
	return srv.URL + "/mcp", rec
}

// rcFreePort returns a loopback port that was free a moment ago, for the
// clients' OAuth callback listeners (never their fixed defaults).
func rcFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// rcBrowser is the user's browser. script is what $BROWSER names: it only
// appends the URL it is given to a file. A goroutine of the test picks the
// URLs up and visits them with a cookie jar, following redirects (the
// provider's interaction page logs alice in with 303s) through to the
// client's loopback callback.
type rcBrowser struct {
	script string
	visits atomic.Int32
	// denied: a visit may end at the callback with error=access_denied or
	// invalid_scope instead of a code (a test expecting that sets it).
	denied atomic.Bool
	mu     sync.Mutex
	urls   []string // what the client asked the browser to open
	errs   []error
}

func (b *rcBrowser) opened() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.urls)
}

func rcStartBrowser(t *testing.T) *rcBrowser {
	t.Helper()
	dir := t.TempDir()
	urls := filepath.Join(dir, "urls")
	if err := os.WriteFile(urls, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := &rcBrowser{script: filepath.Join(dir, "browser.sh")}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '" + urls + "'\n"
	if err := os.WriteFile(b.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var offset int64
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			f, err := os.Open(urls)
			if err != nil {
				continue
			}
			f.Seek(offset, io.SeekStart)
			r := bufio.NewReader(f)
			for {
				line, err := r.ReadString('\n')
				if err != nil { // a partial line waits for the next tick
					break
				}
				offset += int64(len(line))
				b.visit(ctx, strings.TrimSpace(line))
			}
			f.Close()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, err := range b.errs {
			t.Errorf("browser: %v", err)
		}
		if t.Failed() {
			t.Logf("browser opened: %q", b.urls)
		}
	})
	return b
}

func (b *rcBrowser) visit(ctx context.Context, u string) {
	b.mu.Lock()
	b.urls = append(b.urls, u)
	b.mu.Unlock()
	b.visits.Add(1)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 20 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			end := resp.Request.URL
			denied := b.denied.Load() && end.Query().Get("error") != ""
			if !strings.HasPrefix(end.Host, "127.0.0.1:") || (end.Query().Get("code") == "" && !denied) {
				err = fmt.Errorf("the visit of %s ended at %s (status %d), not at a loopback callback with a code", u, resp.Request.URL, resp.StatusCode)
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		b.mu.Lock()
		b.errs = append(b.errs, err)
		b.mu.Unlock()
	}
}

// TestInspectorCLI: the MCP Inspector v2 CLI lists tools, creates a note and
// reads the index resource, in the legacy (session) era and in the modern
// 2026-07-28 era, against --auth none.
func TestInspectorCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	c := rcInstall(t)
	url, rec := rcNoAuthServer(t)
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			env := []string{"MCP_STORAGE_DIR=" + t.TempDir()}
			common := []string{url, "--transport", "http", "--protocol-era", era, "--connect-timeout", rcConnectTimeout}

			mark := rec.mark()
			list := rcInspectorJSON(t, c, env, append(common, "--method", "tools/list")...)
			if names := rcToolNames(t, list); !slices.Contains(names, "notes_create") || !slices.Contains(names, "whoami") {
				t.Errorf("tools/list = %v, want notes_create and whoami", names)
			}
			rcCheckEra(t, rec.since(mark), era)

			title := "inspector " + era + " note"
			mark = rec.mark()
			created := rcInspectorJSON(t, c, env, append(common, "--method", "tools/call", "--tool-name", "notes_create", "--tool-arg", "title="+title)...)
			if got := rcPath(created, "result", "structuredContent", "title"); got != title {
				t.Errorf("notes_create structuredContent.title = %v, want %q (result %v)", got, title, created["result"])
			}
			if rcPath(created, "result", "isError") == true {
				t.Errorf("notes_create isError: %v", created["result"])
			}
			uri, _ := rcPath(created, "result", "structuredContent", "uri").(string)
			if !strings.HasPrefix(uri, "notes://") {
				t.Errorf("created note uri = %q", uri)
			}
			// The modern era names the server in every result's _meta; the
			// legacy era did that once, in initialize.
			serverInfo := rcPath(created, "result", "_meta", "io.modelcontextprotocol/serverInfo", "name")
			if want := map[string]any{"legacy": nil, "modern": "remotemcp"}[era]; serverInfo != want {
				t.Errorf("result _meta serverInfo name = %v, want %v", serverInfo, want)
			}
			rcCheckEra(t, rec.since(mark), era)

			index := rcInspectorJSON(t, c, env, append(common, "--method", "resources/read", "--uri", "notes://index")...)
			text, _ := rcPath(index, "result", "contents", 0, "text").(string)
			if !strings.Contains(text, title) || !strings.Contains(text, uri) {
				t.Errorf("notes://index = %q, want it to list %q (%s)", text, title, uri)
			}
		})
	}
}

// TestInspectorCLIOAuth: the Inspector CLI logs in headlessly (discovery
// from the 401, dynamic registration, PKCE, token through its loopback
// callback listener) against --auth jwt and the real provider, in
// both eras, then calls whoami with the stored token only.
//
// Step-up (notes:read → notes:write) does not complete with Inspector 2.12.0
// and this provider, for client/AS reasons, not server ones (the go-sdk and
// TypeScript SDK clients step up against the same pair in oauth_e2e_test.go):
//
//  1. By default Inspector asks for offline_access and gets a refresh token.
//     On our 403 insufficient_scope the SDK transport starts a forced
//     re-authorization, but the CLI catches the resulting UnauthorizedError
//     and restarts with a plain authenticate(), whose auth() silently
//     refreshes (still notes:read) and returns AUTHORIZED; the CLI then
//     aborts with "Unexpected: auth() returned AUTHORIZED without
//     authorization code", without ever prompting.
//  2. With oauth.requestRefreshToken=false (a --config entry) the CLI does
//     prompt "Proceed with step-up authorization? [y/N]" and, on "y", opens
//     a correct union-scope request (scope=notes:read notes:write). But
//     Inspector registered itself (DCR) with scope "notes:read", the scope of
//     the first challenge, and oidc-provider limits a client to its
//     registered scope: the authorization ends in invalid_scope ("requested
//     scope is not allowed").
//
// The "step-up" subtest asserts everything up to that point (prompt, union
// scope, refused write with --stored-auth-only) and accepts only that known
// failure; should a later version succeed, it checks the created note.
func TestInspectorCLIOAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Node authorization server; -short skips it (make test runs it)")
	}
	c := rcInstall(t)
	ln, base := reserve(t)
	issuer := startProvider(t, "RESOURCE="+base+"/mcp")
	s := startOAuthServer(t, ln, base, "--auth", "jwt", "--issuer", issuer)

	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			browser := rcStartBrowser(t)
			env := []string{
				"MCP_STORAGE_DIR=" + t.TempDir(),
				"MCP_INSPECTOR_SECRET_STORE=file", // no keychain here; else tokens live in memory only
				"MCP_AUTO_OPEN_ENABLED=true",      // open the browser without a TTY
				"BROWSER=" + browser.script,
			}
			callback := fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", rcFreePort(t))
			common := []string{s.resource, "--transport", "http", "--protocol-era", era, "--callback-url", callback, "--connect-timeout", rcConnectTimeout}

			// Stored auth only, before any login: refused, nothing opened.
			out, stderr, err := rcRun(t, c, env, nil, append([]string{c.inspector, "--cli"}, append(common, "--stored-auth-only", "--method", "tools/list", "--format", "json")...)...)
			if err == nil || !strings.Contains(string(out)+stderr, "auth_required") {
				t.Errorf("--stored-auth-only without a login: err %v, want auth_required\nstdout: %s\nstderr: %s", err, out, stderr)
			}

			// The interactive login, made headless by $BROWSER.
			list := rcInspectorJSON(t, c, env, append(common, "--method", "tools/list")...)
			if names := rcToolNames(t, list); !slices.Contains(names, "notes_create") {
				t.Errorf("tools/list after login = %v, want notes_create", names)
			}
			if n := browser.visits.Load(); n != 1 {
				t.Errorf("%d authorizations for the login, want 1", n)
			}

			// The stored token alone is enough now.
			me := rcInspectorJSON(t, c, env, append(common, "--stored-auth-only", "--method", "tools/call", "--tool-name", "whoami")...)
			if got := rcPath(me, "result", "structuredContent", "subject"); got != "alice" {
				t.Errorf("whoami subject = %v, want alice (%v)", got, me["result"])
			}
			if got := rcPath(me, "result", "structuredContent", "authenticated"); got != true {
				t.Errorf("whoami authenticated = %v", got)
			}
			if scopes := fmt.Sprint(rcPath(me, "result", "structuredContent", "scopes")); scopes != "[notes:read]" {
				t.Errorf("whoami scopes = %s, want [notes:read] (the 401 challenge's scope)", scopes)
			}
			if n := browser.visits.Load(); n != 1 {
				t.Errorf("%d authorizations after the stored-auth call, want still 1", n)
			}

			// The write needs notes:write: our 403 insufficient_scope makes the
			// CLI ask for a new authorization, which --stored-auth-only refuses
			// (auth_required, exit 3); the note must not exist.
			title := "inspector oauth " + era
			out, stderr, err = rcRun(t, c, env, nil, append([]string{c.inspector, "--cli"}, append(common, "--stored-auth-only", "--method", "tools/call", "--tool-name", "notes_create", "--tool-arg", "title="+title, "--format", "json")...)...)
			if err == nil || !strings.Contains(string(out)+stderr, "auth_required") {
				t.Errorf("notes_create with a notes:read token and --stored-auth-only: err %v, want auth_required", err)
			}
			index := rcInspectorJSON(t, c, env, append(common, "--stored-auth-only", "--method", "resources/read", "--uri", "notes://index")...)
			if text, _ := rcPath(index, "result", "contents", 0, "text").(string); strings.Contains(text, title) {
				t.Errorf("the refused write happened: notes://index = %q", text)
			}
			if t.Failed() {
				t.Logf("refused write: stdout %s\nstderr %s", out, stderr)
			}
		})
	}

	t.Run("step-up", func(t *testing.T) {
		browser := rcStartBrowser(t)
		env := []string{
			"MCP_STORAGE_DIR=" + t.TempDir(),
			"MCP_INSPECTOR_SECRET_STORE=file",
			"MCP_AUTO_OPEN_ENABLED=true",
			"BROWSER=" + browser.script,
		}
		// Without refresh tokens, see gap 1 above.
		config := filepath.Join(t.TempDir(), "mcp.json")
		entry := fmt.Sprintf(`{"mcpServers":{"notes":{"type":"streamable-http","url":%q,"oauth":{"requestRefreshToken":false}}}}`, s.resource)
		if err := os.WriteFile(config, []byte(entry), 0o600); err != nil {
			t.Fatal(err)
		}
		callback := fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", rcFreePort(t))
		common := []string{"--config", config, "--server", "notes", "--callback-url", callback, "--connect-timeout", rcConnectTimeout}

		list := rcInspectorJSON(t, c, env, append(common, "--method", "tools/list")...)
		if names := rcToolNames(t, list); !slices.Contains(names, "notes_create") {
			t.Errorf("tools/list after login = %v", names)
		}
		scopeOf := func(i int) []string {
			opened := browser.opened()
			if i >= len(opened) {
				t.Fatalf("the browser opened %d URLs, want at least %d", len(opened), i+1)
			}
			u, err := url.Parse(opened[i])
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query().Get("resource"); got != s.resource {
				t.Errorf("authorization request resource = %q, want %q", got, s.resource)
			}
			sc := strings.Fields(u.Query().Get("scope"))
			slices.Sort(sc)
			return sc
		}
		if got := scopeOf(0); !slices.Equal(got, []string{"notes:read"}) {
			t.Errorf("first authorization asked for %v, want [notes:read] (the 401 challenge's scope)", got)
		}

		title := "inspector step-up"
		browser.denied.Store(true) // gap 2: the provider refuses the new scope
		out, stderr, err := rcRun(t, c, env, strings.NewReader("y\n"), append([]string{c.inspector, "--cli"}, append(common, "--method", "tools/call", "--tool-name", "notes_create", "--tool-arg", "title="+title, "--format", "json")...)...)
		if !strings.Contains(stderr, "Proceed with step-up authorization?") || !strings.Contains(stderr, "notes:write") {
			t.Errorf("no step-up prompt naming notes:write:\n%s", stderr)
		}
		if got := scopeOf(1); !slices.Equal(got, []string{"notes:read", "notes:write"}) {
			t.Errorf("step-up authorization asked for %v, want the union [notes:read notes:write]", got)
		}
		if err == nil {
			var res map[string]any
			json.Unmarshal(out, &res)
			if got := rcPath(res, "result", "structuredContent", "title"); got != title {
				t.Errorf("notes_create after step-up: %s", out)
			}
		} else if !strings.Contains(string(out)+stderr, "requested scope is not allowed") {
			t.Errorf("step-up failed other than with the known invalid_scope gap: %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
	})
}

// TestMCPRemote: mcp-remote 0.15.1. mcp-remote-client (one-shot: connect,
// list tools and resources, exit) against --auth none and, through the
// headless OAuth flow, against --auth jwt; then the mcp-remote stdio proxy
// with --protocol auto, which bridges a legacy stdio client to our
// 2026-07-28 era, driven by the Inspector CLI over stdio.
//
// mcp-remote-client accepts --protocol but ignores it (0.15.1 passes it to
// the proxy only), so it always speaks the legacy era; the 2026 bridge is
// tested through the proxy.
func TestMCPRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	c := rcInstall(t)
	noAuthURL, rec := rcNoAuthServer(t)

	// runClient runs mcp-remote-client with stdin kept open (on EOF it shuts
	// down before listing tools): a pipe that is closed only when the client
	// has exited by itself or rcTimeout killed it. env may set
	// MCP_REMOTE_CONFIG_DIR; the default is a fresh folder.
	runClient := func(t *testing.T, url string, env ...string) string {
		t.Helper()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		args := []string{c.remoteTest, url, fmt.Sprint(rcFreePort(t)), "--host", "127.0.0.1"}
		out, stderr, err := rcRun(t, c, append([]string{"MCP_REMOTE_CONFIG_DIR=" + t.TempDir()}, env...), pr, args...)
		if err != nil {
			t.Fatalf("mcp-remote-client: %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
		all := string(out) + stderr
		if !strings.Contains(all, "Tools:") || !strings.Contains(all, `"notes_create"`) || !strings.Contains(all, "Exiting OK") {
			t.Fatalf("mcp-remote-client did not list notes_create:\n%s", all)
		}
		return all
	}

	t.Run("client/none", func(t *testing.T) {
		mark := rec.mark()
		runClient(t, noAuthURL)
		rcCheckEra(t, rec.since(mark), "legacy")
	})

	ln, base := reserve(t)
	issuer := startProvider(t, "RESOURCE="+base+"/mcp")
	s := startOAuthServer(t, ln, base, "--auth", "jwt", "--issuer", issuer)

	t.Run("client/jwt", func(t *testing.T) {
		browser := rcStartBrowser(t)
		config := t.TempDir()
		all := runClient(t, s.resource, "BROWSER="+browser.script, "MCP_REMOTE_CONFIG_DIR="+config)
		if !strings.Contains(all, "Please authorize this client") || browser.visits.Load() != 1 {
			t.Errorf("%d authorizations, want 1:\n%s", browser.visits.Load(), all)
		}
		// A second run reuses the stored tokens: no browser.
		runClient(t, s.resource, "BROWSER="+browser.script, "MCP_REMOTE_CONFIG_DIR="+config)
		if n := browser.visits.Load(); n != 1 {
			t.Errorf("%d authorizations after the second run, want still 1", n)
		}
	})

	// proxy runs the Inspector CLI with the mcp-remote proxy as its stdio
	// server. Inspector gives a stdio server only a minimal environment, so
	// the proxy's settings go through -e.
	proxy := func(t *testing.T, url string, proxyEnv []string, args ...string) (map[string]any, string) {
		t.Helper()
		cli := []string{c.inspector, "--cli", "--transport", "stdio", "--connect-timeout", rcConnectTimeout, "--format", "json"}
		for _, e := range append([]string{"MCP_REMOTE_CONFIG_DIR=" + t.TempDir()}, proxyEnv...) {
			cli = append(cli, "-e", e)
		}
		cli = append(append(cli, args...), "--", c.node, c.remote, url, fmt.Sprint(rcFreePort(t)), "--host", "127.0.0.1", "--protocol", "auto")
		out, stderr, err := rcRun(t, c, []string{"MCP_STORAGE_DIR=" + t.TempDir()}, nil, cli...)
		if err != nil {
			t.Fatalf("inspector via mcp-remote: %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil || got["result"] == nil {
			t.Fatalf("inspector via mcp-remote printed %q: %v\nstderr: %s", out, err, stderr)
		}
		if !strings.Contains(stderr, "Remote server speaks MCP 2026-07-28") {
			t.Errorf("mcp-remote --protocol auto did not bridge to 2026-07-28:\n%s", stderr)
		}
		return got, stderr
	}

	t.Run("proxy-auto/none", func(t *testing.T) {
		mark := rec.mark()
		title := "via mcp-remote bridge"
		got, _ := proxy(t, noAuthURL, nil, "--method", "tools/call", "--tool-name", "notes_create", "--tool-arg", "title="+title)
		if v := rcPath(got, "result", "structuredContent", "title"); v != title {
			t.Errorf("notes_create through the bridge: title %v, want %q (%v)", v, title, got["result"])
		}
		rcCheckEra(t, rec.since(mark), "modern")
	})

	t.Run("proxy-auto/jwt", func(t *testing.T) {
		browser := rcStartBrowser(t)
		got, stderr := proxy(t, s.resource, []string{"BROWSER=" + browser.script}, "--method", "tools/call", "--tool-name", "whoami")
		if v := rcPath(got, "result", "structuredContent", "subject"); v != "alice" {
			t.Errorf("whoami through the bridge: subject %v, want alice (%v)", v, got["result"])
		}
		if n := browser.visits.Load(); n != 1 {
			t.Errorf("%d authorizations, want 1:\n%s", n, stderr)
		}
	})
}
