package as

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
)

// testDocHost is the name the test fetchers resolve to the document
// server; the httptest certificate is valid for *.example.com.
const testDocHost = "client.example.com"

// testRedirect is the redirect URI of the test documents.
const testRedirect = "http://127.0.0.1:8976/callback"

// docServer is an https server of metadata documents that counts the
// requests for each path.
type docServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

// newDocServer starts a TLS document server answering with h. Its
// handler may use docURL(r) for the URL a client asked for.
func newDocServer(t *testing.T, h http.HandlerFunc) *docServer {
	t.Helper()
	s := &docServer{hits: map[string]int{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// url is the URL of path on the server, by its test name.
func (s *docServer) url(path string) string {
	return "https://" + testDocHost + ":" + s.port() + path
}

func (s *docServer) port() string {
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	return port
}

func (s *docServer) addr() netip.AddrPort {
	return netip.MustParseAddrPort(s.Listener.Addr().String())
}

// count is the number of requests for path.
func (s *docServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// total is the number of requests.
func (s *docServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.hits {
		n += c
	}
	return n
}

// docURL is the URL a request was sent to (its client_id), over https.
func docURL(r *http.Request) string {
	return "https://" + r.Host + r.URL.RequestURI()
}

// docJSON is a valid metadata document for clientID, changed by edit.
func docJSON(clientID string, edit func(m map[string]any)) string {
	m := map[string]any{
		"client_id":     clientID,
		"client_name":   "Example MCP client",
		"redirect_uris": []string{testRedirect},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// serveDoc answers with a valid document for the requested URL, changed by
// edit, and the header lines kv (name, value, ...).
func serveDoc(edit func(m map[string]any), kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		fmt.Fprint(w, docJSON(docURL(r), edit))
	}
}

// wantClient is what Fetch returns for docJSON(u, nil) fetched at t.
func wantClient(u string, t time.Time) *Client {
	return &Client{
		ClientID:   u,
		IssuedAt:   t,
		CacheUntil: t.Add(defaultMetadataMinCache), // the documents say nothing of caching
		Metadata: ClientMetadata{
			ClientID:                u,
			ClientName:              "Example MCP client",
			RedirectURIs:            []string{testRedirect},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			ApplicationType:         "native",
		},
	}
}

// docLogBuffer is a bytes.Buffer safe for a logger and a test at once.
type docLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *docLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *docLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testFetcher is a MetadataFetcher wired to a document server.
type testFetcher struct {
	*MetadataFetcher
	logs   *docLogBuffer
	clock  *authztest.Clock
	mu     sync.Mutex
	dialed []netip.AddrPort // what the Control function let through the hook
	joins  chan string      // the URL of each caller that waits for a fetch
}

// fetcherConfig says how newTestFetcher wires the fetcher.
type fetcherConfig struct {
	opts MetadataFetcherOptions
	// hosts adds names to the resolver, beside testDocHost → the server.
	hosts map[string][]netip.Addr
	// systemResolver keeps the real name resolution (no resolve hook).
	systemResolver bool
	// noAllowServer leaves the server's loopback address to the Control
	// check, which refuses it unless AllowLoopbackHTTP.
	noAllowServer bool
}

// newTestFetcher returns a fetcher that trusts s's certificate and
// resolves testDocHost to s. The Control function runs on every
// connection; only s's exact address and port gets through its loopback
// refusal, unless cfg.noAllowServer.
func newTestFetcher(t *testing.T, s *docServer, cfg fetcherConfig) *testFetcher {
	t.Helper()
	tf := &testFetcher{logs: &docLogBuffer{}, clock: authztest.NewClock()}
	o := cfg.opts
	if o.Now == nil {
		o.Now = tf.clock.Now
	}
	o.Logger = slog.New(slog.NewTextHandler(tf.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tf.MetadataFetcher = NewMetadataFetcher(&o)
	tf.joins = make(chan string, 1024)
	tf.joined = func(clientID string) { tf.joins <- clientID }
	t.Cleanup(tf.client.CloseIdleConnections)
	if s == nil {
		return tf
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	tf.tlsConfig.RootCAs = pool
	hosts := map[string][]netip.Addr{testDocHost: {s.addr().Addr()}}
	for h, a := range cfg.hosts {
		hosts[h] = a
	}
	if !cfg.systemResolver {
		tf.resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
			if a, err := netip.ParseAddr(host); err == nil {
				return []netip.Addr{a}, nil
			}
			if a, ok := hosts[host]; ok {
				return a, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
	}
	if !cfg.noAllowServer {
		tf.allowDial = func(ap netip.AddrPort) bool {
			if ap != s.addr() {
				return false
			}
			tf.mu.Lock()
			defer tf.mu.Unlock()
			tf.dialed = append(tf.dialed, ap)
			return true
		}
	}
	return tf
}

// wantError checks that err is an *Error with code and a description
// holding desc.
func wantError(t *testing.T, err error, code authz.Code, desc string) {
	t.Helper()
	var e *authz.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want an *Error %s", err, err, code)
	}
	if e.Code != code || !strings.Contains(e.Description, desc) {
		t.Errorf("error = %q, want %s with a description holding %q", e.Error(), code, desc)
	}
}

func TestMetadataFetcherFetch(t *testing.T) {
	var accept, cookie, auth atomic.Value
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Get("Accept"))
		cookie.Store(r.Header.Get("Cookie"))
		auth.Store(r.Header.Get("Authorization"))
		serveDoc(nil)(w, r)
	})
	f := newTestFetcher(t, s, fetcherConfig{})
	u := s.url("/oauth/client.json")
	got, err := f.Fetch(t.Context(), u)
	if err != nil {
		t.Fatalf("Fetch: %v\nlogs:\n%s", err, f.logs)
	}
	if diff := cmp.Diff(wantClient(u, f.clock.Now()), got); diff != "" {
		t.Errorf("Fetch (-want +got):\n%s", diff)
	}
	if got, want := accept.Load(), "application/json"; got != want {
		t.Errorf("Accept = %q, want %q", got, want)
	}
	if cookie.Load() != "" || auth.Load() != "" {
		t.Errorf("the request carried credentials: Cookie %q, Authorization %q", cookie.Load(), auth.Load())
	}
	// The Control function saw the address actually connected to.
	f.mu.Lock()
	dialed := f.dialed
	f.mu.Unlock()
	if diff := cmp.Diff([]netip.AddrPort{s.addr()}, dialed, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("addresses dialed (-want +got):\n%s", diff)
	}
}

// fetchFailed ends the one description of every fetch that fails before
// the document names its own URL as client_id: what the fetched server
// answered (a status, a content type, a size, JSON or not) is not told.
const fetchFailed = "could not be fetched"

func TestMetadataFetcherRefusesDocuments(t *testing.T) {
	const secret = "SECRET-INTERNAL-DATA"
	for _, tt := range []struct {
		name     string
		handler  http.HandlerFunc
		opts     MetadataFetcherOptions
		wantCode authz.Code
		wantDesc string
	}{
		{
			name: "redirect",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					serveDoc(nil)(w, r)
					return
				}
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "permanent redirect",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/", http.StatusPermanentRedirect)
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name:     "not found",
			handler:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, secret, http.StatusNotFound) },
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "server error with a JSON body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, docJSON(docURL(r), nil))
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "204",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name:     "HTML",
			handler:  serveDoc(nil, "Content-Type", "text/html; charset=utf-8"),
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "no content type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil // no sniffing
				fmt.Fprint(w, docJSON(docURL(r), nil))
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "too large, with Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				doc := docJSON(docURL(r), nil)
				fmt.Fprint(w, doc+strings.Repeat(" ", 2049-len(doc)))
			},
			opts:     MetadataFetcherOptions{MaxBytes: 2048},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "too large, chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.(http.Flusher).Flush()
				doc := docJSON(docURL(r), nil)
				fmt.Fprint(w, doc+strings.Repeat(" ", 2049-len(doc)))
			},
			opts:     MetadataFetcherOptions{MaxBytes: 2048},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "endless",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				chunk := []byte(strings.Repeat(" ", 4096))
				for range 1 << 10 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "slow",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			opts:     MetadataFetcherOptions{Timeout: 300 * time.Millisecond},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, "{"+secret)
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name:     "other client_id",
			handler:  serveDoc(func(m map[string]any) { m["client_id"] = "https://attacker.example.com/client.json" }),
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name: "client_id with a trailing slash",
			handler: func(w http.ResponseWriter, r *http.Request) {
				serveDoc(func(m map[string]any) { m["client_id"] = docURL(r) + "/" })(w, r)
			},
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name:     "no client_id",
			handler:  serveDoc(func(m map[string]any) { delete(m, "client_id") }),
			wantCode: authz.InvalidClient,
			wantDesc: fetchFailed,
		},
		{
			name:     "no client_name",
			handler:  serveDoc(func(m map[string]any) { delete(m, "client_name") }),
			wantCode: authz.InvalidClientMetadata,
			wantDesc: "client_name is required",
		},
		{
			name:     "no redirect_uris",
			handler:  serveDoc(func(m map[string]any) { delete(m, "redirect_uris") }),
			wantCode: authz.InvalidRedirectURI,
			wantDesc: "redirect_uris is required",
		},
		{
			name:     "http redirect URI on another host",
			handler:  serveDoc(func(m map[string]any) { m["redirect_uris"] = []string{"http://attacker.example.com/cb"} }),
			wantCode: authz.InvalidRedirectURI,
			wantDesc: "http is only allowed",
		},
		{
			name:     "javascript redirect URI",
			handler:  serveDoc(func(m map[string]any) { m["redirect_uris"] = []string{"javascript:alert(1)"} }),
			wantCode: authz.InvalidRedirectURI,
			wantDesc: "scheme javascript is not allowed",
		},
		{
			name:     "a secret-based client",
			handler:  serveDoc(func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" }),
			wantCode: authz.InvalidClientMetadata,
			wantDesc: "token_endpoint_auth_method must be none",
		},
		{
			name:     "private_key_jwt",
			handler:  serveDoc(func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }),
			wantCode: authz.InvalidClientMetadata,
			wantDesc: "token_endpoint_auth_method",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDocServer(t, tt.handler)
			f := newTestFetcher(t, s, fetcherConfig{opts: tt.opts})
			_, err := f.Fetch(t.Context(), s.url("/client.json"))
			wantError(t, err, tt.wantCode, tt.wantDesc)
			if tt.wantDesc == fetchFailed && !strings.HasSuffix(err.Error(), fetchFailed) {
				t.Errorf("error = %q: says more than that the fetch failed", err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error echoes the response: %v", err)
			}
			if strings.Contains(f.logs.String(), secret) {
				t.Errorf("the logs echo the response:\n%s", f.logs)
			}
			if n := s.count("/elsewhere"); n != 0 {
				t.Errorf("the redirect was followed")
			}
			if !strings.Contains(f.logs.String(), "client metadata document refused") {
				t.Errorf("the refusal was not logged:\n%s", f.logs)
			}
		})
	}
}

