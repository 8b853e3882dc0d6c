package main

// The step-up matrix: each real client starts with the notes:read token of
// a first sign-in (the scope of the 401 challenge) and then creates a note,
// which needs notes:write: our 403 insufficient_scope must bring it, in
// the end, to a second authorization that asks for notes:write, and to the
// note. Against make run's configuration (--auth proxy, the development
// provider), in process, behind pcRecorder; the TypeScript SDK flows add
// pcStart's short token lifetime, so that the stepped-up token is
// refreshed too.
//
// Clients that refresh on that 403 (the TypeScript SDK v1, and what is
// built on it) get past it because the authorization server refuses that
// refresh with invalid_grant (as.Server.WantStepUp); the others never
// refresh there. Each subtest logs the time from the client's start to its
// first tool result and to the created note ("step-up timing"), which the
// README's client table quotes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// suStepUpPrompt is what the Inspector CLI asks on a terminal before it
// opens a step-up authorization.
const suStepUpPrompt = "Proceed with step-up authorization?"

// suTiming logs how long a client took to its first tool result and to
// the created note.
func suTiming(t *testing.T, client string, firstTool, created time.Duration) {
	t.Helper()
	t.Logf("step-up timing: %s: first tool result after %v, note created after %v",
		client, firstTool.Round(10*time.Millisecond), created.Round(10*time.Millisecond))
}

// suCheckAuthorizations asserts that evs hold two completed sign-ins
// (upstream logins back at /callback), the first asking for notes:read
// alone, and returns the scope the last authorization request asked for
// (a client may ask for less than notes:write: the server then adds it,
// see as.Server.WantStepUp; the created note proves it was granted).
func suCheckAuthorizations(t *testing.T, evs []pcEvent) (stepUp string) {
	t.Helper()
	var scopes []string
	for _, ev := range evs {
		if ev.method == http.MethodGet && ev.path == "/authorize" {
			scopes = append(scopes, ev.scope)
		}
	}
	if n := pcCount(evs, http.MethodGet, "/callback", "", http.StatusFound); n != 2 || len(scopes) == 0 {
		t.Fatalf("%d sign-ins (authorization requests for %q), want 2 (sign-in, step-up)\nrequests:%s", n, scopes, pcTrace(evs))
	}
	if scopes[0] != "notes:read" {
		t.Errorf("the first authorization asked for %q, want notes:read", scopes[0])
	}
	return scopes[len(scopes)-1]
}

// suRefusedRefreshes counts the refreshes answered 400 (the step-up mark's
// invalid_grant) in evs.
func suRefusedRefreshes(evs []pcEvent) int {
	return pcCount(evs, http.MethodPost, "/token", "refresh_token", http.StatusBadRequest)
}

// TestStepUpClients: the matrix, one subtest per client.
func TestStepUpClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	t.Run("go-sdk", testStepUpGoSDK)
	t.Run("typescript-v1", func(t *testing.T) { testStepUpTypeScript(t, "v1") })
	t.Run("typescript-v2", func(t *testing.T) { testStepUpTypeScript(t, "v2", "auto") })
	t.Run("inspector", testStepUpInspector)
	t.Run("mcp-remote", testStepUpMCPRemote)
}

