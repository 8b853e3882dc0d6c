package main

// Helpers for end-to-end tests in which remotemcp sends the user's browser on
// to an UPSTREAM OpenID provider:
//
//   - startZitadel runs the example OP of github.com/zitadel/oidc
//     (testdata/upstream/zitadel, a module of its own so that our go.mod never
//     gains the dependency) with one confidential web client registered, as
//     an operator would register remotemcp at a real IdP.
//   - formBrowser is a headless browser that follows redirects and submits
//     the HTML forms it meets (the upstream login, our consent page) until
//     the flow redirects to a given URL.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The users of the zitadel example storage (storage.NewUserStore, whose
// first login name testdata/upstream/zitadel pins to @localhost).
const (
	zitadelUser     = "test-user@localhost"
	zitadelPassword = "verysecure"
	zitadelSubject  = "id1" // the sub of zitadelUser
	zitadelEmail    = "test-user@zitadel.ch"
)

// zitadelBuild is the OP binary, built once per test binary.
var zitadelBuild struct {
	once sync.Once
	path string
	err  error
}

// zitadelBinary builds testdata/upstream/zitadel offline, from the Go
// modules .ci/deps.sh downloaded. The binary goes to .cache/zitadelop
// (ignored by git, like .cache/npm), where .ci/deps.sh built it already,
// rather than a fresh temporary folder: nothing would remove a temporary
// folder at the end of the test binary, and with a stable output path
// `go build` finds the binary up to date and does not even relink it, so
// this costs well under a second unless the OP's source changed.
func zitadelBinary(t *testing.T) string {
	t.Helper()
	zitadelBuild.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			zitadelBuild.err = err
			return
		}
		out := filepath.Join(root, ".cache", "zitadelop")
		if err := os.MkdirAll(out, 0o755); err != nil {
			zitadelBuild.err = err
			return
		}
		bin := filepath.Join(out, "zitadelop")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = filepath.Join(root, "testdata", "upstream", "zitadel")
		// Its own go.mod and go.sum, never a go.work of the caller's;
		// -mod=readonly so a stale go.sum fails instead of being rewritten,
		// no VCS stamping, which would look at our repository; and
		// GOPROXY=off: a test downloads nothing, .ci/deps.sh does.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false", "GOPROXY=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			zitadelBuild.err = fmt.Errorf("go build in %s: %v\n%s\nits Go modules are missing? %s", cmd.Dir, err, b, depsHint)
			return
		}
		zitadelBuild.path = bin
		t.Logf("built the zitadel OP in %v", time.Since(start).Round(time.Millisecond))
	})
	if zitadelBuild.err != nil {
		t.Fatal(zitadelBuild.err)
	}
	return zitadelBuild.path
}

// firstLine is a process's stdout that hands its first line to line and
// drops the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	done bool
	line chan string // buffered, 1
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.done = true
		w.line <- string(w.buf[:i])
	}
	return len(p), nil
}

