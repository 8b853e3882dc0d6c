// Package helmcheck checks the Helm chart under deploy/helm/remotemcp: it
// renders the chart with the helm binary named by $HELM and validates what
// comes out without a cluster. Every document is decoded strictly into the
// Kubernetes API type of its kind (an unknown or misspelt field, a value of
// the wrong type or a bad quantity fails), and the parts are checked against
// each other (selectors, port names, mounts, the drain timing) and against
// what remotemcp needs (non-root, read-only root, probes). It is not the API
// server's validation: required fields and enum values the types do not
// enforce, and admission, are not checked.
package helmcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const chart = "../../deploy/helm/remotemcp"

// helm runs the helm binary of $HELM, bounded in time.
func helm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: run .ci/helm.sh, which builds helm and sets it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func templateArgs(values []string, sets []string) []string {
	args := []string{"template", "remotemcp", chart}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// rendered is one release's documents, decoded.
type rendered struct {
	deployment  *appsv1.Deployment
	service     *corev1.Service
	configMap   *corev1.ConfigMap
	pdb         *policyv1.PodDisruptionBudget
	hpa         *autoscalingv2.HorizontalPodAutoscaler
	ingress     *networkingv1.Ingress
	monitor     *serviceMonitor
	secretCount int
}

// serviceMonitor is the part of prometheus-operator's ServiceMonitor the
// chart sets (its Go types are not pulled in for this).
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode splits helm's output into documents and decodes each strictly
// into the type of its kind; a kind the chart should not make fails.
func decode(t *testing.T, out string) rendered {
	t.Helper()
	var r rendered
	for _, d := range docSep.Split(out, -1) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(d), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, d)
		}
		if head.Kind == "" {
			if strings.TrimSpace(stripComments(d)) != "" {
				t.Fatalf("a document without kind:\n%s", d)
			}
			continue
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			r.deployment = once(t, r.deployment, head.Kind)
			obj = r.deployment
		case "v1 Service":
			r.service = once(t, r.service, head.Kind)
			obj = r.service
		case "v1 ConfigMap":
			r.configMap = once(t, r.configMap, head.Kind)
			obj = r.configMap
		case "policy/v1 PodDisruptionBudget":
			r.pdb = once(t, r.pdb, head.Kind)
			obj = r.pdb
		case "autoscaling/v2 HorizontalPodAutoscaler":
			r.hpa = once(t, r.hpa, head.Kind)
			obj = r.hpa
		case "networking.k8s.io/v1 Ingress":
			r.ingress = once(t, r.ingress, head.Kind)
			obj = r.ingress
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.monitor = once(t, r.monitor, head.Kind)
			obj = r.monitor
		case "v1 Secret":
			r.secretCount++
			continue
		default:
			t.Fatalf("unexpected kind %s %s", head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(d), obj); err != nil {
			t.Fatalf("%s does not decode strictly as %s: %v\n%s", head.Kind, head.APIVersion, err, d)
		}
	}
	return r
}

