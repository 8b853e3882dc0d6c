//go:build cluster

package main

// TestCluster is the production deployment, with real parts, on loopback: one
// redis-server (internal/redistest), the zitadel example OP as the upstream
// identity provider, THREE remotemcp replicas (the binary, built once, as
// subprocesses sharing --redis-url and the keys) and HAProxy in front of them
// with deploy/haproxy.cfg: round robin, no stickiness, /readyz checks.
//
// Real clients go through the load balancer, each from a loopback address
// of its own (127.0.0.N; the replicas trust HAProxy's X-Forwarded-For, so
// rate limits count per client): the go-sdk client (both eras, dynamic
// registration, our consent page, the zitadel login, a step-up to
// notes:write) in six workers that create and read notes without pause
// (legacy workers end their session now and then and start another), the
// TypeScript SDK clients (testdata/clients/ts-proxy-client.mjs), and manual
// OAuth clients whose refresh tokens rotate on one replica after another,
// and race on two at once. Meanwhile one replica is killed (SIGKILL) and
// restarted, and another one drained (SIGTERM) and restarted. Then nothing
// may be lost:
//
//   - every note created is readable afterwards, from a fresh client;
//   - every legacy session still works, or got a clean 404 and the client
//     initialized a new one (the go-sdk client does not re-initialize by
//     itself: mcp.ErrSessionMissing breaks its connection, so the worker
//     connects again, as a host application would; a session ended on the
//     server on purpose checks that path);
//   - every access token seen still verifies on every replica (asked on
//     each replica's own port);
//   - 2026-07-28 requests that met the dead replica were retried (HAProxy:
//     retry-on conn-failure empty-response, redispatch; the client: on
//     502/503/transport errors) and succeeded.
//
// Every key left in Redis must have a TTL (their sizes are logged, for
// deploy/README.md). Then, as subtests: the /register rate limit of one
// address is one budget across the replicas (429 with Retry-After); Redis
// paused (SIGSTOP) ⇒ /readyz 503 everywhere, /mcp and /token 503 with
// Retry-After (never 401), /healthz still 200, and service resumes without
// restarting replicas once Redis continues; Redis killed ⇒ the same, then
// restarted EMPTY ⇒ what old tokens, sessions and registrations get is
// recorded and asserted, and a fresh login works. No replica may answer a
// 5xx other than 503, and the race detector (the replicas are built with
// -race when the test is) must report nothing.
//
// Run: make test-cluster, i.e.
//
//	go test -tags cluster -race -count=1 -timeout 20m -run TestCluster -v ./cmd/remotemcp/
//
// It needs redis-server, Node and the zitadel OP's Go modules (.ci/deps.sh
// installs them) and haproxy (.ci/haproxy.sh installs Debian's); make
// test-cluster runs both scripts first. It builds the zitadel OP
// (testdata/upstream/zitadel). Every process it starts
// is stopped by its PID when the test ends; the replicas' and HAProxy's logs
// go to a folder that is kept, and printed, when the test fails.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/internal/redistest"
)

const (
	// clusterBudget bounds the whole test, so that make test-cluster stays under
	// 10 minutes.
	clusterBudget = 9 * time.Minute
	// clusterShutdownTimeout is each replica's --shutdown-timeout.
	clusterShutdownTimeout = 4 * time.Second
	// clusterOpTimeout bounds one attempt of one tool call.
	clusterOpTimeout = 20 * time.Second
	// clusterWait bounds every wait for a state (ready, up, down).
	clusterWait = 30 * time.Second
	// clusterSubject is our subject for the zitadel user.
	clusterSubject = "oidc:" + zitadelSubject
)

// TestCluster: see the top of this file.
func TestCluster(t *testing.T) {
	began := time.Now()
	c := startCluster(t)
	ctx := c.ctx
	st := c.stats

	// ---- Warm-up: the clients log in through the load balancer, so
	// registration, consent, callback and token land on different replicas.
	st.setPhase("warm-up")
	var clients []*clusterClient
	for i := range 3 {
		clients = append(clients, c.newClient(fmt.Sprintf("legacy-%d", i), "2025-11-25"))
		clients = append(clients, c.newClient(fmt.Sprintf("modern-%d", i), "2026-07-28"))
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWorkers := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	// If the test stops early (t.Fatal), the workers stop before the
	// processes do.
	t.Cleanup(func() { stopWorkers(); wg.Wait() })
	for _, cc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc.work(ctx, stop)
		}()
	}
	// The TypeScript SDK clients, meanwhile: v1 (legacy session) and v2
	// pinned to 2026-07-28.
	tsWarm := c.startTS([]string{"v1"}, []string{"v2", "2026-07-28"})
	// A manual OAuth client: refresh-token rotation across replicas.
	mc, refresh, access := c.refreshAcrossReplicas(t)
	c.concurrentRefresh(t)
	c.waitNotes(t, clients, 5)
	c.waitWork(t, clients, 5) // steady state on three replicas
	c.checkTS(t, tsWarm)
	if t.Failed() {
		t.FailNow()
	}

	// ---- SIGKILL one replica while the clients run, and restart it.
	st.setPhase("sigkill")
	victim := c.replicas[1]
	before := c.lbCounters(t)
	pid := victim.proc().pid()
	t.Logf("SIGKILL %s (pid %d)", victim.name, pid)
	victim.proc().signal(syscall.SIGKILL)
	// 2026-07-28 requests right away, before HAProxy's checks notice: round
	// robin sends every third to the dead replica.
	c.statelessBurst(t, clients, 9)
	c.waitLB(t, victim, "DOWN")
	after := c.lbCounters(t)
	retried := after[victim.name].retries - before[victim.name].retries + after[victim.name].redispatches - before[victim.name].redispatches
	t.Logf("HAProxy retried %d requests that met the dead %s (wretr %d→%d, wredis %d→%d)", retried, victim.name,
		before[victim.name].retries, after[victim.name].retries, before[victim.name].redispatches, after[victim.name].redispatches)
	if retried <= 0 {
		t.Errorf("HAProxy retried no request that met the killed replica %s: the burst went elsewhere?", victim.name)
	}
	st.lbRetried(retried)
	c.waitWork(t, clients, 5) // the workers go on with two replicas
	c.startReplica(t, victim)
	c.waitLB(t, victim, "UP")
	c.waitWork(t, clients, 8) // and with the restarted one

	// ---- SIGTERM another one: a graceful drain, then restart it.
	st.setPhase("sigterm")
	drained := c.replicas[2]
	p := drained.proc()
	t.Logf("SIGTERM %s (pid %d)", drained.name, p.pid())
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0 (a clean drain)", drained.name, code)
		}
	case <-time.After(clusterShutdownTimeout + 5*time.Second):
		t.Errorf("%s did not exit within --shutdown-timeout %v (+5s) of SIGTERM", drained.name, clusterShutdownTimeout)
	}
	if log := readFile(drained.log); !strings.Contains(log[strings.LastIndex(log, "==== "):], "shutting down") {
		t.Errorf("%s's log does not say it drained (\"shutting down\")", drained.name)
	}
	c.waitLB(t, drained, "DOWN")
	c.waitWork(t, clients, 3)
	c.startReplica(t, drained)
	c.waitLB(t, drained, "UP")
	c.waitWork(t, clients, 8)

	// ---- Stop the workers; every client's current session must work.
	st.setPhase("after")
	stopWorkers()
	wg.Wait()
	tsAfter := c.startTS([]string{"v1"}, []string{"v2", "2026-07-28"})
	for _, cc := range clients {
		cc.finalCheck(t)
	}
	c.checkTS(t, tsAfter)
	c.sessionEnded(t, clients[0])

	// ---- Nothing lost.
	st.setPhase("verify")
	c.checkSessions(t, clients)
	c.checkNotes(t)
	c.checkTokens(t)
	c.checkVisits(t, clients)
	for _, cc := range clients {
		cc.close()
	}
	st.report(t, c)
	c.redisUsage(t)
	if t.Failed() {
		return // the fault cases would only add noise
	}

	// ---- Redis faults.
	t.Run("rate-limits-shared", func(t *testing.T) { c.rateLimitShared(t) })
	t.Run("redis-paused", func(t *testing.T) { c.faultPaused(t) })
	t.Run("redis-restarted-empty", func(t *testing.T) { c.faultRestartedEmpty(t, mc, refresh, access) })

	c.checkLogs(t)
	st.mu.Lock()
	t.Logf("rate limit: %s", st.rateLimit)
	for _, k := range slices.Sorted(maps.Keys(st.emptyRedis)) {
		t.Logf("after Redis restarted empty: %s ⇒ %s", k, st.emptyRedis[k])
	}
	st.mu.Unlock()
	t.Logf("TestCluster took %v", time.Since(began).Round(time.Second))
	if d := time.Since(began); d > 10*time.Minute {
		t.Errorf("the cluster test took %v, want under 10 minutes", d)
	}
}

// ---------------------------------------------------------------------------
// The cluster: processes.

type cluster struct {
	t      *testing.T
	ctx    context.Context
	bin    string // the remotemcp binary
	logDir string
	keys   []string // the key flags every replica gets
	env    []string // every replica's environment

	redis                   *redistest.Server
	issuer                  string // the zitadel OP
	lb, lbStatsURL, lbLog   string
	lbProc                  *clusterProc
	replicas                []*replica
	srv                     *proxyServer // the load balancer, as the helpers of proxy_e2e_test.go see a server
	addrs                   int          // loopback addresses handed out (nextAddr)
	direct                  *http.Client // the test's own requests (not through a client SDK)
	stats                   *clusterStats
	upstreamID, upstreamSec string
}