// startZitadel runs the zitadel example OP on a free loopback port with one
// confidential client (client_secret_basic or _post, PKCE optional, refresh
// tokens with offline_access) whose redirect URIs are redirectURIs. It
// returns the issuer (http://127.0.0.1:PORT, no trailing slash) and the
// client's credentials. The OP stops with the test.
func startZitadel(t *testing.T, redirectURIs ...string) (issuer, clientID, clientSecret string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the zitadel example OP, which needs a go build")
	}
	if len(redirectURIs) == 0 {
		t.Fatal("startZitadel: no redirect URI")
	}
	bin := zitadelBinary(t)
	clientID = "remotemcp-upstream"
	clientSecret = rand.Text() // a fresh one, so a test can't pass on a constant
	args := []string{"-addr", "127.0.0.1:0", "-client-id", clientID, "-client-secret", clientSecret, "-watch-stdin"}
	for _, u := range redirectURIs {
		args = append(args, "-redirect-uri", u)
	}
	cmd := exec.Command(bin, args...)
	stdout := &firstLine{line: make(chan string, 1)}
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// The OP exits when this pipe closes (-watch-stdin): even if the test
	// binary is killed before its cleanups run, no OP is left behind.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("zitadel OP stderr:\n%s", stderr.String())
		}
	})

	select {
	case line := <-stdout.line:
		var ok bool
		if issuer, ok = strings.CutPrefix(line, "ISSUER "); !ok {
			t.Fatalf("zitadel OP printed %q, want ISSUER <url>", line)
		}
	case err := <-exited:
		t.Fatalf("zitadel OP exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(e2eTimeout):
		t.Fatalf("zitadel OP printed no issuer in %v\n%s", e2eTimeout, stderr.String())
	}

	// It prints the issuer once it accepts connections; the discovery
	// document is the proof that the whole provider answers.
	err = waitFor(t, e2eTimeout, func() error {
		var doc struct {
			Issuer string `json:"issuer"`
		}
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err != nil {
			return err
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && doc.Issuer == issuer {
			return nil
		}
		return fmt.Errorf("status %d, issuer %q, %v", resp.StatusCode, doc.Issuer, err)
	})
	if err != nil {
		t.Fatalf("zitadel OP discovery at %s: %v", issuer, err)
	}
	return issuer, clientID, clientSecret
}

// loopbackJar is a cookie jar that treats http://127.0.0.1 and
// http://localhost as the secure contexts browsers take them for: it stores
// and sends Secure and __Host- cookies there, which net/http/cookiejar alone
// drops for any http URL. It does so by showing cookiejar the https form of
// such URLs; cookiejar otherwise keeps browser rules (hosts, paths, expiry),
// including that cookies are shared between ports of one host.
type loopbackJar struct{ jar *cookiejar.Jar }

func (j loopbackJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(secureLoopback(u), cookies)
}

func (j loopbackJar) Cookies(u *url.URL) []*http.Cookie {
	return j.jar.Cookies(secureLoopback(u))
}

func secureLoopback(u *url.URL) *url.URL {
	if u.Scheme != "http" || !isLoopbackHost(u.Hostname()) {
		return u
	}
	c := *u
	c.Scheme = "https"
	return &c
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// formBrowser is a headless browser for authorization flows: it follows
// redirects and submits the HTML forms of the pages it gets, sending the
// cookies and the request headers (Origin, Referer, Sec-Fetch-*) that a
// browser would, so servers that check them for CSRF see a real-looking
// browser. It runs no JavaScript.
type formBrowser struct {
	client *http.Client
	// hostFill holds form values per host (URL.Host, "host:port"): the
	// upstream login and our consent page ask for different fields.
	hostFill map[string]map[string]string
	// maxSteps bounds the requests of one run.
	maxSteps int
	// logf, when set, gets one line per request.
	logf func(format string, args ...any)
}

func newFormBrowser(logf func(format string, args ...any)) *formBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err) // cookiejar.New fails on nothing when given no options
	}
	return &formBrowser{
		client: &http.Client{
			Jar: loopbackJar{jar},
			// run follows redirects itself, to stop at stopPrefix and to
			// compute each hop's headers.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hostFill: map[string]map[string]string{},
		maxSteps: 25,
		logf:     logf,
	}
}

// fillHost sets the form values to use on the pages of the host of rawURL
// (an issuer or base URL); they take precedence over run's fill.
func (b *formBrowser) fillHost(rawURL string, fields map[string]string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	b.hostFill[u.Host] = fields
}

// browserNav is one request of a navigation and what its headers depend
// on.
type browserNav struct {
	method string
	url    *url.URL
	body   string // application/x-www-form-urlencoded, for POST
	// doc is the page that started the navigation (a form's page), nil when
	// the user "typed" the URL: it is the Origin, the Referer and the
	// reference of Sec-Fetch-Site.
	doc *url.URL
	// chain is the URLs of the navigation so far, redirects included, this
	// one last.
	chain []*url.URL
	// noReferrer: the page's Referrer-Policy is no-referrer, with which a
	// browser sends no Referer and posts forms with Origin: null.
	noReferrer bool
}