func once[T any](t *testing.T, p *T, kind string) *T {
	t.Helper()
	if p != nil {
		t.Fatalf("two %ss", kind)
	}
	return new(T)
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestRender renders the chart with each values file CI knows and checks
// the result.
func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		sets   []string
		// what the rendering must hold
		replicas               int32 // 0: autoscaled
		monitor, ingress, hpa  bool
		config, redis, keys    bool
		proxyKeys              bool
		wantArgs, wantEnvNames []string
	}{
		{name: "defaults", replicas: 1, wantArgs: []string{"--auth=jwt", "--shutdown-timeout=15s"}},
		{
			name: "multi-replica-redis", values: []string{chart + "/ci/multi-replica-redis-values.yaml"},
			replicas: 3, monitor: true, ingress: true, config: true, redis: true, keys: true, proxyKeys: true,
			wantArgs:     []string{"--auth=proxy", "--upstream=github", "--metrics-listen=0.0.0.0:9090", "--config=/etc/remotemcp/config/remotemcp.yaml", "--session-ttl=1h"},
			wantEnvNames: []string{"REMOTEMCP_REDIS_URL", "REMOTEMCP_REDIS_MODE", "REMOTEMCP_UPSTREAM_CLIENT_ID", "REMOTEMCP_UPSTREAM_CLIENT_SECRET", "REMOTEMCP_MAX_SESSIONS_PER_USER"},
		},
		{
			name: "autoscaling", values: []string{chart + "/ci/autoscaling-values.yaml"},
			hpa: true, redis: true, keys: true,
			wantArgs:     []string{"--auth=jwt", "--state-key-file=/etc/remotemcp/keys/state-key"},
			wantEnvNames: []string{"REMOTEMCP_REDIS_URL"},
		},
		{
			name: "introspect", sets: []string{"server.auth=introspect", "server.introspectionURL=https://sso.example.com/introspect", "secrets.introspectionClient.secretName=intro", "server.audience=https://mcp.example.com/mcp", "podDisruptionBudget.enabled=true"},
			replicas:     1,
			wantArgs:     []string{"--auth=introspect", "--introspection-url=https://sso.example.com/introspect", "--issuer=https://sso.example.com/realms/tools", "--audience=https://mcp.example.com/mcp"},
			wantEnvNames: []string{"REMOTEMCP_INTROSPECTION_CLIENT_ID", "REMOTEMCP_INTROSPECTION_CLIENT_SECRET"},
		},
		{
			name: "deploy-kubernetes", values: []string{"../../deploy/kubernetes/values.yaml"},
			replicas: 3, redis: true, keys: true, proxyKeys: true,
			wantArgs:     []string{"--auth=proxy", "--upstream-issuer=https://idp.example.com/realms/example", "--trusted-proxies=10.0.0.0/8"},
			wantEnvNames: []string{"REMOTEMCP_REDIS_URL", "REMOTEMCP_UPSTREAM_CLIENT_SECRET"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := helm(t, templateArgs(c.values, c.sets)...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderr)
			}
			r := decode(t, out)
			if r.deployment == nil || r.service == nil || r.pdb == nil {
				t.Fatalf("want a Deployment, a Service and a PodDisruptionBudget; got %+v", r)
			}
			if r.secretCount != 0 {
				t.Errorf("the chart rendered %d Secret(s); it must only reference existing ones", r.secretCount)
			}
			if (r.monitor != nil) != c.monitor || (r.ingress != nil) != c.ingress || (r.hpa != nil) != c.hpa || (r.configMap != nil) != c.config {
				t.Errorf("optional parts: ServiceMonitor %v Ingress %v HPA %v ConfigMap %v; want %v %v %v %v",
					r.monitor != nil, r.ingress != nil, r.hpa != nil, r.configMap != nil, c.monitor, c.ingress, c.hpa, c.config)
			}
			checkDeployment(t, r.deployment)
			checkWiring(t, r)

			d := r.deployment
			switch {
			case c.hpa && d.Spec.Replicas != nil:
				t.Errorf("replicas %d set beside an autoscaler", *d.Spec.Replicas)
			case !c.hpa && (d.Spec.Replicas == nil || *d.Spec.Replicas != c.replicas):
				t.Errorf("replicas %v, want %d", d.Spec.Replicas, c.replicas)
			}
			ctr := d.Spec.Template.Spec.Containers[0]
			for _, a := range c.wantArgs {
				if !contains(ctr.Args, a) {
					t.Errorf("args %q lack %q", ctr.Args, a)
				}
			}
			var envNames []string
			for _, e := range ctr.Env {
				envNames = append(envNames, e.Name)
				if e.Value != "" && strings.Contains(e.Name, "SECRET") {
					t.Errorf("env %s is inline; secrets come from Secrets", e.Name)
				}
			}
			for _, n := range c.wantEnvNames {
				if !contains(envNames, n) {
					t.Errorf("env %q lacks %s", envNames, n)
				}
			}
			checkKnownFlags(t, ctr)
			if hasArgPrefix(ctr.Args, "--redis-url") {
				t.Errorf("--redis-url on the command line (it may hold a password): %q", ctr.Args)
			}
			if got := contains(envNames, "REMOTEMCP_REDIS_URL"); got != c.redis {
				t.Errorf("REMOTEMCP_REDIS_URL in env: %v, want %v", got, c.redis)
			}
			if got := hasArgPrefix(ctr.Args, "--state-key-file="); got != c.keys {
				t.Errorf("--state-key-file: %v, want %v", got, c.keys)
			}
			for _, f := range []string{"--signing-key-file=", "--vault-keys-file=", "--cookie-key-file="} {
				if got := hasArgPrefix(ctr.Args, f); got != c.proxyKeys {
					t.Errorf("%s: %v, want %v", f, got, c.proxyKeys)
				}
			}
			if c.config {
				if !strings.Contains(r.configMap.Data["remotemcp.yaml"], "signin:") {
					t.Errorf("the --config file lacks its signin section:\n%s", r.configMap.Data["remotemcp.yaml"])
				}
				if d.Spec.Template.Annotations["checksum/config"] == "" {
					t.Error("no checksum/config annotation: pods would not roll when the file changes")
				}
			}
		})
	}
}

