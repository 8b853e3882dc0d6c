package remotemcp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/policy"
)

// labelOther stands for any label value outside a family's known set (a
// method no client should send, a tool that is not registered), so that
// what a client sends cannot grow the number of series.
const labelOther = "other"

// mcpMethods are the MCP methods counted under their own name.
var mcpMethods = []string{
	"initialize", "ping", "notifications/initialized", "notifications/cancelled",
	"notifications/progress", "notifications/roots/list_changed",
	"tools/list", "tools/call", "prompts/list", "prompts/get",
	"resources/list", "resources/templates/list", "resources/read",
	"resources/subscribe", "resources/unsubscribe", "subscriptions/listen",
	"completion/complete", "logging/setLevel", "server/discover",
	labelOther,
}

// tokenOutcomes are the outcomes of the token endpoint counted under
// their own name.
var tokenOutcomes = []string{
	as.OutcomeOK, string(authz.InvalidRequest), string(authz.InvalidClient), string(authz.InvalidGrant),
	string(authz.UnauthorizedClient), string(authz.UnsupportedGrantType), string(authz.InvalidScope),
	string(authz.InvalidTarget), string(authz.ServerError), string(authz.TemporarilyUnavailable), labelOther,
}

// rateLimitedEndpoints are the endpoints with rate limits.
var rateLimitedEndpoints = []string{"register", "authorize", "token", "revoke", "introspect"}

// A metrics holds the server's Prometheus collectors (see the README's
// "Observability: metrics" for each family). A nil *metrics is off: its
// methods return nil hooks.
type metrics struct {
	reg *policy.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	toolCalls  *prometheus.CounterVec
	streams    prometheus.Gauge
	sessCreate prometheus.Counter
	sessDelete prometheus.Counter
	sessActive *activeSessions

	registrations  *prometheus.CounterVec
	authorizations *prometheus.CounterVec
	tokens         *prometheus.CounterVec
	refreshReuse   prometheus.Counter
	revocations    prometheus.Counter
	upstream       *prometheus.CounterVec
	metadata       *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	redisCalls     prometheus.Counter
	redisErrors    prometheus.Counter
	cache          *prometheus.CounterVec

	// Children resolved once, so that the request path only indexes
	// maps: [era][method].
	byMethod [2]map[string]*methodMetrics
	cacheHit prometheus.Counter
	cacheMis prometheus.Counter

	toolMu sync.RWMutex
	tools  map[string]*toolMetrics // registered tools seen so far, and labelOther
}

type methodMetrics struct {
	ok, failed prometheus.Counter
	latency    prometheus.Observer
}

type toolMetrics struct {
	ok, isError, failed prometheus.Counter
}

// activeSessions is the gauge of legacy sessions; its source is set once
// the MCP handler exists.
type activeSessions struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	n    func() int
}

func (a *activeSessions) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *activeSessions) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	n := a.n
	a.mu.Unlock()
	v := 0
	if n != nil {
		v = n()
	}
	ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, float64(v))
}