// run GETs startURL and goes on like a user who fills and submits every form
// shown: redirects are followed; a 200 HTML page with a <form> is submitted
// with its defaults and hidden inputs, overridden by fill and then by the
// host's fillHost values (only for fields the form has), together with the
// submit button pressed. The form pressed is the first one having a submit
// button whose name, value or label is press, else the first form, with its
// first submit button (what pressing Enter does). run stops when a
// navigation would go to a URL starting with stopPrefix, and returns that URL
// without requesting it.
func (b *formBrowser) run(ctx context.Context, startURL, stopPrefix string, fill map[string]string, press string) (*url.URL, error) {
	start, err := url.Parse(startURL)
	if err != nil {
		return nil, err
	}
	nav := &browserNav{method: http.MethodGet, url: start, chain: []*url.URL{start}}
	var trace []string // for errors: what was requested, and the answer
	fail := func(format string, args ...any) error {
		return fmt.Errorf("formBrowser: %s\n  steps:\n    %s", fmt.Sprintf(format, args...), strings.Join(trace, "\n    "))
	}
	var submitted *htmlForm // the form submitted last, to notice it coming back
	for step := 0; ; step++ {
		if strings.HasPrefix(nav.url.String(), stopPrefix) {
			if nav.method != http.MethodGet {
				return nil, fail("a form POSTs to %s, which has the stop prefix: unsupported", nav.url)
			}
			return nav.url, nil
		}
		if step == b.maxSteps {
			return nil, fail("no redirect to %s within %d requests", stopPrefix, b.maxSteps)
		}
		resp, page, err := b.do(ctx, nav)
		if err != nil {
			return nil, fail("%s %s: %v", nav.method, nav.url, err)
		}
		trace = append(trace, fmt.Sprintf("%s %s -> %d %s", nav.method, nav.url, resp.StatusCode, resp.Header.Get("Location")))
		if b.logf != nil {
			b.logf("formBrowser: %s", trace[len(trace)-1])
		}

		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc, err := nav.url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				return nil, fail("redirect without a usable Location: %q", resp.Header.Get("Location"))
			}
			next := &browserNav{method: http.MethodGet, url: loc, doc: nav.doc, chain: append(nav.chain[:len(nav.chain):len(nav.chain)], loc)}
			// 307 and 308 repeat the request as it was; the others turn
			// it into a GET, as browsers do.
			if resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect {
				next.method, next.body = nav.method, nav.body
			}
			nav = next
			continue
		case http.StatusOK:
		default:
			return nil, fail("%s %s: status %d: %s", nav.method, nav.url, resp.StatusCode, pageText(page))
		}

		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
			return nil, fail("%s %s: a %q page, not HTML: %s", nav.method, nav.url, mt, pageText(page))
		}
		forms := parseForms(page)
		form, button := pickForm(forms, press)
		if form == nil {
			return nil, fail("%s %s: a page without a form: %s", nav.method, nav.url, pageText(page))
		}
		action, err := nav.url.Parse(form.action)
		if err != nil {
			return nil, fail("form action %q: %v", form.action, err)
		}
		// A form answered by itself again (same action, same fields) was
		// refused: a wrong password, a missing field. Going on would loop.
		if submitted != nil && submitted.sameAs(form, action) {
			return nil, fail("the form of %s came back after it was submitted: %s", action, pageText(page))
		}
		values := form.values()
		for _, fields := range []map[string]string{fill, b.hostFill[nav.url.Host]} {
			for name, v := range fields {
				if values.Has(name) {
					values.Set(name, v)
				}
			}
		}
		if button != nil && button.name != "" {
			values.Add(button.name, button.value)
		}

		form.resolved = action
		submitted = form
		next := &browserNav{method: form.method, doc: nav.url, noReferrer: strings.EqualFold(strings.TrimSpace(resp.Header.Get("Referrer-Policy")), "no-referrer")}
		switch form.method {
		case http.MethodGet:
			u := *action
			u.RawQuery = values.Encode()
			u.Fragment = ""
			next.url = &u
		case http.MethodPost:
			if form.enctype != "" && form.enctype != "application/x-www-form-urlencoded" {
				return nil, fail("form of %s: enctype %q is not supported", nav.url, form.enctype)
			}
			next.url = action
			next.body = values.Encode()
		default:
			return nil, fail("form of %s: method %q is not supported", nav.url, form.method)
		}
		next.chain = []*url.URL{next.url}
		nav = next
	}
}