// checkDeployment checks what every rendering of the Deployment must hold.
func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if errs := validation.IsDNS1123Subdomain(d.Name); len(errs) > 0 {
		t.Errorf("name %q: %v", d.Name, errs)
	}
	sel, err := metaSelector(d.Spec.Selector.MatchLabels)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep capacity (maxUnavailable 0): %+v", ru)
	}
	ps := d.Spec.Template.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; remotemcp needs no API access")
	}
	if psc := ps.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("pod securityContext must run as non-root 65532 with fsGroup 65532: %+v", psc)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	if !strings.HasPrefix(c.Image, "ghcr.io/remotemcp/remotemcp:") {
		t.Errorf("image %q", c.Image)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root file system not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || !contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want drop ALL", sc.Capabilities)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	probe := func(name string, p *corev1.Probe, path string) {
		switch {
		case p == nil || p.HTTPGet == nil:
			t.Errorf("%s probe: none", name)
		case p.HTTPGet.Path != path:
			t.Errorf("%s probe path %q, want %q", name, p.HTTPGet.Path, path)
		case ports[p.HTTPGet.Port.String()] == 0:
			t.Errorf("%s probe port %q is no container port (%v)", name, p.HTTPGet.Port.String(), ports)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	if listen := argValue(c.Args, "--listen"); listen != fmt.Sprintf("0.0.0.0:%d", ports["http"]) {
		t.Errorf("--listen=%s does not match the http port %d", listen, ports["http"])
	}
	if m := argValue(c.Args, "--metrics-listen"); m != "" && m != fmt.Sprintf("0.0.0.0:%d", ports["metrics"]) {
		t.Errorf("--metrics-listen=%s does not match the metrics port %d", m, ports["metrics"])
	}

	// The drain: preStop sleep, then SIGTERM and --shutdown-timeout, all
	// within the grace period.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep")
	}
	shutdown, err := time.ParseDuration(argValue(c.Args, "--shutdown-timeout"))
	if err != nil {
		t.Fatalf("--shutdown-timeout: %v", err)
	}
	sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if g := ps.TerminationGracePeriodSeconds; g == nil {
		t.Error("no terminationGracePeriodSeconds")
	} else if time.Duration(*g)*time.Second <= sleep+shutdown {
		t.Errorf("terminationGracePeriodSeconds %d must exceed preStop %v + --shutdown-timeout %v", *g, sleep, shutdown)
	}

	// Every file flag points into a mounted volume that holds that file.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("mount %s is writable", m.Name)
		}
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("mount %s has no volume", m.Name)
		}
	}
	for _, a := range c.Args {
		name, val, ok := strings.Cut(a, "=")
		if !ok || !(strings.HasSuffix(name, "-file") || name == "--config") {
			continue
		}
		m, ok := mounts[filepath.Dir(val)]
		if !ok {
			t.Errorf("%s: %s is in no mounted directory", name, val)
			continue
		}
		v := volumes[m.Name]
		var files []string
		switch {
		case v.Secret != nil:
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
				t.Errorf("volume %s: key files readable by others (mode %v)", v.Name, v.Secret.DefaultMode)
			}
			for _, it := range v.Secret.Items {
				files = append(files, it.Path)
			}
		case v.ConfigMap != nil:
			files = []string{"remotemcp.yaml"}
		}
		if !contains(files, filepath.Base(val)) {
			t.Errorf("%s: volume %s does not hold %s (%v)", name, v.Name, filepath.Base(val), files)
		}
	}
	for _, e := range c.Env {
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && (r.SecretKeyRef.Name == "" || r.SecretKeyRef.Key == "") {
			t.Errorf("env %s: empty Secret reference", e.Name)
		}
	}
}