func TestMetadataFetcherMaxBytesBoundary(t *testing.T) {
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		doc := docJSON(docURL(r), nil)
		fmt.Fprint(w, doc+strings.Repeat(" ", 2048-len(doc)))
	})
	f := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{MaxBytes: 2048}})
	if _, err := f.Fetch(t.Context(), s.url("/client.json")); err != nil {
		t.Errorf("Fetch of a document of exactly MaxBytes: %v", err)
	}
}

func TestMetadataFetcherContentTypes(t *testing.T) {
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/oauth-client+json"} {
		t.Run(ct, func(t *testing.T) {
			s := newDocServer(t, serveDoc(nil, "Content-Type", ct))
			f := newTestFetcher(t, s, fetcherConfig{})
			if _, err := f.Fetch(t.Context(), s.url("/client.json")); err != nil {
				t.Errorf("Fetch: %v", err)
			}
		})
	}
}

func TestMetadataFetcherRefusesBadClientIDs(t *testing.T) {
	s := newDocServer(t, serveDoc(nil))
	f := newTestFetcher(t, s, fetcherConfig{})
	for _, u := range []string{
		"",
		"client",
		"http://" + testDocHost + ":" + s.port() + "/client.json",
		"https://" + testDocHost + ":" + s.port(),
		"https://" + testDocHost + ":" + s.port() + "/",
		"https://" + testDocHost + ":" + s.port() + "/client.json#x",
		"https://u@" + testDocHost + ":" + s.port() + "/client.json",
		"https://" + testDocHost + ":" + s.port() + "/a/../client.json",
	} {
		_, err := f.Fetch(t.Context(), u)
		wantError(t, err, authz.InvalidClient, "is not a valid client metadata document URL")
	}
	if n := s.total(); n != 0 {
		t.Errorf("the server got %d requests, want 0", n)
	}
}