// testStepUpGoSDK: the go-sdk client authorizes again on the 403 by itself.
func testStepUpGoSDK(t *testing.T) {
	t.Parallel()
	s := pcStartArgs(t, "dev")
	u := s.newUser(t)
	start := time.Now()
	mark := s.rec.mark()
	cs := s.goClient(t, u, "2025-11-25")
	who := whoamiOf(t, cs)
	firstTool := time.Since(start)
	if fmt.Sprint(who["scopes"]) != "[notes:read]" {
		t.Errorf("whoami scopes %v, want [notes:read]", who["scopes"])
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": "go-sdk step-up"}})
	if err != nil || res.IsError {
		t.Fatalf("notes_create: %v %+v", err, res)
	}
	created := time.Since(start)
	if sc := suCheckAuthorizations(t, s.rec.since(mark)); !strings.Contains(sc, "notes:write") {
		t.Errorf("the step-up asked for %q, want notes:write", sc)
	}
	if n := suRefusedRefreshes(s.rec.since(mark)); n != 0 {
		t.Errorf("%d refused refreshes, want none (the go-sdk authorizes again without refreshing)", n)
	}
	suTiming(t, "go-sdk", firstTool, created)
}

// testStepUpTypeScript: the TypeScript SDK client (ts-proxy-client.mjs with
// PC_STEP_UP) creates a note after its notes:read sign-in, then lets the
// stepped-up token expire and refreshes it (pcStart's short lifetime).
func testStepUpTypeScript(t *testing.T, args ...string) {
	t.Parallel()
	node, dir := oauthNode(t)
	script := oauthScript(t, dir, "testdata/clients/ts-proxy-client.mjs")
	s := pcStart(t, "dev")
	u := s.newUser(t)
	title := "typescript " + args[0] + " step-up"
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", rcFreePort(t))
	res, start, expired := pcRunTS(t, node, script, s, u, []string{"PC_REDIRECT=" + redirect, "PC_STEP_UP=" + title}, args...)

	if !slices.Equal(res.Scopes, []string{"notes:read"}) {
		t.Errorf("first scopes %v, want [notes:read]", res.Scopes)
	}
	if res.StepUpAuthorizations != 1 || !slices.Contains(strings.Fields(res.StepUpScope), "notes:write") {
		t.Errorf("the note took %d authorizations asking for %q, want 1 asking for notes:write", res.StepUpAuthorizations, res.StepUpScope)
	}
	if !slices.Contains(res.ScopesAfterStepUp, "notes:write") {
		t.Errorf("scopes after the step-up %v, want notes:write", res.ScopesAfterStepUp)
	}
	evs := s.rec.since(start)[:expired-start]
	suCheckAuthorizations(t, evs)
	refused := suRefusedRefreshes(evs)
	switch args[0] {
	case "v1":
		// It refreshes on the 403; the refusal makes it drop its tokens
		// and authorize again.
		if refused != 1 || !slices.Equal(res.Invalidated, []string{"tokens"}) {
			t.Errorf("%d refused refreshes, host told to forget %v; want 1 and [tokens]\nrequests:%s", refused, res.Invalidated, pcTrace(evs))
		}
	default:
		if refused != 0 || len(res.Invalidated) != 0 {
			t.Errorf("%d refused refreshes, host told to forget %v; want none (v2 authorizes again without refreshing)\nrequests:%s",
				refused, res.Invalidated, pcTrace(evs))
		}
	}
	if !res.Refreshed || res.AuthorizationsAfterExpiry != 0 {
		t.Errorf("after the expiry: access token replaced %v, %d new authorizations; want a refresh of the stepped-up grant",
			res.Refreshed, res.AuthorizationsAfterExpiry)
	}
	suTiming(t, "typescript "+args[0], time.Duration(res.MsFirstTool)*time.Millisecond, time.Duration(res.MsCreated)*time.Millisecond)
}

// testStepUpInspector: the Inspector CLI signs in and calls whoami, then,
// on a terminal (script(1)), creates a note: it asks whether to proceed
// with the step-up, the test answers y, and its browser opens the second
// authorization.
func testStepUpInspector(t *testing.T) {
	t.Parallel()
	c := rcInstall(t)
	s := pcStartArgs(t, "dev")
	browser := s.startBrowser(t)
	env := []string{
		"MCP_STORAGE_DIR=" + t.TempDir(),
		"MCP_INSPECTOR_SECRET_STORE=file", // no keychain here; else tokens live in memory only
		"MCP_AUTO_OPEN_ENABLED=true",      // open the browser without a TTY (the first run)
		"BROWSER=" + browser.script,
	}
	callback := fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", rcFreePort(t))
	common := []string{s.resource, "--transport", "http", "--callback-url", callback, "--connect-timeout", rcConnectTimeout}

	start, begin := time.Now(), s.rec.mark()
	me := rcInspectorJSON(t, c, env, append(common, "--method", "tools/call", "--tool-name", "whoami")...)
	firstTool := time.Since(start)
	if scopes := fmt.Sprint(rcPath(me, "result", "structuredContent", "scopes")); scopes != "[notes:read]" {
		t.Errorf("whoami scopes %s, want [notes:read]", scopes)
	}

	title := "inspector step-up"
	mark := s.rec.mark()
	out, transcript, prompted := suRunTerminal(t, c, env, append([]string{c.inspector, "--cli"}, append(common,
		"--method", "tools/call", "--tool-name", "notes_create", "--tool-arg", "title="+title, "--format", "json")...)...)
	created := time.Since(start)
	if got := rcPath(out, "result", "structuredContent", "title"); got != title {
		t.Fatalf("notes_create after the step-up: %v\nterminal:\n%s\nrequests:%s", out, transcript, pcTrace(s.rec.since(mark)))
	}
	t.Logf("inspector: step-up prompt %v; %d refused refreshes during the write; the step-up asked for %q",
		prompted, suRefusedRefreshes(s.rec.since(mark)), suCheckAuthorizations(t, s.rec.since(begin)))
	suTiming(t, "inspector", firstTool, created)
}

// testStepUpMCPRemote: the mcp-remote stdio proxy, as a desktop host runs
// it, driven over stdio by the Inspector CLI: whoami, then a note.
func testStepUpMCPRemote(t *testing.T) {
	t.Parallel()
	c := rcInstall(t)
	s := pcStartArgs(t, "dev")
	browser := s.startBrowser(t)
	config := t.TempDir()
	port := rcFreePort(t) // mcp-remote's callback port: the same for both runs, as a host keeps it
	call := func(args ...string) map[string]any {
		t.Helper()
		// Inspector gives a stdio server only a minimal environment: the
		// proxy's settings go through -e.
		cli := []string{c.inspector, "--cli", "--transport", "stdio", "--connect-timeout", rcConnectTimeout, "--format", "json",
			"-e", "MCP_REMOTE_CONFIG_DIR=" + config, "-e", "BROWSER=" + browser.script}
		cli = append(append(cli, args...), "--", c.node, c.remote, s.resource, fmt.Sprint(port), "--host", "127.0.0.1")
		out, stderr, err := rcRun(t, c, []string{"MCP_STORAGE_DIR=" + t.TempDir()}, nil, cli...)
		var got map[string]any
		if err == nil {
			err = json.Unmarshal(out, &got)
		}
		if err != nil || got["result"] == nil {
			t.Fatalf("inspector via mcp-remote: %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
		return got
	}
	start, begin := time.Now(), s.rec.mark()
	me := call("--method", "tools/call", "--tool-name", "whoami")
	firstTool := time.Since(start)
	if scopes := fmt.Sprint(rcPath(me, "result", "structuredContent", "scopes")); scopes != "[notes:read]" {
		t.Errorf("whoami scopes %s, want [notes:read]", scopes)
	}
	title := "mcp-remote step-up"
	mark := s.rec.mark()
	out := call("--method", "tools/call", "--tool-name", "notes_create", "--tool-arg", "title="+title)
	created := time.Since(start)
	if got := rcPath(out, "result", "structuredContent", "title"); got != title {
		t.Fatalf("notes_create after the step-up: %v\nrequests:%s", out, pcTrace(s.rec.since(mark)))
	}
	t.Logf("mcp-remote: %d refused refreshes during the write; the step-up asked for %q",
		suRefusedRefreshes(s.rec.since(mark)), suCheckAuthorizations(t, s.rec.since(begin)))
	suTiming(t, "mcp-remote", firstTool, created)
}

// suRunTerminal runs node with args on a pseudo-terminal (script(1), from
// util-linux), bounded by rcTimeout like rcRun: it answers y if the
// step-up prompt appears, and returns the last JSON object the program
// printed, the whole transcript, and whether it prompted.
func suRunTerminal(t *testing.T, c *rcClients, env []string, args ...string) (_ map[string]any, _ string, prompted bool) {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script(1) (util-linux) is needed for a terminal: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), rcTimeout)
	defer cancel()
	quoted := make([]string, 0, len(args)+1)
	for _, a := range append([]string{c.node}, args...) {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	cmd := exec.CommandContext(ctx, "script", "-qec", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "NO_COLOR=1", "TERM=dumb"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe() // open until the end: script(1) stops at its EOF
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var transcript bytes.Buffer
	answered := false
	buf := make([]byte, 4096)
	for {
		n, rerr := stdout.Read(buf)
		transcript.Write(buf[:n])
		if !answered && bytes.Contains(transcript.Bytes(), []byte(suStepUpPrompt)) {
			answered = true
			io.WriteString(stdin, "y\r")
		}
		if rerr != nil {
			break
		}
	}
	err = cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	text := strings.ReplaceAll(transcript.String(), "\r", "")
	if err != nil {
		t.Fatalf("%s on a terminal: %v\nterminal:\n%s\nstderr: %s", args[0], err, text, stderr.String())
	}
	// The JSON result is the last line that starts an object.
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "{") {
			continue
		}
		var got map[string]any
		if json.Unmarshal([]byte(strings.Join(lines[i:], "\n")), &got) == nil {
			return got, text, answered
		}
	}
	t.Fatalf("no JSON result on the terminal:\n%s", text)
	return nil, text, answered
}