// checkWiring checks that the objects refer to each other correctly.
func checkWiring(t *testing.T, r rendered) {
	t.Helper()
	d := r.deployment
	podLabels := labels.Set(d.Spec.Template.Labels)
	ports := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
	}
	s := r.service
	if sel, err := metaSelector(s.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Service selector %v does not match the pods %v", s.Spec.Selector, podLabels)
	}
	if s.Spec.SessionAffinity != corev1.ServiceAffinityNone {
		t.Errorf("Service sessionAffinity %q", s.Spec.SessionAffinity)
	}
	svcPorts := map[string]bool{}
	for _, p := range s.Spec.Ports {
		svcPorts[p.Name] = true
		if !ports[p.TargetPort.String()] {
			t.Errorf("Service port %s targets %q, no container port", p.Name, p.TargetPort.String())
		}
	}
	if sel, err := metaSelector(r.pdb.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector does not match the pods")
	}
	if h := r.hpa; h != nil {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name {
			t.Errorf("HPA scales %+v, not the Deployment %s", h.Spec.ScaleTargetRef, d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HPA bounds %v..%d", h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	if m := r.monitor; m != nil {
		if sel, err := metaSelector(m.Spec.Selector.MatchLabels); err != nil || !sel.Matches(labels.Set(s.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not match the Service %v", m.Spec.Selector.MatchLabels, s.Labels)
		}
		for _, e := range m.Spec.Endpoints {
			if !svcPorts[e.Port] || e.Port != "metrics" || e.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint %+v: want the Service's metrics port, /metrics", e)
			}
			if _, err := time.ParseDuration(e.Interval); err != nil {
				t.Errorf("ServiceMonitor interval: %v", err)
			}
		}
	}
	if in := r.ingress; in != nil {
		for _, rule := range in.Spec.Rules {
			if errs := validation.IsDNS1123Subdomain(rule.Host); len(errs) > 0 {
				t.Errorf("Ingress host %q: %v", rule.Host, errs)
			}
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || b.Name != s.Name || b.Port.Name != "http" {
					t.Errorf("Ingress backend %+v: want Service %s port http", b, s.Name)
				}
			}
		}
	}
}