// TestMetadataFetcherRefusesInternalAddresses checks the refusal at
// connection time: the names are valid and resolve, but to addresses the
// Control function refuses, and the server (listening on 127.0.0.1)
// never sees a request.
func TestMetadataFetcherRefusesInternalAddresses(t *testing.T) {
	s := newDocServer(t, serveDoc(nil))
	port := s.port()
	for _, tt := range []struct {
		name     string
		url      string
		cfg      fetcherConfig
		wantLogs []string
	}{
		{
			name:     "name resolving to 127.0.0.1",
			url:      s.url("/client.json"),
			cfg:      fetcherConfig{noAllowServer: true},
			wantLogs: []string{"127.0.0.1 is a loopback address"},
		},
		{
			name:     "IP literal 127.0.0.1",
			url:      "https://127.0.0.1:" + port + "/client.json",
			cfg:      fetcherConfig{noAllowServer: true},
			wantLogs: []string{"127.0.0.1 is a loopback address"},
		},
		{
			name:     "localhost through the system resolver",
			url:      "https://localhost:" + port + "/client.json",
			cfg:      fetcherConfig{noAllowServer: true, systemResolver: true},
			wantLogs: []string{"is a loopback address"},
		},
		{
			name:     "IPv4-mapped loopback",
			url:      s.url("/client.json"),
			cfg:      fetcherConfig{noAllowServer: true, hosts: map[string][]netip.Addr{testDocHost: {netip.MustParseAddr("::ffff:127.0.0.1")}}},
			wantLogs: []string{"is a loopback address"},
		},
		{
			name: "every address internal",
			url:  s.url("/client.json"),
			cfg: fetcherConfig{noAllowServer: true, hosts: map[string][]netip.Addr{testDocHost: {
				netip.MustParseAddr("10.0.0.1"),
				netip.MustParseAddr("169.254.169.254"),
				netip.MustParseAddr("fd00::1"),
				netip.MustParseAddr("127.0.0.1"),
			}}},
			wantLogs: []string{
				"10.0.0.1 is a private address",
				"169.254.169.254 is a link-local address",
				"fd00::1 is a private address",
				"127.0.0.1 is a loopback address",
			},
		},
		{
			name:     "cloud metadata",
			url:      "https://metadata.example.com:" + port + "/latest/meta-data",
			cfg:      fetcherConfig{hosts: map[string][]netip.Addr{"metadata.example.com": {netip.MustParseAddr("169.254.169.254")}}},
			wantLogs: []string{"169.254.169.254 is a link-local address"},
		},
		{
			name:     "loopback allowed, private still refused",
			url:      "https://internal.example.com:" + port + "/client.json",
			cfg:      fetcherConfig{opts: MetadataFetcherOptions{AllowLoopbackHTTP: true}, hosts: map[string][]netip.Addr{"internal.example.com": {netip.MustParseAddr("192.168.1.10")}}},
			wantLogs: []string{"192.168.1.10 is a private address"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFetcher(t, s, tt.cfg)
			_, err := f.Fetch(t.Context(), tt.url)
			wantError(t, err, authz.InvalidClient, "could not be fetched")
			if strings.Contains(err.Error(), "address") {
				t.Errorf("the wire error tells why the connection failed: %v", err)
			}
			logs := f.logs.String()
			for _, want := range tt.wantLogs {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
			if !strings.Contains(logs, errDialRefused.Error()) {
				t.Errorf("the Control function did not refuse:\n%s", logs)
			}
			if n := s.total(); n != 0 {
				t.Errorf("the server got %d requests, want 0", n)
			}
		})
	}
}

func TestMetadataFetcherAllowLoopbackHTTP(t *testing.T) {
	plain := httptest.NewServer(serveDoc(nil))
	t.Cleanup(plain.Close)
	_, port, _ := net.SplitHostPort(plain.Listener.Addr().String())

	t.Run("http on 127.0.0.1", func(t *testing.T) {
		f := newTestFetcher(t, nil, fetcherConfig{opts: MetadataFetcherOptions{AllowLoopbackHTTP: true}})
		u := "http://127.0.0.1:" + port + "/client.json"
		// serveDoc answers with an https client_id: the document must say
		// http, as its URL does.
		_, err := f.Fetch(t.Context(), u)
		wantError(t, err, authz.InvalidClient, fetchFailed)

		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, docJSON("http://"+r.Host+r.URL.RequestURI(), nil))
		}))
		t.Cleanup(s.Close)
		u = s.URL + "/client.json"
		got, err := f.Fetch(t.Context(), u)
		if err != nil {
			t.Fatalf("Fetch: %v\nlogs:\n%s", err, f.logs)
		}
		if diff := cmp.Diff(wantClient(u, f.clock.Now()), got); diff != "" {
			t.Errorf("Fetch (-want +got):\n%s", diff)
		}
	})
	t.Run("http through localhost", func(t *testing.T) {
		f := newTestFetcher(t, nil, fetcherConfig{opts: MetadataFetcherOptions{AllowLoopbackHTTP: true}})
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, docJSON("http://"+r.Host+r.URL.RequestURI(), nil))
		}))
		t.Cleanup(s.Close)
		_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
		if _, err := f.Fetch(t.Context(), "http://localhost:"+port+"/client.json"); err != nil {
			t.Fatalf("Fetch: %v\nlogs:\n%s", err, f.logs)
		}
	})
	t.Run("https on 127.0.0.1", func(t *testing.T) {
		s := newDocServer(t, serveDoc(nil))
		f := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{AllowLoopbackHTTP: true}, noAllowServer: true})
		if _, err := f.Fetch(t.Context(), "https://127.0.0.1:"+s.port()+"/client.json"); err != nil {
			t.Fatalf("Fetch: %v\nlogs:\n%s", err, f.logs)
		}
	})
	t.Run("http elsewhere", func(t *testing.T) {
		f := newTestFetcher(t, nil, fetcherConfig{opts: MetadataFetcherOptions{AllowLoopbackHTTP: true}})
		_, err := f.Fetch(t.Context(), "http://"+testDocHost+"/client.json")
		wantError(t, err, authz.InvalidClient, "http is only allowed on 127.0.0.1")
	})
	t.Run("http without AllowLoopbackHTTP", func(t *testing.T) {
		f := newTestFetcher(t, nil, fetcherConfig{})
		_, err := f.Fetch(t.Context(), "http://127.0.0.1:"+port+"/client.json")
		wantError(t, err, authz.InvalidClient, "must be an https URL")
	})
}

func TestMetadataFetcherIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "proxy", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	s := newDocServer(t, serveDoc(nil))
	f := newTestFetcher(t, s, fetcherConfig{})
	if f.client.Transport.(*http.Transport).Proxy != nil {
		t.Errorf("the transport has a Proxy function")
	}
	if _, err := f.Fetch(t.Context(), s.url("/client.json")); err != nil {
		t.Errorf("Fetch: %v", err)
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("the proxy got %d requests", n)
	}
}

func TestMetadataFetcherControl(t *testing.T) {
	f := NewMetadataFetcher(nil)
	for _, tt := range []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "93.184.215.14:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp", "8.8.8.8:8443", true},
		{"tcp4", "127.0.0.1:443", false},
		{"tcp6", "[::1]:443", false},
		{"tcp4", "10.1.2.3:443", false},
		{"tcp4", "169.254.169.254:80", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp6", "[::ffff:192.168.0.1]:443", false},
		{"udp4", "8.8.8.8:53", false},
		{"tcp4", "not-an-address", false},
		{"tcp4", "example.com:443", false},
	} {
		err := f.control(t.Context(), tt.network, tt.address, nil)
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, errDialRefused) {
			t.Errorf("control(%s, %s) = %v, want ok %v", tt.network, tt.address, err, tt.ok)
		}
	}
}

func TestDialRefusal(t *testing.T) {
	for _, tt := range []struct {
		addr string
		// refused without AllowLoopbackHTTP; loopback: allowed with it.
		refused, loopback bool
	}{
		// Loopback.
		{addr: "127.0.0.1", refused: true, loopback: true},
		{addr: "127.255.255.254", refused: true, loopback: true},
		{addr: "::1", refused: true, loopback: true},
		{addr: "::ffff:127.0.0.1", refused: true, loopback: true},
		// Unspecified and "this network".
		{addr: "0.0.0.0", refused: true},
		{addr: "0.1.2.3", refused: true},
		{addr: "::", refused: true},
		{addr: "::ffff:0.0.0.0", refused: true},
		// Private.
		{addr: "10.0.0.1", refused: true},
		{addr: "10.255.255.255", refused: true},
		{addr: "172.16.0.1", refused: true},
		{addr: "172.31.255.255", refused: true},
		{addr: "192.168.0.1", refused: true},
		{addr: "192.168.255.255", refused: true},
		{addr: "::ffff:10.0.0.1", refused: true},
		{addr: "::ffff:172.16.5.4", refused: true},
		{addr: "::ffff:192.168.1.1", refused: true},
		{addr: "fc00::1", refused: true},
		{addr: "fd12:3456:789a::1", refused: true},
		// Link-local, with the cloud metadata address.
		{addr: "169.254.169.254", refused: true},
		{addr: "169.254.0.1", refused: true},
		{addr: "::ffff:169.254.169.254", refused: true},
		{addr: "fe80::1", refused: true},
		{addr: "fe80::1%eth0", refused: true},
		{addr: "febf:ffff::1", refused: true},
		{addr: "fd00:ec2::254", refused: true}, // AWS metadata over IPv6
		// Multicast and broadcast.
		{addr: "224.0.0.1", refused: true},
		{addr: "239.255.255.250", refused: true},
		{addr: "255.255.255.255", refused: true},
		{addr: "ff02::1", refused: true},
		{addr: "ff05::1:3", refused: true},
		{addr: "ff0e::1", refused: true},
		{addr: "::ffff:224.0.0.1", refused: true},
		// CGNAT.
		{addr: "100.64.0.1", refused: true},
		{addr: "100.127.255.255", refused: true},
		{addr: "::ffff:100.100.100.100", refused: true},
		// Reserved IPv4.
		{addr: "192.0.0.8", refused: true},
		{addr: "192.0.2.1", refused: true},
		{addr: "192.88.99.1", refused: true},
		{addr: "198.18.0.1", refused: true},
		{addr: "198.19.255.255", refused: true},
		{addr: "198.51.100.1", refused: true},
		{addr: "203.0.113.1", refused: true},
		{addr: "240.0.0.1", refused: true},
		{addr: "254.1.2.3", refused: true},
		// IPv6 outside the global unicast space, or reserved in it.
		{addr: "::127.0.0.1", refused: true}, // IPv4-compatible
		{addr: "::10.0.0.1", refused: true},
		{addr: "100::1", refused: true},       // discard-only
		{addr: "fec0::1", refused: true},      // site-local
		{addr: "5f00::1", refused: true},      // SRv6 SIDs
		{addr: "64:ff9b:1::1", refused: true}, // local-use NAT64
		{addr: "2001::1", refused: true},      // Teredo
		{addr: "2001:db8::1", refused: true},
		{addr: "2002:a00:1::1", refused: true}, // 6to4 of 10.0.0.1
		{addr: "2002:808:808::1", refused: true},
		{addr: "3fff::1", refused: true},
		// NAT64 of internal addresses.
		{addr: "64:ff9b::7f00:1", refused: true}, // 127.0.0.1, even with AllowLoopbackHTTP
		{addr: "64:ff9b::a00:1", refused: true},
		{addr: "64:ff9b::a9fe:a9fe", refused: true},
		// Public.
		{addr: "8.8.8.8"},
		{addr: "1.1.1.1"},
		{addr: "93.184.215.14"},
		{addr: "11.0.0.1"},
		{addr: "100.63.255.255"},
		{addr: "100.128.0.0"},
		{addr: "172.15.255.255"},
		{addr: "172.32.0.0"},
		{addr: "169.253.255.255"},
		{addr: "192.167.255.255"},
		{addr: "198.17.255.255"},
		{addr: "223.255.255.255"},
		{addr: "::ffff:8.8.8.8"},
		{addr: "64:ff9b::808:808"}, // NAT64 of 8.8.8.8
		{addr: "2606:4700:4700::1111"},
		{addr: "2001:4860:4860::8888"},
		{addr: "2a00:1450:4001::1"},
		{addr: "2001:200::1"},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if why := dialRefusal(a, false); (why != "") != tt.refused {
				t.Errorf("dialRefusal(%s, false) = %q, want refused %v", a, why, tt.refused)
			}
			if why := dialRefusal(a, true); (why != "") != (tt.refused && !tt.loopback) {
				t.Errorf("dialRefusal(%s, true) = %q, want refused %v", a, why, tt.refused && !tt.loopback)
			}
		})
	}
	if why := dialRefusal(netip.Addr{}, true); why == "" {
		t.Errorf("dialRefusal of the zero Addr is allowed")
	}
}

