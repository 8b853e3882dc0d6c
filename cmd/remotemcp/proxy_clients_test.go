package main

// Real MCP clients, headless, against remotemcp --auth proxy (we are the
// authorization server): registration (DCR, or a Client ID Metadata
// Document) ⇒ our consent page ⇒ the upstream login (the built-in
// development provider, or the zitadel example OP) ⇒ token ⇒ tool calls ⇒
// a refresh once the access token has expired.
//
//   - The TypeScript SDK v1 and v2 clients (testdata/clients/ts-proxy-client.mjs)
//     hand the authorization URL to the test over a JSON-lines pipe; the test
//     plays the browser with formBrowser and answers with the redirect.
//   - The MCP Inspector v2 CLI and mcp-remote open the URL with $BROWSER;
//     pcBrowser's script writes it to a file, and the test plays the browser
//     up to the client's loopback callback, which it then requests for real.
//
// Every server runs with --access-token-lifetime 5s --clock-skew 1s (see
// pcTokenArgs); each flow waits past the expiry and calls a tool again:
// pcRecorder, in front of the server, must see the expired token refused
// (401), a refresh_token grant, and no new authorization.
//
// CIMD: the server accepts http://127.0.0.1 document URLs on a loopback
// listener (MetadataFetcherOptions.AllowLoopbackHTTP), but the clients do not:
// the TypeScript SDK (v1 and v2, also inside Inspector and mcp-remote)
// refuses a clientMetadataUrl that is not https. So the CIMD flows serve the
// documents from an https test server, and run remotemcp in a child process
// (this test binary, see pcServeEnv) that trusts that server's certificate
// through SSL_CERT_FILE, as an operator's trust store would.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pcTokenArgs make access tokens expire fast, with no clock skew (a first
// run found --clock-skew 0s taken as "the default", 30s).
var pcTokenArgs = []string{"--access-token-lifetime", "5s", "--clock-skew", "0s"}

// pcExpiry bounds the wait for the access tokens a client holds to expire:
// the lifetime and the skew, plus a margin (JWT times are whole seconds).
const pcExpiry = 6500 * time.Millisecond

// pcServeEnv, set in the environment of this test binary, makes it run
// remotemcp instead of the tests: the arguments are the JSON array in the
// variable. It stops when its stdin closes, so that it never outlives the
// test that started it.
const pcServeEnv = "REMOTEMCP_PC_SERVE"

func init() {
	raw := os.Getenv(pcServeEnv)
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, pcServeEnv+":", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := run(ctx, args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "remotemcp:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// pcEvent is one request pcRecorder saw.
type pcEvent struct {
	method, path    string
	grant           string // grant_type of a /token request
	scope           string // scope of a GET /authorize
	protocolVersion string // MCP-Protocol-Version
	sessionID       string // Mcp-Session-Id
	status          int
}

// pcRecorder wraps the server and remembers its requests: the flow's steps
// (registration, consent, callback, token grants) and the era markers of
// /mcp requests.
type pcRecorder struct {
	next    http.Handler
	mu      sync.Mutex
	seen    []*pcEvent
	bearers map[string]bool // the access tokens presented at /mcp
}

func (r *pcRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ev := &pcEvent{method: req.Method, path: req.URL.Path,
		protocolVersion: req.Header.Get("MCP-Protocol-Version"), sessionID: req.Header.Get("Mcp-Session-Id")}
	if req.URL.Path == "/authorize" && req.Method == http.MethodGet {
		ev.scope = req.URL.Query().Get("scope")
	}
	if req.URL.Path == "/token" && req.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<16))
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		ev.grant = form.Get("grant_type")
	}
	r.mu.Lock()
	r.seen = append(r.seen, ev)
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && req.URL.Path == "/mcp" {
		if r.bearers == nil {
			r.bearers = map[string]bool{}
		}
		r.bearers[tok] = true
	}
	r.mu.Unlock()
	r.next.ServeHTTP(&pcStatusWriter{ResponseWriter: w, set: func(code int) {
		r.mu.Lock()
		ev.status = code
		r.mu.Unlock()
	}}, req)
}