// TestNotes renders NOTES.txt (helm install --dry-run=client, which reaches
// no cluster) and checks that it tells where clients connect and what the
// release runs.
func TestNotes(t *testing.T) {
	t.Setenv("KUBECONFIG", os.DevNull)
	cases := []struct {
		values string
		want   []string
	}{
		{"", []string{"--auth jwt, 1 replica(s), state in process memory", "https://mcp.example.com/mcp", "port-forward svc/remotemcp 8080:80", "WARNING: server.publicURL is still the placeholder"}},
		{chart + "/ci/multi-replica-redis-values.yaml", []string{"--auth proxy, 3 replica(s), state in Redis (Secret remotemcp-redis)", "routed by Ingress remotemcp", "Metrics: port 9090", "ServiceMonitor remotemcp"}},
		{chart + "/ci/autoscaling-values.yaml", []string{"2–6 replicas (autoscaled)"}},
	}
	for _, c := range cases {
		args := []string{"install", "remotemcp", chart, "--dry-run=client"}
		if c.values != "" {
			args = append(args, "-f", c.values)
		}
		out, stderr, err := helm(t, args...)
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		_, notes, ok := strings.Cut(out, "NOTES:\n")
		if !ok {
			t.Fatalf("no NOTES in:\n%s", out)
		}
		for _, w := range c.want {
			if !strings.Contains(notes, w) {
				t.Errorf("values %q: NOTES lack %q:\n%s", c.values, w, notes)
			}
		}
	}
}

// TestRefused: what the chart refuses to render, and why.
func TestRefused(t *testing.T) {
	redis := "secrets.redis.secretName=r"
	keys := "secrets.keys.secretName=k"
	proxy := []string{"server.auth=proxy", "server.upstream=github"}
	cases := []struct {
		name string
		sets []string
		want string
	}{
		{"replicas without Redis", []string{"replicaCount=2"}, "set secrets.redis.secretName"},
		{"autoscaling without Redis", []string{"autoscaling.enabled=true"}, "set secrets.redis.secretName"},
		{"Redis without the state key", []string{redis}, "requestState key"},
		{"proxy replicas without keys", append([]string{"replicaCount=3", redis, keys, "secrets.keys.signing="}, proxy...), "shared keys"},
		{"proxy Redis without keys secret", append([]string{redis}, proxy...), "requestState key"},
		{"proxy on dev upstream", []string{"server.auth=proxy"}, "needs server.upstream"},
		{"auth none", []string{"server.auth=none"}, "server.auth must be"},
		{"no public URL", []string{"server.publicURL="}, "server.publicURL is required"},
		{"ServiceMonitor without metrics", []string{"metrics.serviceMonitor.enabled=true"}, "needs metrics.enabled"},
		{"metrics on the public port", []string{"metrics.enabled=true", "metrics.port=8080"}, "must differ"},
		{"grace period too short", []string{"terminationGracePeriodSeconds=20"}, "must exceed"},
		{"keys secret with nothing to mount", []string{keys, "secrets.keys.state="}, "names no key"},
		// values.schema.json
		{"misspelt value", []string{"server.publicUrl=https://mcp.example.com"}, "additional properties 'publicUrl' not allowed"},
		{"zero replicas", []string{"replicaCount=0"}, "minimum"},
		{"unknown Redis mode", []string{"server.redisMode=ring"}, "redisMode"},
		{"public URL with a query", []string{"server.publicURL=https://mcp.example.com/?x=1"}, "publicURL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := helm(t, templateArgs(nil, c.sets)...)
			if err == nil {
				t.Fatalf("rendered; want a refusal with %q", c.want)
			}
			if !strings.Contains(stderr, c.want) {
				t.Fatalf("refused with %q; want %q", stderr, c.want)
			}
		})
	}
	// And the same proxy with everything it needs renders.
	sets := append([]string{"replicaCount=3", redis, keys}, proxy...)
	if _, stderr, err := helm(t, templateArgs(nil, sets)...); err != nil {
		t.Fatalf("proxy with Redis and keys: %v\n%s", err, stderr)
	}
}

var readmeFlag = regexp.MustCompile("(?m)^\\| `(--[a-z0-9-]+)`(?:, `(--[a-z0-9-]+)`)*")