func FuzzDialRefusal(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "8.8.8.8", "::1", "fe80::1", "2606:4700::1", "64:ff9b::a00:1", "::ffff:1.2.3.4"} {
		b := netip.MustParseAddr(s).AsSlice()
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, allowLoopback bool) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		why := dialRefusal(a, allowLoopback)
		if a.Is4() {
			if mapped := dialRefusal(netip.AddrFrom16(a.As16()), allowLoopback); (mapped == "") != (why == "") {
				t.Errorf("%s: %q, but its mapped form: %q", a, why, mapped)
			}
		}
		if why != "" {
			return
		}
		u := a.Unmap()
		switch {
		case u.IsLoopback() && !allowLoopback, u.IsPrivate(), u.IsLinkLocalUnicast(), u.IsMulticast(), u.IsUnspecified():
			t.Errorf("%s allowed", a)
		case u.Is6() && !globalUnicast6.Contains(u) && !nat64.Contains(u) && !u.IsLoopback():
			t.Errorf("%s allowed outside 2000::/3", a)
		}
	})
}

func TestCheckClientIDURL(t *testing.T) {
	for _, tt := range []struct {
		url           string
		allowLoopback bool
		want          string // "" or a part of the reason
	}{
		{url: "https://client.example.com/client.json"},
		{url: "https://client.example.com/a/b?v=1"},
		{url: "https://client.example.com:8443/c"},
		{url: "https://127.0.0.1/c"}, // refused when connecting
		{url: "https://[2001:db8::1]/c"},
		{url: "HTTPS://client.example.com/c"},
		{url: "", want: "must not be empty"},
		{url: "client.example.com/c", want: "must be an https URL"},
		{url: "ftp://client.example.com/c", want: "must be an https URL"},
		{url: "https:/c", want: "must be an https URL"},
		{url: "https:///c", want: "must be an https URL"},
		{url: "https://client.example.com", want: "must have a path"},
		{url: "https://client.example.com/", want: "must have a path"},
		{url: "https://client.example.com?x=1", want: "must have a path"},
		{url: "https://client.example.com/c#f", want: "fragment"},
		{url: "https://client.example.com/c#", want: "fragment"},
		{url: "https://user@client.example.com/c", want: "userinfo"},
		{url: "https://user:pw@client.example.com/c", want: "userinfo"},
		{url: "https://client.example.com/a/../c", want: ". or .."},
		{url: "https://client.example.com/./c", want: ". or .."},
		{url: "https://client.example.com/a/..", want: ". or .."},
		{url: "https://client.example.com/a/%2e%2e/c", want: ". or .."},
		{url: "https://client.example.com/a/%2E/c", want: ". or .."},
		{url: "https://client.example.com/ c", want: "whitespace"},
		{url: "https://clïent.example.com/c", want: "ASCII"},
		{url: "https://client.example.com:0/c", want: "port"},
		{url: "https://client.example.com:/c", want: "empty port"},
		{url: "https://client_example.com/c", want: "invalid host"},
		{url: "https://[fe80::1%25eth0]/c", want: "IPv6"},
		{url: "http://127.0.0.1/c", want: "must be an https URL"},
		{url: "http://127.0.0.1:3000/c", allowLoopback: true},
		{url: "http://[::1]/c", allowLoopback: true},
		{url: "http://localhost/c", allowLoopback: true},
		{url: "http://LocalHost:8080/c", allowLoopback: true},
		{url: "HTTP://127.0.0.1/c", allowLoopback: true},
		{url: "https://client.example.com/c", allowLoopback: true},
		{url: "http://127.0.0.2/c", allowLoopback: true, want: "http is only allowed"},
		{url: "http://client.example.com/c", allowLoopback: true, want: "http is only allowed"},
		{url: "http://localhost.example.com/c", allowLoopback: true, want: "http is only allowed"},
		{url: "http://127.0.0.1@client.example.com/c", allowLoopback: true, want: "userinfo"},
		{url: "http://127.0.0.1/", allowLoopback: true, want: "must have a path"},
		{url: "http://127.0.0.1/c#f", allowLoopback: true, want: "fragment"},
		{url: "http:/127.0.0.1/c", allowLoopback: true, want: "must be an https URL"},
	} {
		got := checkClientIDURL(tt.url, tt.allowLoopback)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("checkClientIDURL(%q, %v) = %q, want %q", tt.url, tt.allowLoopback, got, tt.want)
		}
	}
}

func FuzzCheckClientIDURL(f *testing.F) {
	for _, s := range []string{
		"https://client.example.com/client.json", "https://client.example.com/", "http://127.0.0.1:3000/c",
		"https://u@h/c", "https://h/a/%2e%2e/c", "https://h/c#f", "HTTP://[::1]/c", "https://[::1%25x]/c",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowLoopback bool) {
		if checkClientIDURL(raw, allowLoopback) != "" {
			return
		}
		if !allowLoopback && checkClientIDURL(raw, true) != "" {
			t.Fatalf("%q accepted without AllowLoopbackHTTP but refused with it", raw)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q accepted but does not parse: %v", raw, err)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && allowLoopback && isLoopbackHost(u.Hostname()):
		default:
			t.Fatalf("%q accepted with scheme %q", raw, u.Scheme)
		}
		if u.Host == "" || u.Hostname() == "" || u.User != nil || u.Opaque != "" || strings.Contains(raw, "#") {
			t.Fatalf("%q accepted: host %q, userinfo %v, opaque %q", raw, u.Host, u.User, u.Opaque)
		}
		if u.Path == "" || u.Path == "/" {
			t.Fatalf("%q accepted without a path", raw)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q accepted with a dot segment", raw)
			}
		}
		if _, err := http.NewRequest(http.MethodGet, raw, nil); err != nil {
			t.Fatalf("%q accepted but is no request URL: %v", raw, err)
		}
	})
}