// do sends one navigation request with a browser's headers and returns the
// response (body closed) and up to 1 MiB of its body.
func (b *formBrowser) do(ctx context.Context, nav *browserNav) (*http.Response, string, error) {
	var body io.Reader
	if nav.method == http.MethodPost {
		body = strings.NewReader(nav.body)
	}
	req, err := http.NewRequestWithContext(ctx, nav.method, nav.url.String(), body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("User-Agent", "remotemcp-test-formBrowser")
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-User", "?1")
	req.Header.Set("Sec-Fetch-Site", fetchSite(nav))
	if nav.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", requestOrigin(nav))
	}
	if nav.doc != nil && !nav.noReferrer {
		// strict-origin-when-cross-origin, browsers' default policy.
		if sameOrigin(nav.url, nav.doc) {
			ref := *nav.doc
			ref.Fragment = ""
			req.Header.Set("Referer", ref.String())
		} else {
			req.Header.Set("Referer", urlOrigin(nav.doc)+"/")
		}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", err
	}
	return resp, string(page), nil
}

// fetchSite is Sec-Fetch-Site as the Fetch Metadata spec computes it for a
// navigation: "none" when the user started it, else the loosest relation
// between the initiating page and every URL of the redirect chain.
func fetchSite(nav *browserNav) string {
	if nav.doc == nil {
		return "none"
	}
	site := "same-origin"
	for _, u := range nav.chain {
		switch {
		case sameOrigin(u, nav.doc):
		case sameSite(u, nav.doc):
			site = "same-site"
		default:
			return "cross-site"
		}
	}
	return site
}

// requestOrigin is the Origin header of a form POST: the page's origin, or
// "null" once a redirect has taken the request through another origin.
func requestOrigin(nav *browserNav) string {
	if nav.noReferrer {
		return "null"
	}
	for _, u := range nav.chain[:len(nav.chain)-1] {
		if !sameOrigin(u, nav.doc) {
			return "null"
		}
	}
	return urlOrigin(nav.doc)
}

func urlOrigin(u *url.URL) string { return u.Scheme + "://" + u.Host }

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// sameSite compares scheme and host name, not port, as schemeful same-site
// does; a registrable-domain match is not needed on loopback.
func sameSite(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname())
}

// htmlForm is a <form> of a page, as parseForms reads it.
type htmlForm struct {
	action  string // as written, "" for the page itself
	method  string // GET or POST
	enctype string
	fields  [][2]string // successful controls: name, value
	buttons []formButton
	// resolved is the absolute action, set by run when it submits the form.
	resolved *url.URL
}

// formButton is a submit button: <button> (of type submit) or <input
// type=submit|image>.
type formButton struct{ name, value, label string }

func (f *htmlForm) values() url.Values {
	v := url.Values{}
	for _, kv := range f.fields {
		v.Add(kv[0], kv[1])
	}
	return v
}

// sameAs reports whether g, whose action resolves to action, is the form f
// shown again: same method, action and field names.
func (f *htmlForm) sameAs(g *htmlForm, action *url.URL) bool {
	if f.method != g.method || f.resolved.String() != action.String() || len(f.fields) != len(g.fields) {
		return false
	}
	for i := range f.fields {
		if f.fields[i][0] != g.fields[i][0] {
			return false
		}
	}
	return true
}

// pickForm returns the form having a submit button whose name, value or
// label is press, with that button; otherwise the first form with its first
// submit button (nil if it has none).
func pickForm(forms []*htmlForm, press string) (*htmlForm, *formButton) {
	if press != "" {
		for _, f := range forms {
			for i, b := range f.buttons {
				if b.name == press || b.value == press || b.label == press {
					return f, &f.buttons[i]
				}
			}
		}
	}
	if len(forms) == 0 {
		return nil, nil
	}
	if len(forms[0].buttons) == 0 {
		return forms[0], nil
	}
	return forms[0], &forms[0].buttons[0]
}