// checkKnownFlags checks that every flag the pod is given, and every
// REMOTEMCP_ variable, is one the README's Configuration table documents
// (or, for variables without a flag, that the README names).
func checkKnownFlags(t *testing.T, c corev1.Container) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	known := map[string]bool{}
	for _, line := range strings.Split(readme, "\n") {
		if readmeFlag.MatchString(line) {
			for _, f := range regexp.MustCompile("`(--[a-z0-9-]+)`").FindAllStringSubmatch(strings.SplitN(line, " | ", 2)[0], -1) {
				known[f[1]] = true
			}
		}
	}
	if !known["--listen"] || !known["--shutdown-timeout"] {
		t.Fatalf("could not read the README's flag table (found %d flags)", len(known))
	}
	for _, a := range c.Args {
		name, _, _ := strings.Cut(a, "=")
		if known[name] {
			continue
		}
		if name == "--metrics-listen" && !strings.Contains(readme, "--metrics-listen") {
			// The chart is ready for the metrics listener before the
			// README documents it.
			t.Logf("the README does not document %s yet", name)
			continue
		}
		t.Errorf("flag %s is not in the README's Configuration table", name)
	}
	for _, e := range c.Env {
		rest, ok := strings.CutPrefix(e.Name, "REMOTEMCP_")
		if !ok {
			continue
		}
		if !known["--"+strings.ReplaceAll(strings.ToLower(rest), "_", "-")] && !strings.Contains(readme, e.Name) {
			t.Errorf("env %s is neither a flag's twin nor named in the README", e.Name)
		}
	}
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	return labels.SelectorFromValidatedSet(labels.Set(m)), nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func hasArgPrefix(args []string, p string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, p) {
			return true
		}
	}
	return false
}

func argValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestPodStarts runs the rendered pod's container with the real binary
// ($REMOTEMCP_BIN), the way the kubelet would: its args, its environment
// with the Secret references resolved from made-up Secrets, and its
// volumes (key files, the --config ConfigMap) laid out in a temporary
// directory in place of the mount paths; only the listener moves to
// loopback. The pod must log that it listens, answer its startup,
// liveness and readiness probes with 200, log none of the secrets, and
// exit 0 on SIGTERM. With redis-server on the PATH, a second run has two
// replicas' settings against a real Redis.
func TestPodStarts(t *testing.T) {
	bin := os.Getenv("REMOTEMCP_BIN")
	if bin == "" {
		t.Fatal("REMOTEMCP_BIN is not set: run .ci/helm.sh, which builds remotemcp and sets it")
	}
	base := []string{
		"server.auth=proxy", "server.upstream=github", "server.trustedProxies=10.0.0.0/8",
		"secrets.keys.secretName=keys", "secrets.upstreamClient.secretName=github",
		"server.extraArgs[0]=--session-ttl=1h",
		"config.signin.github_teams[0]=my-org/platform", "config.tools.notes_delete.scopes[0]=notes:write",
	}
	// The metrics listener, once the binary has it: then /metrics must
	// answer on the metrics port too.
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	if strings.Contains(string(help), "-metrics-listen") {
		base = append(base, "metrics.enabled=true")
	} else {
		t.Log("this build has no --metrics-listen: the pods run without metrics")
	}
	t.Run("one replica", func(t *testing.T) {
		runPod(t, bin, base, nil)
	})
	t.Run("replicas with Redis", func(t *testing.T) {
		redis, err := exec.LookPath("redis-server")
		if err != nil {
			t.Fatal("redis-server is not installed: run .ci/deps.sh first (make helm-check does)")
		}
		port := freePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, redis, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no")
		var out syncBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { cancel(); <-exited })
		waitForLog(t, &out, "Ready to accept connections", exited)
		sets := append([]string{"replicaCount=2", "secrets.redis.secretName=redis"}, base...)
		runPod(t, bin, sets, map[string]map[string]string{
			"redis": {"redis-url": fmt.Sprintf("redis://127.0.0.1:%d/0", port)},
		})
	})
}

