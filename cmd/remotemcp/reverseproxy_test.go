package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
)

// reverseProxyURL is the public URL of a server behind a reverse proxy on
// the same host: the listener is loopback, the clients are not.
const reverseProxyURL = "https://mcp.example.com"

// TestLoopbackBehindReverseProxy starts the usual production shape,
// --listen 127.0.0.1:<port> --public-url https://mcp.example.com, and checks
// that no development behaviour is on: --auth none, --fixtures and the
// development identity provider are refused at start, and a loopback http
// client id is not fetched as a metadata document.
func TestLoopbackBehindReverseProxy(t *testing.T) {
	t.Parallel()
	shape := []string{"--listen", "127.0.0.1:0", "--public-url", reverseProxyURL}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"auth none", nil, []string{"--auth none", "both the listener and --public-url", reverseProxyURL}},
		{"fixtures", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--fixtures", "conformance"}, []string{"--fixtures conformance", "loopback only"}},
		{"development identity provider", []string{"--auth", "proxy"}, []string{"--upstream dev", "non-loopback"}},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, append(shape[:len(shape):len(shape)], tc.args...), func(string) string { return "" }, &stdout, &stderr)
			if err == nil {
				t.Fatalf("started; want a refusal. stdout: %s", stdout.String())
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}

	t.Run("loopback client metadata document not fetched", func(t *testing.T) {
		// A service of the host's own, which a caller behind the proxy
		// must not be able to probe through the document fetcher.
		var hits atomic.Int32
		internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "INTERNAL-SERVICE")
		}))
		t.Cleanup(internal.Close)

		// A real (if development) OpenID provider as the upstream, since
		// --upstream dev is refused in this shape.
		idpSrv := httptest.NewUnstartedServer(nil)
		issuer := "http://" + idpSrv.Listener.Addr().String() + "/idp"
		idp, err := devidp.New(devidp.Options{Issuer: issuer, ClientID: "remotemcp", ClientSecret: "upstream-secret",
			RedirectURIs: []string{reverseProxyURL + "/callback"}})
		if err != nil {
			t.Fatal(err)
		}
		idpSrv.Config.Handler = idp.Handler()
		idpSrv.Start()
		t.Cleanup(idpSrv.Close)

		ln, _ := reserve(t)
		env := map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "remotemcp", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "upstream-secret"}
		cfg, err := parseConfig([]string{"--listen", ln.Addr().String(), "--public-url", reverseProxyURL, "--auth", "proxy",
			"--rate-limits", "off", "--upstream-issuer", issuer}, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close(); a.close() })

		_, challenge := pkcePair()
		clientID := internal.URL + "/admin/status"
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"http://127.0.0.1:9/cb"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"x"},
			"resource": {reverseProxyURL + "/mcp"}, "scope": {atkRead}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ln.Addr().String()+"/authorize?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "mcp.example.com" // as the reverse proxy forwards it
		req.Header.Set("Accept", "text/html")
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		atkErrorPage(t, http.StatusBadRequest, resp.StatusCode, resp.Header, string(page))
		if n := hits.Load(); n != 0 {
			t.Errorf("the loopback URL %s was fetched %d times as a client metadata document", clientID, n)
		}
		text := pageText(string(page))
		for _, leak := range []string{"418", "teapot", "Content-Type", "INTERNAL-SERVICE", "JSON"} {
			if strings.Contains(text, leak) {
				t.Errorf("the error page tells what the loopback URL answered (%q): %s", leak, text)
			}
		}
	})
}

// TestLoopbackOriginsBehindReverseProxy: a browser page on a loopback
// origin may call /mcp only when the listener and the public URL are both
// loopback; behind a reverse proxy it is just another origin, refused
// unless --allowed-origins lists it.
func TestLoopbackOriginsBehindReverseProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, publicURL, host string
		wantAllowed           bool
	}{
		{"development", "http://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"behind a reverse proxy", reverseProxyURL, "mcp.example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// --upstream github: an upstream that is not asked anything at
			// start, and allowed off loopback.
			env := map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "id", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "secret"}
			cfg, err := parseConfig([]string{"--listen", "127.0.0.1:8080", "--public-url", tc.publicURL,
				"--auth", "proxy", "--upstream", "github"}, func(k string) string { return env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.close)
			// A CORS preflight, which carries no credentials: the Origin
			// check answers it.
			req := httptest.NewRequest(http.MethodOptions, "http://"+tc.host+"/mcp", nil)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Origin", "http://localhost:5173")
			rec := httptest.NewRecorder()
			a.handler.ServeHTTP(rec, req)
			if allowed := rec.Code != http.StatusForbidden; allowed != tc.wantAllowed {
				t.Errorf("Origin http://localhost:5173 with public URL %s: %d %s; want allowed=%v", tc.publicURL, rec.Code, rec.Body, tc.wantAllowed)
			}
		})
	}
}