func TestFreshness(t *testing.T) {
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tt := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, 0},
		{"max-age", http.Header{"Cache-Control": {"max-age=600"}}, 10 * time.Minute},
		{"max-age among others", http.Header{"Cache-Control": {"public, max-age=600, must-revalidate"}}, 10 * time.Minute},
		{"case-insensitive", http.Header{"Cache-Control": {"Max-Age=60"}}, time.Minute},
		{"quoted max-age", http.Header{"Cache-Control": {`max-age="120"`}}, 2 * time.Minute},
		{"smallest max-age", http.Header{"Cache-Control": {"max-age=600, max-age=60"}}, time.Minute},
		{"two header lines", http.Header{"Cache-Control": {"public", "max-age=60"}}, time.Minute},
		{"invalid max-age is stale", http.Header{"Cache-Control": {"max-age=soon"}}, 0},
		{"negative max-age is stale", http.Header{"Cache-Control": {"max-age=-5"}}, 0},
		{"empty max-age is stale", http.Header{"Cache-Control": {"max-age="}}, 0},
		{"huge max-age is capped", http.Header{"Cache-Control": {"max-age=99999999999999999999999"}}, maxDeltaSeconds * time.Second},
		{"no-store", http.Header{"Cache-Control": {"max-age=600, no-store"}}, 0},
		{"no-cache", http.Header{"Cache-Control": {"no-cache, max-age=600"}}, 0},
		{"no-cache with fields", http.Header{"Cache-Control": {`no-cache="Set-Cookie", max-age=600`}}, 0},
		{"no-store in another line", http.Header{"Cache-Control": {"max-age=600", "NO-STORE"}}, 0},
		{"quoted comma", http.Header{"Cache-Control": {`private="a, max-age=9", max-age=60`}}, time.Minute},
		{"quoted no-store", http.Header{"Cache-Control": {`community="no-store", max-age=60`}}, time.Minute},
		{"s-maxage ignored", http.Header{"Cache-Control": {"s-maxage=600"}}, 0},
		{"Age", http.Header{"Cache-Control": {"max-age=3600"}, "Age": {"600"}}, 50 * time.Minute},
		{"Age beyond max-age", http.Header{"Cache-Control": {"max-age=60"}, "Age": {"600"}}, 0},
		{"invalid Age ignored", http.Header{"Cache-Control": {"max-age=60"}, "Age": {"-1"}}, time.Minute},
		{"Expires minus Date", http.Header{"Expires": {at(90 * time.Minute)}, "Date": {at(30 * time.Minute)}}, time.Hour},
		{"Expires without Date", http.Header{"Expires": {at(30 * time.Minute)}}, 30 * time.Minute},
		{"Expires with an invalid Date", http.Header{"Expires": {at(30 * time.Minute)}, "Date": {"yesterday"}}, 30 * time.Minute},
		{"Expires in the past", http.Header{"Expires": {at(-time.Hour)}}, 0},
		{"invalid Expires is stale", http.Header{"Expires": {"0"}}, 0},
		{"max-age beats Expires", http.Header{"Cache-Control": {"max-age=60"}, "Expires": {at(time.Hour)}}, time.Minute},
		{"no-store beats Expires", http.Header{"Cache-Control": {"no-store"}, "Expires": {at(time.Hour)}}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := freshness(tt.header, now); got != tt.want {
				t.Errorf("freshness = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzFreshness(f *testing.F) {
	f.Add("max-age=60", "", "", "")
	f.Add(`private="a, max-age=9", max-age=60`, "", "", "10")
	f.Add("", "Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:20:00 GMT", "")
	f.Add(`max-age="\"`, "0", "x", "99999999999999999999")
	m := NewMetadataFetcher(nil)
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, expires, date, age string) {
		h := http.Header{}
		for k, v := range map[string]string{"Cache-Control": cc, "Expires": expires, "Date": date, "Age": age} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if got := freshness(h, now); got < 0 {
			t.Errorf("freshness = %v", got)
		}
		if got := m.lifetime(h, now); got < m.minCache || got > m.maxCache {
			t.Errorf("lifetime = %v, outside [%v, %v]", got, m.minCache, m.maxCache)
		}
	})
}

func TestMetadataFetcherCache(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header []string
		opts   MetadataFetcherOptions
		// fresh is how long the document is reused.
		fresh time.Duration
	}{
		{name: "max-age", header: []string{"Cache-Control", "max-age=600"}, fresh: 10 * time.Minute},
		{name: "no caching headers: MinCache", fresh: time.Minute},
		{name: "no-store: MinCache", header: []string{"Cache-Control", "no-store"}, fresh: time.Minute},
		{name: "no-cache: MinCache", header: []string{"Cache-Control", "no-cache"}, fresh: time.Minute},
		{name: "small max-age: MinCache", header: []string{"Cache-Control", "max-age=5"}, fresh: time.Minute},
		{name: "huge max-age: MaxCache", header: []string{"Cache-Control", "max-age=31536000"}, fresh: 24 * time.Hour},
		{name: "Expires", header: []string{"Date", "Tue, 28 Jul 2026 12:00:00 GMT", "Expires", "Tue, 28 Jul 2026 12:30:00 GMT"}, fresh: 30 * time.Minute},
		{name: "Age", header: []string{"Cache-Control", "max-age=3600", "Age", "600"}, fresh: 50 * time.Minute},
		{
			name:   "custom clamp",
			header: []string{"Cache-Control", "no-store"},
			opts:   MetadataFetcherOptions{MinCache: 5 * time.Minute, MaxCache: time.Hour},
			fresh:  5 * time.Minute,
		},
		{
			name:   "MaxCache below MinCache",
			header: []string{"Cache-Control", "max-age=86400"},
			opts:   MetadataFetcherOptions{MinCache: 2 * time.Hour, MaxCache: time.Hour},
			fresh:  2 * time.Hour,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDocServer(t, serveDoc(nil, tt.header...))
			f := newTestFetcher(t, s, fetcherConfig{opts: tt.opts})
			u := s.url("/client.json")
			t0 := f.clock.Now()
			fetch := func(wantHits int) {
				t.Helper()
				if _, err := f.Fetch(t.Context(), u); err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if got := s.count("/client.json"); got != wantHits {
					t.Fatalf("after %v: %d requests, want %d", f.clock.Now().Sub(t0), got, wantHits)
				}
			}
			fetch(1)
			fetch(1)
			f.clock.Advance(tt.fresh - time.Second)
			fetch(1)
			f.clock.Advance(time.Second)
			fetch(2)
			fetch(2)
		})
	}
}

