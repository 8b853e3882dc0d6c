package as

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/authz"
)

// A RateLimiter counts requests per key: a token bucket that holds limit
// requests and refills at limit per window. A key that was idle for a
// window may send limit requests at once; after that, one request every
// window/limit. So over any span of time t, a key gets at most
// limit + limit·t/window requests, and a steady client exactly limit per
// window.
//
// Implementations use GCRA (the generic cell rate algorithm), which is this
// bucket kept as one number per key, the theoretical arrival time TAT:
// with T = window/limit, a request at now is allowed if max(TAT, now)+T-
// window <= now, and then TAT becomes max(TAT, now)+T. A key is forgotten
// when now passes its TAT, so memory and TTLs never exceed one window.
//
// Allow reports whether one more request under key is allowed, and counts
// it if so: a refused request does not count. When it is refused,
// retryAfter is how long until one would be allowed (positive, at most
// window/limit). Concurrent calls for one key must be atomic: of any
// number of calls at once on a fresh key, exactly limit succeed. limit and
// window must be positive. memstore.RateLimiter is the in-process
// implementation; redisstore.RateLimiter shares the budgets across
// replicas. Keys are short strings built by the Server.
type RateLimiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
}

// RateLimits configures the rate limits of /register, /authorize, /token,
// /revoke and /introspect, per client address and per client id. The zero value turns rate
// limiting off; with a Limiter set, zero limits mean the defaults below.
//
// A limiter that fails (its store is down) lets the request through, and
// the failure is logged: the limits guard against abuse, not correctness,
// and refusing every sign-in and token refresh because the limiter cannot
// count would turn a store hiccup into an outage for every user. Each of
// these endpoints then needs the same store for its real work, which
// answers with its own 503 if the store is really down (and cmd's Redis
// health gate answers 503 before any of this while Redis is unreachable),
// so failing open does not open an unbounded hole.
//
// A refused request gets 429 Too Many Requests with Retry-After (seconds,
// rounded up): on /register and /token an OAuth JSON error
// temporarily_unavailable (RFC 6749 §4.1.2.1, in the IANA OAuth error
// registry; RFC 7591 §3.2.2 allows other codes, and this server already
// answers transient /token failures with it; /revoke and /introspect
// answer the same), which clients treat as
// "retry later" and never as a reason to drop their registration or
// tokens, unlike invalid_client or invalid_grant; not slow_down, which is
// RFC 8628's device-polling signal; not too_many_requests, which no RFC
// defines. On /authorize, which the user's browser opens, an error page:
// nothing can be sent to the client's redirect URI before the client is
// looked up, which is the work the limit is there to avoid.
type RateLimits struct {
	// Limiter counts the requests. nil turns rate limiting off. Replicas
	// must share one (redisstore.RateLimiter) for the limits to hold
	// across them; with memstore.RateLimiter each replica counts alone.
	Limiter RateLimiter

	// Register limits POST /register per client address (it has no
	// client id yet). Default 20 a minute: a client registers once per
	// installation, so even an office behind one NAT address stays far
	// below it, while a loop that fills the client store is stopped.
	Register EndpointLimits
	// Authorize limits GET /authorize. Defaults: 60 a minute per address
	// (a person signs in a few times a minute at most; the margin covers
	// shared addresses), 30 a minute per client id (every request stores
	// a pending authorization, so this bounds what one client id can
	// make the store hold).
	Authorize EndpointLimits
	// Token limits POST /token, /revoke and /introspect together (one
	// budget: the three authenticate the client, fetching the metadata
	// document of a URL client id). Defaults: 120 a minute per address (an
	// address may front many clients, each refreshing about once per
	// access-token lifetime), 60 a minute per client id and address (one
	// installation needs a few a minute at most, a retry loop needs more:
	// it is stopped). PerClient counts here per client id and address, not
	// per client id alone: the limit is checked before the client is
	// authenticated, and client ids are not secret, so a budget shared by
	// all addresses would let anyone spend a client's budget and lock it
	// out. Our client secrets are 256 random bits, which no rate of
	// guessing reaches.
	Token EndpointLimits

	// ClientAddress returns the address of the client of a request, to
	// count it against. Default: the IP of r.RemoteAddr. Behind a load
	// balancer use ForwardedFor with the balancer's addresses: never take
	// X-Forwarded-For from a request that did not come through a proxy
	// you run, since anyone on the internet can send one, and with it
	// make every request count against a fresh (or someone else's)
	// address. IPv6 addresses are counted per /64, which is what one
	// subscriber usually gets.
	ClientAddress func(r *http.Request) string
}