// pcStatusWriter reports the status of a response as soon as it is known
// (an SSE stream may last long), and keeps Flush for the streams.
type pcStatusWriter struct {
	http.ResponseWriter
	set  func(int)
	done bool
}

func (w *pcStatusWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		w.set(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *pcStatusWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.done = true
		w.set(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *pcStatusWriter) Flush() {
	if !w.done {
		w.done = true
		w.set(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *pcStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (r *pcRecorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// waitExpired waits until the server refuses, with 401, every access token
// a client presented at /mcp so far: the clients then find theirs expired.
// Its probes go past the recorder, so the events stay the clients' own.
func (r *pcRecorder) waitExpired(t *testing.T, resource string) {
	t.Helper()
	r.mu.Lock()
	tokens := slices.Collect(maps.Keys(r.bearers))
	r.mu.Unlock()
	if len(tokens) == 0 {
		t.Fatal("no client presented an access token at /mcp")
	}
	err := waitFor(t, pcExpiry, func() error {
		for len(tokens) > 0 {
			// Not an MCP message: a token the server takes is answered
			// with a 4xx of the transport, nothing is called.
			req := httptest.NewRequest(http.MethodPost, resource, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tokens[0])
			w := httptest.NewRecorder()
			r.next.ServeHTTP(w, req)
			if w.Code != http.StatusUnauthorized {
				return fmt.Errorf("an access token is still taken: %d %s", w.Code, w.Body)
			}
			tokens = tokens[1:]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v after %v (lifetime and skew: %v)", err, pcExpiry, pcTokenArgs)
	}
}

// since returns copies of the events from mark on.
func (r *pcRecorder) since(mark int) []pcEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]pcEvent, 0, len(r.seen)-mark)
	for _, ev := range r.seen[mark:] {
		out = append(out, *ev)
	}
	return out
}

// pcCount counts the events of method and path (and grant, for /token)
// with status (0: any).
func pcCount(evs []pcEvent, method, path, grant string, status int) int {
	n := 0
	for _, ev := range evs {
		if ev.method == method && ev.path == path && (grant == "" || ev.grant == grant) && (status == 0 || ev.status == status) {
			n++
		}
	}
	return n
}

// pcMCP is the /mcp part of evs, as rcCheckEra wants it.
func pcMCP(evs []pcEvent) []rcRequest {
	var out []rcRequest
	for _, ev := range evs {
		if ev.path == "/mcp" {
			out = append(out, rcRequest{ev.method, ev.protocolVersion, ev.sessionID})
		}
	}
	return out
}

func pcTrace(evs []pcEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s %d", ev.method, ev.path, ev.status)
		if ev.grant != "" {
			fmt.Fprintf(&b, " grant_type=%s", ev.grant)
		}
		if ev.protocolVersion != "" || ev.sessionID != "" {
			fmt.Fprintf(&b, " [%s %s]", ev.protocolVersion, ev.sessionID)
		}
	}
	return b.String()
}

// pcCheckLogin asserts the steps of one whole authorization in evs: a
// registration (dcr) or none (CIMD), the consent approved, the upstream
// login come back to our callback, an authorization_code grant.
func pcCheckLogin(t *testing.T, evs []pcEvent, dcr bool) {
	t.Helper()
	wantReg := map[bool]int{true: 1, false: 0}[dcr]
	if n := pcCount(evs, http.MethodPost, "/register", "", http.StatusCreated); n != wantReg {
		t.Errorf("%d registrations (POST /register 201), want %d", n, wantReg)
	}
	if n := pcCount(evs, http.MethodPost, "/authorize/consent", "", 0); n < 1 {
		t.Errorf("no consent was submitted (POST /authorize/consent)")
	}
	if n := pcCount(evs, http.MethodGet, "/callback", "", http.StatusFound) + pcCount(evs, http.MethodGet, "/callback", "", http.StatusSeeOther); n < 1 {
		t.Errorf("the upstream login never came back to /callback with a redirect")
	}
	if n := pcCount(evs, http.MethodPost, "/token", "authorization_code", http.StatusOK); n < 1 {
		t.Errorf("no authorization_code grant succeeded")
	}
	if t.Failed() {
		t.Logf("requests:%s", pcTrace(evs))
	}
}

// pcCheckRefresh asserts that after the expiry (evs: the requests since)
// the expired token was refused, a refresh_token grant succeeded, and
// nobody was sent to authorize again.
func pcCheckRefresh(t *testing.T, evs []pcEvent) {
	t.Helper()
	if n := pcCount(evs, http.MethodPost, "/mcp", "", http.StatusUnauthorized) + pcCount(evs, http.MethodGet, "/mcp", "", http.StatusUnauthorized); n < 1 {
		t.Errorf("the expired access token was never refused with 401")
	}
	if n := pcCount(evs, http.MethodPost, "/token", "refresh_token", http.StatusOK); n < 1 {
		t.Errorf("no refresh_token grant succeeded after the expiry")
	}
	if n := pcCount(evs, http.MethodGet, "/authorize", "", 0) + pcCount(evs, http.MethodPost, "/register", "", 0); n != 0 {
		t.Errorf("%d new authorizations or registrations after the expiry, want none (a refresh)", n)
	}
	if t.Failed() {
		t.Logf("requests since the expiry:%s", pcTrace(evs))
	}
}

// pcServer is remotemcp --auth proxy behind a pcRecorder.
type pcServer struct {
	*proxyServer
	rec  *pcRecorder
	docs *pcDocs // CIMD documents, for pcStartCIMD servers
}

// pcStart runs remotemcp --auth proxy in-process, in front of the
// development provider (upstream "dev") or the zitadel example OP, with
// pcTokenArgs.
func pcStart(t *testing.T, upstream string, args ...string) *pcServer {
	t.Helper()
	return pcStartArgs(t, upstream, append(slices.Clone(pcTokenArgs), args...)...)
}

// pcStartArgs is pcStart with args alone: with none, and the development
// provider, it is what make run starts.
func pcStartArgs(t *testing.T, upstream string, args ...string) *pcServer {
	t.Helper()
	ln, base := reserve(t)
	env := map[string]string{}
	fill, host := map[string]string{"username": "alice"}, base
	if upstream == "zitadel" {
		issuer, id, secret := startZitadel(t, base+"/callback")
		env["REMOTEMCP_UPSTREAM_CLIENT_ID"], env["REMOTEMCP_UPSTREAM_CLIENT_SECRET"] = id, secret
		args = append(args, "--upstream-issuer", issuer, "--upstream-scopes", "openid profile email offline_access")
		fill, host = map[string]string{"username": zitadelUser, "password": zitadelPassword}, issuer
	}
	cfg, err := parseConfig(append([]string{"--listen", ln.Addr().String(), "--public-url", base, "--auth", "proxy"}, args...),
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := build(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	rec := &pcRecorder{next: a.handler}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.close() })
	return &pcServer{proxyServer: &proxyServer{base: base, resource: base + "/mcp", upstreamFill: fill, upstreamHost: host}, rec: rec}
}

// pcDocs serves Client ID Metadata Documents over https.
type pcDocs struct {
	srv    *httptest.Server
	caFile string // its certificate, PEM, for SSL_CERT_FILE
	mu     sync.Mutex
	docs   map[string][]byte // by path
	hits   map[string]int
}

func pcStartDocs(t *testing.T) *pcDocs {
	t.Helper()
	d := &pcDocs{docs: map[string][]byte{}, hits: map[string]int{}}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		doc, ok := d.docs[r.URL.Path]
		d.hits[r.URL.Path]++
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(d.srv.Close)
	d.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.srv.Certificate().Raw})
	if err := os.WriteFile(d.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// add publishes the document of a public client with these redirect URIs
// and returns its URL, which is its client_id.
func (d *pcDocs) add(t *testing.T, name string, redirects ...string) string {
	t.Helper()
	path := "/clients/" + name + ".json"
	id := d.srv.URL + path
	doc, err := json.Marshal(map[string]any{
		"client_id": id, "client_name": name, "redirect_uris": redirects,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.docs[path] = doc
	d.mu.Unlock()
	return id
}

func (d *pcDocs) fetched(id string) int {
	u, _ := url.Parse(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[u.Path]
}

// pcStartCIMD runs remotemcp --auth proxy with the development provider in
// a child process that trusts the https document server, behind a recording
// reverse proxy on the public address (so the child's --public-url is the
// proxy's).
func pcStartCIMD(t *testing.T) *pcServer {
	t.Helper()
	docs := pcStartDocs(t)
	ln, base := reserve(t)
	internal := fmt.Sprintf("127.0.0.1:%d", rcFreePort(t))
	args, _ := json.Marshal(append([]string{"--listen", internal, "--public-url", base, "--auth", "proxy", "--log-level", "debug"}, pcTokenArgs...))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), pcServeEnv+"="+string(args), "SSL_CERT_FILE="+docs.caFile)
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	stdin, err := cmd.StdinPipe() // closed at cleanup: the child stops
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("remotemcp (child) log:\n%s", stderr.String())
		}
	})

	target := &url.URL{Scheme: "http", Host: internal}
	rec := &pcRecorder{next: &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the public host, as a load balancer keeps it
		},
		FlushInterval: -1,
		// Until the child listens: a 502, without a log line each time.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	err = waitFor(t, e2eTimeout, func() error {
		select {
		case <-exited:
			t.Fatalf("remotemcp (child) exited:\n%s", stderr.String())
		default:
		}
		resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
		if err != nil {
			return err
		}
		var md struct {
			CIMD bool `json:"client_id_metadata_document_supported"`
		}
		err = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %v", resp.StatusCode, err)
		}
		if !md.CIMD {
			t.Fatal("the authorization server metadata does not announce client_id_metadata_document_supported")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("remotemcp (child) not ready at %s: %v\n%s", base, err, stderr.String())
	}
	return &pcServer{proxyServer: &proxyServer{base: base, resource: base + "/mcp", upstreamFill: map[string]string{"username": "alice"}, upstreamHost: base},
		rec: rec, docs: docs}
}

// pcAuthorize plays the user at a browser for one authorization: from
// authURL through our consent and the upstream login, until the browser is
// sent to the redirect URI of the request, which it returns unrequested.
func pcAuthorize(ctx context.Context, u *user, authURL string) (*url.URL, error) {
	a, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	redirect := a.Query().Get("redirect_uri")
	if redirect == "" {
		return nil, fmt.Errorf("authorization URL without redirect_uri: %s", authURL)
	}
	u.visits.Add(1)
	final, err := u.b.run(ctx, authURL, redirect, nil, u.press)
	if err != nil {
		return nil, err
	}
	if final.Query().Get("code") == "" {
		return final, fmt.Errorf("the authorization ended without a code: %s", final)
	}
	return final, nil
}

// pcTSResult is the last line of ts-proxy-client.mjs.
type pcTSResult struct {
	ClientID                  string         `json:"clientId"`
	SessionID                 *string        `json:"sessionId"`
	Subject                   string         `json:"subject"`
	Scopes                    []string       `json:"scopes"`
	Upstream                  map[string]any `json:"upstream"`
	HadRefreshToken           bool           `json:"hadRefreshToken"`
	Refreshed                 bool           `json:"refreshed"`
	Authorizations            int            `json:"authorizations"`
	AuthorizationsAfterExpiry int            `json:"authorizationsAfterExpiry"`
	ProtocolVersion           string         `json:"protocolVersion"`
	// With PC_STEP_UP: milliseconds from the script's start to the
	// first tool result and to the created note, the authorizations the
	// note took, the scope the last one asked for, what the SDK had the
	// host forget, and whoami's scopes afterwards.
	MsFirstTool          int64    `json:"msFirstTool"`
	MsCreated            int64    `json:"msCreated"`
	StepUpAuthorizations int      `json:"stepUpAuthorizations"`
	StepUpScope          string   `json:"stepUpScope"`
	Invalidated          []string `json:"invalidated"`
	ScopesAfterStepUp    []string `json:"scopesAfterStepUp"`
}

// pcRunTS runs ts-proxy-client.mjs against s as u, playing its browser and
// its clock; it returns the script's result and the recorder marks of the
// start and of the expiry.
func pcRunTS(t *testing.T, node, script string, s *pcServer, u *user, env []string, args ...string) (res pcTSResult, start, expired int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), rcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script, s.resource}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start = s.rec.mark()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reply := func(v any) {
		b, _ := json.Marshal(v)
		stdin.Write(append(b, '\n'))
	}
	var got *pcTSResult
	var problems []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var msg struct {
			Authorize string      `json:"authorize"`
			Phase     string      `json:"phase"`
			Result    *pcTSResult `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Logf("client printed: %s", sc.Bytes())
			continue
		}
		switch {
		case msg.Authorize != "":
			final, err := pcAuthorize(ctx, u, msg.Authorize)
			if err != nil {
				problems = append(problems, err.Error())
				reply(map[string]string{"error": err.Error()})
				continue
			}
			reply(map[string]string{"redirect": final.String()})
		case msg.Phase == "expire":
			expired = s.rec.mark()
			s.rec.waitExpired(t, s.resource)
			reply(map[string]bool{"continue": true})
		case msg.Result != nil:
			got = msg.Result
		}
	}
	stdin.Close()
	err = cmd.Wait()
	if err != nil || got == nil || len(problems) > 0 {
		t.Fatalf("client: %v\nbrowser: %s\nstderr: %s\nrequests:%s", err, strings.Join(problems, "\n"), stderr.String(), pcTrace(s.rec.since(start)))
	}
	if expired == 0 {
		t.Fatal("the client never waited for the expiry")
	}
	return *got, start, expired
}

// TestProxyClientsTypeScript: the TypeScript SDK clients, v1 (legacy) and v2
// (legacy, auto and pinned 2026-07-28), register (DCR), or identify with a
// metadata document (CIMD), and go through our consent and the upstream
// login (the development provider, and zitadel for both SDKs), call tools,
// and refresh once the access token has expired.
func TestProxyClientsTypeScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	node, dir := oauthNode(t)
	script := oauthScript(t, dir, "testdata/clients/ts-proxy-client.mjs")

	type flow struct {
		name        string
		upstream    string // dev, zitadel, cimd (dev, in a child process)
		args        []string
		wantVersion string
	}
	flows := []flow{
		{"dev/v1 legacy", "dev", []string{"v1"}, "2025-11-25"},
		{"dev/v2 legacy", "dev", []string{"v2", "legacy"}, "2025-11-25"},
		{"dev/v2 auto", "dev", []string{"v2", "auto"}, "2026-07-28"},
		{"dev/v2 2026-07-28", "dev", []string{"v2", "2026-07-28"}, "2026-07-28"},
		{"zitadel/v1 legacy", "zitadel", []string{"v1"}, "2025-11-25"},
		{"zitadel/v2 2026-07-28", "zitadel", []string{"v2", "2026-07-28"}, "2026-07-28"},
		{"cimd/v1 legacy", "cimd", []string{"v1"}, "2025-11-25"},
		{"cimd/v2 2026-07-28", "cimd", []string{"v2", "2026-07-28"}, "2026-07-28"},
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", rcFreePort(t)) // never listened on
			env := []string{"PC_REDIRECT=" + redirect}
			var s *pcServer
			var cimd string
			if f.upstream == "cimd" {
				s = pcStartCIMD(t)
				cimd = s.docs.add(t, "ts-"+f.args[0], redirect)
				env = append(env, "PC_CLIENT_METADATA_URL="+cimd)
			} else {
				s = pcStart(t, f.upstream)
			}
			u := s.newUser(t)
			res, start, expired := pcRunTS(t, node, script, s, u, env, f.args...)

			wantSubject, wantLogin := "dev|alice", "alice"
			if f.upstream == "zitadel" {
				wantSubject, wantLogin = "oidc:"+zitadelSubject, zitadelUser
			}
			if res.Subject != wantSubject || res.Upstream["login"] != wantLogin {
				t.Errorf("whoami subject %q upstream %v, want %q with login %q", res.Subject, res.Upstream, wantSubject, wantLogin)
			}
			if !slices.Equal(res.Scopes, []string{"notes:read"}) {
				t.Errorf("scopes %v, want [notes:read] (the 401 challenge's)", res.Scopes)
			}
			if res.ProtocolVersion != f.wantVersion {
				t.Errorf("protocol version %q, want %q", res.ProtocolVersion, f.wantVersion)
			}
			if res.Authorizations != 1 || u.visits.Load() != 1 {
				t.Errorf("%d authorizations (browser: %d), want 1", res.Authorizations, u.visits.Load())
			}
			if cimd != "" {
				if res.ClientID != cimd {
					t.Errorf("client_id %q, want the metadata document URL %q", res.ClientID, cimd)
				}
				if s.docs.fetched(cimd) < 1 {
					t.Errorf("the server never fetched the metadata document %s", cimd)
				}
			}
			login := s.rec.since(start)[:expired-start]
			pcCheckLogin(t, login, cimd == "")
			era := map[string]string{"2025-11-25": "legacy", "2026-07-28": "modern"}[f.wantVersion]
			rcCheckEra(t, pcMCP(login), era)

			if !res.HadRefreshToken || !res.Refreshed || res.AuthorizationsAfterExpiry != 0 {
				t.Errorf("after the expiry: refresh token held %v, access token replaced %v, %d new authorizations; want a refresh only",
					res.HadRefreshToken, res.Refreshed, res.AuthorizationsAfterExpiry)
			}
			after := s.rec.since(expired)
			pcCheckRefresh(t, after)
			rcCheckEra(t, pcMCP(after), era)
		})
	}
}

// pcBrowser is the user's browser for clients that open the authorization
// URL with $BROWSER: script appends the URL to a file; a goroutine of the
// test picks it up, plays the user with formBrowser (consent, upstream
// login) up to the client's redirect URI, and then requests that URL, on
// which the client listens.
type pcBrowser struct {
	script string
	user   *user
	mu     sync.Mutex
	urls   []string
	errs   []error
}

func (s *pcServer) startBrowser(t *testing.T) *pcBrowser {
	t.Helper()
	dir := t.TempDir()
	urls := filepath.Join(dir, "urls")
	if err := os.WriteFile(urls, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := &pcBrowser{script: filepath.Join(dir, "browser.sh"), user: s.newUser(t)}
	if err := os.WriteFile(b.script, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '"+urls+"'\n"), 0o755); err != nil {
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

func (b *pcBrowser) visits() int { return int(b.user.visits.Load()) }

func (b *pcBrowser) visit(ctx context.Context, u string) {
	b.mu.Lock()
	b.urls = append(b.urls, u)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	final, err := pcAuthorize(ctx, b.user, u)
	if err == nil {
		err = pcCallback(ctx, final)
	}
	if err != nil && ctx.Err() == nil {
		b.mu.Lock()
		b.errs = append(b.errs, err)
		b.mu.Unlock()
	}
}

// pcCallback requests the client's loopback callback, which takes the code.
// A client may open the browser before it listens (mcp-remote does, for a
// step-up), which a person at a browser never notices: a refused
// connection is tried again until ctx ends.
func pcCallback(ctx context.Context, final *url.URL) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, final.String(), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if errors.Is(err, syscall.ECONNREFUSED) {
			select {
			case <-ctx.Done():
				return err
			case <-tick.C:
				continue
			}
		}
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("the client's callback %s answered %d", final, resp.StatusCode)
		}
		return nil
	}
}

// TestProxyClientsInspector: the MCP Inspector v2 CLI logs in through our
// authorization server (DCR, or CIMD with --client-metadata-url), in both
// eras: consent, upstream login, its loopback callback; then calls whoami
// with the stored token only, and again after the expiry, which it must
// get past with the stored refresh token.
func TestProxyClientsInspector(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	c := rcInstall(t)
	for _, tt := range []struct {
		name, era string
		cimd      bool
	}{
		{"dev/legacy", "legacy", false},
		{"dev/modern", "modern", false},
		{"cimd/legacy", "legacy", true},
		{"cimd/modern", "modern", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s *pcServer
			if tt.cimd {
				s = pcStartCIMD(t)
			} else {
				s = pcStart(t, "dev")
			}
			browser := s.startBrowser(t)
			env := []string{
				"MCP_STORAGE_DIR=" + t.TempDir(),
				"MCP_INSPECTOR_SECRET_STORE=file", // no keychain here; else tokens live in memory only
				"MCP_AUTO_OPEN_ENABLED=true",      // open the browser without a TTY
				"BROWSER=" + browser.script,
			}
			callback := fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", rcFreePort(t))
			common := []string{s.resource, "--transport", "http", "--protocol-era", tt.era, "--callback-url", callback, "--connect-timeout", rcConnectTimeout}
			var cimd string
			if tt.cimd {
				cimd = s.docs.add(t, "inspector", callback)
				common = append(common, "--client-metadata-url", cimd)
			}

			start := s.rec.mark()
			list := rcInspectorJSON(t, c, env, append(common, "--method", "tools/list")...)
			if names := rcToolNames(t, list); !slices.Contains(names, "whoami") || !slices.Contains(names, "notes_create") {
				t.Errorf("tools/list after login = %v, want whoami and notes_create", names)
			}
			if n := browser.visits(); n != 1 {
				t.Errorf("%d authorizations for the login, want 1", n)
			}
			login := s.rec.since(start)
			pcCheckLogin(t, login, !tt.cimd)
			rcCheckEra(t, pcMCP(login), tt.era)
			if tt.cimd && s.docs.fetched(cimd) < 1 {
				t.Errorf("the server never fetched the metadata document %s", cimd)
			}

			whoami := func() {
				t.Helper()
				me := rcInspectorJSON(t, c, env, append(common, "--stored-auth-only", "--method", "tools/call", "--tool-name", "whoami")...)
				if got := rcPath(me, "result", "structuredContent", "subject"); got != "dev|alice" {
					t.Errorf("whoami subject = %v, want dev|alice (%v)", got, me["result"])
				}
				if got := rcPath(me, "result", "structuredContent", "upstream", "login"); got != "alice" {
					t.Errorf("whoami upstream login = %v, want alice", got)
				}
			}
			whoami()

			s.rec.waitExpired(t, s.resource)
			expired := s.rec.mark()
			whoami()
			if n := browser.visits(); n != 1 {
				t.Errorf("%d authorizations after the expiry, want still 1", n)
			}
			after := s.rec.since(expired)
			pcCheckRefresh(t, after)
			rcCheckEra(t, pcMCP(after), tt.era)
		})
	}
}

// TestProxyClientsMCPRemote: mcp-remote 0.15.1 through our authorization
// server. mcp-remote-client (legacy era only, see TestMCPRemote) logs in
// (DCR, or CIMD), lists tools, and a second run after the expiry refreshes
// the stored token; the mcp-remote stdio proxy with --protocol auto (the
// 2026-07-28 bridge), driven by the Inspector CLI over stdio, logs in, calls
// whoami, and refreshes likewise.
func TestProxyClientsMCPRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	c := rcInstall(t)

	// runClient runs mcp-remote-client with stdin open until it exits (on
	// EOF it shuts down before listing tools).
	runClient := func(t *testing.T, s *pcServer, port int, env []string, extra ...string) string {
		t.Helper()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		args := append([]string{c.remoteTest, s.resource, fmt.Sprint(port), "--host", "127.0.0.1"}, extra...)
		out, stderr, err := rcRun(t, c, env, pr, args...)
		all := string(out) + stderr
		if err != nil {
			t.Fatalf("mcp-remote-client: %v\n%s", err, all)
		}
		if !strings.Contains(all, "Tools:") || !strings.Contains(all, `"whoami"`) || !strings.Contains(all, "Exiting OK") {
			t.Fatalf("mcp-remote-client did not list whoami:\n%s", all)
		}
		return all
	}

	for _, cimd := range []bool{false, true} {
		name := map[bool]string{false: "client/dev", true: "client/cimd"}[cimd]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var s *pcServer
			if cimd {
				s = pcStartCIMD(t)
			} else {
				s = pcStart(t, "dev")
			}
			browser := s.startBrowser(t)
			port := rcFreePort(t) // the callback port: the same for both runs, as a host keeps it
			env := []string{"BROWSER=" + browser.script, "MCP_REMOTE_CONFIG_DIR=" + t.TempDir()}
			var extra []string
			var id string
			if cimd {
				id = s.docs.add(t, "mcp-remote", fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", port))
				extra = []string{"--client-metadata-url", id}
			}
			start := s.rec.mark()
			all := runClient(t, s, port, env, extra...)
			if !strings.Contains(all, "Please authorize this client") || browser.visits() != 1 {
				t.Errorf("%d authorizations, want 1:\n%s", browser.visits(), all)
			}
			login := s.rec.since(start)
			pcCheckLogin(t, login, !cimd)
			rcCheckEra(t, pcMCP(login), "legacy")
			if cimd && s.docs.fetched(id) < 1 {
				t.Errorf("the server never fetched the metadata document %s", id)
			}

			s.rec.waitExpired(t, s.resource)
			expired := s.rec.mark()
			runClient(t, s, port, env, extra...)
			if n := browser.visits(); n != 1 {
				t.Errorf("%d authorizations after the expiry, want still 1", n)
			}
			pcCheckRefresh(t, s.rec.since(expired))
		})
	}

	t.Run("proxy-auto/dev", func(t *testing.T) {
		t.Parallel()
		s := pcStart(t, "dev")
		browser := s.startBrowser(t)
		config := t.TempDir()
		port := rcFreePort(t)
		proxy := func(args ...string) map[string]any {
			t.Helper()
			// Inspector gives a stdio server only a minimal environment:
			// the proxy's settings go through -e.
			cli := []string{c.inspector, "--cli", "--transport", "stdio", "--connect-timeout", rcConnectTimeout, "--format", "json",
				"-e", "MCP_REMOTE_CONFIG_DIR=" + config, "-e", "BROWSER=" + browser.script}
			cli = append(append(cli, args...), "--", c.node, c.remote, s.resource, fmt.Sprint(port), "--host", "127.0.0.1", "--protocol", "auto")
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
			return got
		}
		whoami := func() {
			t.Helper()
			got := proxy("--method", "tools/call", "--tool-name", "whoami")
			if v := rcPath(got, "result", "structuredContent", "subject"); v != "dev|alice" {
				t.Errorf("whoami through the bridge: subject %v, want dev|alice (%v)", v, got["result"])
			}
		}
		start := s.rec.mark()
		whoami()
		if n := browser.visits(); n != 1 {
			t.Errorf("%d authorizations, want 1", n)
		}
		login := s.rec.since(start)
		pcCheckLogin(t, login, true)

		s.rec.waitExpired(t, s.resource)
		expired := s.rec.mark()
		whoami()
		if n := browser.visits(); n != 1 {
			t.Errorf("%d authorizations after the expiry, want still 1", n)
		}
		after := s.rec.since(expired)
		pcCheckRefresh(t, after)
		rcCheckEra(t, pcMCP(after), "modern")
	})
}