func TestMetadataFetcherNegativeCache(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		if c := int(status.Load()); c != http.StatusOK {
			http.Error(w, "down", c)
			return
		}
		serveDoc(nil)(w, r)
	})
	f := newTestFetcher(t, s, fetcherConfig{})
	u := s.url("/client.json")

	_, err := f.Fetch(t.Context(), u)
	wantError(t, err, authz.InvalidClient, fetchFailed)
	status.Store(http.StatusOK)
	f.clock.Advance(29 * time.Second)
	_, err = f.Fetch(t.Context(), u)
	wantError(t, err, authz.InvalidClient, fetchFailed)
	if n := s.count("/client.json"); n != 1 {
		t.Fatalf("%d requests within the negative cache time, want 1", n)
	}
	f.clock.Advance(time.Second)
	if _, err := f.Fetch(t.Context(), u); err != nil {
		t.Fatalf("Fetch after the negative cache time: %v", err)
	}
	if n := s.count("/client.json"); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}

	// Invalid documents are remembered too, and each caller gets its own
	// copy of the error.
	s2 := newDocServer(t, serveDoc(func(m map[string]any) { delete(m, "client_name") }))
	f2 := newTestFetcher(t, s2, fetcherConfig{opts: MetadataFetcherOptions{NegativeCache: time.Minute}})
	bad := s2.url("/bad.json")
	_, err = f2.Fetch(t.Context(), bad)
	wantError(t, err, authz.InvalidClientMetadata, "client_name is required")
	err.(*authz.Error).Description = "changed"
	f2.clock.Advance(59 * time.Second)
	_, err = f2.Fetch(t.Context(), bad)
	wantError(t, err, authz.InvalidClientMetadata, "client_name is required")
	if n := s2.count("/bad.json"); n != 1 {
		t.Fatalf("%d requests for an invalid document, want 1", n)
	}
}

// waitForWaiters waits until n callers share the fetch of u: the
// fetcher's joined hook reports each caller that waits for a fetch.
func waitForWaiters(t *testing.T, f *testFetcher, u string, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for got := 0; got < n; {
		select {
		case id := <-f.joins:
			if id == u {
				got++
			}
		case <-deadline:
			t.Fatalf("%d callers wait for %s, want %d", got, u, n)
		}
	}
}

func TestMetadataFetcherSingleFlight(t *testing.T) {
	release := make(chan struct{})
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		serveDoc(nil, "Cache-Control", "no-store")(w, r)
	})
	f := newTestFetcher(t, s, fetcherConfig{})
	u := s.url("/client.json")

	const n = 20
	var wg sync.WaitGroup
	clients := make([]*Client, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { clients[i], errs[i] = f.Fetch(t.Context(), u) })
	}
	waitForWaiters(t, f, u, n)
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Fetch %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(wantClient(u, f.clock.Now()), clients[i]); diff != "" {
			t.Errorf("Fetch %d (-want +got):\n%s", i, diff)
		}
		if i > 0 && clients[i] == clients[0] {
			t.Errorf("Fetch %d returned the same *Client as Fetch 0", i)
		}
	}
	if got := s.count("/client.json"); got != 1 {
		t.Errorf("%d requests for %d concurrent fetches, want 1", got, n)
	}
}

func TestMetadataFetcherCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		serveDoc(nil)(w, r)
	})
	f := newTestFetcher(t, s, fetcherConfig{})
	u := s.url("/client.json")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(ctx, u)
		done <- err
	}()
	waitForWaiters(t, f, u, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch after cancel = %v, want context.Canceled", err)
	}
	// The fetch goes on, and the next caller gets its result.
	close(release)
	if _, err := f.Fetch(t.Context(), u); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := s.count("/client.json"); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestMetadataFetcherBusy(t *testing.T) {
	s := newDocServer(t, serveDoc(nil))
	f := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{Timeout: 100 * time.Millisecond}})
	for range maxMetadataFetches {
		f.slots <- struct{}{}
	}
	u := s.url("/client.json")
	_, err := f.Fetch(t.Context(), u)
	wantError(t, err, authz.TemporarilyUnavailable, "too many client metadata documents")
	<-f.slots
	// Not remembered: the next call fetches.
	if _, err := f.Fetch(t.Context(), u); err != nil {
		t.Fatalf("Fetch with a free slot: %v", err)
	}
	if got := s.count("/client.json"); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

// TestMetadataFetcherSlowHost: documents of one host that never answer
// hold at most MaxFetchesPerHost of the fetch slots, however many are
// asked for, and another host's document is fetched meanwhile.
func TestMetadataFetcherSlowHost(t *testing.T) {
	const slowHost = "slow.example.com"
	release := make(chan struct{})
	arrived := make(chan struct{}, maxMetadataFetches)
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, slowHost+":") {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		serveDoc(nil)(w, r)
	})
	f := newTestFetcher(t, s, fetcherConfig{
		opts:  MetadataFetcherOptions{Timeout: 10 * time.Second, MaxFetchesPerHost: 2},
		hosts: map[string][]netip.Addr{slowHost: {s.addr().Addr()}},
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	for i := range maxMetadataFetches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Fetch(t.Context(), fmt.Sprintf("https://%s:%s/c%d.json", slowHost, s.port(), i))
		}()
	}
	for range 2 {
		<-arrived
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := f.Fetch(ctx, s.url("/client.json")); err != nil {
		t.Fatalf("Fetch from another host while one host is slow: %v", err)
	}
	if n := len(arrived); n != 0 {
		t.Errorf("%d more requests reached the slow host, want at most 2 at once", n)
	}
}

