//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumBin is Debian's Chromium (package chromium).
const chromiumBin = "/usr/bin/chromium"

// needChromium returns Debian's Chromium, and fails the test if this
// machine lacks it: .ci/deps.sh installs it (make test runs the script
// first); no test installs packages.
func needChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Fatalf("Debian's chromium is missing (%v): %s", err, depsHint)
	}
	return chromiumBin
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// browserResults is what testdata/browser/consent.mjs saw. Each scenario
// has Error and FailedAt where it broke off.
type browserResults struct {
	BrowserVersion string `json:"browserVersion"`
	Consent        struct {
		scenarioEnd
		Status  int `json:"status"`
		Headers struct {
			CSP, XFO, ReferrerPolicy string
		} `json:"headers"`
		Post             consentPost     `json:"post"`
		Page             consentPageView `json:"page"`
		CookiesAtConsent []browserCookie `json:"cookiesAtConsent"`
		TabOrder         []struct {
			Tag, Name, Value, Outline string
			FocusVisible              bool `json:"focusVisible"`
		} `json:"tabOrder"`
		Screenshot   string          `json:"screenshot"`
		LoginURL     string          `json:"loginURL"`
		LoginTitle   string          `json:"loginTitle"`
		FinalURL     string          `json:"finalURL"`
		FinalTitle   string          `json:"finalTitle"`
		CookiesAfter []browserCookie `json:"cookiesAfter"`
	} `json:"consent"`
	Deny struct {
		scenarioEnd
		Page     consentPageView `json:"page"`
		Post     consentPost     `json:"post"`
		FinalURL string          `json:"finalURL"`
	} `json:"deny"`
	Frame struct {
		scenarioEnd
		ParentTitle string `json:"parentTitle"`
		Frames      []struct {
			URL          string `json:"url"`
			AllowButtons int    `json:"allowButtons"`
			AllowError   string `json:"allowError"`
			Text         string `json:"text"`
			TextError    string `json:"textError"`
		} `json:"frames"`
		Screenshot string `json:"screenshot"`
	} `json:"frame"`
	Forge struct {
		scenarioEnd
		HadFields      bool `json:"hadFields"`
		Status         int  `json:"status"`
		RequestHeaders struct {
			SecFetchSite string `json:"secFetchSite"`
			Origin       string `json:"origin"`
		} `json:"requestHeaders"`
		CookieSent bool        `json:"cookieSent"`
		Title      string      `json:"title"`
		Text       string      `json:"text"`
		FinalURL   string      `json:"finalURL"`
		Screenshot string      `json:"screenshot"`
		Attacker   scenarioEnd `json:"attacker"`
		Victim     struct {
			Post    consentPost `json:"post"`
			ThenURL string      `json:"thenURL"`
		} `json:"victim"`
	} `json:"forge"`
}

// scenarioEnd is what every scenario records: the documents the browser
// loaded, its console, and where it broke off, if it did.
type scenarioEnd struct {
	Docs    []browserDoc `json:"docs"`
	Console []struct {
		Type, Text string
	} `json:"console"`
	Error    string `json:"error"`
	FailedAt struct {
		URL, Title, Text string
	} `json:"failedAt"`
}

// ended fails t if the scenario broke off.
func (e *scenarioEnd) ended(t *testing.T) {
	t.Helper()
	if e.Error != "" {
		t.Fatalf("in Chromium: %s\n  at %s (%q): %q\n  documents: %+v", e.Error, e.FailedAt.URL, e.FailedAt.Title, e.FailedAt.Text, e.Docs)
	}
}

// consentPost is a consent form post as Chromium sent it.
type consentPost struct {
	Status       int    `json:"status"`
	SecFetchSite string `json:"secFetchSite"`
	Origin       string `json:"origin"`
	Referer      string `json:"referer"`
	CookieSent   bool   `json:"cookieSent"`
}

type consentPageView struct {
	URL, Title, Heading, Text string
	AllowButtons, DenyButtons int
	AllowVisible, DenyVisible bool
}

type browserCookie struct {
	Name, Domain, Path, SameSite string
	Secure, HTTPOnly             bool
}