// EndpointLimits are the limits of one endpoint.
type EndpointLimits struct {
	// PerAddress limits the requests of one client address.
	PerAddress Limit
	// PerClient limits the requests that name one client id: from any
	// address on /authorize, from one address on /token (see
	// RateLimits.Token). Client ids that are URLs (Client ID Metadata Documents)
	// are not limited per client: every installation of an app shares
	// such an id, so a limit on it would throttle all of the app's users
	// together. Unused for /register.
	PerClient Limit
}

// A Limit allows Requests per Window: a burst of up to Requests, then
// Requests per Window (see RateLimiter). A zero Requests means the
// endpoint's default; a negative one turns the limit off. A zero Window
// means a minute.
type Limit struct {
	Requests int
	Window   time.Duration
}

func (l *Limit) setDefault(requests int) {
	if l.Requests == 0 {
		l.Requests = requests
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
}

// setDefaults fills in the default limits.
func (rl *RateLimits) setDefaults() {
	rl.Register.PerAddress.setDefault(20)
	rl.Register.PerClient = Limit{Requests: -1}
	rl.Authorize.PerAddress.setDefault(60)
	rl.Authorize.PerClient.setDefault(30)
	rl.Token.PerAddress.setDefault(120)
	rl.Token.PerClient.setDefault(60)
	if rl.ClientAddress == nil {
		rl.ClientAddress = remoteIP
	}
}

// limitedEndpoint names an endpoint with rate limits, and is the first part
// of its limiter keys.
type limitedEndpoint string

const (
	limitRegister   limitedEndpoint = "register"
	limitAuthorize  limitedEndpoint = "authorize"
	limitToken      limitedEndpoint = "token"
	limitRevoke     limitedEndpoint = "revoke"
	limitIntrospect limitedEndpoint = "introspect"
)

// budget is the endpoint whose limits and counts ep shares. /revoke and
// /introspect authenticate the client as /token does, which for a URL
// client id means fetching its metadata document: they spend /token's
// budget, so that moving from one to the others buys no more fetches.
func (ep limitedEndpoint) budget() limitedEndpoint {
	if ep == limitRevoke || ep == limitIntrospect {
		return limitToken
	}
	return ep
}

func (s *Server) endpointLimits(ep limitedEndpoint) EndpointLimits {
	switch ep.budget() {
	case limitRegister:
		return s.o.RateLimits.Register
	case limitAuthorize:
		return s.o.RateLimits.Authorize
	default:
		return s.o.RateLimits.Token
	}
}

// addressLimited counts a request against its client address's limit on
// ep; if that is exhausted it answers 429 and returns true. It reads no
// body, so it runs first.
func (s *Server) addressLimited(w http.ResponseWriter, r *http.Request, ep limitedEndpoint) bool {
	if s.o.RateLimits.Limiter == nil {
		return false
	}
	addr := addressKey(s.o.RateLimits.ClientAddress(r))
	return s.limited(w, r, ep, "addr", addr, s.endpointLimits(ep).PerAddress)
}

// clientLimited counts a request against the limit of the client id it
// names (asserted, not yet authenticated) on ep, on /token together with
// its address; if that is exhausted it answers 429 and returns true. An
// empty or URL client id is not counted.
func (s *Server) clientLimited(w http.ResponseWriter, r *http.Request, ep limitedEndpoint, clientID string) bool {
	if s.o.RateLimits.Limiter == nil || clientID == "" || isDocumentClientID(clientID) {
		return false
	}
	if ep.budget() == limitToken {
		addr := addressKey(s.o.RateLimits.ClientAddress(r))
		return s.limited(w, r, ep, "client-addr", clientKey(clientID)+"@"+addr, s.endpointLimits(ep).PerClient)
	}
	return s.limited(w, r, ep, "client", clientKey(clientID), s.endpointLimits(ep).PerClient)
}

func (s *Server) limited(w http.ResponseWriter, r *http.Request, ep limitedEndpoint, kind, id string, l Limit) bool {
	if l.Requests <= 0 {
		return false
	}
	ok, retry, err := s.o.RateLimits.Limiter.Allow(r.Context(), string(ep.budget())+":"+kind+":"+id, l.Requests, l.Window)
	if err != nil {
		s.logErr(r, "rate limiter failed; request let through", err)
		return false
	}
	if ok {
		return false
	}
	secs := retryAfterSeconds(retry)
	s.event(Event{Kind: EventRateLimited, Outcome: string(ep)})
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "authz: rate limited", slog.String("endpoint", string(ep)),
		slog.String("per", kind), slog.String("key", id), slog.Int("retry_after", secs))
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(secs))
	if ep == limitAuthorize {
		s.renderError(w, r, &errPage{http.StatusTooManyRequests, "Too many sign-in attempts",
			"There were too many sign-in attempts from your network or this app in a short time. Wait " +
				strconv.Itoa(secs) + " seconds, then try again."})
		return true
	}
	// Browser-based clients call these with fetch: let them read when to
	// retry (Retry-After is not a CORS-safelisted response header).
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	authz.WriteError(w, &authz.Error{Code: authz.TemporarilyUnavailable, Status: http.StatusTooManyRequests,
		Description: "too many requests; retry after " + strconv.Itoa(secs) + " seconds"})
	return true
}