// clusterProc is one process the test started, stopped by its PID.
type clusterProc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned (cmd.ProcessState set)
}

// startProc starts bin with its output appended to logPath. The child gets
// SIGKILL if the test binary dies before its cleanups run.
func startProc(name, logPath, bin string, args, env []string) (*clusterProc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s %s: %s\n", time.Now().Format("15:04:05.000"), name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &clusterProc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *clusterProc) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process, by its PID, unless it has exited.
func (p *clusterProc) signal(sig syscall.Signal) {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// stop ends the process: SIGTERM, then SIGKILL after grace.
func (p *clusterProc) stop(grace time.Duration) {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-p.exited
	}
}

// replica is one remotemcp process, restarted on the same address.
type replica struct {
	name, addr, base, log string
	mu                    sync.Mutex
	p                     *clusterProc
	starts                int
}

func (r *replica) proc() *clusterProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("the cluster test starts Redis, three replicas, HAProxy and an OP")
	}
	ctx, cancel := context.WithTimeout(t.Context(), clusterBudget)
	t.Cleanup(cancel)
	c := &cluster{t: t, ctx: ctx, stats: newClusterStats()}
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second}
	c.direct = &http.Client{Transport: tr, Timeout: clusterOpTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(tr.CloseIdleConnections)

	// The logs outlive t.TempDir when the test fails (registered first, so
	// this runs last, after every process has stopped).
	dir, err := os.MkdirTemp("", "remotemcp-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.logDir = dir
	t.Cleanup(func() {
		if t.Failed() {
			c.printLogs(t)
			t.Logf("the replicas' and HAProxy's logs are kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})

	haproxy := clusterHAProxyPath(t)
	c.bin = clusterBuild(t)
	c.redis = redistest.Start(t)

	lbPort, statsPort := rcFreePort(t), rcFreePort(t)
	c.lb = fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	c.lbStatsURL = fmt.Sprintf("http://127.0.0.1:%d/stats;csv", statsPort)
	c.lbLog = filepath.Join(dir, "haproxy.log")
	c.issuer, c.upstreamID, c.upstreamSec = startZitadel(t, c.lb+"/callback")
	c.srv = &proxyServer{base: c.lb, resource: c.lb + "/mcp",
		upstreamFill: map[string]string{"username": zitadelUser, "password": zitadelPassword}, upstreamHost: c.issuer}
	c.writeKeys(t)

	for i := range 3 {
		port := rcFreePort(t)
		r := &replica{name: fmt.Sprintf("r%d", i+1), addr: fmt.Sprintf("127.0.0.1:%d", port)}
		r.base = "http://" + r.addr
		r.log = filepath.Join(dir, r.name+".log")
		c.replicas = append(c.replicas, r)
		t.Cleanup(func() {
			if p := r.proc(); p != nil {
				p.stop(clusterShutdownTimeout + 3*time.Second)
			}
		})
	}
	for _, r := range c.replicas {
		c.startReplica(t, r)
	}

	// HAProxy with the configuration of deploy/, addresses from the
	// environment.
	cfg, err := filepath.Abs("../../deploy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	env := append(clusterEnviron(), "REMOTEMCP_LB_BIND="+strings.TrimPrefix(c.lb, "http://"),
		fmt.Sprintf("REMOTEMCP_LB_STATS_BIND=127.0.0.1:%d", statsPort))
	for i, r := range c.replicas {
		env = append(env, fmt.Sprintf("REMOTEMCP_REPLICA_%d=%s", i+1, r.addr))
	}
	check := exec.Command(haproxy, "-c", "-f", cfg)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c -f %s: %v\n%s", cfg, err, out)
	}
	c.lbProc, err = startProc("haproxy", c.lbLog, haproxy, []string{"-db", "-f", cfg}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.lbProc.stop(5 * time.Second) })
	for _, r := range c.replicas {
		c.waitLB(t, r, "UP")
	}
	t.Logf("cluster up: LB %s, replicas %s, %s, %s; redis %s; upstream %s; logs in %s",
		c.lb, c.replicas[0].addr, c.replicas[1].addr, c.replicas[2].addr, c.redis.Addr, c.issuer, dir)
	return c
}

// clusterEnviron is the environment without our own settings, which would
// change the replicas' configuration behind the test's back.
func clusterEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REMOTEMCP_") {
			env = append(env, kv)
		}
	}
	return env
}

// clusterHAProxyPath returns haproxy's path, and fails the test if it is
// missing: .ci/haproxy.sh installs Debian's (make test-cluster runs it).
func clusterHAProxyPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is not installed (%v): run .ci/haproxy.sh (make test-cluster runs it)", err)
	}
	return path
}

// clusterBuild builds remotemcp into a temporary folder, with the race
// detector when this test binary has it: the replicas are where the Redis
// code runs.
func clusterBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "remotemcp")
	args := []string{"build", "-o", bin}
	if clusterRaceEnabled() {
		args = append(args, "-race")
	}
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "go", append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built remotemcp (%s) in %v", strings.Join(args[3:], " "), time.Since(start).Round(time.Millisecond))
	return bin
}

func clusterRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// writeKeys makes the keys replicas must share: the signing key ring, the
// vault keys, the cookie key and the requestState key (README: Keys for
// production), in files only the owner reads.
func (c *cluster) writeKeys(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	hexKey := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	ring, err := exec.Command(c.bin, "signing-key").Output()
	if err != nil {
		t.Fatalf("remotemcp signing-key: %v", err)
	}
	files := map[string]string{
		"signing.json": string(ring),
		"vault-keys":   "k1:" + hexKey() + "\n",
		"cookie-key":   hexKey() + "\n",
		"state-key":    hexKey() + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.keys = []string{
		"--signing-key-file", filepath.Join(dir, "signing.json"),
		"--vault-keys-file", filepath.Join(dir, "vault-keys"),
		"--cookie-key-file", filepath.Join(dir, "cookie-key"),
		"--state-key-file", filepath.Join(dir, "state-key"),
	}
	c.env = append(clusterEnviron(), "REMOTEMCP_UPSTREAM_CLIENT_ID="+c.upstreamID, "REMOTEMCP_UPSTREAM_CLIENT_SECRET="+c.upstreamSec)
}

// startReplica starts (or restarts) r and waits until its /readyz says 200.
func (c *cluster) startReplica(t *testing.T, r *replica) {
	t.Helper()
	args := append([]string{
		"--listen", r.addr, "--public-url", c.lb, "--auth", "proxy",
		"--upstream-issuer", c.issuer, "--upstream-scopes", "openid profile email offline_access",
		"--redis-url", c.redis.URL,
		// HAProxy connects from 127.0.0.1 and appends X-Forwarded-For; each
		// client of the test connects from an address of its own
		// (127.0.0.N), so the rate limits count per client, as they would
		// for users on the internet.
		"--trusted-proxies", "127.0.0.1/32",
		// The test's clients are one upstream user, who writes notes and
		// opens sessions for the whole run: past the per-user defaults.
		"--max-notes-per-user", "1000000", "--max-note-bytes-per-user", "1073741824",
		"--max-sessions-per-user", "100000",
		"--shutdown-timeout", clusterShutdownTimeout.String(), "--log-level", "info",
	}, c.keys...)
	r.mu.Lock()
	r.starts++
	n := r.starts
	r.mu.Unlock()
	var p *clusterProc
	var err error
	// The port of a killed replica may take a moment to be free again.
	for try := 0; ; try++ {
		p, err = startProc(fmt.Sprintf("%s start %d", r.name, n), r.log, c.bin, args, c.env)
		if err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		r.p = p
		r.mu.Unlock()
		err = c.waitReady(t, r, p)
		if err == nil || try == 2 || !strings.Contains(readFile(r.log), "address already in use") {
			break
		}
		// Start again once the port is free (binding it is the test).
		waitFor(t, clusterWait, func() error {
			ln, err := net.Listen("tcp", r.addr)
			if err != nil {
				return err
			}
			return ln.Close()
		})
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", r.name, err, tailLines(readFile(r.log), 60))
	}
	t.Logf("%s ready on %s (pid %d, start %d)", r.name, r.addr, p.pid(), n)
}

func (c *cluster) waitReady(t *testing.T, r *replica, p *clusterProc) error {
	t.Helper()
	var exited error // stops the wait
	err := waitFor(t, clusterWait, func() error {
		st, _, err := c.get(r.base + "/readyz")
		if err == nil && st == http.StatusOK {
			return nil
		}
		select {
		case <-p.exited:
			exited = fmt.Errorf("exited (%v) before it was ready", p.cmd.ProcessState)
			return nil
		default:
		}
		return fmt.Errorf("%d %v", st, err)
	})
	if exited != nil {
		return exited
	}
	if err != nil {
		return fmt.Errorf("not ready within %v: %v", clusterWait, err)
	}
	return nil
}

// get GETs u with the test's own client: status and body.
func (c *cluster) get(u string) (int, string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.direct.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// ---------------------------------------------------------------------------
// HAProxy's view: the stats page (CSV) and the log.

type lbServer struct {
	status                string
	retries, redispatches int
}

func (c *cluster) lbServers() (map[string]lbServer, error) {
	st, body, err := c.get(c.lbStatsURL)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("stats: %d", st)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# "))).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("stats CSV: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	out := map[string]lbServer{}
	for _, row := range rows[1:] {
		if len(row) <= col["status"] || row[col["pxname"]] != "remotemcp" {
			continue
		}
		retr, _ := strconv.Atoi(row[col["wretr"]])
		redis, _ := strconv.Atoi(row[col["wredis"]])
		out[row[col["svname"]]] = lbServer{status: row[col["status"]], retries: retr, redispatches: redis}
	}
	return out, nil
}

func (c *cluster) lbCounters(t *testing.T) map[string]lbServer {
	t.Helper()
	s, err := c.lbServers()
	if err != nil {
		t.Fatalf("HAProxy stats: %v", err)
	}
	return s
}

// waitLB waits until HAProxy reports r as want: UP (exactly: not "UP 1/2",
// which is going down) or DOWN.
func (c *cluster) waitLB(t *testing.T, r *replica, want string) {
	t.Helper()
	var last string
	err := waitFor(t, clusterWait, func() error {
		s, err := c.lbServers()
		if err != nil {
			last = err.Error()
			return err
		}
		last = s[r.name].status
		if last == want || (want == "DOWN" && strings.HasPrefix(last, "DOWN")) {
			return nil
		}
		return fmt.Errorf("%s is %q", r.name, last)
	})
	if err != nil {
		t.Fatalf("HAProxy reports %s as %q after %v, want %s\n%s", r.name, last, clusterWait, want, tailLines(readFile(c.lbLog), 20))
	}
}

// lbLine is a request line of HAProxy's log (option httplog).
type lbLine struct {
	server  string
	status  int
	retries int
	redisp  bool
	method  string
	path    string
}

// httplog: ... frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes cc cs tsc ac/fc/bc/sc/rc sq/bq "METHOD URI ..."
var lbLineRE = regexp.MustCompile(`\] \S+ remotemcp/(\S+) -?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+ (-?\d+) \+?\d+ \S+ \S+ \S+ \d+/\d+/\d+/\d+/(\+?)(\d+) \d+/\d+ "(\S+) (\S+)`)

func (c *cluster) lbLines() []lbLine {
	var out []lbLine
	for _, line := range strings.Split(readFile(c.lbLog), "\n") {
		m := lbLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		st, _ := strconv.Atoi(m[2])
		rc, _ := strconv.Atoi(m[4])
		path := m[6]
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		out = append(out, lbLine{server: m[1], status: st, retries: rc, redisp: m[3] == "+", method: m[5], path: path})
	}
	return out
}

// ---------------------------------------------------------------------------
// Counting.

type clusterNote struct{ id, title, by, phase string }

type clusterSession struct {
	id, client string
	ended      string // "": in use at the end; "404": the server said it is gone; "broken": the client lost it otherwise
}

type clusterStats struct {
	mu         sync.Mutex
	phase      string
	requests   int
	statuses   map[int]int
	ops        int
	opRetries  int
	lost       []string
	failures   map[string]int    // "phase kind"
	examples   map[string]string // kind: first error
	connects   map[string]int    // by protocol version
	sessions   []*clusterSession
	tokens     map[string]bool
	notes      []clusterNote
	lbRetries  int
	burst      int
	tsRuns     int
	refreshes  int
	emptyRedis map[string]string // what old credentials got after Redis restarted empty
	methods    map[string]int    // /mcp requests by method (GET: SSE streams opened)
	resumed    int               // GET /mcp with Last-Event-ID (a stream resumed)
	resumedOK  int               // … answered 200
	rateLimit  string            // what the shared rate limit did
	slowest    time.Duration     // the longest attempt of a tool call
}

func newClusterStats() *clusterStats {
	return &clusterStats{phase: "start", statuses: map[int]int{}, failures: map[string]int{}, examples: map[string]string{},
		connects: map[string]int{}, tokens: map[string]bool{}, emptyRedis: map[string]string{}, methods: map[string]int{}}
}

func (s *clusterStats) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *clusterStats) fail(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[s.phase+" "+kind]++
	if _, ok := s.examples[kind]; !ok && err != nil {
		s.examples[kind] = err.Error()
	}
}

func (s *clusterStats) count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.failures {
		if strings.HasSuffix(k, " "+kind) {
			n += v
		}
	}
	return n
}