func runPod(t *testing.T, bin string, sets []string, extraSecrets map[string]map[string]string) {
	out, stderr, err := helm(t, templateArgs(nil, sets)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	r := decode(t, out)
	pod := r.deployment.Spec.Template.Spec
	c := pod.Containers[0]

	signing, err := exec.Command(bin, "signing-key").Output()
	if err != nil {
		t.Fatalf("%s signing-key: %v", bin, err)
	}
	secrets := map[string]map[string]string{
		"keys": {
			"signing.json": string(signing),
			"vault-keys":   "k1:" + randomHex(t),
			"cookie-key":   randomHex(t),
			"state-key":    randomHex(t),
		},
		"github": {"upstream-client-id": "Iv1.helmcheck", "upstream-client-secret": "helmcheck-secret-" + randomHex(t)},
	}
	for k, v := range extraSecrets {
		secrets[k] = v
	}

	// The volumes, laid out where the mounts would be.
	root := t.TempDir()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	var mountPaths []string
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		mountPaths = append(mountPaths, m.MountPath)
		v := volumes[m.Name]
		files := map[string]string{}
		switch {
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				val, ok := secrets[v.Secret.SecretName][it.Key]
				if !ok {
					t.Fatalf("volume %s: Secret %s has no key %s", v.Name, v.Secret.SecretName, it.Key)
				}
				files[it.Path] = val
			}
		case v.ConfigMap != nil:
			if r.configMap == nil || r.configMap.Name != v.ConfigMap.Name {
				t.Fatalf("volume %s: ConfigMap %s was not rendered", v.Name, v.ConfigMap.Name)
			}
			files = r.configMap.Data
		default:
			t.Fatalf("volume %s: unexpected source", v.Name)
		}
		for name, val := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(val), 0o400); err != nil {
				t.Fatal(err)
			}
		}
	}

	port, metricsPort := freePort(t), freePort(t)
	var args []string
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--listen=") {
			a = fmt.Sprintf("--listen=127.0.0.1:%d", port)
		}
		if strings.HasPrefix(a, "--metrics-listen=") {
			a = fmt.Sprintf("--metrics-listen=127.0.0.1:%d", metricsPort)
		}
		for _, mp := range mountPaths {
			if name, val, ok := strings.Cut(a, "="); ok && strings.HasPrefix(val, mp+"/") {
				a = name + "=" + filepath.Join(root, val)
			}
		}
		args = append(args, a)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			val, ok := secrets[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+val)
		default:
			t.Fatalf("env %s: unexpected source", e.Name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	waitForLog(t, &logs, `"msg":"remotemcp listening"`, exited)

	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path)
		resp, err := httpGet(ctx, url)
		if err != nil || resp != 200 {
			t.Errorf("%s probe %s: %d, %v\n%s", name, url, resp, err, logs.String())
		}
	}

	if hasArgPrefix(c.Args, "--metrics-listen=") {
		url := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
		if resp, err := httpGet(ctx, url); err != nil || resp != 200 {
			t.Errorf("%s: %d, %v", url, resp, err)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	exited <- err // for the deferred cleanup
	if err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	for name, kv := range secrets {
		for k, v := range kv {
			if k == "redis-url" || k == "upstream-client-id" {
				continue
			}
			if strings.Contains(logs.String(), strings.TrimSpace(v)) {
				t.Errorf("the log holds Secret %s key %s", name, k)
			}
		}
	}
}

// syncBuffer is a process's output, written by os/exec's copying goroutine
// and read by the test; each write wakes a waiting reader.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) signal() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	return b.wrote
}

// waitForLog waits until the output holds want, failing when the process
// exits first or nothing comes within 30 seconds.
func waitForLog(t *testing.T, b *syncBuffer, want string, exited chan error) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(b.String(), want) {
		select {
		case <-b.signal():
		case err := <-exited:
			exited <- err
			t.Fatalf("exited (%v) before logging %q:\n%s", err, want, b.String())
		case <-deadline:
			t.Fatalf("no %q within 30s:\n%s", want, b.String())
		}
	}
}

func httpGet(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