// UnmarshalJSON reads Playwright's cookie (httpOnly, not HTTPOnly).
func (c *browserCookie) UnmarshalJSON(b []byte) error {
	var v struct {
		Name, Domain, Path, SameSite string
		Secure                       bool
		HTTPOnly                     bool `json:"httpOnly"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = browserCookie{v.Name, v.Domain, v.Path, v.SameSite, v.Secure, v.HTTPOnly}
	return nil
}

type browserDoc struct {
	Method, URL string
	Status      int
	Top         bool
}

// TestConsentPageInChromium runs the consent page of --auth proxy in real
// headless Chromium (testdata/browser/consent.mjs, playwright-core): it
// renders and is keyboard-usable; Allow ⇒ the development provider's login
// ⇒ the client's redirect URI with a code that the token endpoint takes
// (so the __Host- Secure cookies work on http://127.0.0.1); Deny ⇒
// access_denied; another origin can neither frame the page nor post the
// consent form.
func TestConsentPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the browser tests (make test runs them)")
	}
	chromium := needChromium(t)
	node, dir := oauthNode(t)
	script := oauthScript(t, dir, "testdata/browser/consent.mjs")

	// Everything from here on is bounded: 60 s for the whole browser run.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	s := startDevProxy(t)

	// The client: its redirect URI is a loopback server of ours, so the
	// browser's last stop is observable.
	var (
		mu   sync.Mutex
		hits []url.Values
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		hits = append(hits, r.URL.Query())
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>The app got the answer</title><p>You can close this window.</p>`)
	}))
	defer app.Close()
	const clientName = "Browser Notes Test"
	c := s.register(t, map[string]any{"client_name": clientName, "redirect_uris": []string{app.URL + "/cb"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	appHost := strings.TrimPrefix(app.URL, "http://")

	approveVerifier, approveChallenge := pkcePair()
	approveURL := c.authURL(approveChallenge, "approve-state", "notes:read", nil)
	_, denyChallenge := pkcePair()
	denyURL := c.authURL(denyChallenge, "deny-state", "notes:read notes:write", nil)
	_, frameChallenge := pkcePair()
	frameURL := c.authURL(frameChallenge, "frame-state", "notes:read", nil)
	_, victimChallenge := pkcePair()
	victimURL := c.authURL(victimChallenge, "victim-state", "notes:read", nil)

	// Another site: http://localhost:PORT is another origin and another
	// site than http://127.0.0.1:PORT of the authorization server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	framePage := template.Must(template.New("frame").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>framing</title></head>
<body><h1>Win a prize</h1><iframe id="f" name="victim" width="800" height="600" src="{{.}}" onload="document.title='frame loaded'"></iframe></body></html>`))
	forgePage := template.Must(template.New("forge").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>forging</title></head>
<body><form method="post" action="{{.Action}}"><input type="hidden" name="tx" value="{{.TX}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="decision" value="approve"></form><script>document.forms[0].submit()</script></body></html>`))
	evilSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/frame":
			framePage.Execute(w, frameURL)
		case "/forge":
			forgePage.Execute(w, map[string]string{"Action": s.base + "/authorize/consent", "TX": r.URL.Query().Get("tx"), "CSRF": r.URL.Query().Get("csrf")})
		default:
			http.NotFound(w, r)
		}
	})}
	go evilSrv.Serve(ln)
	defer evilSrv.Close()

	// Screenshots: kept in REMOTEMCP_BROWSER_ARTIFACTS if set (to look at
	// them), else in a temporary folder.
	outDir := os.Getenv("REMOTEMCP_BROWSER_ARTIFACTS")
	if outDir == "" {
		outDir = t.TempDir()
	} else if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir() // Playwright's fresh Chromium profile goes here

	in, _ := json.Marshal(map[string]any{
		"chromium": chromium, "outDir": outDir, "base": s.base, "redirect": c.redirect,
		"approveURL": approveURL, "denyURL": denyURL, "victimURL": victimURL,
		"framePage": evil + "/frame", "forgePage": evil + "/forge", "username": "carol", "stepMs": 10000,
	})
	res, chromiumCmd := runConsentScript(ctx, t, node, script, tmp, string(in))
	if !slicesHasPrefix(chromiumCmd, "--user-data-dir="+tmp+string(filepath.Separator)) {
		t.Errorf("chromium did not run with a fresh --user-data-dir under %s: %q", tmp, chromiumCmd)
	}
	t.Logf("Chromium %s", res.BrowserVersion)
	hitsNow := func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		return append([]url.Values(nil), hits...)
	}

	// 1. The consent page, as a person and the keyboard see it.
	t.Run("page", func(t *testing.T) {
		cp := &res.Consent
		if cp.Status != http.StatusOK {
			t.Fatalf("consent page status %d (%+v)", cp.Status, cp.scenarioEnd)
		}
		if !strings.Contains(cp.Page.Title, clientName) || !strings.Contains(cp.Page.Heading, clientName) {
			t.Errorf("consent page title %q, heading %q: want both to name %q", cp.Page.Title, cp.Page.Heading, clientName)
		}
		for _, want := range []string{appHost, "notes:read", "Read your notes"} {
			if !strings.Contains(cp.Page.Text, want) {
				t.Errorf("consent page does not show %q:\n%s", want, cp.Page.Text)
			}
		}
		if strings.Contains(cp.Page.Text, "notes:write") {
			t.Errorf("consent page for notes:read shows notes:write:\n%s", cp.Page.Text)
		}
		if cp.Page.AllowButtons != 1 || cp.Page.DenyButtons != 1 || !cp.Page.AllowVisible || !cp.Page.DenyVisible {
			t.Errorf("consent page buttons: %+v, want one visible Allow and one visible Deny", cp.Page)
		}
		focused := map[string]bool{}
		for _, f := range cp.TabOrder {
			if f.Tag == "button" {
				focused[f.Name] = true
				if !f.FocusVisible || !strings.HasPrefix(f.Outline, "solid") {
					t.Errorf("button %q focused by Tab shows no focus ring: focus-visible %v, outline %q", f.Name, f.FocusVisible, f.Outline)
				}
			}
		}
		if !focused["Allow"] || !focused["Deny"] {
			t.Errorf("Tab order %+v: want both Allow and Deny to take the keyboard focus", cp.TabOrder)
		}
		if !strings.Contains(cp.Headers.CSP, "frame-ancestors 'none'") || cp.Headers.XFO != "DENY" {
			t.Errorf("consent page headers %+v: want CSP frame-ancestors 'none' and X-Frame-Options DENY", cp.Headers)
		}
		checkHostCookie(t, "at the consent page", cp.CookiesAtConsent, "__Host-remotemcp-browser", s.base)
		if png, err := os.ReadFile(cp.Screenshot); err != nil || len(png) < 1000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("screenshot %q: %d bytes, %v: want a PNG", cp.Screenshot, len(png), err)
		} else {
			t.Logf("consent page screenshot: %s (%d bytes)", cp.Screenshot, len(png))
		}
	})

	// 2. Allow ⇒ login ⇒ the client, with a code the token endpoint takes.
	t.Run("allow", func(t *testing.T) {
		cp := &res.Consent
		if cp.Post.Status != 0 && (cp.Post.SecFetchSite != "same-origin" || !cp.Post.CookieSent) {
			t.Errorf("Allow was posted with %+v, want Sec-Fetch-Site same-origin and the browser cookie", cp.Post)
		}
		cp.ended(t)
		if !strings.HasPrefix(cp.LoginURL, s.base+"/dev-idp/authorize") || !strings.Contains(cp.LoginTitle, "Sign in") {
			t.Errorf("after Allow the browser was at %s (%q), want the development provider's login page", cp.LoginURL, cp.LoginTitle)
		}
		if !sawDoc(cp.Docs, http.MethodGet, s.base+"/callback") {
			t.Errorf("the browser never went through %s/callback: %+v", s.base, cp.Docs)
		}
		checkHostCookie(t, "after the sign-in", cp.CookiesAfter, "__Host-remotemcp-user", s.base)
		q := queryOf(t, cp.FinalURL, c.redirect)
		if q.Get("code") == "" || q.Get("state") != "approve-state" || q.Get("iss") != s.base || q.Get("error") != "" {
			t.Fatalf("authorization response %v: want code, state approve-state and iss %s", q, s.base)
		}
		if got := hitsNow(); len(got) == 0 || got[0].Get("code") != q.Get("code") {
			t.Fatalf("the client's redirect server saw %v, want first the code the browser ended with", got)
		}
		st, tok, _ := c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {approveVerifier},
			"redirect_uri": {c.redirect}, "resource": {s.resource}})
		if st != http.StatusOK || tok["scope"] != "notes:read" {
			t.Fatalf("token for the browser's code: %d %v", st, tok)
		}
		access, _ := tok["access_token"].(string)
		if st := s.mcpStatus(t, access); st != http.StatusOK {
			t.Errorf("whoami with the browser-obtained token: HTTP %d", st)
		}
	})

	// 3. Deny ⇒ access_denied at the client, no login.
	t.Run("deny", func(t *testing.T) {
		d := &res.Deny
		if d.Page.AllowButtons != 1 || !strings.Contains(d.Page.Text, "notes:write") {
			t.Errorf("deny flow: consent page %+v, want the page with notes:write", d.Page)
		}
		d.ended(t)
		q := queryOf(t, d.FinalURL, c.redirect)
		if q.Get("error") != "access_denied" || q.Get("state") != "deny-state" || q.Get("iss") != s.base || q.Get("code") != "" {
			t.Errorf("after Deny: %v, want error access_denied, state deny-state, iss, no code", q)
		}
		if sawDocPrefix(d.Docs, s.base+"/dev-idp/") {
			t.Errorf("Deny went to the login page: %+v", d.Docs)
		}
		found := false
		for _, h := range hitsNow() {
			found = found || (h.Get("error") == "access_denied" && h.Get("state") == "deny-state")
		}
		if !found {
			t.Errorf("the client's redirect server saw %v, want access_denied with state deny-state", hitsNow())
		}
	})

	// 4. Framing is refused.
	t.Run("frame", func(t *testing.T) {
		fr := &res.Frame
		fr.ended(t)
		if len(fr.Frames) != 1 {
			t.Errorf("framing page has frames %+v, want one", fr.Frames)
		}
		for _, f := range fr.Frames {
			if f.AllowButtons != 0 || strings.Contains(f.Text, clientName) {
				t.Errorf("the consent page rendered inside a frame of %s: %+v", evil, f)
			}
		}
		if !sawDoc(fr.Docs, http.MethodGet, s.base+"/authorize?") {
			t.Errorf("the frame never requested the authorization URL: %+v", fr.Docs)
		}
		refused := false
		for _, m := range fr.Console {
			if strings.Contains(m.Text, "frame-ancestors") || strings.Contains(m.Text, "X-Frame-Options") {
				refused = true
				t.Logf("Chromium: %s", m.Text)
			}
		}
		if !refused {
			t.Errorf("Chromium logged no frame-ancestors or X-Frame-Options refusal: %+v", fr.Console)
		}
	})

	// 5. A cross-site form post to /authorize/consent, even with the real
	// tx and csrf of the victim's open consent page, is refused, and the
	// victim's own Allow still works.
	t.Run("forge", func(t *testing.T) {
		fg := &res.Forge
		if fg.Status == 0 {
			fg.ended(t)
		}
		if !fg.HadFields {
			t.Errorf("the victim's consent page had no tx/csrf")
		}
		if fg.Status != http.StatusForbidden || !strings.Contains(fg.Title, "Request refused") {
			t.Errorf("cross-site consent post: %d %q %q, want 403 Request refused", fg.Status, fg.Title, fg.Text)
		}
		if fg.RequestHeaders.SecFetchSite != "cross-site" {
			t.Errorf("the forged post went with Sec-Fetch-Site %q, want cross-site", fg.RequestHeaders.SecFetchSite)
		}
		if fg.CookieSent {
			t.Errorf("Chromium sent the SameSite=Lax browser cookie with a cross-site POST")
		}
		if fg.FinalURL != s.base+"/authorize/consent" || sawDocPrefix(fg.Attacker.Docs, s.base+"/dev-idp/") || sawDocPrefix(fg.Attacker.Docs, c.redirect) {
			t.Errorf("the forged post led on: ended at %s via %+v", fg.FinalURL, fg.Attacker.Docs)
		}
		for _, h := range hitsNow() {
			if h.Get("state") == "victim-state" {
				t.Errorf("the client's redirect server got an answer for the victim's request: %v", h)
			}
		}
		fg.ended(t)
		if !strings.HasPrefix(fg.Victim.ThenURL, s.base+"/dev-idp/authorize") {
			t.Errorf("after the refused forgery the victim's own Allow went to %q, want the login page", fg.Victim.ThenURL)
		}
	})
}