// retryAfterSeconds rounds a wait up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// assertedClientID is the client id a token request names, before it is
// authenticated: the Basic user name, or else client_id in the form.
func assertedClientID(r *http.Request, form url.Values) string {
	if id, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
		return id
	}
	return form.Get("client_id")
}

// remoteIP is the default ClientAddress: the IP of the connection's peer.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ForwardedFor returns a RateLimits.ClientAddress for a deployment behind
// proxies (load balancers) whose addresses are in trusted. A request whose
// peer is not trusted counts against the peer's address, whatever
// X-Forwarded-For it carries. From a trusted peer, X-Forwarded-For is read
// from the right (each proxy appends the address it got the request from),
// skipping trusted addresses: the first untrusted one is the client. An
// entry that is not an IP address ends the walk at the last trusted hop
// before it, since everything to its left was written by someone else.
//
// Trust only the proxies you run: a client can put anything in the header
// itself, and only what your own proxies appended to its right is true.
func ForwardedFor(trusted ...netip.Prefix) func(r *http.Request) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer, err := netip.ParseAddr(remoteIP(r))
		if err != nil {
			return remoteIP(r)
		}
		addr := peer.Unmap().WithZone("")
		if !isTrusted(addr) {
			return addr.String()
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, ok := parseHop(hops[i])
			if !ok {
				break
			}
			addr = hop
			if !isTrusted(addr) {
				break
			}
		}
		return addr.String()
	}
}

// parseHop parses an X-Forwarded-For entry: an IP address, possibly with a
// port ("[::1]:80", "192.0.2.1:80"), as some proxies write it. A zone is
// dropped.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// addressKey is the limiter key part of a client address: the IP, with
// IPv6 addresses cut to their /64; something else is kept, hashed if it
// is long or odd.
func addressKey(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			if s == "" {
				return "unknown"
			}
			return clientKey(s)
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// clientKey is the limiter key part of an untrusted string: the string
// itself if it is short and plain (as our client ids are), else a hash of
// it, so that keys stay short and free of separators.
func clientKey(id string) string {
	if len(id) <= 64 && plainKey(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256-" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

func plainKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
