package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// An oauthClient is an MCP client going through remotemcp's authorization
// server headlessly, as cmd/remotemcp's proxy tests do: dynamic
// registration, the authorization request, our consent page, the
// development provider's login form, our callback, and the token endpoint.
// It is a browser only as far as those pages need: cookies, and the
// Sec-Fetch-Site and Origin headers of a same-origin form post.
type oauthClient struct {
	base, resource string
	hc             *http.Client // no redirects followed, no cookies
	id, redirect   string
}

// tokens is a token response.
type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

func newOAuthClient(base string, hc *http.Client) *oauthClient {
	c := *hc
	c.Jar = nil
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &oauthClient{base: base, resource: base + "/mcp", hc: &c, redirect: "http://127.0.0.1:9/cb"}
}

// register is RFC 7591 registration of a public client.
func (c *oauthClient) register(ctx context.Context) error {
	body := `{"client_name":"mcpbench","redirect_uris":["` + c.redirect + `"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.ClientID == "" {
		return statusErr("register", resp.StatusCode, b)
	}
	c.id = out.ClientID
	return nil
}

// authorize runs the browser part as user and exchanges the code.
func (c *oauthClient) authorize(ctx context.Context, user, scope string) (*tokens, error) {
	verifier := randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	state := randomString(8)
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {state}, "resource": {c.resource}, "scope": {scope}}
	b := &browser{hc: c.hc, cookies: map[string]string{}}
	got, err := b.run(ctx, c.base+"/authorize?"+q.Encode(), c.redirect, map[string]string{"decision": "approve", "username": user, "action": "allow"})
	if err != nil {
		return nil, err
	}
	if got.Query().Get("state") != state || got.Query().Get("code") == "" {
		return nil, fmt.Errorf("authorization response %s: want a code and our state", got.RawQuery)
	}
	return c.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {got.Query().Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {c.redirect}, "resource": {c.resource}})
}

// refresh is a refresh-token grant.
func (c *oauthClient) refresh(ctx context.Context, rt string) (*tokens, error) {
	return c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {c.resource}})
}

func (c *oauthClient) token(ctx context.Context, form url.Values) (*tokens, error) {
	form.Set("client_id", c.id)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var t tokens
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &t) != nil || t.Access == "" {
		return nil, statusErr("token", resp.StatusCode, b)
	}
	return &t, nil
}

// flow is a whole registration ⇒ authorize ⇒ token flow.
func flow(ctx context.Context, base string, hc *http.Client, user string) (*oauthClient, *tokens, error) {
	c := newOAuthClient(base, hc)
	if err := c.register(ctx); err != nil {
		return nil, nil, err
	}
	t, err := c.authorize(ctx, user, "notes:read")
	return c, t, err
}

// browser follows redirects and submits the forms of our consent page and
// the development provider's login page.
type browser struct {
	hc      *http.Client
	mu      sync.Mutex
	cookies map[string]string // one loopback host: name → value
}

var (
	formRe   = regexp.MustCompile(`(?is)<form[^>]*>`)
	actionRe = regexp.MustCompile(`(?i)action="([^"]*)"`)
	inputRe  = regexp.MustCompile(`(?i)<input[^>]*type="hidden"[^>]*name="([^"]*)"[^>]*value="([^"]*)"`)
)

// run GETs start and goes on until a redirect to stop, which it returns.
// A page's form is posted with its hidden fields plus those of fill that
// the page names.
func (b *browser) run(ctx context.Context, start, stop string, fill map[string]string) (*url.URL, error) {
	method, target, body := http.MethodGet, start, ""
	site := "none"
	var origin string
	for range 12 {
		if strings.HasPrefix(target, stop) {
			return url.Parse(target)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Sec-Fetch-Site", site)
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", origin)
		}
		b.addCookies(req)
		resp, err := b.hc.Do(req)
		if err != nil {
			return nil, err
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		b.keepCookies(resp)
		here := req.URL
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := here.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, err
			}
			method, target, body = http.MethodGet, loc.String(), ""
			if site != "none" && loc.Host != here.Host {
				site = "cross-site"
			}
			continue
		case resp.StatusCode != http.StatusOK:
			return nil, statusErr(method+" "+here.Path, resp.StatusCode, page)
		}
		form := formRe.Find(page)
		if form == nil {
			return nil, fmt.Errorf("%s: a page without a form: %.300s", here.Path, page)
		}
		action := here
		if m := actionRe.FindSubmatch(form); m != nil && len(m[1]) > 0 {
			if action, err = here.Parse(html.UnescapeString(string(m[1]))); err != nil {
				return nil, err
			}
		}
		v := url.Values{}
		for _, m := range inputRe.FindAllSubmatch(page, -1) {
			v.Set(html.UnescapeString(string(m[1])), html.UnescapeString(string(m[2])))
		}
		for k, val := range fill {
			if strings.Contains(string(page), `name="`+k+`"`) {
				v.Set(k, val)
			}
		}
		method, target, body = http.MethodPost, action.String(), v.Encode()
		site, origin = "same-origin", here.Scheme+"://"+here.Host
	}
	return nil, errors.New("browser: no redirect to the client within 12 requests")
}

func (b *browser) addCookies(req *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
}

func (b *browser) keepCookies(resp *http.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			delete(b.cookies, c.Name)
			continue
		}
		b.cookies[c.Name] = c.Value
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