// newMetrics registers the server's collectors on r (nil: metrics off).
func newMetrics(r prometheus.Registerer, reg *policy.Registry) (*metrics, error) {
	if r == nil {
		return nil, nil
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		reg: reg,
		requests: counter("remotemcp_mcp_requests_total",
			"MCP requests and notifications handled, by protocol era, method and outcome (ok or error: a JSON-RPC error).",
			"era", "method", "outcome"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "remotemcp_mcp_request_duration_seconds",
			Help:    "Time the MCP server took to handle a request, by protocol era and method.",
			Buckets: prometheus.DefBuckets}, []string{"era", "method"}),
		toolCalls: counter("remotemcp_tool_calls_total",
			"tools/call requests by tool (registered tools only; others are \"other\") and outcome: ok, is_error (the tool reported a failure) or error (a protocol error).",
			"tool", "outcome"),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "remotemcp_sse_streams_open",
			Help: "SSE response streams open on this replica (both eras)."}),
		sessCreate: prometheus.NewCounter(prometheus.CounterOpts{Name: "remotemcp_legacy_sessions_created_total",
			Help: "Legacy MCP sessions created on this replica."}),
		sessDelete: prometheus.NewCounter(prometheus.CounterOpts{Name: "remotemcp_legacy_sessions_deleted_total",
			Help: "Legacy MCP sessions ended by their client (HTTP DELETE) on this replica."}),
		sessActive: &activeSessions{desc: prometheus.NewDesc("remotemcp_legacy_sessions_active",
			"Legacy MCP sessions this replica served recently (those in its session cache: about the last 30 seconds).", nil, nil)},
		registrations: counter("remotemcp_oauth_registrations_total",
			"Dynamic client registrations by outcome: ok or refused (the client store is full).", "outcome"),
		authorizations: counter("remotemcp_oauth_authorizations_total",
			"Authorizations by outcome: consented (asked or remembered), denied (by the user) or refused (by the sign-in allow-list).", "outcome"),
		tokens: counter("remotemcp_oauth_token_requests_total",
			"Token endpoint answers by grant type (authorization_code, refresh_token, other) and outcome (ok or the OAuth error code).",
			"grant_type", "outcome"),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{Name: "remotemcp_oauth_refresh_reuse_total",
			Help: "Refresh tokens used again outside the grace window (each revokes its grant)."}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{Name: "remotemcp_oauth_revocations_total",
			Help: "Revocation requests answered 200 at the revocation endpoint (RFC 7009 answers 200 for an unknown token too)."}),
		upstream: counter("remotemcp_oauth_upstream_refreshes_total",
			"Refreshes of upstream tokens by outcome: ok, refused (the user must authorize again) or failed (the upstream could not be reached or answered otherwise).", "outcome"),
		metadata: counter("remotemcp_oauth_client_metadata_fetches_total",
			"Fetches of client metadata documents (not cache answers) by outcome: ok or failed.", "outcome"),
		rateLimited: counter("remotemcp_rate_limited_total",
			"Requests refused by a rate limit of the authorization server, by endpoint.", "endpoint"),
		redisCalls: prometheus.NewCounter(prometheus.CounterOpts{Name: "remotemcp_redis_round_trips_total",
			Help: "Redis round trips (a command or a pipeline)."}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "remotemcp_redis_errors_total",
			Help: "Redis round trips that failed (a missing key is not a failure)."}),
		cache: counter("remotemcp_token_cache_lookups_total",
			"Lookups of access tokens in the verified-token cache, by result: hit or miss.", "result"),
		tools: map[string]*toolMetrics{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.toolCalls, m.streams, m.sessCreate, m.sessDelete,
		m.sessActive, m.registrations, m.authorizations, m.tokens, m.refreshReuse, m.revocations, m.upstream,
		m.metadata, m.rateLimited, m.redisCalls, m.redisErrors, m.cache} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	for era := range m.byMethod {
		e := mcpserver.Era(era).String()
		m.byMethod[era] = map[string]*methodMetrics{}
		for _, name := range mcpMethods {
			m.byMethod[era][name] = &methodMetrics{
				ok:      m.requests.WithLabelValues(e, name, "ok"),
				failed:  m.requests.WithLabelValues(e, name, "error"),
				latency: m.latency.WithLabelValues(e, name),
			}
		}
	}
	m.tools[labelOther] = m.newTool(labelOther)
	m.cacheHit = m.cache.WithLabelValues("hit")
	m.cacheMis = m.cache.WithLabelValues("miss")
	for _, o := range []string{as.OutcomeOK, as.OutcomeRefused} {
		m.registrations.WithLabelValues(o)
	}
	for _, o := range []string{as.OutcomeConsented, as.OutcomeDenied, as.OutcomeRefused} {
		m.authorizations.WithLabelValues(o)
	}
	for _, o := range []string{as.OutcomeOK, as.OutcomeRefused, as.OutcomeFailed} {
		m.upstream.WithLabelValues(o)
	}
	for _, o := range []string{as.OutcomeOK, as.OutcomeFailed} {
		m.metadata.WithLabelValues(o)
	}
	// Every family has its series from the start, at zero: a rate over
	// a scrape window needs the zero, and a dashboard can name them all.
	for _, g := range []string{"authorization_code", "refresh_token", labelOther} {
		for _, o := range tokenOutcomes {
			m.tokens.WithLabelValues(g, o)
		}
	}
	for _, ep := range rateLimitedEndpoints {
		m.rateLimited.WithLabelValues(ep)
	}
	return m, nil
}

func (m *metrics) newTool(name string) *toolMetrics {
	return &toolMetrics{
		ok:      m.toolCalls.WithLabelValues(name, "ok"),
		isError: m.toolCalls.WithLabelValues(name, "is_error"),
		failed:  m.toolCalls.WithLabelValues(name, "error"),
	}
}

