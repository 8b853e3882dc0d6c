package as

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/internal/ttlcache"
)

// Defaults of MetadataFetcherOptions.
const (
	defaultMetadataTimeout       = 5 * time.Second
	defaultMetadataMinCache      = time.Minute
	defaultMetadataMaxCache      = 24 * time.Hour
	defaultMetadataNegativeCache = 30 * time.Second
	defaultMetadataUnusedCache   = 10 * time.Minute
	defaultMetadataMaxEntries    = 1000
	// maxMetadataFetches bounds the fetches in flight, whatever their URLs:
	// distinct URLs are not single-flighted, and each fetch holds a
	// connection for up to Timeout.
	maxMetadataFetches = 32
	// defaultMetadataFetchesPerHost bounds the fetches in flight to one
	// host, so that one host's slow documents hold at most this many of
	// the maxMetadataFetches slots.
	defaultMetadataFetchesPerHost = 4
)

// MetadataFetcherOptions configures a MetadataFetcher. Zero fields mean the
// documented defaults.
type MetadataFetcherOptions struct {
	// AllowLoopbackHTTP is for development only. It accepts client IDs
	// http://127.0.0.1/…, http://[::1]/… and http://localhost/… (any port),
	// and lets the fetcher connect to loopback addresses, which it refuses
	// otherwise. Private, link-local and other internal addresses stay
	// refused.
	AllowLoopbackHTTP bool
	// Timeout bounds one fetch: connection, TLS, headers and body. Default
	// 5s.
	Timeout time.Duration
	// MaxBytes bounds a document. Default, and at most,
	// maxClientMetadataBytes (parseClientMetadata refuses more anyway).
	MaxBytes int64
	// MinCache and MaxCache clamp how long a fetched document is reused,
	// whatever its HTTP caching headers say. MinCache (default 1 minute)
	// is the per-URL rate limit: a document sent with Cache-Control
	// no-store or no-cache, max-age=0, an Expires in the past, or with no
	// caching headers at all, is still reused for MinCache, so that no one
	// can make us fetch a URL on every request. MaxCache (default 24 hours)
	// bounds how long a changed or withdrawn document goes unnoticed; it is
	// raised to MinCache if lower.
	MinCache, MaxCache time.Duration
	// NegativeCache is how long a failure (unreachable, refused, invalid
	// document) is remembered and returned without fetching again, so that
	// no one can make us hammer a URL. Default 30s.
	NegativeCache time.Duration
	// MaxEntries bounds the cache; the oldest entry goes first. Default
	// 1000.
	MaxEntries int
	// MaxFetchesPerHost bounds the fetches in flight to one host name (of
	// at most 32 in all), so that documents that answer slowly or never
	// cannot hold every fetch and starve other clients' sign-ins. Further
	// fetches from that host wait for one of its fetches to end, within
	// Timeout. Default 4.
	MaxFetchesPerHost int
	// Shared, if set, is a cache shared by every replica (Redis): a
	// document fetched by one replica serves all of them. It holds a
	// document for UnusedCache at first (long enough for the sign-in that
	// fetched it to end on any replica), and for the rest of its cache
	// lifetime once its client was used (Used: a token was issued to it),
	// so that documents fetched for anyone who names a URL do not fill it.
	// The in-memory cache stays in front of it.
	Shared MetadataCache
	// UnusedCache is how long Shared holds a document whose client has
	// not been used yet. Default 10 minutes.
	UnusedCache time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives the details of failures at debug level (the wire
	// error never holds them); nil discards.
	Logger *slog.Logger
	// Events, if set, is told of each fetch (EventMetadataFetch), not of
	// answers from a cache.
	Events func(Event)
}

// MetadataCache is a cache of fetched and validated metadata documents
// shared across replicas. GetMetadata returns ErrNotFound for a document
// it does not hold. Only documents that passed validation are put.
type MetadataCache interface {
	GetMetadata(ctx context.Context, clientID string) (*Client, error)
	PutMetadata(ctx context.Context, c *Client, ttl time.Duration) error
}

// A MetadataFetcher fetches, validates and caches Client ID Metadata
// Documents: for a client_id that is an https URL, the client's metadata
// is the JSON document at that URL ([CIMD], MCP 2026-07-28 client
// registration). It is safe for concurrent use.
//
// Fetching a URL chosen by an unauthenticated party is server-side request
// forgery waiting to happen, so the fetcher:
//   - connects only to public unicast addresses, checked on the address
//     actually being connected to, after name resolution (a
//     net.Dialer Control function), so DNS rebinding cannot get around it
//     (see dialRefusal for the ranges refused);
//   - ignores HTTP(S)_PROXY from the environment, and follows no redirect;
//   - bounds the time of a fetch and the size of a document;
//   - remembers failures for NegativeCache, runs one fetch per URL at a
//     time however many requests want it, at most MaxFetchesPerHost
//     fetches at once to one host, and at most 32 in all.
//
// The cache is in memory, per replica, in front of an optional cache shared
// by the replicas (MetadataFetcherOptions.Shared): a client's document is
// then fetched once per deployment and cache lifetime.
//
// [CIMD]: https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
type MetadataFetcher struct {
	allowLoopback bool
	timeout       time.Duration
	maxBytes      int64
	minCache      time.Duration
	maxCache      time.Duration
	negCache      time.Duration
	unusedCache   time.Duration
	maxEntries    int
	now           func() time.Time
	log           *slog.Logger
	shared        MetadataCache

	client    *http.Client
	slots     chan struct{} // one per fetch in flight
	hostSlots hostSlots     // the fetches in flight per host
	dialer    *net.Dialer
	tlsConfig *tls.Config // the transport's; tests set RootCAs

	// Test hooks, nil in production. resolve replaces name resolution
	// (the Control check still sees the resolved address); allowDial lets
	// an address through the Control check (the test server's).
	resolve   func(ctx context.Context, host string) ([]netip.Addr, error)
	allowDial func(netip.AddrPort) bool

	cache *ttlcache.Cache[string, metadataEntry] // by URL, the oldest stored going first
	calls singleflight.Group                     // one fetch per URL at a time

	// joined, if set, is called once a caller waits for a fetch (a test
	// hook, nil in production).
	joined func(clientID string)
	events func(Event)
}

// metadataEntry is a cached document, or a cached failure.
type metadataEntry struct {
	client *Client
	err    *authz.Error
	// expires is when the entry leaves the in-memory cache; shared, that
	// the document is in the shared cache for its whole lifetime (Used).
	expires time.Time
	shared  bool
}

// errDialRefused is the Control function's refusal of an address.
var errDialRefused = errors.New("authz: address refused for a client metadata document")

// NewMetadataFetcher returns a MetadataFetcher. opts may be nil.
func NewMetadataFetcher(opts *MetadataFetcherOptions) *MetadataFetcher {
	var o MetadataFetcherOptions
	if opts != nil {
		o = *opts
	}
	f := &MetadataFetcher{
		allowLoopback: o.AllowLoopbackHTTP,
		timeout:       orDefault(o.Timeout, defaultMetadataTimeout),
		maxBytes:      o.MaxBytes,
		minCache:      orDefault(o.MinCache, defaultMetadataMinCache),
		maxCache:      orDefault(o.MaxCache, defaultMetadataMaxCache),
		negCache:      orDefault(o.NegativeCache, defaultMetadataNegativeCache),
		unusedCache:   orDefault(o.UnusedCache, defaultMetadataUnusedCache),
		maxEntries:    o.MaxEntries,
		now:           o.Now,
		log:           o.Logger,
		shared:        o.Shared,
		events:        o.Events,
		slots:         make(chan struct{}, maxMetadataFetches),
		hostSlots:     hostSlots{per: o.MaxFetchesPerHost, m: map[string]*hostSlot{}},
	}
	if f.hostSlots.per <= 0 {
		f.hostSlots.per = defaultMetadataFetchesPerHost
	}
	if f.maxBytes <= 0 || f.maxBytes > maxClientMetadataBytes {
		f.maxBytes = maxClientMetadataBytes
	}
	f.maxCache = max(f.maxCache, f.minCache)
	if f.maxEntries <= 0 {
		f.maxEntries = defaultMetadataMaxEntries
	}
	f.cache = ttlcache.New[string, metadataEntry](f.maxEntries)
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.dialer = &net.Dialer{Timeout: f.timeout, ControlContext: f.control}
	f.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	f.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never HTTP(S)_PROXY: it would dial for us, unchecked
			DialContext:            f.dial,
			TLSClientConfig:        f.tlsConfig,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    f.timeout,
			ResponseHeaderTimeout:  f.timeout,
			MaxResponseHeaderBytes: 32 << 10,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
		},
		// A redirect is answered as it is, and refused as not 200: each hop
		// would be a new URL to check, and the spec has no use for them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       f.timeout,
	}
	return f
}