func (s *clusterStats) add(f func(s *clusterStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *clusterStats) lbRetried(n int) { s.add(func(s *clusterStats) { s.lbRetries += n }) }

// clusterRT counts the HTTP requests of a client and remembers the access
// tokens it sends.
type clusterRT struct {
	next http.RoundTripper
	st   *clusterStats
}

func (rt clusterRT) RoundTrip(req *http.Request) (*http.Response, error) {
	token, hasToken := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	resp, err := rt.next.RoundTrip(req)
	rt.st.add(func(s *clusterStats) {
		s.requests++
		if req.URL.Path == "/mcp" {
			s.methods[req.Method]++
			if req.Method == http.MethodGet && req.Header.Get("Last-Event-ID") != "" {
				s.resumed++
				if err == nil && resp.StatusCode == http.StatusOK {
					s.resumedOK++
				}
			}
		}
		if hasToken {
			s.tokens[token] = true
		}
		if err == nil {
			s.statuses[resp.StatusCode]++
		} else {
			s.statuses[0]++
		}
	})
	return resp, err
}

// ---------------------------------------------------------------------------
// Clients.

// clusterClient is the go-sdk client of one worker: its own user (browser
// with a cookie jar), OAuth handler (dynamic registration) and HTTP client.
type clusterClient struct {
	c        *cluster
	name     string
	version  string
	u        *user
	h        *auth.AuthorizationCodeHandler
	tr       *http.Transport
	httpc    *http.Client
	cs       *mcp.ClientSession
	session  *clusterSession
	mu       sync.Mutex
	notes    int
	problems []string
}

// newUser is a person at a browser, on a computer of its own: its
// requests come from an address of their own (see fromAddr).
func (c *cluster) newUser() *user {
	u := c.srv.newUser(c.t)
	u.b.logf = nil // dozens of flows: the log would drown
	u.b.client.Transport = c.fromAddr(c.nextAddr())
	return u
}

// nextAddr hands out loopback addresses 127.0.0.10, .11, … : one per
// client and its user, as clients on the internet have.
func (c *cluster) nextAddr() string {
	c.addrs++
	if c.addrs > 200 {
		c.t.Fatal("out of loopback addresses")
	}
	return fmt.Sprintf("127.0.0.%d", 9+c.addrs)
}

// fromAddr is an HTTP transport whose connections come from ip.
func (c *cluster) fromAddr(ip string) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
	c.t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func (c *cluster) newClient(name, version string) *clusterClient {
	u := c.newUser()
	cc := &clusterClient{c: c, name: name, version: version, u: u}
	cc.tr = u.b.client.Transport.(*http.Transport) // the same computer
	cc.httpc = &http.Client{Transport: clusterRT{next: cc.tr, st: c.stats}}
	redirect := "http://127.0.0.1:8765/callback" // never listened on: the browser stops there
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "cluster " + name,
			RedirectURIs:            []string{redirect},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
		}},
		RedirectURL: redirect,
		Client:      cc.httpc,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, err := cc.u.authorize(ctx, args.URL, redirect)
			if err != nil {
				return nil, err
			}
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization failed: %s %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	cc.h = h
	return cc
}

func (cc *clusterClient) problem(format string, args ...any) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.problems = append(cc.problems, fmt.Sprintf(format, args...))
}

// connect opens a session (legacy) or a connection (2026-07-28) through the
// load balancer; the first one runs the OAuth flow.
func (cc *clusterClient) connect(ctx context.Context) error {
	client := mcp.NewClient(&mcp.Implementation{Name: "cluster-" + cc.name, Version: "1"}, nil)
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second) // an OAuth flow included
	defer cancel()
	cs, err := client.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: cc.c.lb + "/mcp", OAuthHandler: cc.h, HTTPClient: cc.httpc, MaxRetries: 5},
		&mcp.ClientSessionOptions{ProtocolVersion: cc.version})
	if err != nil {
		return err
	}
	cc.cs = cs
	cc.c.stats.add(func(s *clusterStats) {
		s.connects[cc.version]++
		if id := cs.ID(); id != "" && cc.version != "2026-07-28" {
			cc.session = &clusterSession{id: id, client: cc.name}
			s.sessions = append(s.sessions, cc.session)
		}
	})
	return nil
}

// endSession drops the current session after a failure of kind.
func (cc *clusterClient) endSession(kind string) {
	cc.c.stats.add(func(*clusterStats) {
		if cc.session != nil {
			cc.session.ended = kind
		}
	})
	cc.session = nil
	if cc.cs != nil {
		cc.cs.Close()
		cc.cs = nil
	}
}