// tool returns the counters of the tool name: its own if it is registered,
// else those of "other".
func (m *metrics) tool(name string) *toolMetrics {
	m.toolMu.RLock()
	t := m.tools[name]
	m.toolMu.RUnlock()
	if t != nil {
		return t
	}
	if _, known := m.reg.Lookup("tools/call", name); !known {
		m.toolMu.RLock()
		defer m.toolMu.RUnlock()
		return m.tools[labelOther]
	}
	m.toolMu.Lock()
	defer m.toolMu.Unlock()
	if t = m.tools[name]; t == nil {
		t = m.newTool(name)
		m.tools[name] = t
	}
	return t
}

// observer is the MCP handler's Observer (nil when metrics are off).
func (m *metrics) observer() mcpserver.Observer {
	if m == nil {
		return nil
	}
	return (*mcpObserver)(m)
}

type mcpObserver metrics

func (o *mcpObserver) Request(era mcpserver.Era, method string, req mcp.Request, res mcp.Result, err error, d time.Duration) {
	m := (*metrics)(o)
	byMethod := m.byMethod[era&1]
	mm := byMethod[method]
	if mm == nil {
		mm = byMethod[labelOther]
	}
	if err != nil {
		mm.failed.Inc()
	} else {
		mm.ok.Inc()
	}
	mm.latency.Observe(d.Seconds())
	if method != "tools/call" {
		return
	}
	call, _ := req.(*mcp.CallToolRequest)
	if call == nil || call.Params == nil {
		return
	}
	t := m.tool(call.Params.Name)
	switch r, _ := res.(*mcp.CallToolResult); {
	case err != nil:
		t.failed.Inc()
	case r != nil && r.IsError:
		t.isError.Inc()
	default:
		t.ok.Inc()
	}
}

func (o *mcpObserver) Stream(delta int) { o.streams.Add(float64(delta)) }

func (o *mcpObserver) Session(created bool) {
	if created {
		o.sessCreate.Inc()
	} else {
		o.sessDelete.Inc()
	}
}

// activeSessionsFrom makes the legacy-sessions gauge read n.
func (m *metrics) activeSessionsFrom(n func() int) {
	if m == nil {
		return
	}
	m.sessActive.mu.Lock()
	m.sessActive.n = n
	m.sessActive.mu.Unlock()
}

// asEvents is the authorization server's Options.Events.
func (m *metrics) asEvents() func(as.Event) {
	if m == nil {
		return nil
	}
	return m.asEvent
}

func (m *metrics) asEvent(e as.Event) {
	switch e.Kind {
	case as.EventRegistration:
		m.registrations.WithLabelValues(e.Outcome).Inc()
	case as.EventAuthorization:
		m.authorizations.WithLabelValues(e.Outcome).Inc()
	case as.EventToken:
		outcome := labelOther
		for _, o := range tokenOutcomes {
			if o == e.Outcome {
				outcome = o
			}
		}
		m.tokens.WithLabelValues(e.GrantType, outcome).Inc()
	case as.EventRefreshReuse:
		m.refreshReuse.Inc()
	case as.EventRevocation:
		m.revocations.Inc()
	case as.EventMetadataFetch:
		m.metadata.WithLabelValues(e.Outcome).Inc()
	case as.EventRateLimited:
		m.rateLimited.WithLabelValues(e.Outcome).Inc()
	}
}

// upstreamRefreshed is the vault's VaultOptions.Refreshed.
func (m *metrics) upstreamRefreshed() func(string) {
	if m == nil {
		return nil
	}
	return func(outcome string) { m.upstream.WithLabelValues(outcome).Inc() }
}

// cacheLookup is the verifiers' CacheLookup.
func (m *metrics) cacheLookup() func(bool) {
	if m == nil {
		return nil
	}
	return func(hit bool) {
		if hit {
			m.cacheHit.Inc()
		} else {
			m.cacheMis.Inc()
		}
	}
}

// redisHook counts the round trips and failures of rdb.
func (m *metrics) instrumentRedis(rdb redis.UniversalClient) {
	if m == nil || rdb == nil {
		return
	}
	rdb.AddHook(redisHook{m})
}

type redisHook struct{ m *metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(err)
		return err
	}
}

func (h redisHook) count(err error) {
	h.m.redisCalls.Inc()
	if err != nil && !errors.Is(err, redis.Nil) {
		h.m.redisErrors.Inc()
	}
}
