package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tests of examples/teamserver live here, beside the OAuth helpers they
// drive it with: a program of its own on the public API, built and started
// as a user would, then used by the go-sdk client through the OAuth flow.

// teamserverBuild is the example's binary, built once per test binary.
var teamserverBuild struct {
	once sync.Once
	path string
	err  error
}

// teamserverBinary builds examples/teamserver into .cache/teamserver
// (ignored by git, like .cache/zitadelop).
func teamserverBinary(t *testing.T) string {
	t.Helper()
	teamserverBuild.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			teamserverBuild.err = err
			return
		}
		bin := filepath.Join(root, ".cache", "teamserver", "teamserver")
		cmd := exec.Command("go", "build", "-o", bin, "./examples/teamserver")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			teamserverBuild.err = fmt.Errorf("go build ./examples/teamserver: %v\n%s", err, b)
			return
		}
		teamserverBuild.path = bin
	})
	if teamserverBuild.err != nil {
		t.Fatal(teamserverBuild.err)
	}
	return teamserverBuild.path
}

var teamserverServing = regexp.MustCompile(`serving (http://\S+)/mcp`)

// startTeamserver runs the example with args until the test ends (then
// interrupts it and checks that it drained), and returns its base URL.
func startTeamserver(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(teamserverBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var output strings.Builder
	base := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			output.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := teamserverServing.FindStringSubmatch(sc.Text()); m != nil {
				base <- m[1]
			}
		}
	}()
	logs := func() string { mu.Lock(); defer mu.Unlock(); return output.String() }
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { <-scanned; done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("teamserver exited with %v after an interrupt:\n%s", err, logs())
			} else if !strings.Contains(logs(), "stopped") {
				t.Errorf("teamserver did not say it drained (\"stopped\"):\n%s", logs())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("teamserver did not stop within 30s of an interrupt:\n%s", logs())
		}
	})
	select {
	case b := <-base:
		return b
	case <-scanned:
		t.Fatalf("teamserver exited before serving:\n%s", logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("teamserver did not serve within 60s:\n%s", logs())
	}
	return ""
}

// useBoard reads the board with team:read, then posts to it, which needs
// team:write: a step-up. It returns the board after the post.
func useBoard(t *testing.T, cs *mcp.ClientSession, message string) []any {
	t.Helper()
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tools.Tools, func(x *mcp.Tool) bool { return x.Name == "board_read" }) {
		t.Errorf("tools/list = %v, want board_read in it", tools.Tools)
	}
	if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "board_read", Arguments: map[string]any{}}); err != nil || res.IsError {
		t.Fatalf("board_read with team:read: %v %+v", err, res)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "board_post", Arguments: map[string]any{"message": message}})
	if err != nil || res.IsError {
		t.Fatalf("board_post: %v %+v", err, res)
	}
	board, _ := res.StructuredContent.(map[string]any)
	messages, _ := board["messages"].([]any)
	return messages
}

// TestTeamserverProxy: the example with --auth proxy and the development
// upstream: the go-sdk client registers, the user signs in and consents,
// and a post steps up to team:write, in both eras.
func TestTeamserverProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the end-to-end OAuth flows (make test runs them)")
	}
	base := startTeamserver(t, "-listen", "127.0.0.1:0", "-auth", "proxy")
	s := &proxyServer{base: base, resource: base + "/mcp", upstreamFill: map[string]string{"username": "alice"}, upstreamHost: base}
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			u := s.newUser(t)
			cs := s.goClient(t, u, version)
			messages := useBoard(t, cs, "hello from "+version)
			if want := "dev|alice: hello from " + version; len(messages) == 0 || messages[len(messages)-1] != want {
				t.Errorf("board after the post = %v, want it to end with %q", messages, want)
			}
			if n := u.visits.Load(); n != 2 {
				t.Errorf("the user authorized %d times, want 2 (team:read, then the step-up to team:write)", n)
			}
		})
	}
}

// TestTeamserverJWT: the example with --auth jwt, trusting the tokens of a
// real OpenID provider (oidc-provider) for its resource and scopes.
func TestTeamserverJWT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Node authorization server; -short skips it (make test runs it)")
	}
	// The provider must know the resource before the example knows the
	// issuer: pick the port first.
	ln, base := reserve(t)
	addr := ln.Addr().String()
	ln.Close()
	issuer := startProvider(t, "RESOURCE="+base+"/mcp", "RESOURCE_SCOPES=team:read team:write")
	if got := startTeamserver(t, "-listen", addr, "-auth", "jwt", "-issuer", issuer); got != base {
		t.Fatalf("teamserver serves %s, want %s", got, base)
	}
	s := &oauthServer{resource: base + "/mcp", base: base}
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			cs, browser := goOAuthClient(t, s, version)
			messages := useBoard(t, cs, "hello from "+version)
			if want := "alice: hello from " + version; len(messages) == 0 || messages[len(messages)-1] != want {
				t.Errorf("board after the post = %v, want it to end with %q", messages, want)
			}
			if n := browser.count.Load(); n != 2 {
				t.Errorf("%d authorizations, want 2 (team:read, then the step-up to team:write)", n)
			}
		})
	}
}