// runConsentScript runs consent.mjs under ctx and returns its results and
// Chromium's command line. Node and Chromium are killed by PID (Chromium
// with its process group: Playwright starts it as a group leader) when
// the run ends, whatever happens.
func runConsentScript(ctx context.Context, t *testing.T, node, script, tmp, input string) (*browserResults, []string) {
	t.Helper()
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "CONSENT_TEST="+input, "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var chromiumPid int
	var pidMu sync.Mutex
	// killAll kills Chromium (a process group leader: Playwright starts
	// it detached) and node's process group, by their PIDs, unless they
	// already ended.
	nodeEnded := false
	killAll := func() {
		pidMu.Lock()
		defer pidMu.Unlock()
		if chromiumPid > 0 {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", chromiumPid)); err == nil && bytes.Contains(b, []byte("chromium")) {
				syscall.Kill(-chromiumPid, syscall.SIGKILL)
				syscall.Kill(chromiumPid, syscall.SIGKILL)
			}
		}
		if !nodeEnded {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	type line struct {
		ChromiumPid int             `json:"chromiumPid"`
		Cmdline     []string        `json:"cmdline"`
		Results     *browserResults `json:"results"`
	}
	var chromiumCmd []string
	done := make(chan *browserResults, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		var res *browserResults
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				continue
			}
			if l.ChromiumPid > 0 {
				pidMu.Lock()
				chromiumPid, chromiumCmd = l.ChromiumPid, l.Cmdline
				pidMu.Unlock()
			}
			if l.Results != nil {
				res = l.Results
			}
		}
		done <- res
	}()
	var res *browserResults
	werr := make(chan error, 1)
	select {
	case res = <-done: // node closed its output: it is ending
		go func() { werr <- cmd.Wait() }()
		select {
		case err = <-werr:
			nodeEnded = true
		case <-ctx.Done():
			err = fmt.Errorf("node did not exit: %w", ctx.Err())
			killAll()
			<-werr
		}
	case <-ctx.Done():
		err = fmt.Errorf("the browser run took too long: %w", ctx.Err())
		killAll()
		cmd.Wait()
	}
	killAll() // a Chromium that node left behind
	if err != nil || res == nil {
		t.Fatalf("consent.mjs: %v (results: %v)\nstderr:\n%s", err, res != nil, tail(stderr.Bytes(), 8000))
	}
	pidMu.Lock()
	defer pidMu.Unlock()
	return res, chromiumCmd
}