// orDefault is v, or def when v is not positive.
func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// Fetch returns the client whose client_id is clientID, an https URL, from
// its metadata document: fetched, or cached as HTTP caching allows (see
// MetadataFetcherOptions.MinCache). The client is public (a document
// cannot hold a secret): SecretHash is empty and IssuedAt is when the
// document was fetched. Each call returns a new copy.
//
// Errors are *Error values whose description is safe to show: they never
// hold what the URL answered beyond its HTTP status. invalid_client when
// clientID is not a valid document URL or the document could not be
// fetched (unreachable, refused address, redirect, status other than 200,
// not JSON, too large); invalid_client_metadata or invalid_redirect_uri,
// from parseClientMetadata and validateMetadataDocument, when the document
// is not valid; temporarily_unavailable when too many documents were being
// fetched at once for this one to start within Timeout (the only failure
// not remembered for NegativeCache). If ctx ends before the fetch does, Fetch returns ctx's
// error; the fetch itself goes on (bounded by Timeout) and its result is
// cached for the next caller.
func (f *MetadataFetcher) Fetch(ctx context.Context, clientID string) (*Client, error) {
	if reason := checkClientIDURL(clientID, f.allowLoopback); reason != "" {
		return nil, authz.ErrInvalidClient("client_id " + showURI(clientID) + " is not a valid client metadata document URL: " + reason)
	}
	if e, ok := f.cached(clientID); ok {
		return metadataResult(e.client, e.err)
	}
	// The fetch does not end with the first caller's request: the others
	// wait for it too, and its result is worth caching.
	fctx := context.WithoutCancel(ctx)
	ch := f.calls.DoChan(clientID, func() (any, error) {
		return f.run(fctx, clientID), nil
	})
	if f.joined != nil {
		f.joined(clientID)
	}
	select {
	case r := <-ch:
		res := r.Val.(metadataEntry)
		return metadataResult(res.client, res.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// metadataResult returns copies of a cached or shared client or error, so
// that no caller can change what the others get.
func metadataResult(c *Client, e *authz.Error) (*Client, error) {
	if e != nil {
		e2 := *e
		return nil, &e2
	}
	c2 := *c
	m := &c2.Metadata
	m.RedirectURIs = slices.Clone(m.RedirectURIs)
	m.GrantTypes = slices.Clone(m.GrantTypes)
	m.ResponseTypes = slices.Clone(m.ResponseTypes)
	m.Contacts = slices.Clone(m.Contacts)
	return &c2, nil
}

// cached returns the live cache entry for clientID.
func (f *MetadataFetcher) cached(clientID string) (metadataEntry, bool) {
	return f.cache.Get(clientID, f.now())
}

// run fetches clientID, caches the result and returns it. It looks at the
// cache first: a fetch that ended between a caller's cache miss and its
// joining the flight has stored what this one would fetch again.
func (f *MetadataFetcher) run(ctx context.Context, clientID string) metadataEntry {
	if e, ok := f.cached(clientID); ok {
		return e
	}
	client, ttl, err := f.fetchShared(ctx, clientID)
	now := f.now()
	switch {
	case err != nil && err.Code == authz.TemporarilyUnavailable:
		// Our own load, not the URL's fault: not remembered.
	case err != nil:
		f.cache.Set(clientID, metadataEntry{err: err}, now.Add(f.negCache), now)
	case ttl > 0:
		f.cache.Set(clientID, metadataEntry{client: client, expires: now.Add(ttl)}, now.Add(ttl), now)
	}
	return metadataEntry{client: client, err: err}
}

// Used tells the fetcher that clientID, a document URL, was used: a token
// was issued to it. The shared cache then keeps its document for the rest
// of its cache lifetime instead of UnusedCache (once per replica and
// document lifetime: later calls find it done). A shared cache that fails
// is only logged.
func (f *MetadataFetcher) Used(ctx context.Context, clientID string) {
	if f.shared == nil {
		return
	}
	now := f.now()
	e, ok := f.cached(clientID)
	if !ok || e.client == nil || e.shared {
		return
	}
	if left := e.client.CacheUntil.Sub(now); left > f.unusedCache {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
		err := f.shared.PutMetadata(sctx, e.client, left)
		cancel()
		if err != nil {
			f.log.Debug("cimd: shared cache write failed", "err", err)
			return
		}
	}
	e.shared = true
	f.cache.Set(clientID, e, e.expires, now)
}

// fetchShared is fetch behind the shared cache: a document another replica
// fetched is used as it is (kept locally for the rest of its lifetime, the
// shared entry keeps its own); one this replica fetches is shared for
// UnusedCache (Used extends it). A shared
// cache that fails is only logged: the fetch goes on without it.
func (f *MetadataFetcher) fetchShared(ctx context.Context, clientID string) (*Client, time.Duration, *authz.Error) {
	if f.shared == nil {
		return f.fetchCounted(ctx, clientID)
	}
	sctx, cancel := context.WithTimeout(ctx, f.timeout)
	cached, err := f.shared.GetMetadata(sctx, clientID)
	cancel()
	if err == nil && cached != nil && cached.ClientID == clientID {
		// As long as the document's own lifetime, which the replica that
		// fetched it recorded, within this fetcher's bounds.
		ttl := min(max(cached.CacheUntil.Sub(f.now()), f.minCache), f.maxCache)
		return cached, ttl, nil
	}
	if err != nil && !errors.Is(err, authz.ErrNotFound) {
		f.log.Debug("cimd: shared cache read failed", "err", err)
	}
	client, ttl, ferr := f.fetchCounted(ctx, clientID)
	if ferr == nil && ttl > 0 {
		sctx, cancel := context.WithTimeout(ctx, f.timeout)
		if err := f.shared.PutMetadata(sctx, client, min(ttl, f.unusedCache)); err != nil {
			f.log.Debug("cimd: shared cache write failed", "err", err)
		}
		cancel()
	}
	return client, ttl, ferr
}

// fetchCounted is fetch, told to MetadataFetcherOptions.Events.
func (f *MetadataFetcher) fetchCounted(ctx context.Context, clientID string) (*Client, time.Duration, *authz.Error) {
	client, ttl, ferr := f.fetch(ctx, clientID)
	if f.events != nil {
		e := Event{Kind: EventMetadataFetch, Outcome: OutcomeOK}
		if ferr != nil {
			e.Outcome = OutcomeFailed
		}
		f.events(e)
	}
	return client, ttl, ferr
}

// fetch gets and validates the document at clientID, and says how long it
// may be cached.
func (f *MetadataFetcher) fetch(ctx context.Context, clientID string) (*Client, time.Duration, *authz.Error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	fail := func(wire *authz.Error, detail string, err error) (*Client, time.Duration, *authz.Error) {
		f.log.DebugContext(ctx, "authz: client metadata document refused",
			"client_id", clientID, "reason", detail, "err", err, "wire", wire.Description)
		return nil, 0, wire
	}
	// Until the document names its own URL as client_id, every failure
	// reads the same: telling a status, a content type, a size or "not
	// JSON" apart would describe what some server answered, a scanner of
	// whatever the fetcher can reach. The reason is in the debug log.
	notFetched := authz.ErrInvalidClient("the client metadata document at " + showURI(clientID) + " could not be fetched")

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return fail(notFetched, "building the request", err)
	}
	busy := authz.ErrTemporarilyUnavailable("too many client metadata documents are being fetched; try again later")
	// The host's slot first, so that fetches waiting for a slow host hold
	// none of the slots the other hosts need.
	release, ok := f.hostSlots.acquire(ctx, strings.ToLower(req.URL.Hostname()))
	if !ok {
		return fail(busy, "busy host", ctx.Err())
	}
	defer release()
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	case <-ctx.Done():
		return fail(busy, "busy", ctx.Err())
	}

	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return fail(notFetched, "request failed", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fail(notFetched, "redirect, not followed", fmt.Errorf("status %d", resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return fail(notFetched, "status", fmt.Errorf("status %d", resp.StatusCode))
	}
	if !jsonMediaType(resp.Header.Get("Content-Type")) {
		return fail(notFetched, "content type", fmt.Errorf("content type %q, want application/json", resp.Header.Get("Content-Type")))
	}
	if resp.ContentLength > f.maxBytes {
		return fail(notFetched, "too large", fmt.Errorf("content length %d, limit %d", resp.ContentLength, f.maxBytes))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return fail(notFetched, "reading the body", err)
	}
	if int64(len(body)) > f.maxBytes {
		return fail(notFetched, "too large", fmt.Errorf("limit %d", f.maxBytes))
	}

	doc, err := parseClientMetadata(body)
	if err == nil {
		err = validateDocument(doc, clientID)
	}
	if err != nil {
		if !namesItself(body, clientID) {
			return fail(notFetched, "not a document naming its URL as client_id", err)
		}
		// A document that names its own URL is meant as one: what is
		// wrong with it helps its author and tells nobody anything new.
		var e *authz.Error
		if !errors.As(err, &e) { // unreachable: both return *Error
			e = authz.ErrInvalidClientMetadata("the client metadata document is not valid")
		}
		return fail(e, "invalid document", err)
	}
	now := f.now()
	ttl := f.lifetime(resp.Header, now)
	f.log.DebugContext(ctx, "authz: client metadata document fetched", "client_id", clientID, "cache", ttl)
	return &Client{ClientID: clientID, Metadata: *doc, IssuedAt: now, CacheUntil: now.Add(ttl)}, ttl, nil
}

// hostSlots bounds the fetches in flight per host name. A host's entry
// lives while someone holds or waits for one of its slots.
type hostSlots struct {
	per int
	mu  sync.Mutex
	m   map[string]*hostSlot
}

type hostSlot struct {
	ch    chan struct{} // one per fetch in flight
	users int           // holders and waiters
}

// acquire waits for one of host's slots, until ctx is done (then ok is
// false). release gives it back.
func (h *hostSlots) acquire(ctx context.Context, host string) (release func(), ok bool) {
	h.mu.Lock()
	s := h.m[host]
	if s == nil {
		s = &hostSlot{ch: make(chan struct{}, h.per)}
		h.m[host] = s
	}
	s.users++
	h.mu.Unlock()
	leave := func() {
		h.mu.Lock()
		if s.users--; s.users == 0 {
			delete(h.m, host)
		}
		h.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; leave() }, true
	case <-ctx.Done():
		leave()
		return nil, false
	}
}

// namesItself reports whether body is a JSON object whose client_id is
// clientID: a server that answers so means to serve a client metadata
// document for that URL.
func namesItself(body []byte, clientID string) bool {
	var doc struct {
		ClientID string `json:"client_id"`
	}
	return json.Unmarshal(body, &doc) == nil && doc.ClientID == clientID
}

// validateDocument is validateMetadataDocument, which only knows https,
// extended to the loopback http URLs that AllowLoopbackHTTP admits:
// client_id is compared with the http URL itself, and the rest is checked
// as for the same URL in https.
func validateDocument(doc *ClientMetadata, clientID string) error {
	if !hasSchemeFold(clientID, "http") {
		return validateMetadataDocument(doc, clientID)
	}
	if doc.ClientID != clientID {
		return authz.ErrInvalidClientMetadata("the document's client_id must equal its URL " + showURI(clientID))
	}
	alias := "https" + clientID[len("http"):]
	d := *doc
	d.ClientID = alias
	return validateMetadataDocument(&d, alias)
}

// hasSchemeFold reports whether raw starts with scheme "://", in any case.
func hasSchemeFold(raw, scheme string) bool {
	n := len(scheme) + len("://")
	return len(raw) >= n && strings.EqualFold(raw[:len(scheme)], scheme) && raw[len(scheme):n] == "://"
}

// checkClientIDURL says what is wrong with a client_id to fetch as a
// metadata document, or "": the rules of validateMetadataDocument (https,
// a host, a path other than "/", no userinfo, fragment or dot segments),
// and, when allowLoopbackHTTP, the same rules for an http URL whose host is
// 127.0.0.1, [::1] or localhost.
func checkClientIDURL(raw string, allowLoopbackHTTP bool) string {
	if !hasSchemeFold(raw, "http") {
		return checkDocumentURL(raw)
	}
	if !allowLoopbackHTTP {
		return "must be an https URL"
	}
	alias := "https" + raw[len("http"):]
	if reason := checkDocumentURL(alias); reason != "" {
		return reason
	}
	u, _ := url.Parse(alias) // checkDocumentURL parsed it
	if !isLoopbackHost(u.Hostname()) {
		return "http is only allowed on 127.0.0.1, [::1] and localhost; use https"
	}
	return ""
}

// jsonMediaType reports a JSON media type: application/json or
// application/*+json, with any parameters.
func jsonMediaType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// dial connects for the transport. The Control function checks every
// address it connects to; name resolution is the dialer's own, unless a
// test replaces it.
func (f *MetadataFetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if f.resolve == nil {
		return f.dialer.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := f.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s: no addresses", host)
	}
	var errs []error
	for _, ip := range ips {
		c, err := f.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// control is the dialer's Control function: it runs after name resolution,
// just before connect(2), with the address about to be connected to. This
// is where the SSRF check belongs: a check of the name, or of an earlier
// resolution, can be raced by DNS rebinding.
func (f *MetadataFetcher) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %s", errDialRefused, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", errDialRefused, address, err)
	}
	if f.allowDial != nil && f.allowDial(ap) {
		return nil
	}
	if why := dialRefusal(ap.Addr(), f.allowLoopback); why != "" {
		return fmt.Errorf("%w: %s is %s", errDialRefused, ap.Addr(), why)
	}
	return nil
}

// Address ranges refused besides those netip's predicates name (loopback,
// private, link-local, multicast, unspecified). IPv6 is further limited to
// 2000::/3, the global unicast space; these are reserved ranges within it
// or within IPv4. From the IANA special-purpose address registries.
var (
	refusedPrefixes = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
		netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1 (RFC 5737)
		netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (RFC 7526)
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2 (RFC 5737)
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3 (RFC 5737)
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast (RFC 1112)
		netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo (RFC 2928, 4380)
		netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
		netip.MustParsePrefix("2002::/16"),       // 6to4, which embeds any IPv4 address (RFC 3056)
		netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	}
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach
	// the IPv4 address in their last 32 bits, which is checked instead.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// dialRefusal says why the fetcher must not connect to a, or "" if it may:
// a must be a public unicast address. Refused: loopback (unless
// allowLoopback), unspecified, private (10/8, 172.16/12, 192.168/16,
// fc00::/7), link-local (169.254/16 with the cloud metadata address
// 169.254.169.254, fe80::/10), multicast, CGNAT 100.64/10, 0/8, the
// reserved ranges of refusedPrefixes, IPv6 outside 2000::/3 (site-local,
// IPv4-compatible, discard-only, local-use NAT64 ...), and addresses with
// a zone. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) and a NAT64
// address (64:ff9b::a.b.c.d) are judged by their IPv4 address; a NAT64
// address of a loopback address is refused even with allowLoopback.
func dialRefusal(a netip.Addr, allowLoopback bool) string {
	if !a.IsValid() {
		return "not an IP address"
	}
	if a.Zone() != "" {
		return "a scoped address"
	}
	a = a.Unmap()
	if nat64.Contains(a) {
		v4 := a.As16()
		if why := dialRefusal(netip.AddrFrom4([4]byte(v4[12:])), false); why != "" {
			return why + " (through NAT64)"
		}
		return ""
	}
	switch {
	case a.IsLoopback():
		if allowLoopback {
			return ""
		}
		return "a loopback address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsMulticast():
		return "a multicast address"
	case !a.IsGlobalUnicast():
		return "not a unicast address"
	case a.Is6() && !globalUnicast6.Contains(a):
		return "outside the IPv6 global unicast space"
	}
	for _, p := range refusedPrefixes {
		if p.Contains(a) {
			return "a reserved address (" + p.String() + ")"
		}
	}
	return ""
}

// lifetime is how long a response with header h, received at now, is
// cached: its HTTP freshness lifetime clamped to [minCache, maxCache].
func (f *MetadataFetcher) lifetime(h http.Header, now time.Time) time.Duration {
	return min(max(freshness(h, now), f.minCache), f.maxCache)
}

// maxDeltaSeconds caps delta-seconds values (RFC 9111 §1.2.2).
const maxDeltaSeconds = 1 << 31

// freshness is the freshness lifetime of a response with header h,
// received at now, less its Age (RFC 9111 §4.2): zero for no-store or
// no-cache (this cache does not revalidate), else max-age, else Expires
// minus Date (or now). Zero too when there is no such information, and
// for an invalid value, which RFC 9111 §4.2.1 says means stale. The
// smallest of repeated max-age values counts.
//
// The parsing is ours rather than github.com/lestrrat-go/httpcc's (v1.0.1,
// which jwx's httprc uses): the documents come from any URL a client
// names, and httpcc panics on an empty directive value ("max-age="),
// splits at commas inside quoted strings, refuses a quoted max-age (which
// RFC 9111 §5.2.1.1 asks recipients to accept) and fails on a max-age
// beyond 64 bits instead of capping it; TestFreshness holds each case.
func freshness(h http.Header, now time.Time) time.Duration {
	var (
		maxAge    int64
		hasMaxAge bool
	)
	for _, d := range cacheDirectives(h.Values("Cache-Control")) {
		name, value, _ := strings.Cut(d, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, ok := deltaSeconds(unquote(strings.TrimSpace(value)))
			if !ok {
				n = 0
			}
			if !hasMaxAge || n < maxAge {
				maxAge = n
			}
			hasMaxAge = true
		}
	}
	var life time.Duration
	switch {
	case hasMaxAge:
		life = time.Duration(maxAge) * time.Second
	case h.Get("Expires") != "":
		exp, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			return 0
		}
		base := now
		if date, err := http.ParseTime(h.Get("Date")); err == nil {
			base = date
		}
		life = exp.Sub(base)
	default:
		return 0
	}
	if age, ok := deltaSeconds(strings.TrimSpace(h.Get("Age"))); ok {
		life -= time.Duration(age) * time.Second
	}
	return max(life, 0)
}

// cacheDirectives splits Cache-Control field values at the commas that are
// not inside a quoted string.
func cacheDirectives(values []string) []string {
	var out []string
	for _, v := range values {
		start, quoted := 0, false
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '\\' && quoted:
				i++
			case c == '"':
				quoted = !quoted
			case c == ',' && !quoted:
				out = append(out, v[start:i])
				start = i + 1
			}
		}
		out = append(out, v[start:])
	}
	return out
}

// unquote removes the quotes of an RFC 9110 quoted-string (recipients of
// max-age should accept one, RFC 9111 §5.2.1.1) and its backslash escapes.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deltaSeconds parses RFC 9111 delta-seconds: one or more digits, capped
// at maxDeltaSeconds.
func deltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int64(c-'0'), maxDeltaSeconds)
	}
	return n, true
}
