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
			cfg, err := parseConfig([]string{"--listen", "127.0.0.1:8080", "--public-url", tc.publicURL,
				"--auth", "jwt", "--issuer", "https://as.example.com", "--jwks-url", "https://as.example.com/keys"},
				func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			var cl closers
			t.Cleanup(cl.close)
			st, err := newState(t.Context(), cfg, log, &cl)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := newRegistry(t.Context(), t.Context(), cfg, log, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := newMCPHandler(cfg, log, reg, st.mcp)
			t.Cleanup(func() { h.Close() })
			body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
			req := httptest.NewRequest(http.MethodPost, "http://"+tc.host+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Origin", "http://localhost:5173")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if allowed := rec.Code != http.StatusForbidden; allowed != tc.wantAllowed {
				t.Errorf("Origin http://localhost:5173 with public URL %s: %d %s; want allowed=%v", tc.publicURL, rec.Code, rec.Body, tc.wantAllowed)
			}
		})
	}
}