// call calls a tool as a host application would: on a transient failure
// (502, 503, a connection error, a cut stream) it retries; on a 404 for its
// legacy session it initializes a new one (the go-sdk client does not, by
// itself); on a broken connection it connects again.
func (cc *clusterClient) call(ctx context.Context, name string, args map[string]any) (*mcp.CallToolResult, error) {
	st := cc.c.stats
	var last error
	for attempt := range 8 {
		if attempt > 0 {
			st.add(func(s *clusterStats) { s.opRetries++ })
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			}
		}
		if cc.cs == nil {
			if err := cc.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				last = err
				st.fail("connect/"+clusterKind(nil, err), err)
				continue
			}
		}
		actx, cancel := context.WithTimeout(ctx, clusterOpTimeout)
		began := time.Now()
		res, err := cc.cs.CallTool(actx, &mcp.CallToolParams{Name: name, Arguments: args})
		took := time.Since(began)
		cancel()
		st.add(func(s *clusterStats) { s.slowest = max(s.slowest, took) })
		if err == nil && !res.IsError {
			st.add(func(s *clusterStats) { s.ops++ })
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kind := clusterKind(res, err)
		if err == nil {
			err = fmt.Errorf("tool error: %s", toolText(res))
		}
		last = fmt.Errorf("%s %s: %w", cc.name, name, err)
		st.fail(kind, last)
		switch kind {
		case "session-404":
			cc.endSession("404")
		case "broken", "http-500", "other":
			cc.endSession("broken")
		}
	}
	st.add(func(s *clusterStats) { s.lost = append(s.lost, last.Error()) })
	return nil, fmt.Errorf("gave up after 8 attempts: %w", last)
}

// clusterKind names a failed call.
func clusterKind(res *mcp.CallToolResult, err error) string {
	if err == nil {
		return "tool-error"
	}
	msg := err.Error()
	has := func(subs ...string) bool {
		return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(msg, s) })
	}
	switch {
	case errors.Is(err, mcp.ErrSessionMissing):
		return "session-404"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	// A connection the client gave up (whatever the HTTP status that made
	// it: the go-sdk fails the whole connection when its standalone SSE
	// stream cannot be reopened, even on a 401).
	case errors.Is(err, mcp.ErrConnectionClosed), has("failed to reconnect", "without progress", "connection closed", "client is closing"):
		return "broken"
	case has("Bad Gateway"):
		return "http-502"
	case has("Service Unavailable"):
		return "http-503"
	case has("Gateway Timeout"):
		return "http-504"
	case has("Too Many Requests"):
		return "http-429"
	case has("Internal Server Error"):
		return "http-500"
	case has("Unauthorized", "Forbidden"):
		return "http-401/403"
	case has("terminated without response"):
		return "stream-cut"
	case has("connection refused", "connection reset", "EOF", "broken pipe"):
		return "transport"
	}
	return "other"
}