func TestMetadataFetcherEviction(t *testing.T) {
	s := newDocServer(t, serveDoc(nil, "Cache-Control", "max-age=3600"))
	f := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{MaxEntries: 2}})
	for _, step := range []struct {
		path  string
		total int
	}{
		{"/a", 1}, {"/b", 2}, {"/c", 3}, // /a is evicted
		{"/b", 3}, {"/c", 3},
		{"/a", 4}, // /b is evicted
		{"/c", 4},
		{"/b", 5},
	} {
		if _, err := f.Fetch(t.Context(), s.url(step.path)); err != nil {
			t.Fatalf("Fetch %s: %v", step.path, err)
		}
		if got := s.total(); got != step.total {
			t.Fatalf("after %s: %d requests, want %d", step.path, got, step.total)
		}
	}
}

func TestMetadataFetcherReturnsCopies(t *testing.T) {
	s := newDocServer(t, serveDoc(func(m map[string]any) { m["contacts"] = []string{"ops@example.com"} }))
	f := newTestFetcher(t, s, fetcherConfig{})
	u := s.url("/client.json")
	first, err := f.Fetch(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	want := *first
	want.Metadata.RedirectURIs = []string{testRedirect}
	want.Metadata.GrantTypes = []string{"authorization_code", "refresh_token"}
	want.Metadata.ResponseTypes = []string{"code"}
	want.Metadata.Contacts = []string{"ops@example.com"}
	first.Metadata.RedirectURIs[0] = "https://attacker.example.com/cb"
	first.Metadata.GrantTypes[0] = "x"
	first.Metadata.ResponseTypes[0] = "x"
	first.Metadata.Contacts[0] = "x"
	first.Metadata.ClientName = "x"
	second, err := f.Fetch(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, second); diff != "" {
		t.Errorf("second Fetch after changing the first's result (-want +got):\n%s", diff)
	}
}

func TestNewMetadataFetcherDefaults(t *testing.T) {
	f := NewMetadataFetcher(nil)
	got := []any{f.allowLoopback, f.timeout, f.maxBytes, f.minCache, f.maxCache, f.negCache, f.maxEntries}
	want := []any{false, 5 * time.Second, int64(maxClientMetadataBytes), time.Minute, 24 * time.Hour, 30 * time.Second, 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	f = NewMetadataFetcher(&MetadataFetcherOptions{MaxBytes: 1 << 30, Timeout: -1, MaxEntries: -1})
	got = []any{f.timeout, f.maxBytes, f.maxEntries}
	want = []any{5 * time.Second, int64(maxClientMetadataBytes), 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("out-of-range options (-want +got):\n%s", diff)
	}
}

func ExampleMetadataFetcher_Fetch() {
	f := NewMetadataFetcher(&MetadataFetcherOptions{Timeout: 3 * time.Second})
	// The authorization endpoint's client_id: a URL is a metadata document.
	_, err := f.Fetch(context.Background(), "https://client.example.com/")
	var e *authz.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
		fmt.Println(e.Description)
	}
	// Output:
	// invalid_client
	// client_id 'https://client.example.com/' is not a valid client metadata document URL: must have a path
}

// mapMetadataCache is a shared cache in a map: the fetcher's side of
// MetadataFetcherOptions.Shared (redisstore tests the Redis side).
type mapMetadataCache struct {
	mu   sync.Mutex
	m    map[string]*Client
	gets int
	ttls []time.Duration // of every put, in order
}

func (c *mapMetadataCache) GetMetadata(_ context.Context, id string) (*Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if v, ok := c.m[id]; ok {
		v2 := *v
		return &v2, nil
	}
	return nil, authz.ErrNotFound
}

func (c *mapMetadataCache) PutMetadata(_ context.Context, v *Client, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v2 := *v
	c.m[v.ClientID] = &v2
	c.ttls = append(c.ttls, ttl)
	return nil
}

// TestMetadataFetcherUsed: the shared cache holds a fetched document for
// UnusedCache only, and for the rest of its lifetime once its client is
// used, once; a replica that reads it from the shared cache keeps it
// locally for the document's lifetime.
func TestMetadataFetcherUsed(t *testing.T) {
	s := newDocServer(t, serveDoc(nil, "Cache-Control", "max-age=3600"))
	shared := &mapMetadataCache{m: map[string]*Client{}}
	a := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{Shared: shared}})
	u := s.url("/client.json")
	if _, err := a.Fetch(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(time.Minute)
	a.Used(t.Context(), u)
	a.Used(t.Context(), u)
	want := []time.Duration{defaultMetadataUnusedCache, time.Hour - time.Minute}
	if diff := cmp.Diff(want, shared.ttls); diff != "" {
		t.Errorf("shared cache lifetimes (-want +got):\n%s", diff)
	}
	b := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{Shared: shared}})
	b.clock.Advance(30 * time.Minute)
	if _, err := b.Fetch(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(20 * time.Minute)
	if _, err := b.Fetch(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if n := s.count("/client.json"); n != 1 {
		t.Errorf("%d fetches, want 1: the second replica keeps the shared document for its lifetime", n)
	}
}

// TestMetadataFetcherShared: two replicas' fetchers with one shared cache
// fetch a document once between them.
func TestMetadataFetcherShared(t *testing.T) {
	s := newDocServer(t, serveDoc(nil, "Cache-Control", "max-age=600"))
	shared := &mapMetadataCache{m: map[string]*Client{}}
	a := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{Shared: shared}})
	b := newTestFetcher(t, s, fetcherConfig{opts: MetadataFetcherOptions{Shared: shared}})
	u := s.url("/client.json")
	ca, err := a.Fetch(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Fetch(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.count("/client.json"); n != 1 {
		t.Errorf("%d fetches of the document by two replicas sharing a cache, want 1", n)
	}
	if ca.ClientID != u || cb.ClientID != u || len(cb.Metadata.RedirectURIs) == 0 {
		t.Errorf("clients %+v and %+v", ca, cb)
	}
}
