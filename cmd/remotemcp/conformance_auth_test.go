package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// caScenarios are the authorization-server scenarios of
// @modelcontextprotocol/conformance 0.2.0-alpha.12 (`conformance list
// --authorization`); every one must run and pass.
var caScenarios = []string{"authorization-server-metadata-endpoint", "authorization-code-grant"}

// caCheck is one entry of a scenario's checks.json.
type caCheck struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Description  string `json:"description"`
	ErrorMessage string `json:"errorMessage"`
}

// caLog collects the tool's output for the test log and hands the
// authorization URL, once printed, to whoever waits for it.
type caLog struct {
	mu     sync.Mutex
	buf    strings.Builder
	prefix string      // the authorization endpoint, with "?"
	url    chan string // gets the first line starting with prefix
	ready  string      // the line saying the callback listener listens
	listen chan struct{}
}

func (l *caLog) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sent, listening := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		l.mu.Lock()
		l.buf.WriteString(line + "\n")
		l.mu.Unlock()
		if !sent && strings.HasPrefix(line, l.prefix) {
			l.url <- line
			sent = true
		}
		if !listening && line == l.ready {
			close(l.listen)
			listening = true
		}
	}
	io.Copy(io.Discard, r)
}

func (l *caLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// caFreePort is a loopback port free a moment ago, for the tool's
// callback listener (its --port).
func caFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestConformanceAuthorization runs the official conformance suite's
// authorization-server tests (@modelcontextprotocol/conformance
// 0.2.0-alpha.12, `conformance authorization`) against remotemcp --auth
// proxy with the development provider: a public client registered by
// RFC 7591 for the tool's loopback callback; the tool fetches our metadata,
// prints an authorization request (PKCE S256, state, resource) and waits
// for the callback; a headless browser approves our consent page and logs
// in at the provider like a person; the tool then gets the code at its
// callback, redeems it at /token and checks the answers.
func TestConformanceAuthorization(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the conformance suite (make test runs it)")
	}
	node, dir := oauthNode(t)
	cli := filepath.Join(dir, "node_modules/conformance-alpha/dist/index.js")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("conformance alpha is not installed in %s (%v): %s", dir, err, depsHint)
	}

	s := startDevProxy(t)
	port := caFreePort(t)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", port)
	c := s.register(t, map[string]any{"client_name": "conformance authorization", "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"}, "response_types": []string{"code"}})

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command(node, cli, "authorization", "--url", s.base, "--client-id", c.id, "--resource", s.resource,
		"--port", fmt.Sprint(port), "-o", out)
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	log := &caLog{prefix: s.base + "/authorize?", url: make(chan string, 1),
		ready: fmt.Sprintf("Callback server started: http://127.0.0.1:%d", port), listen: make(chan struct{})}
	scanned := make(chan struct{})
	go func() { log.scan(pr); close(scanned) }()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); exited <- err }()
	// The tool waits up to 5 minutes for a callback: never leave it behind.
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		<-scanned
		t.Logf("conformance authorization output:\n%s", log.String())
	}()

	// Play the user, unless the tool ends first (when the metadata check
	// fails it does not try the grant): its results say why. If the user
	// cannot finish, the tool would wait 5 minutes: stop it.
	if err := caBrowse(ctx, s, log, exited, redirect); err != nil {
		t.Error(err)
		cmd.Process.Kill()
	}

	var exitErr error
	select {
	case exitErr = <-exited:
		exited <- exitErr
	case <-ctx.Done():
		t.Fatal("the conformance tool did not finish within the time limit")
	}
	t.Logf("conformance authorization ran in %v", time.Since(start).Round(time.Millisecond))

	// The results: <out>/authorization-server-<scenario>-<timestamp>/checks.json.
	for _, sc := range caScenarios {
		files, _ := filepath.Glob(filepath.Join(out, "authorization-server-"+sc+"-*", "checks.json"))
		if len(files) != 1 {
			t.Errorf("scenario %s: %d checks.json files, want 1", sc, len(files))
			continue
		}
		raw, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		var checks []caCheck
		if err := json.Unmarshal(raw, &checks); err != nil {
			t.Fatalf("%s: %v", files[0], err)
		}
		passed := 0
		for _, ch := range checks {
			switch ch.Status {
			case "SUCCESS":
				passed++
				t.Logf("scenario %s: SUCCESS %s: %s", sc, ch.ID, ch.Description)
			case "WARNING":
				// A SHOULD the suite reports without failing (e.g.
				// client_id_metadata_document_supported): visible, not fatal.
				t.Logf("scenario %s: WARNING %s: %s %s", sc, ch.ID, ch.Description, ch.ErrorMessage)
			default:
				t.Errorf("scenario %s: %s %s: %s %s", sc, ch.Status, ch.ID, ch.Description, ch.ErrorMessage)
			}
		}
		if passed == 0 {
			t.Errorf("scenario %s: no check passed: %s", sc, raw)
		}
	}
	if exitErr != nil {
		t.Errorf("conformance authorization exited with %v", exitErr)
	}
	if !regexp.MustCompile(`(?m)^Total: [1-9][0-9]* passed, 0 failed$`).MatchString(log.String()) {
		t.Errorf("no clean summary (Total: N passed, 0 failed) in the tool's output")
	}
}

// caBrowse waits for the tool's authorization URL, plays the user through it
// (approve on our consent page, log in at the dev provider) and then
// delivers the redirect to the tool's callback. It returns nil early when the
// tool exits without asking, leaving the verdict to its results.
func caBrowse(ctx context.Context, s *proxyServer, log *caLog, exited chan error, redirect string) error {
	var authURL string
	select {
	case authURL = <-log.url:
	case err := <-exited:
		exited <- err
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no authorization URL from the conformance tool within the time limit")
	}
	b := newFormBrowser(nil)
	b.fillHost(s.upstreamHost, s.upstreamFill)
	final, err := b.run(ctx, authURL, redirect, nil, "approve")
	if err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	// The tool prints the URL before its callback listener is up.
	select {
	case <-log.listen:
	case err := <-exited:
		exited <- err
		return fmt.Errorf("the conformance tool exited (%v) before its callback listener started", err)
	case <-ctx.Done():
		return fmt.Errorf("the conformance tool's callback listener did not start within the time limit")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, final.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET callback %s: %w", final, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the tool's callback answered %d", resp.StatusCode)
	}
	return nil
}