// checkHostCookie checks that the browser kept a __Host- cookie as such:
// host-only for the server, path /, Secure, HttpOnly, SameSite=Lax.
func checkHostCookie(t *testing.T, when string, jar []browserCookie, name, base string) {
	t.Helper()
	host := strings.Split(strings.TrimPrefix(base, "http://"), ":")[0]
	for _, c := range jar {
		if c.Name != name {
			continue
		}
		if c.Domain != host || c.Path != "/" || !c.Secure || !c.HTTPOnly || c.SameSite != "Lax" {
			t.Errorf("%s: cookie %+v, want host-only %s, path /, Secure, HttpOnly, SameSite Lax", when, c, host)
		}
		return
	}
	t.Errorf("%s: Chromium has no cookie %s (it has %+v): it refused the __Host- Secure cookie on %s", when, name, jar, base)
}

func sawDoc(docs []browserDoc, method, urlPrefix string) bool {
	for _, d := range docs {
		if d.Method == method && strings.HasPrefix(d.URL, urlPrefix) {
			return true
		}
	}
	return false
}

func sawDocPrefix(docs []browserDoc, urlPrefix string) bool {
	for _, d := range docs {
		if strings.HasPrefix(d.URL, urlPrefix) {
			return true
		}
	}
	return false
}

func queryOf(t *testing.T, u, prefix string) url.Values {
	t.Helper()
	if !strings.HasPrefix(u, prefix+"?") {
		t.Errorf("browser ended at %q, want %s", u, prefix)
		return nil
	}
	p, err := url.Parse(u)
	if err != nil {
		t.Errorf("%q: %v", u, err)
		return nil
	}
	return p.Query()
}

func slicesHasPrefix(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}
