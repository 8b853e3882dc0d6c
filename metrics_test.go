package remotemcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/policy"
)

// families gathers reg by family name.
func families(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// sample is the value of the series of family name whose labels include
// labels (summed over the others; a histogram's count), or -1 if the
// family is missing.
func sample(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	sum := 0.0
series:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// labelValues lists the values label takes in family name.
func labelValues(mfs map[string]*dto.MetricFamily, name, label string) []string {
	var vals []string
	for _, m := range mfs[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && !slices.Contains(vals, lp.GetValue()) {
				vals = append(vals, lp.GetValue())
			}
		}
	}
	slices.Sort(vals)
	return vals
}

func failing(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, struct{}, error) {
	return nil, struct{}{}, errors.New("it failed")
}

// waitUntil polls cond (a state reached asynchronously, such as a
// client's GET stream opening) for up to 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetrics drives both eras through a Server with Redis state and
// checks the MCP, session, stream and Redis families of its registry.
func TestMetrics(t *testing.T) {
	rs := redistest.Start(t)
	ctx := t.Context()
	reg := newRegistry()
	policy.AddTool(reg, &mcp.Tool{Name: "failing"}, failing, policy.Open)
	prom := prometheus.NewRegistry()
	ts := httptest.NewUnstartedServer(nil)
	srv, err := New(ctx, reg, &Options{PublicURL: "http://" + ts.Listener.Addr().String(), Dev: true, RedisURL: rs.URL, Metrics: prom})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts.Config.Handler = srv
	ts.Start()
	defer ts.Close()
	if _, err := New(ctx, newRegistry(), &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, Metrics: prom}); err == nil {
		t.Error("a second Server registered on the same registry")
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	for _, version := range []string{mcpserver.Version20260728, mcpserver.Version20251125} {
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		for _, name := range []string{"echo", "echo", "failing"} {
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name}); err != nil {
				t.Fatalf("%s %s: %v", version, name, err)
			}
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "no-such-tool"}); err == nil {
			t.Fatalf("%s: an unknown tool answered", version)
		}
		if version == mcpserver.Version20251125 {
			// The go-sdk client opens the session's GET stream by itself.
			waitUntil(t, "an open SSE stream", func() bool {
				return sample(families(t, prom), "remotemcp_sse_streams_open") >= 1
			})
			// The GET stream waited for the broadcast subscription, which
			// the session cache needs: this request's session record is
			// cached, if none was yet.
			if err := cs.Ping(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if got := sample(families(t, prom), "remotemcp_legacy_sessions_active"); got != 1 {
				t.Errorf("remotemcp_legacy_sessions_active = %v during the session; want 1", got)
			}
		}
		cs.Close()
	}
	waitUntil(t, "the legacy session's DELETE", func() bool {
		return sample(families(t, prom), "remotemcp_legacy_sessions_deleted_total") == 1
	})

	mfs := families(t, prom)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64 // at least
	}{
		{"remotemcp_mcp_requests_total", []string{"era", "2026-07-28", "method", "tools/call", "outcome", "ok"}, 3},
		{"remotemcp_mcp_requests_total", []string{"era", "2026-07-28", "method", "tools/call", "outcome", "error"}, 1},
		{"remotemcp_mcp_requests_total", []string{"era", "legacy", "method", "tools/call", "outcome", "ok"}, 3},
		{"remotemcp_mcp_requests_total", []string{"era", "legacy", "method", "initialize", "outcome", "ok"}, 1},
		{"remotemcp_mcp_requests_total", []string{"era", "legacy", "method", "tools/call", "outcome", "error"}, 1},
		{"remotemcp_mcp_request_duration_seconds", []string{"era", "2026-07-28", "method", "tools/call"}, 4},
		{"remotemcp_mcp_request_duration_seconds", []string{"era", "legacy", "method", "tools/call"}, 4},
		{"remotemcp_tool_calls_total", []string{"tool", "echo", "outcome", "ok"}, 4},
		{"remotemcp_tool_calls_total", []string{"tool", "failing", "outcome", "is_error"}, 2},
		{"remotemcp_tool_calls_total", []string{"tool", "other", "outcome", "error"}, 2},
		{"remotemcp_legacy_sessions_created_total", nil, 1},
		{"remotemcp_legacy_sessions_deleted_total", nil, 1},
		{"remotemcp_legacy_sessions_active", nil, 0},
		{"remotemcp_sse_streams_open", nil, 0},
		{"remotemcp_redis_round_trips_total", nil, 10},
		{"remotemcp_redis_errors_total", nil, 0},
		{"remotemcp_token_cache_lookups_total", nil, 0},
		{"remotemcp_oauth_registrations_total", nil, 0},
	} {
		if got := sample(mfs, tt.name, tt.labels...); got < tt.want {
			t.Errorf("%s%v = %v; want at least %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if got := labelValues(mfs, "remotemcp_tool_calls_total", "tool"); !slices.Equal(got, []string{"echo", "failing", "other"}) {
		t.Errorf("tool labels %q; want echo, failing, other", got)
	}

	// Redis failures are counted.
	rs.Kill()
	srv.Redis().Ping(ctx)
	if got := sample(families(t, prom), "remotemcp_redis_errors_total"); got < 1 {
		t.Errorf("remotemcp_redis_errors_total = %v after a failed ping; want at least 1", got)
	}
}

// TestMetricsLabelsBounded: what a client names (a method, a tool) becomes
// a label value only if the server knows it; anything else is "other".
func TestMetricsLabelsBounded(t *testing.T) {
	prom := prometheus.NewRegistry()
	m, err := newMetrics(prom, newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	o := m.observer()
	for i := range 50 {
		name := "tool-" + strings.Repeat("x", i)
		o.Request(mcpserver.EraStateless, "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: name}}, &mcp.CallToolResult{}, nil, time.Millisecond)
		o.Request(mcpserver.EraLegacy, "x/"+name, nil, nil, errors.New("no"), time.Millisecond)
	}
	o.Request(mcpserver.EraLegacy, "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "echo"}}, &mcp.CallToolResult{IsError: true}, nil, time.Millisecond)
	m.asEvent(as.Event{Kind: as.EventToken, GrantType: "other", Outcome: "made_up_code"})
	mfs := families(t, prom)
	if got := labelValues(mfs, "remotemcp_tool_calls_total", "tool"); !slices.Equal(got, []string{"echo", "other"}) {
		t.Errorf("tool labels %q; want echo, other", got)
	}
	if got := sample(mfs, "remotemcp_tool_calls_total", "tool", "other", "outcome", "ok"); got != 50 {
		t.Errorf("other tools ok = %v; want 50", got)
	}
	if got := sample(mfs, "remotemcp_tool_calls_total", "tool", "echo", "outcome", "is_error"); got != 1 {
		t.Errorf("echo is_error = %v; want 1", got)
	}
	want := slices.Clone(mcpMethods)
	slices.Sort(want)
	if got := labelValues(mfs, "remotemcp_mcp_requests_total", "method"); !slices.Equal(got, want) {
		t.Errorf("method labels %q; want the known methods and other", got)
	}
	if got := sample(mfs, "remotemcp_mcp_requests_total", "era", "legacy", "method", "other", "outcome", "error"); got != 50 {
		t.Errorf("other methods = %v; want 50", got)
	}
	if got := sample(mfs, "remotemcp_oauth_token_requests_total", "outcome", "made_up_code"); got != -1 && got != 0 {
		t.Errorf("an unknown token outcome became a label")
	}
	if got := sample(mfs, "remotemcp_oauth_token_requests_total", "grant_type", "other", "outcome", "other"); got != 1 {
		t.Errorf("unknown token outcome counted %v times as other; want 1", got)
	}
}

// metricName matches the names a PromQL expression may use as metrics:
// ours by their prefix, and any identifier that a selector's braces or
// range brackets follow.
var (
	ourMetric      = regexp.MustCompile(`\bremotemcp_[a-zA-Z0-9_]+`)
	selectedMetric = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]`)
)

// TestDashboardMetrics: every metric the Grafana dashboard queries is a
// family the server exports.
func TestDashboardMetrics(t *testing.T) {
	data, err := os.ReadFile("deploy/grafana/remotemcp.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	if len(exprs) < 8 {
		t.Fatalf("found %d expressions in the dashboard; want its panels' queries", len(exprs))
	}

	prom := prometheus.NewRegistry()
	if _, err := newMetrics(prom, newRegistry()); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for name, mf := range families(t, prom) {
		exported[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			exported[name+"_bucket"], exported[name+"_sum"], exported[name+"_count"] = true, true, true
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range ourMetric.FindAllString(e, -1) {
			used[name] = true
		}
		for _, m := range selectedMetric.FindAllStringSubmatch(e, -1) {
			used[m[1]] = true
		}
	}
	for name := range used {
		if !exported[name] {
			t.Errorf("the dashboard queries %s, which the server does not export", name)
		}
	}
	// And the dashboard covers what it is for.
	for _, name := range []string{"remotemcp_mcp_requests_total", "remotemcp_mcp_request_duration_seconds_bucket", "remotemcp_tool_calls_total",
		"remotemcp_legacy_sessions_active", "remotemcp_sse_streams_open", "remotemcp_oauth_authorizations_total",
		"remotemcp_oauth_token_requests_total", "remotemcp_redis_errors_total", "remotemcp_token_cache_lookups_total"} {
		if !used[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}

// BenchmarkMetricsObserve is what metrics add to a tools/call: the
// observer's bookkeeping of one request (compare with BenchmarkToolCall in
// cmd/remotemcp, the whole call). It must not allocate.
func BenchmarkMetricsObserve(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry(), newRegistry())
	if err != nil {
		b.Fatal(err)
	}
	o := m.observer()
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "echo"}}
	res := &mcp.CallToolResult{}
	b.ReportAllocs()
	for b.Loop() {
		o.Request(mcpserver.EraStateless, "tools/call", req, res, nil, time.Millisecond)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		o.Request(mcpserver.EraStateless, "tools/call", req, res, nil, time.Millisecond)
	}); allocs != 0 {
		b.Errorf("%v allocations per observed request; want 0", allocs)
	}
}