func toolText(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// structured decodes a tool result's structured content into v.
func structured(res *mcp.CallToolResult, v any) error {
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// work creates and reads notes until stop: notes_create, then notes_get of
// the new note (round robin: most likely on another replica), and now and
// then notes_search for it.
func (cc *clusterClient) work(ctx context.Context, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		// A legacy client ends its session now and then (DELETE, on
		// whichever replica) and starts a new one: sessions are made and
		// ended on every replica.
		if cc.version != "2026-07-28" && i > 0 && i%25 == 0 && cc.cs != nil {
			cc.endSession("closed")
		}
		word := strings.ToLower(rand.Text()[:10])
		title := fmt.Sprintf("%s note %d %s", cc.name, i, word)
		res, err := cc.call(ctx, "notes_create", map[string]any{"title": title, "body": "written during the cluster test", "tags": []string{"cluster"}})
		if err != nil {
			if ctx.Err() == nil {
				cc.problem("notes_create %q: %v", title, err)
			}
			continue
		}
		var n struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		}
		if err := structured(res, &n); err != nil || n.ID == "" || n.Title != title {
			cc.problem("notes_create %q answered %+v (%v)", title, n, err)
			continue
		}
		cc.c.stats.add(func(s *clusterStats) {
			s.notes = append(s.notes, clusterNote{id: n.ID, title: title, by: cc.name, phase: s.phase})
		})
		cc.mu.Lock()
		cc.notes++
		cc.mu.Unlock()

		res, err = cc.call(ctx, "notes_get", map[string]any{"id": n.ID})
		if err != nil {
			if ctx.Err() == nil {
				cc.problem("notes_get %s right after creating it: %v", n.ID, err)
			}
			continue
		}
		var got struct{ Title string }
		if structured(res, &got); got.Title != title {
			cc.problem("notes_get %s = title %q, want %q", n.ID, got.Title, title)
		}
		if i%4 == 3 {
			res, err := cc.call(ctx, "notes_search", map[string]any{"query": word})
			var found struct{ Total int }
			if err == nil {
				structured(res, &found)
			}
			if err != nil && ctx.Err() == nil || err == nil && found.Total != 1 {
				cc.problem("notes_search %q: total %d, %v; want the one note", word, found.Total, err)
			}
		}
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// finalCheck: the client's current session or connection answers, with
// no reconnection.
func (cc *clusterClient) finalCheck(t *testing.T) {
	t.Helper()
	for _, p := range cc.problems {
		t.Errorf("%s: %s", cc.name, p)
	}
	if cc.cs == nil {
		t.Errorf("%s: no session at the end", cc.name)
		return
	}
	ctx, cancel := context.WithTimeout(cc.c.ctx, clusterOpTimeout)
	defer cancel()
	res, err := cc.cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_search", Arguments: map[string]any{"limit": 1}})
	if err != nil || res.IsError {
		t.Errorf("%s (%s): its session %q does not work at the end: %v %s", cc.name, cc.version, cc.cs.ID(), err, toolText(res))
	}
}

func (cc *clusterClient) token() string {
	ts, err := cc.h.TokenSource(cc.c.ctx)
	if err != nil || ts == nil {
		return ""
	}
	tok, err := ts.Token()
	if err != nil {
		return ""
	}
	return tok.AccessToken
}

func (cc *clusterClient) close() {
	if cc.cs != nil {
		cc.cs.Close()
		cc.cs = nil
	}
	cc.tr.CloseIdleConnections()
}

// waitNotes waits until every client has created n notes.
func (c *cluster) waitNotes(t *testing.T, clients []*clusterClient, n int) {
	t.Helper()
	err := waitFor(t, 2*time.Minute, func() error {
		short := ""
		for _, cc := range clients {
			cc.mu.Lock()
			if cc.notes < n {
				short += fmt.Sprintf(" %s:%d", cc.name, cc.notes)
			}
			probs := slices.Clone(cc.problems)
			cc.mu.Unlock()
			if len(probs) > 0 {
				t.Errorf("%s during the warm-up: %s", cc.name, strings.Join(probs, "; "))
				return nil // no use waiting on
			}
		}
		if short != "" {
			return fmt.Errorf("clients with fewer than %d notes after 2 minutes:%s", n, short)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// waitWork lets the workers go on in the current phase until every client
// has created n more notes: a phase lasts as long as that takes on this
// machine, and it is sure to have seen work from every client.
func (c *cluster) waitWork(t *testing.T, clients []*clusterClient, n int) {
	t.Helper()
	from := map[*clusterClient]int{}
	for _, cc := range clients {
		cc.mu.Lock()
		from[cc] = cc.notes
		cc.mu.Unlock()
	}
	err := waitFor(t, clusterWait, func() error {
		short := ""
		for _, cc := range clients {
			cc.mu.Lock()
			if d := cc.notes - from[cc]; d < n {
				short += fmt.Sprintf(" %s:%d", cc.name, d)
			}
			cc.mu.Unlock()
		}
		if short != "" {
			return fmt.Errorf("clients with fewer than %d new notes after %v:%s", n, clusterWait, short)
		}
		return nil
	})
	if err != nil {
		var phase string
		c.stats.add(func(s *clusterStats) { phase = s.phase })
		t.Errorf("phase %s: %v", phase, err)
	}
}

// ---------------------------------------------------------------------------
// Raw requests: what the test asks the replicas and the load balancer.

// clusterAnswer is an HTTP answer to a JSON-RPC request.
type clusterAnswer struct {
	status int
	header http.Header
	body   string
	result map[string]any
	rpcErr map[string]any
}

// rpc POSTs one JSON-RPC request to base/mcp. version 2026-07-28 sends the
// per-request _meta and headers of that revision; a legacy version sends
// the session id.
func (c *cluster) rpc(ctx context.Context, base, token, version, session, method string, params map[string]any) (*clusterAnswer, error) {
	if params == nil {
		params = map[string]any{}
	}
	if version == "2026-07-28" {
		params["_meta"] = map[string]any{
			"io.modelcontextprotocol/protocolVersion":    version,
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "cluster-test", "version": "1"},
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(ctx, clusterOpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/mcp", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", version)
	if version == "2026-07-28" {
		req.Header.Set("Mcp-Method", method)
		if n, ok := params["name"].(string); ok {
			req.Header.Set("Mcp-Name", n)
		}
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.direct.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	a := &clusterAnswer{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if resp.StatusCode != http.StatusOK {
		return a, nil
	}
	// JSON, or an SSE stream whose data lines carry the response.
	var msgs []string
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(strings.NewReader(a.body))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				msgs = append(msgs, strings.TrimSpace(d))
			}
		}
	} else {
		msgs = []string{a.body}
	}
	for _, m := range msgs {
		var msg struct {
			ID     any            `json:"id"`
			Result map[string]any `json:"result"`
			Error  map[string]any `json:"error"`
		}
		if json.Unmarshal([]byte(m), &msg) == nil && msg.ID != nil && (msg.Result != nil || msg.Error != nil) {
			a.result, a.rpcErr = msg.Result, msg.Error
			return a, nil
		}
	}
	return a, fmt.Errorf("no JSON-RPC response in the answer: %.300s", a.body)
}

// tool calls a tool with a stateless 2026-07-28 request and returns its
// structured content, or why not.
func (c *cluster) tool(ctx context.Context, base, token, name string, args map[string]any) (map[string]any, *clusterAnswer, error) {
	if args == nil {
		args = map[string]any{}
	}
	a, err := c.rpc(ctx, base, token, "2026-07-28", "", "tools/call", map[string]any{"name": name, "arguments": args})
	if err != nil {
		return nil, a, err
	}
	if a.status != http.StatusOK {
		return nil, a, fmt.Errorf("HTTP %d: %.200s", a.status, a.body)
	}
	if a.rpcErr != nil {
		return nil, a, fmt.Errorf("JSON-RPC error %v", a.rpcErr)
	}
	if isErr, _ := a.result["isError"].(bool); isErr {
		return nil, a, fmt.Errorf("tool error: %v", a.result["content"])
	}
	sc, _ := a.result["structuredContent"].(map[string]any)
	return sc, a, nil
}

// statelessBurst sends n 2026-07-28 requests through the load balancer,
// one after the other, with the token of a 2026-07-28 client: each must
// succeed, even the ones HAProxy first sent to a dead replica.
func (c *cluster) statelessBurst(t *testing.T, clients []*clusterClient, n int) {
	t.Helper()
	var token string
	for _, cc := range clients {
		if cc.version == "2026-07-28" {
			if token = cc.token(); token != "" {
				break
			}
		}
	}
	if token == "" {
		t.Fatal("no 2026-07-28 client has a token")
	}
	for i := range n {
		_, a, err := c.tool(c.ctx, c.lb, token, "notes_search", map[string]any{"limit": 1})
		c.stats.add(func(s *clusterStats) { s.burst++ })
		if err != nil {
			t.Errorf("2026-07-28 request %d through the load balancer after the SIGKILL: %v", i+1, err)
			if a != nil {
				c.stats.fail(fmt.Sprintf("burst-http-%d", a.status), err)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// OAuth across replicas.

// refreshAcrossReplicas: a manual client logs in through the load balancer,
// then rotates its refresh token four times (each /token on the next
// replica), and replays the previous one within --refresh-grace (a client's
// retry, which strict one-time rotation would turn into a logout), which
// must succeed too. It returns the client with its current refresh and
// access tokens.
func (c *cluster) refreshAcrossReplicas(t *testing.T) (*manualClient, string, string) {
	t.Helper()
	mc := c.srv.register(t, nil)
	tok := mc.login(t, c.newUser(), "notes:read")
	refresh, _ := tok["refresh_token"].(string)
	access, _ := tok["access_token"].(string)
	if refresh == "" || access == "" {
		t.Fatalf("login: no refresh or access token: %v", tok)
	}
	var prev string
	for i := range 4 {
		st, out, _ := mc.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if st != http.StatusOK {
			t.Fatalf("refresh %d through the load balancer: %d %v", i+1, st, out)
		}
		prev, refresh = refresh, out["refresh_token"].(string)
		access = out["access_token"].(string)
		c.stats.add(func(s *clusterStats) { s.tokens[access] = true }) // checked on every replica later
	}
	st, out, _ := mc.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {prev}})
	if st != http.StatusOK {
		t.Fatalf("the previous refresh token replayed within the grace window (another replica): %d %v, want 200", st, out)
	}
	refresh, access = out["refresh_token"].(string), out["access_token"].(string)
	c.stats.add(func(s *clusterStats) { s.refreshes += 5; s.tokens[access] = true })
	return mc, refresh, access
}

// concurrentRefresh: one refresh token presented at the same moment to two
// replicas (a client retrying, two tabs): both succeed, one rotating and the
// other within the grace window, never an invalid_grant storm that would log
// the user out.
func (c *cluster) concurrentRefresh(t *testing.T) {
	t.Helper()
	mc := c.srv.register(t, nil)
	tok := mc.login(t, c.newUser(), "notes:read")
	refresh := tok["refresh_token"].(string)
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([]answer, 2)
	var wg sync.WaitGroup
	for i, r := range c.replicas[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {mc.id}}
			req, _ := http.NewRequestWithContext(c.ctx, http.MethodPost, r.base+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.direct.Do(req)
			if err != nil {
				answers[i] = answer{0, map[string]any{"error": err.Error()}}
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			answers[i] = answer{resp.StatusCode, body}
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("concurrent refresh on %s: %d %v, want 200 (one rotates, the other is within the grace window)", c.replicas[i].name, a.status, a.body)
		}
	}
	c.stats.add(func(s *clusterStats) { s.refreshes += 2 })
}

// ---------------------------------------------------------------------------
// TypeScript SDK clients.

type tsRun struct {
	args []string
	res  pcTSResult
	err  error
	u    *user
}

// startTS runs ts-proxy-client.mjs once per argument list, concurrently,
// through the load balancer; checkTS waits for them.
func (c *cluster) startTS(runs ...[]string) chan *tsRun {
	node, dir := oauthNode(c.t)
	script := oauthScript(c.t, dir, "testdata/clients/ts-proxy-client.mjs")
	out := make(chan *tsRun, len(runs))
	for _, args := range runs {
		r := &tsRun{args: args, u: c.newUser()}
		redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", rcFreePort(c.t))
		go func() {
			r.res, r.err = c.runTS(node, script, r.u, redirect, args...)
			out <- r
		}()
	}
	return out
}

func (c *cluster) runTS(node, script string, u *user, redirect string, args ...string) (pcTSResult, error) {
	var res pcTSResult
	ctx, cancel := context.WithTimeout(c.ctx, rcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script, c.lb + "/mcp"}, args...)...)
	cmd.Env = append(os.Environ(), "PC_REDIRECT="+redirect)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	reply := func(v any) {
		b, _ := json.Marshal(v)
		stdin.Write(append(b, '\n'))
	}
	var got *pcTSResult
	var problems []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var msg struct {
			Authorize string      `json:"authorize"`
			Phase     string      `json:"phase"`
			Result    *pcTSResult `json:"result"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil {
			continue
		}
		switch {
		case msg.Authorize != "":
			final, err := pcAuthorize(ctx, u, msg.Authorize)
			if err != nil {
				problems = append(problems, err.Error())
				reply(map[string]string{"error": err.Error()})
				continue
			}
			reply(map[string]string{"redirect": final.String()})
		case msg.Phase == "expire":
			// No waiting for an expiry here: the second whoami goes to
			// another replica with the same token.
			reply(map[string]bool{"continue": true})
		case msg.Result != nil:
			got = msg.Result
		}
	}
	stdin.Close()
	err = cmd.Wait()
	if err != nil || got == nil || len(problems) > 0 {
		return res, fmt.Errorf("ts-proxy-client %v: %v\nbrowser: %s\nstderr: %s", args, err, strings.Join(problems, "\n"), stderr.String())
	}
	return *got, nil
}

func (c *cluster) checkTS(t *testing.T, runs chan *tsRun) {
	t.Helper()
	for range cap(runs) {
		var r *tsRun
		select {
		case r = <-runs:
		case <-c.ctx.Done():
			t.Fatalf("TypeScript clients: %v", c.ctx.Err())
		}
		c.stats.add(func(s *clusterStats) { s.tsRuns++ })
		if r.err != nil {
			t.Errorf("%v", r.err)
			continue
		}
		want := "2025-11-25"
		if slices.Contains(r.args, "2026-07-28") {
			want = "2026-07-28"
		}
		if r.res.Subject != clusterSubject || r.res.Upstream["login"] != zitadelUser {
			t.Errorf("ts %v: whoami subject %q upstream %v, want %q with login %q (the vault read on whichever replica answered)",
				r.args, r.res.Subject, r.res.Upstream, clusterSubject, zitadelUser)
		}
		if r.res.ProtocolVersion != want {
			t.Errorf("ts %v: protocol version %q, want %q", r.args, r.res.ProtocolVersion, want)
		}
		if r.res.Authorizations != 1 || r.u.visits.Load() != 1 {
			t.Errorf("ts %v: %d authorizations (browser: %d), want 1", r.args, r.res.Authorizations, r.u.visits.Load())
		}
		t.Logf("ts %v through the load balancer: %s, %s, session %v", r.args, r.res.Subject, r.res.ProtocolVersion, ptrString(r.res.SessionID))
	}
}

func ptrString(p *string) string {
	if p == nil {
		return "(none)"
	}
	return *p
}

// ---------------------------------------------------------------------------
// Nothing lost.

// sessionEnded: a legacy session ends on the server (as when it expires;
// here a DELETE sent by the test, through the load balancer): the client's
// next request gets a clean 404 from whichever replica, and the client
// initializes a new session and goes on without a new authorization.
func (c *cluster) sessionEnded(t *testing.T, cc *clusterClient) {
	t.Helper()
	if cc.session == nil {
		t.Fatalf("%s has no legacy session", cc.name)
	}
	old, visits := cc.session, cc.u.visits.Load()
	ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, c.lb+"/mcp", nil)
	req.Header.Set("Mcp-Session-Id", old.id)
	req.Header.Set("MCP-Protocol-Version", cc.version)
	req.Header.Set("Authorization", "Bearer "+cc.token())
	resp, err := c.direct.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE of session %s: %d", old.id, resp.StatusCode)
	}
	before := c.stats.count("session-404")
	if _, err := cc.call(c.ctx, "notes_search", map[string]any{"limit": 1}); err != nil {
		t.Errorf("%s after its session ended on the server: %v", cc.name, err)
	}
	switch {
	case c.stats.count("session-404") != before+1 || old.ended != "404":
		t.Errorf("%s: the ended session %s gave %d 404s (ended %q), want exactly one clean 404", cc.name, old.id, c.stats.count("session-404")-before, old.ended)
	case cc.session == nil || cc.session.id == old.id:
		t.Errorf("%s did not initialize a new session", cc.name)
	case cc.u.visits.Load() != visits:
		t.Errorf("%s authorized again to replace an ended session", cc.name)
	default:
		t.Logf("%s: session %s ended on the server ⇒ 404 ⇒ new session %s", cc.name, old.id, cc.session.id)
	}
}

// checkSessions: every legacy session is in use at the end, or ended with a
// clean 404 (and its client went on with a new one); asked raw as well,
// through the load balancer: a session in use answers ping with 200, an
// ended one with 404, nothing else.
func (c *cluster) checkSessions(t *testing.T, clients []*clusterClient) {
	t.Helper()
	tokens := map[string]string{}
	for _, cc := range clients {
		tokens[cc.name] = cc.token()
	}
	c.stats.mu.Lock()
	sessions := slices.Clone(c.stats.sessions)
	c.stats.mu.Unlock()
	for _, s := range sessions {
		a, err := c.rpc(c.ctx, c.lb, tokens[s.client], "2025-11-25", s.id, "ping", nil)
		switch {
		case err != nil && a == nil:
			t.Errorf("session %s of %s: ping: %v", s.id, s.client, err)
		case s.ended == "broken":
			t.Errorf("session %s of %s was lost without a 404 (the client had to connect again); ping now answers %d", s.id, s.client, a.status)
		case s.ended == "404" && a.status != http.StatusNotFound:
			t.Errorf("session %s of %s got a 404 during the test, but ping answers %d now", s.id, s.client, a.status)
		case s.ended == "closed" && a.status != http.StatusNotFound:
			t.Errorf("session %s of %s was ended by its client (DELETE), but ping answers %d, want 404 on every replica", s.id, s.client, a.status)
		case s.ended == "" && (a.status != http.StatusOK || a.rpcErr != nil):
			t.Errorf("session %s of %s, in use at the end: ping answers %d %v", s.id, s.client, a.status, a.rpcErr)
		}
	}
}

// checkNotes: a fresh client (new user at the browser, new registration,
// 2026-07-28) reads every note created, on whichever replica.
func (c *cluster) checkNotes(t *testing.T) {
	t.Helper()
	fresh := c.newClient("verifier", "2026-07-28")
	defer fresh.close()
	c.stats.mu.Lock()
	notes := slices.Clone(c.stats.notes)
	c.stats.mu.Unlock()
	if len(notes) == 0 {
		t.Fatal("no notes were created")
	}
	// The first call logs in (and the store must hold them all).
	res, err := fresh.call(c.ctx, "notes_search", map[string]any{"query": "cluster", "limit": 1})
	if err != nil {
		t.Fatalf("fresh client: %v", err)
	}
	var total struct{ Total int }
	structured(res, &total)
	if total.Total < len(notes) {
		t.Errorf("notes_search finds %d notes, want at least the %d created", total.Total, len(notes))
	}
	var mu sync.Mutex
	var missing []string
	work := make(chan clusterNote)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				res, err := fresh.cs.CallTool(c.ctx, &mcp.CallToolParams{Name: "notes_get", Arguments: map[string]any{"id": n.id}})
				var got struct{ Title string }
				if err == nil && !res.IsError {
					structured(res, &got)
				}
				if err != nil || res.IsError || got.Title != n.title {
					mu.Lock()
					missing = append(missing, fmt.Sprintf("%s (%q by %s during %s): %v %s", n.id, n.title, n.by, n.phase, err, toolText(res)))
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range notes {
		work <- n
	}
	close(work)
	wg.Wait()
	if len(missing) > 0 {
		t.Errorf("%d of %d notes cannot be read afterwards:\n  %s", len(missing), len(notes), strings.Join(missing[:min(len(missing), 20)], "\n  "))
	}
	t.Logf("a fresh client read all %d notes but %d (notes_search total %d)", len(notes), len(missing), total.Total)
}

// checkTokens: every access token the clients sent verifies on every
// replica, asked on the replica's own port; whoami also reads the upstream
// tokens from the vault there.
func (c *cluster) checkTokens(t *testing.T) {
	t.Helper()
	c.stats.mu.Lock()
	var tokens []string
	for tok := range c.stats.tokens {
		tokens = append(tokens, tok)
	}
	c.stats.mu.Unlock()
	sort.Strings(tokens)
	bad := 0
	for i, tok := range tokens {
		for _, r := range c.replicas {
			who, a, err := c.tool(c.ctx, r.base, tok, "whoami", nil)
			if err != nil {
				bad++
				t.Errorf("token %d of %d on %s: %v (WWW-Authenticate %q)", i+1, len(tokens), r.name, err, headerOf(a, "WWW-Authenticate"))
				continue
			}
			up, _ := who["upstream"].(map[string]any)
			if who["subject"] != clusterSubject || up["login"] != zitadelUser {
				bad++
				t.Errorf("token %d on %s: whoami subject %v, upstream %v (error %v); want %s and login %s",
					i+1, r.name, who["subject"], who["upstream"], who["upstreamError"], clusterSubject, zitadelUser)
			}
		}
	}
	t.Logf("%d access tokens × %d replicas: %d failed", len(tokens), len(c.replicas), bad)
}

func headerOf(a *clusterAnswer, name string) string {
	if a == nil {
		return ""
	}
	return a.header.Get(name)
}

// checkVisits: each go-sdk client authorized exactly twice (notes:read,
// then the step-up to notes:write): a replica that died, or a session that
// moved, never sent a user back to the browser.
func (c *cluster) checkVisits(t *testing.T, clients []*clusterClient) {
	t.Helper()
	for _, cc := range clients {
		if n := cc.u.visits.Load(); n != 2 {
			t.Errorf("%s: the user authorized %d times, want 2 (notes:read, then the step-up): a lost replica or a moved session must never send the user back to the browser", cc.name, n)
		}
	}
	if n := c.stats.count("http-401/403"); n > 0 {
		t.Errorf("%d tool calls met a 401/403 after the step-up", n)
	}
}

// ---------------------------------------------------------------------------
// What Redis holds.

// keyFamilyRE finds the hash tag of a key, whose id part varies.
var keyFamilyRE = regexp.MustCompile(`\{([a-z]+):[^}]*\}`)

// redisUsage looks at every key the workload left in Redis: each must have
// a TTL (so that nothing outlives its use), and the count and memory per
// key family are logged, for sizing (deploy/README.md).
func (c *cluster) redisUsage(t *testing.T) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: c.redis.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	type family struct {
		keys  int
		bytes int64
	}
	families := map[string]*family{}
	var noTTL []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl == -2 {
			continue // gone meanwhile
		}
		if ttl == -1 {
			noTTL = append(noTTL, k)
		}
		name := keyFamilyRE.ReplaceAllString(k, "{$1:…}")
		if i := strings.Index(name, ":events:"); i >= 0 {
			name = name[:i] + ":events:…" // one stream of a session
		}
		f := families[name]
		if f == nil {
			f = &family{}
			families[name] = f
		}
		f.keys++
		if n, err := rdb.MemoryUsage(ctx, k).Result(); err == nil {
			f.bytes += n
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("SCAN: %v", err)
		return
	}
	used, _ := rdb.Info(ctx, "memory").Result()
	var b strings.Builder
	total := 0
	for _, name := range slices.Sorted(maps.Keys(families)) {
		f := families[name]
		total += f.keys
		fmt.Fprintf(&b, "\n    %-40s %6d keys %10d bytes (%d a key)", name, f.keys, f.bytes, f.bytes/int64(f.keys))
	}
	for _, line := range strings.Split(used, "\n") {
		if strings.HasPrefix(line, "used_memory_human:") || strings.HasPrefix(line, "used_memory_dataset:") {
			fmt.Fprintf(&b, "\n    %s", strings.TrimSpace(line))
		}
	}
	t.Logf("Redis after the workload: %d keys (MEMORY USAGE by family):%s", total, b.String())
	if len(noTTL) > 0 {
		t.Errorf("%d Redis keys without a TTL (every key must have one): %v", len(noTTL), noTTL[:min(len(noTTL), 10)])
	}
}

// ---------------------------------------------------------------------------
// Rate limits.

// rateLimitShared: one client address registers 30 clients in a row
// through the load balancer, so round robin spreads them over the three
// replicas. The default budget of /register is 20 a minute per address,
// shared through Redis: 20 (and one per 3s of refill) are created and the
// rest get 429 with Retry-After and temporarily_unavailable. Budgets kept
// per replica would have let all 30 through.
func (c *cluster) rateLimitShared(t *testing.T) {
	client := &http.Client{Transport: c.fromAddr(c.nextAddr()), Timeout: clusterOpTimeout}
	body, _ := json.Marshal(map[string]any{"client_name": "rate limit", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	created, limited := 0, 0
	start := time.Now()
	for i := range 30 {
		resp, err := client.Post(c.lb+"/register", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
		var out struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
			limited++
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("registration %d: 429 with Retry-After %q, want whole seconds", i+1, resp.Header.Get("Retry-After"))
			}
			if out.Error != "temporarily_unavailable" {
				t.Errorf("registration %d: 429 with error %q, want temporarily_unavailable", i+1, out.Error)
			}
		default:
			t.Errorf("registration %d: %d %q", i+1, resp.StatusCode, out.Error)
		}
	}
	c.stats.add(func(s *clusterStats) {
		s.rateLimit = fmt.Sprintf("30 registrations from one address through the LB: %d created, %d refused with 429", created, limited)
	})
	t.Logf("30 registrations from one address through the load balancer: %d created, %d refused with 429", created, limited)
	// The budget refills one registration every 3s (20 a minute).
	refills := int(time.Since(start)/(3*time.Second)) + 1
	if created < 20 || created > 20+refills || limited == 0 {
		t.Errorf("%d created, %d refused in %v: want 20 (up to %d with refills), the budget of one address shared by the three replicas",
			created, limited, time.Since(start).Round(time.Millisecond), 20+refills)
	}
}

// ---------------------------------------------------------------------------
// Redis faults.

// faultPaused: Redis stopped (SIGSTOP: connections hang, as in a
// partition) ⇒ every replica not ready, /mcp 503 with Retry-After (never
// 401), liveness unaffected; continued ⇒ service resumes with the same
// replica processes, data and sessions intact.
func (c *cluster) faultPaused(t *testing.T) {
	probe := c.newClient("probe-paused", "2025-11-25")
	defer probe.close()
	res, err := probe.call(c.ctx, "notes_create", map[string]any{"title": "before the pause"})
	if err != nil {
		t.Fatal(err)
	}
	var n struct{ ID string }
	structured(res, &n)
	session, token := probe.cs.ID(), probe.token()
	pids := c.pids()

	c.stats.setPhase("redis-paused")
	c.redis.Pause()
	paused := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			c.redis.Resume()
		}
	}()
	c.waitAll(t, "/readyz", http.StatusServiceUnavailable)
	t.Logf("every replica reported not ready %v after Redis was paused", time.Since(paused).Round(time.Millisecond))
	c.checkUnavailable(t, token, session)

	c.redis.Resume()
	resumed = true
	c.waitAll(t, "/readyz", http.StatusOK)
	for _, r := range c.replicas {
		c.waitLB(t, r, "UP")
	}
	t.Logf("every replica ready again %v after Redis continued", time.Since(paused).Round(time.Millisecond))
	if now := c.pids(); !slices.Equal(now, pids) {
		t.Errorf("replica PIDs %v became %v: the service must resume without restarts", pids, now)
	}
	// The data and the session are still there, on every replica.
	for _, r := range c.replicas {
		got, _, err := c.tool(c.ctx, r.base, token, "notes_get", map[string]any{"id": n.ID})
		if err != nil || got["title"] != "before the pause" {
			t.Errorf("after the pause, notes_get on %s: %v %v", r.name, got, err)
		}
		a, err := c.rpc(c.ctx, r.base, token, "2025-11-25", session, "ping", nil)
		if err != nil || a.status != http.StatusOK {
			t.Errorf("after the pause, the legacy session on %s: %v %v", r.name, statusOf(a), err)
		}
	}
	// And the go-sdk client goes on (reconnecting if its stream broke).
	if _, err := probe.call(c.ctx, "notes_search", map[string]any{"limit": 1}); err != nil {
		t.Errorf("the go-sdk client after the pause: %v", err)
	}
}

func statusOf(a *clusterAnswer) any {
	if a == nil {
		return "no answer"
	}
	return a.status
}

// checkUnavailable asserts the answers while Redis cannot be reached, on
// every replica and through the load balancer.
func (c *cluster) checkUnavailable(t *testing.T, token, session string) {
	t.Helper()
	want503 := func(where string, a *clusterAnswer, err error) {
		t.Helper()
		switch {
		case err != nil && a == nil:
			t.Errorf("%s: %v", where, err)
		case a.status != http.StatusServiceUnavailable:
			t.Errorf("%s: %d %.200s, want 503 with Retry-After (never a 401 that sends clients to re-authorize)", where, a.status, a.body)
		case a.header.Get("Retry-After") == "":
			t.Errorf("%s: 503 without Retry-After", where)
		}
	}
	for _, base := range append(c.bases(), c.lb) {
		where := c.nameOf(base)
		a, err := c.rpc(c.ctx, base, token, "2026-07-28", "", "tools/call", map[string]any{"name": "notes_search", "arguments": map[string]any{}})
		want503(where+" 2026-07-28 tools/call", a, err)
		a, err = c.rpc(c.ctx, base, token, "2025-11-25", session, "ping", nil)
		want503(where+" legacy ping", a, err)
		st, ra, err := c.postForm(base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"y"}})
		if err != nil || st != http.StatusServiceUnavailable || ra == "" {
			t.Errorf("%s /token: %d (Retry-After %q) %v, want 503 with Retry-After", where, st, ra, err)
		}
		if base == c.lb {
			continue
		}
		if st, _, err := c.get(base + "/healthz"); err != nil || st != http.StatusOK {
			t.Errorf("%s /healthz: %d %v, want 200: liveness must not fail on a Redis outage (every pod would restart)", where, st, err)
		}
		if st, _, err := c.get(base + "/.well-known/oauth-authorization-server"); err != nil || st != http.StatusOK {
			t.Errorf("%s metadata: %d %v, want 200 (static)", where, st, err)
		}
	}
}

func (c *cluster) postForm(u string, form url.Values) (int, string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.direct.Do(req)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// faultRestartedEmpty: Redis killed ⇒ 503 everywhere; restarted EMPTY (no
// persistence) ⇒ replicas ready again by themselves; old credentials get
// clean OAuth answers (recorded: what exactly), old sessions 404, never a
// 500; a fresh login works.
func (c *cluster) faultRestartedEmpty(t *testing.T, mc *manualClient, refresh, access string) {
	probe := c.newClient("probe-empty", "2025-11-25")
	defer probe.close()
	res, err := probe.call(c.ctx, "notes_create", map[string]any{"title": "before the restart"})
	if err != nil {
		t.Fatal(err)
	}
	var n struct{ ID string }
	structured(res, &n)
	session, token := probe.cs.ID(), probe.token()
	visits := probe.u.visits.Load()
	pids := c.pids()

	c.stats.setPhase("redis-killed")
	c.redis.Kill()
	killed := time.Now()
	c.waitAll(t, "/readyz", http.StatusServiceUnavailable)
	t.Logf("every replica reported not ready %v after Redis was killed", time.Since(killed).Round(time.Millisecond))
	c.checkUnavailable(t, token, session)

	c.stats.setPhase("redis-empty")
	c.redis.Restart()
	c.waitAll(t, "/readyz", http.StatusOK)
	for _, r := range c.replicas {
		c.waitLB(t, r, "UP")
	}
	t.Logf("every replica ready again %v after Redis was killed (restarted empty)", time.Since(killed).Round(time.Millisecond))
	if now := c.pids(); !slices.Equal(now, pids) {
		t.Errorf("replica PIDs %v became %v: the service must resume without restarts", pids, now)
	}
	record := func(what, got string) {
		c.stats.add(func(s *clusterStats) { s.emptyRedis[what] = got })
	}

	// The refresh token: its family is gone. A DCR client is gone too, so
	// the token endpoint may refuse the client before it looks at the token.
	st, out, _ := mc.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	record("old refresh token at /token", fmt.Sprintf("%d %v", st, out["error"]))
	if e, _ := out["error"].(string); (st != http.StatusBadRequest && st != http.StatusUnauthorized) || (e != "invalid_grant" && e != "invalid_client") {
		t.Errorf("refresh with a token issued before Redis restarted empty: %d %v, want 400 invalid_grant (or 401 invalid_client: the registration is gone too)", st, out)
	}

	// The legacy session is gone: 404 (or 401 when the token is refused first).
	a, err := c.rpc(c.ctx, c.lb, token, "2025-11-25", session, "ping", nil)
	if err != nil && a == nil {
		t.Errorf("old legacy session: %v", err)
	} else {
		record("old legacy session (ping)", strconv.Itoa(a.status))
		if a.status != http.StatusNotFound && a.status != http.StatusUnauthorized {
			t.Errorf("a legacy session from before Redis restarted empty: ping answers %d, want 404 (or 401)", a.status)
		}
	}

	// Access tokens are JWTs, verified locally: the signature still holds,
	// but a token whose grant the store no longer knows is refused. Each
	// replica remembers for 30s that a grant exists, so until then a
	// replica may still say 200; after that every replica says 401 with a
	// Bearer challenge, and clients re-authorize. Anything else is wrong.
	restarted := time.Now()
	var statuses []string
	err = waitFor(t, 40*time.Second, func() error {
		statuses = nil
		all401 := true
		for _, base := range append(c.bases(), c.lb) {
			for _, tok := range []string{access, token} {
				a, err := c.rpc(c.ctx, base, tok, "2026-07-28", "", "tools/call", map[string]any{"name": "notes_search", "arguments": map[string]any{}})
				if err != nil && a == nil {
					t.Fatalf("%s: %v", c.nameOf(base), err)
				}
				switch a.status {
				case http.StatusUnauthorized:
					if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s: 401 without a Bearer challenge", c.nameOf(base))
					}
				case http.StatusOK:
					all401 = false
				default:
					t.Fatalf("%s: an access token issued before Redis restarted empty got %d %.200s, want 401 (or 200 while the grant's existence is still remembered)", c.nameOf(base), a.status, a.body)
				}
				statuses = append(statuses, strconv.Itoa(a.status))
			}
		}
		if !all401 {
			return errors.New("an old access token is still accepted")
		}
		return nil
	})
	if err != nil {
		t.Errorf("old access tokens still accepted 40s after Redis restarted empty (replicas, LB: %v); want 401 within the 30s a grant's existence is remembered", statuses)
	} else {
		record("old access tokens at /mcp (each replica, LB)", fmt.Sprintf("401 with a Bearer challenge everywhere %v after the restart", time.Since(restarted).Round(100*time.Millisecond)))
	}

	// The old registration: /authorize shows an error page, never a 500 nor a redirect.
	_, challenge := pkcePair()
	ar, _, err := c.get(mc.authURL(challenge, "st", "notes:read", nil))
	if err != nil || ar != http.StatusBadRequest {
		t.Errorf("/authorize for a client registered before Redis restarted empty: %d %v, want 400 (unknown app)", ar, err)
	}
	record("old client_id at /authorize", strconv.Itoa(ar))

	// The go-sdk client with its old session and tokens recovers: a 404
	// and a new session, or a new authorization.
	if _, err := probe.call(c.ctx, "notes_search", map[string]any{"limit": 1}); err != nil {
		t.Errorf("the go-sdk client after Redis restarted empty: %v", err)
	}
	record("go-sdk legacy client", fmt.Sprintf("recovered; authorized %d more times", probe.u.visits.Load()-visits))

	// A fresh login, both eras.
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		fresh := c.newClient("fresh-"+v, v)
		title := "after the restart " + v
		res, err := fresh.call(c.ctx, "notes_create", map[string]any{"title": title})
		if err == nil {
			var m struct{ ID string }
			structured(res, &m)
			res, err = fresh.call(c.ctx, "notes_get", map[string]any{"id": m.ID})
		}
		var got struct{ Title string }
		if err == nil {
			structured(res, &got)
		}
		if err != nil || got.Title != title {
			t.Errorf("a fresh %s login after Redis restarted empty: %v (title %q)", v, err, got.Title)
		}
		if v == "2026-07-28" && err == nil {
			// The note written before the restart went with the data: a
			// tool error that says so, not a failure.
			res, err := fresh.cs.CallTool(c.ctx, &mcp.CallToolParams{Name: "notes_get", Arguments: map[string]any{"id": n.ID}})
			if err != nil || !res.IsError || !strings.Contains(toolText(res), "no note") {
				t.Errorf("notes_get of a note written before Redis restarted empty: %v %q, want the tool error \"no note\"", err, toolText(res))
			}
			record("note written before", fmt.Sprintf("gone: %q", toolText(res)))
		}
		fresh.close()
	}
	c.stats.setPhase("verify")
}

// waitAll waits until path answers want on every replica.
func (c *cluster) waitAll(t *testing.T, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for _, r := range c.replicas {
		err := waitFor(t, time.Until(deadline), func() error {
			st, _, err := c.get(r.base + path)
			if err == nil && st == want {
				return nil
			}
			return fmt.Errorf("%d %v", st, err)
		})
		if err != nil {
			t.Fatalf("%s %s: %v after %v, want %d\n%s", r.name, path, err, clusterWait, want, tailLines(readFile(r.log), 30))
		}
	}
}

func (c *cluster) bases() []string {
	var out []string
	for _, r := range c.replicas {
		out = append(out, r.base)
	}
	return out
}

func (c *cluster) nameOf(base string) string {
	for _, r := range c.replicas {
		if r.base == base {
			return r.name
		}
	}
	return "LB"
}

func (c *cluster) pids() []int {
	var out []int
	for _, r := range c.replicas {
		out = append(out, r.proc().pid())
	}
	return out
}

// ---------------------------------------------------------------------------
// Logs.

var accessStatusRE = regexp.MustCompile(`msg=request .*\bpath=(\S+) status=(\d+)`)

// checkLogs: no 500 anywhere (replicas' access logs, HAProxy's log), no
// data race in a replica.
func (c *cluster) checkLogs(t *testing.T) {
	t.Helper()
	for _, r := range c.replicas {
		log := readFile(r.log)
		if strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race (see its log)", r.name)
		}
		for _, line := range strings.Split(log, "\n") {
			// 503 is what a replica answers while Redis is unreachable;
			// any other 5xx is a bug.
			if m := accessStatusRE.FindStringSubmatch(line); m != nil && m[2][0] == '5' && m[2] != "503" {
				t.Errorf("%s answered %s: %s", r.name, m[2], line)
			}
		}
	}
	for _, l := range c.lbLines() {
		if l.status == http.StatusInternalServerError {
			t.Errorf("HAProxy logged a 500: %+v", l)
		}
	}
}

func (c *cluster) printLogs(t *testing.T) {
	for _, r := range c.replicas {
		t.Logf("==== %s log (%s), errors, warnings and 5xx, then its end:\n%s", r.name, r.log, interesting(readFile(r.log)))
	}
	t.Logf("==== HAProxy log (%s), 5xx and retried requests, then its end:\n%s", c.lbLog, interestingLB(readFile(c.lbLog)))
}

// interesting keeps the lines of a replica log that matter when looking
// for a failure (starts, warnings, errors, 5xx answers, anything not from
// the logger: panics, race reports), and the last 40 lines.
func interesting(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	var out []string
	for _, l := range lines[:max(0, len(lines)-40)] {
		m := accessStatusRE.FindStringSubmatch(l)
		keep := !strings.HasPrefix(l, "time=") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") ||
			m != nil && m[2][0] == '5' || strings.Contains(l, "shutting down") || strings.Contains(l, "listening")
		if keep {
			out = append(out, l)
		}
	}
	if len(out) > 300 {
		out = append(out[:150], append([]string{fmt.Sprintf("… %d lines …", len(out)-300)}, out[len(out)-150:]...)...)
	}
	out = append(out, "---- end:")
	return strings.Join(append(out, lines[max(0, len(lines)-40):]...), "\n")
}

func interestingLB(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	var out []string
	for _, l := range lines[:max(0, len(lines)-30)] {
		m := lbLineRE.FindStringSubmatch(l)
		if m != nil && m[2][0] != '5' && m[4] == "0" {
			continue
		}
		out = append(out, l)
	}
	if len(out) > 200 {
		out = out[len(out)-200:]
	}
	out = append(out, "---- end:")
	return strings.Join(append(out, lines[max(0, len(lines)-30):]...), "\n")
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ---------------------------------------------------------------------------
// The report.

func (s *clusterStats) report(t *testing.T, c *cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster test counts:\n")
	fmt.Fprintf(&b, "  go-sdk clients: %d HTTP requests; answers by status: %s\n", s.requests, fmtCounts(s.statuses))
	fmt.Fprintf(&b, "  tool calls: %d succeeded, %d retries, %d given up; the longest attempt took %v\n", s.ops, s.opRetries, len(s.lost), s.slowest.Round(time.Millisecond))
	alive, closed, ended404, broken := 0, 0, 0, 0
	for _, ss := range s.sessions {
		switch ss.ended {
		case "":
			alive++
		case "closed":
			closed++
		case "404":
			ended404++
		default:
			broken++
		}
	}
	fmt.Fprintf(&b, "  legacy sessions: %d (in use at the end %d, ended by their client %d, ended with a 404 and re-initialized %d, lost otherwise %d); connections by version: %v\n",
		len(s.sessions), alive, closed, ended404, broken, s.connects)
	fmt.Fprintf(&b, "  /mcp requests by method %v; SSE streams resumed with Last-Event-ID: %d (answered 200: %d)\n", s.methods, s.resumed, s.resumedOK)

	phases := map[string]int{}
	for _, n := range s.notes {
		phases[n.phase]++
	}
	fmt.Fprintf(&b, "  notes created: %d (by phase %v)\n", len(s.notes), phases)
	fmt.Fprintf(&b, "  access tokens checked on every replica: %d; refresh grants: %d; TypeScript client runs: %d\n", len(s.tokens), s.refreshes, s.tsRuns)
	fmt.Fprintf(&b, "  2026-07-28 burst right after the SIGKILL: %d requests; HAProxy retries/redispatches for the dead replica: %d\n", s.burst, s.lbRetries)
	keys := make([]string, 0, len(s.failures))
	for k := range s.failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "  failed attempts by phase and kind:")
	if len(keys) == 0 {
		fmt.Fprintf(&b, " none")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "\n    %-40s %d", k, s.failures[k])
	}
	for kind, ex := range s.examples {
		fmt.Fprintf(&b, "\n    e.g. %s: %.300s", kind, ex)
	}
	lb := c.lbLines()
	lbStatus := map[int]int{}
	lbRetried, lbRedisp := 0, 0
	perServer := map[string]int{}
	for _, l := range lb {
		lbStatus[l.status]++
		perServer[l.server]++
		if l.retries > 0 {
			lbRetried++
		}
		if l.redisp {
			lbRedisp++
		}
	}
	fmt.Fprintf(&b, "\n  HAProxy: %d requests (all clients and browsers), by status %s, by replica %v; %d retried, %d redispatched", len(lb), fmtCounts(lbStatus), perServer, lbRetried, lbRedisp)
	for _, l := range s.lost {
		fmt.Fprintf(&b, "\n  GIVEN UP: %s", l)
	}
	t.Log(b.String())
	if len(s.lost) > 0 {
		t.Errorf("%d tool calls failed after every retry", len(s.lost))
	}
	if broken > 0 {
		t.Errorf("%d legacy sessions were lost without a clean 404", broken)
	}
}

func fmtCounts(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "no-answer"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, m[k]))
	}
	return strings.Join(parts, " ")
}