// htmlTag is a start or end tag of a page.
type htmlTag struct {
	name  string // lower case
	end   bool
	attrs map[string]string // lower-case names; values unescaped
	// at and after are the offsets of its '<' and just past its '>'.
	at, after int
}

func (t htmlTag) has(attr string) bool { _, ok := t.attrs[attr]; return ok }

// parseForms reads the forms of an HTML page and their controls: enough of
// HTML for the pages of authorization servers (no golang.org/x/net/html in
// our go.mod). Controls outside a <form>, and form= attributes, are ignored;
// disabled controls are left out, as browsers do.
func parseForms(page string) []*htmlForm {
	tags := scanTags(page)
	var forms []*htmlForm
	var form *htmlForm
	// An open <select>: its name, and the value chosen so far.
	var selName, selValue string
	var inSelect, selSeen, selChosen, selDisabled bool
	for i, t := range tags {
		if t.name == "form" {
			if t.end {
				form = nil
				continue
			}
			form = &htmlForm{
				action:  t.attrs["action"],
				method:  strings.ToUpper(t.attrs["method"]),
				enctype: strings.ToLower(t.attrs["enctype"]),
			}
			if form.method == "" {
				form.method = http.MethodGet
			}
			forms = append(forms, form)
			continue
		}
		if form == nil {
			continue
		}
		name, disabled := t.attrs["name"], t.has("disabled")
		switch {
		case t.name == "input" && !t.end:
			switch typ := strings.ToLower(t.attrs["type"]); typ {
			case "submit", "image":
				if !disabled {
					form.buttons = append(form.buttons, formButton{name: name, value: t.attrs["value"], label: t.attrs["value"]})
				}
			case "checkbox", "radio":
				if name != "" && !disabled && t.has("checked") {
					v, ok := t.attrs["value"]
					if !ok {
						v = "on"
					}
					form.fields = append(form.fields, [2]string{name, v})
				}
			case "button", "reset", "file":
			default: // text, hidden, password, email, …
				if name != "" && !disabled {
					form.fields = append(form.fields, [2]string{name, t.attrs["value"]})
				}
			}
		case t.name == "button" && !t.end:
			typ := strings.ToLower(t.attrs["type"])
			if (typ == "" || typ == "submit") && !disabled {
				form.buttons = append(form.buttons, formButton{name: name, value: t.attrs["value"], label: textUntil(page, tags[i+1:], t, "button")})
			}
		case t.name == "textarea" && !t.end:
			if name != "" && !disabled {
				v := textBetween(page, t, tags[i+1:])
				v = strings.TrimPrefix(v, "\n") // the newline after <textarea> is not content
				form.fields = append(form.fields, [2]string{name, html.UnescapeString(v)})
			}
		case t.name == "select" && !t.end:
			inSelect, selName, selValue, selSeen, selChosen, selDisabled = true, name, "", false, false, disabled
		case t.name == "option" && !t.end && inSelect:
			v, ok := t.attrs["value"]
			if !ok {
				v = strings.Join(strings.Fields(textBetween(page, t, tags[i+1:])), " ")
				v = html.UnescapeString(v)
			}
			// The last selected option, else the first one.
			if t.has("selected") {
				selValue, selChosen = v, true
			} else if !selSeen && !selChosen {
				selValue = v
			}
			selSeen = true
		case t.name == "select" && t.end && inSelect:
			if selName != "" && !selDisabled {
				form.fields = append(form.fields, [2]string{selName, selValue})
			}
			inSelect = false
		}
	}
	return forms
}

// textBetween is the raw text from the end of tag t to the next tag.
func textBetween(page string, t htmlTag, rest []htmlTag) string {
	end := len(page)
	if len(rest) > 0 {
		end = rest[0].at
	}
	return page[t.after:end]
}

// textUntil is the text, tags removed, from the end of t to the first </name>.
func textUntil(page string, rest []htmlTag, t htmlTag, name string) string {
	end := len(page)
	for _, r := range rest {
		if r.end && r.name == name {
			end = r.at
			break
		}
	}
	return pageText(page[t.after:end])
}

// pageText is the text of an HTML fragment with tags removed, whitespace
// collapsed, and cut to 400 bytes: what errors quote of a page.
func pageText(page string) string {
	var b strings.Builder
	pos, skip := 0, false
	for _, t := range scanTags(page) {
		if !skip {
			b.WriteString(page[pos:t.at])
		}
		b.WriteByte(' ')
		pos = t.after
		// The text of a script or a style is no text of the page.
		skip = !t.end && (t.name == "script" || t.name == "style")
	}
	b.WriteString(page[pos:])
	s := strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// scanTags returns the tags of page in order. The content of <script>,
// <style>, <textarea> and <title> is raw text, where '<' starts no tag.
func scanTags(page string) []htmlTag {
	var tags []htmlTag
	lower := asciiLower(page)
	for i := 0; i < len(page); {
		j := strings.IndexByte(page[i:], '<')
		if j < 0 {
			break
		}
		i += j
		// Comments, doctypes and processing instructions become tags named
		// "!", which parseForms ignores and pageText removes.
		var skip int
		switch {
		case strings.HasPrefix(page[i:], "<!--"):
			if skip = strings.Index(page[i+4:], "-->"); skip >= 0 {
				skip += 4 + 3
			}
		case strings.HasPrefix(page[i:], "<!"), strings.HasPrefix(page[i:], "<?"):
			if skip = strings.IndexByte(page[i:], '>'); skip >= 0 {
				skip++
			}
		}
		if skip < 0 {
			return tags
		}
		if skip > 0 {
			tags = append(tags, htmlTag{name: "!", at: i, after: i + skip})
			i += skip
			continue
		}
		t, n, ok := parseTag(page[i:])
		if !ok {
			i++
			continue
		}
		t.at, t.after = i, i+n
		tags = append(tags, t)
		i += n
		switch t.name {
		case "script", "style", "textarea", "title":
			if t.end {
				break
			}
			k := strings.Index(lower[i:], "</"+t.name)
			if k < 0 {
				return tags
			}
			// Skipping here leaves the raw text between t and the next
			// tag, which is the end tag.
			i += k
		}
	}
	return tags
}

// parseTag parses the tag s begins with and returns it and its length.
func parseTag(s string) (htmlTag, int, bool) {
	t := htmlTag{attrs: map[string]string{}}
	p := 1
	if p < len(s) && s[p] == '/' {
		t.end = true
		p++
	}
	if p >= len(s) || !isASCIILetter(s[p]) {
		return t, 0, false
	}
	q := p
	for q < len(s) && !isHTMLSpace(s[q]) && s[q] != '/' && s[q] != '>' {
		q++
	}
	t.name = asciiLower(s[p:q])
	p = q
	for {
		for p < len(s) && (isHTMLSpace(s[p]) || s[p] == '/') {
			p++
		}
		if p >= len(s) {
			return t, 0, false
		}
		if s[p] == '>' {
			return t, p + 1, true
		}
		q := p
		for q < len(s) && !isHTMLSpace(s[q]) && s[q] != '=' && s[q] != '>' && (s[q] != '/' || q == p) {
			q++
		}
		name := asciiLower(s[p:q])
		p = q
		for p < len(s) && isHTMLSpace(s[p]) {
			p++
		}
		value := ""
		if p < len(s) && s[p] == '=' {
			p++
			for p < len(s) && isHTMLSpace(s[p]) {
				p++
			}
			if p < len(s) && (s[p] == '"' || s[p] == '\'') {
				k := strings.IndexByte(s[p+1:], s[p])
				if k < 0 {
					return t, 0, false
				}
				value = s[p+1 : p+1+k]
				p += k + 2
			} else {
				q := p
				for q < len(s) && !isHTMLSpace(s[q]) && s[q] != '>' {
					q++
				}
				value = s[p:q]
				p = q
			}
		}
		if _, dup := t.attrs[name]; !dup { // the first of a repeated attribute counts
			t.attrs[name] = html.UnescapeString(value)
		}
	}
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// asciiLower lower-cases ASCII letters only, so offsets stay those of s
// (strings.ToLower may change the length of non-ASCII text).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// TestZitadelUpstream checks startZitadel and formBrowser against each
// other: a complete authorization code flow of a confidential client with
// PKCE at the zitadel example OP, then userinfo and a refresh.
func TestZitadelUpstream(t *testing.T) {
	// The redirect URI is a real listener that fails the test if the
	// browser goes past the stop prefix instead of returning the URL.
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the browser requested the redirect URI %s", r.URL)
	}))
	defer callback.Close()
	redirectURI := callback.URL + "/callback"

	issuer, clientID, clientSecret := startZitadel(t, redirectURI)
	// After startZitadel: its first build can take a minute on a cold cache.
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()

	var meta struct {
		Issuer           string   `json:"issuer"`
		AuthEndpoint     string   `json:"authorization_endpoint"`
		TokenEndpoint    string   `json:"token_endpoint"`
		UserinfoEndpoint string   `json:"userinfo_endpoint"`
		PKCEMethods      []string `json:"code_challenge_methods_supported"`
	}
	upstreamGetJSON(t, ctx, issuer+"/.well-known/openid-configuration", "", &meta)
	if meta.Issuer != issuer || meta.AuthEndpoint == "" || meta.TokenEndpoint == "" || meta.UserinfoEndpoint == "" {
		t.Fatalf("discovery: %+v", meta)
	}
	if len(meta.PKCEMethods) != 1 || meta.PKCEMethods[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %q, want [S256]", meta.PKCEMethods)
	}

	conf := &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   meta.AuthEndpoint,
			TokenURL:  meta.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInHeader, // client_secret_basic
		},
		RedirectURL: redirectURI,
		// offline_access is what earns a refresh token; openid is what puts
		// sub into the userinfo response.
		Scopes: []string{"openid", "profile", "email", "offline_access"},
	}
	verifier := oauth2.GenerateVerifier()
	state := rand.Text()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	b := newFormBrowser(t.Logf)
	b.fillHost(issuer, map[string]string{"username": zitadelUser, "password": zitadelPassword})
	got, err := b.run(ctx, authURL, redirectURI, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	q := got.Query()
	if q.Get("state") != state || q.Get("code") == "" || q.Has("error") {
		t.Fatalf("redirected to %s, want a code and state %q", got, state)
	}

	// PKCE is enforced once a challenge was sent: a wrong verifier is
	// refused (and, in this OP, does not use the code up).
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Fatal("the code was exchanged with a wrong code_verifier")
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Type() != "Bearer" {
		t.Fatalf("token response: access %q, refresh %q, type %q", tok.AccessToken, tok.RefreshToken, tok.Type())
	}
	if idt, _ := tok.Extra("id_token").(string); idt == "" {
		t.Error("no id_token in the token response")
	}
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("the code was exchanged twice")
	}

	var info struct {
		Sub               string `json:"sub"`
		Email             string `json:"email"`
		PreferredUsername string `json:"preferred_username"`
	}
	upstreamGetJSON(t, ctx, meta.UserinfoEndpoint, tok.AccessToken, &info)
	if info.Sub != zitadelSubject || info.Email != zitadelEmail || info.PreferredUsername != zitadelUser {
		t.Errorf("userinfo = %+v, want sub %q, email %q, preferred_username %q", info, zitadelSubject, zitadelEmail, zitadelUser)
	}

	// Refresh once, with the secret in the body this time
	// (client_secret_post), which the client accepts too.
	post := *conf
	post.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	fresh, err := post.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == "" || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: access %q (was %q), refresh %q (was %q): want both new", fresh.AccessToken, tok.AccessToken, fresh.RefreshToken, tok.RefreshToken)
	}
	info.Sub = ""
	upstreamGetJSON(t, ctx, meta.UserinfoEndpoint, fresh.AccessToken, &info)
	if info.Sub != zitadelSubject {
		t.Errorf("userinfo after refresh: sub %q, want %q", info.Sub, zitadelSubject)
	}
	// Refresh tokens rotate: the first one is spent.
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Error("a spent refresh token was accepted")
	}
}

// upstreamGetJSON GETs u (with a Bearer token if token is set), wants a 200, and
// decodes the JSON body into v.
func upstreamGetJSON(t *testing.T, ctx context.Context, u, token string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}
