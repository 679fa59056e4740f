package charttest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// rendered is what one `helm template` produced, validated.
type rendered struct {
	objs   map[string]map[string]any // by kindName
	deploy *appsv1.Deployment
}

// renderValid renders the chart and validates every object; any invalid one fails t.
func renderValid(t *testing.T, files []string, sets ...string) *rendered {
	t.Helper()
	v, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{objs: map[string]map[string]any{}}
	for _, obj := range render(t, files, sets...) {
		if err := v.validate(obj); err != nil {
			t.Errorf("%s is not valid: %v", kindName(obj), err)
		}
		r.objs[kindName(obj)] = obj
	}
	r.deploy = new(appsv1.Deployment)
	r.decode(t, "Deployment/bd-browserd", r.deploy)
	return r
}

// decode converts the object kindName into out (a k8s.io/api type); missing fails t.
func (r *rendered) decode(t *testing.T, kindName string, out any) {
	t.Helper()
	obj, ok := r.objs[kindName]
	if !ok {
		t.Fatalf("no %s among %v", kindName, slices.Sorted(maps.Keys(r.objs)))
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", kindName, err)
	}
}

// container is the browserd container of the Deployment.
func (r *rendered) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := r.deploy.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "browserd" {
		t.Fatalf("containers: want one named browserd, got %d", len(cs))
	}
	return &cs[0]
}

// env returns the container's variable name and its index; missing fails t.
func (r *rendered) env(t *testing.T, name string) (corev1.EnvVar, int) {
	t.Helper()
	for i, e := range r.container(t).Env {
		if e.Name == name {
			return e, i
		}
	}
	t.Fatalf("the container has no env %s", name)
	return corev1.EnvVar{}, -1
}

// The variables that hold secrets: each must come from a Secret, never inline.
var secretEnv = []string{"BROWSERD_DATABASE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN", "BROWSERD_API_KEY", "BROWSERD_METRICS_TOKEN"}

func TestRenderDefaults(t *testing.T) {
	r := renderValid(t, required)
	want := []string{"Deployment/bd-browserd", "PodDisruptionBudget/bd-browserd", "Service/bd-browserd"}
	if got := slices.Sorted(maps.Keys(r.objs)); !slices.Equal(got, want) {
		t.Errorf("objects: got %v, want %v", got, want)
	}
	if r.deploy.Spec.Replicas == nil || *r.deploy.Spec.Replicas != 1 {
		t.Errorf("replicas: got %v, want 1", r.deploy.Spec.Replicas)
	}
	checkNode(t, r, 300)

	// Memory from the documented formula: 64 + (16 + 2) × 150 MiB and × 300 MiB.
	res := r.container(t).Resources
	checkQuantity(t, "memory request", res.Requests[corev1.ResourceMemory], "2764Mi")
	checkQuantity(t, "memory limit", res.Limits[corev1.ResourceMemory], "5464Mi")
	checkQuantity(t, "cpu request", res.Requests[corev1.ResourceCPU], "1")
	if _, ok := res.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit is set; the chart sets none")
	}

	// Optional secrets are absent, required ones by reference.
	for _, name := range []string{"AWS_SESSION_TOKEN", "BROWSERD_API_KEY", "BROWSERD_METRICS_TOKEN", "BROWSERD_PUBLIC_URL"} {
		for _, e := range r.container(t).Env {
			if e.Name == name {
				t.Errorf("env %s is set without its value", name)
			}
		}
	}
	checkSecretRef(t, r, "BROWSERD_DATABASE", "browserd-postgres", "url")
	checkSecretRef(t, r, "AWS_ACCESS_KEY_ID", "browserd-s3", "AWS_ACCESS_KEY_ID")
	checkSecretRef(t, r, "AWS_SECRET_ACCESS_KEY", "browserd-s3", "AWS_SECRET_ACCESS_KEY")
	if e, _ := r.env(t, "BROWSERD_BLOB_STORE"); e.Value != "s3://browserd/prod?endpoint=https://s3.example.com&region=eu-west-1" {
		t.Errorf("BROWSERD_BLOB_STORE: got %q", e.Value)
	}
}

func TestRenderSecretsAndOptions(t *testing.T) {
	r := renderValid(t, secrets)
	for _, k := range []string{"Deployment/bd-browserd", "Service/bd-browserd", "PodDisruptionBudget/bd-browserd", "Ingress/bd-browserd"} {
		if r.objs[k] == nil {
			t.Errorf("no %s", k)
		}
	}
	if r.deploy.Spec.Replicas == nil || *r.deploy.Spec.Replicas != 3 {
		t.Errorf("replicas: got %v, want 3", r.deploy.Spec.Replicas)
	}
	checkNode(t, r, 300)
	checkSecretRef(t, r, "AWS_SESSION_TOKEN", "browserd-s3", "AWS_SESSION_TOKEN")
	checkSecretRef(t, r, "BROWSERD_API_KEY", "browserd-api-key", "key")
	checkSecretRef(t, r, "BROWSERD_METRICS_TOKEN", "browserd-metrics", "token")
	for name, want := range map[string]string{"BROWSERD_PUBLIC_URL": "https://browsers.example.com",
		"BROWSERD_TRUSTED_PROXIES": "10.0.0.0/8", "BROWSERD_RECORD_SESSIONS": "true"} {
		if e, _ := r.env(t, name); e.Value != want {
			t.Errorf("%s: got %q, want %q", name, e.Value, want)
		}
	}
	for _, v := range r.deploy.Spec.Template.Spec.Volumes {
		if v.Name == "data" && (v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.String() != "40Gi") {
			t.Errorf("data volume: got %+v, want an emptyDir of 40Gi", v.EmptyDir)
		}
	}
	// No Secret is made: the chart only refers to the user's.
	for k := range r.objs {
		if strings.HasPrefix(k, "Secret/") {
			t.Errorf("the chart made %s", k)
		}
	}
}

func TestRenderKEDA(t *testing.T) {
	r := renderValid(t, withKEDA)
	if r.deploy.Spec.Replicas != nil {
		t.Errorf("replicas is %d with KEDA on; KEDA owns it", *r.deploy.Spec.Replicas)
	}
	checkNode(t, r, 300)
	var so struct {
		Spec struct {
			ScaleTargetRef                   struct{ APIVersion, Kind, Name string }
			MinReplicaCount, MaxReplicaCount int
			Triggers                         []struct {
				Type, MetricType  string
				Metadata          map[string]string
				AuthenticationRef struct{ Name string }
			}
		}
	}
	r.decode(t, "ScaledObject/bd-browserd", &so)
	if ref := so.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != r.deploy.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("scaleTargetRef: got %+v, want the Deployment %s", ref, r.deploy.Name)
	}
	if so.Spec.MinReplicaCount != 2 || so.Spec.MaxReplicaCount != 20 {
		t.Errorf("replica counts: got %d–%d, want 2–20", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
	}
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("triggers: got %d, want 1", len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	wantQuery := `sum(browserd_node_sessions{namespace="browsers", pod=~"bd-browserd-.*"})`
	if tr.Type != "prometheus" || tr.MetricType != "AverageValue" || tr.Metadata["query"] != wantQuery ||
		tr.Metadata["threshold"] != "12" || tr.Metadata["serverAddress"] != "http://prometheus.monitoring.svc:9090" ||
		tr.AuthenticationRef.Name != "prometheus-auth" {
		t.Errorf("trigger: got %+v;\nwant prometheus, AverageValue, query %s, threshold 12 (3/4 of 16)", tr, wantQuery)
	}
	// The metric the query names is the gauge browserd exports.
	src, err := os.ReadFile("../../../internal/metrics/scrape.go")
	if err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`^sum\((\w+)\{`).FindStringSubmatch(tr.Metadata["query"])
	if metric == nil || !strings.Contains(string(src), fmt.Sprintf("prometheus.NewDesc(%q", metric[1])) {
		t.Errorf("the query's metric %v is not one internal/metrics/scrape.go describes", metric)
	}

	// The ServiceMonitor scrapes the Service's pods with the metrics token.
	var sm struct {
		Metadata struct{ Labels map[string]string }
		Spec     struct {
			Selector  struct{ MatchLabels map[string]string }
			Endpoints []struct {
				Port, Path, Interval string
				Authorization        struct {
					Type        string
					Credentials struct{ Name, Key string }
				}
			}
		}
	}
	r.decode(t, "ServiceMonitor/bd-browserd", &sm)
	var svc corev1.Service
	r.decode(t, "Service/bd-browserd", &svc)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %v does not match the Service's labels %v", sm.Spec.Selector.MatchLabels, svc.Labels)
		}
	}
	if sm.Metadata.Labels["release"] != "prometheus" || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: labels %v, %d endpoints", sm.Metadata.Labels, len(sm.Spec.Endpoints))
	}
	if ep := sm.Spec.Endpoints[0]; ep.Port != "http" || ep.Path != "/metrics" || ep.Interval != "30s" ||
		ep.Authorization.Type != "Bearer" || ep.Authorization.Credentials.Name != "browserd-metrics" || ep.Authorization.Credentials.Key != "token" {
		t.Errorf("ServiceMonitor endpoint: got %+v", ep)
	}

	// An explicit target and query win.
	r = renderValid(t, withKEDA, "keda.targetSessionsPerPod=5", `keda.prometheus.query=sum(x{ns="{{ .Release.Namespace }}"})`)
	r.decode(t, "ScaledObject/bd-browserd", &so)
	if md := so.Spec.Triggers[0].Metadata; md["threshold"] != "5" || md["query"] != `sum(x{ns="browsers"})` {
		t.Errorf("threshold, query: got %q, %q", md["threshold"], md["query"])
	}
}

// The drain timeout drives both the flag and the grace period; sizing follows
// maxSessions and poolSize.
func TestRenderDrainAndSizing(t *testing.T) {
	r := renderValid(t, required, "browserd.drainTimeoutSeconds=900", "browserd.terminationMarginSeconds=45",
		"browserd.maxSessions=40", "browserd.poolSize=0", "sizing.sessionMiB=200")
	if got := *r.deploy.Spec.Template.Spec.TerminationGracePeriodSeconds; got != 945 {
		t.Errorf("terminationGracePeriodSeconds: got %d, want 945", got)
	}
	if e, _ := r.env(t, "BROWSERD_DRAIN_TIMEOUT"); e.Value != "900s" {
		t.Errorf("BROWSERD_DRAIN_TIMEOUT: got %q, want 900s", e.Value)
	}
	if e, _ := r.env(t, "BROWSERD_MAX_SESSIONS"); e.Value != "40" {
		t.Errorf("BROWSERD_MAX_SESSIONS: got %q", e.Value)
	}
	res := r.container(t).Resources
	checkQuantity(t, "memory request", res.Requests[corev1.ResourceMemory], "8064Mi") // 64 + 40 × 200
	checkQuantity(t, "memory limit", res.Limits[corev1.ResourceMemory], "12064Mi")    // 64 + 40 × 300

	// resources, when set, replaces the computed ones.
	r = renderValid(t, required, "resources.requests.memory=1Gi", "resources.limits.memory=2Gi")
	res = r.container(t).Resources
	checkQuantity(t, "memory request", res.Requests[corev1.ResourceMemory], "1Gi")
	checkQuantity(t, "memory limit", res.Limits[corev1.ResourceMemory], "2Gi")
	if _, ok := res.Requests[corev1.ResourceCPU]; ok {
		t.Error("a CPU request from sizing was added to resources")
	}

	// Without the pod user namespace, no Unmasked /proc either (the API server refuses
	// procMount: Unmasked with the host's users).
	r = renderValid(t, required, "sandbox.userNamespace=false")
	if r.deploy.Spec.Template.Spec.HostUsers != nil || r.container(t).SecurityContext.ProcMount != nil {
		t.Errorf("hostUsers %v, procMount %v with sandbox.userNamespace=false",
			r.deploy.Spec.Template.Spec.HostUsers, r.container(t).SecurityContext.ProcMount)
	}
}

// checkNode checks what every rendering's node must have: the cluster URL from the pod
// IP, the drain timeout and its grace period, the probes, the sandbox's security context,
// the volumes, and selectors that match the pods.
func checkNode(t *testing.T, r *rendered, drainSeconds int64) {
	t.Helper()
	c := r.container(t)
	pod := r.deploy.Spec.Template.Spec

	podIP, podIPAt := r.env(t, "POD_IP")
	if podIP.ValueFrom == nil || podIP.ValueFrom.FieldRef == nil || podIP.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("POD_IP is not the downward API's status.podIP: %+v", podIP)
	}
	// $(POD_IP) expands only when POD_IP comes earlier in the list.
	if cu, at := r.env(t, "BROWSERD_CLUSTER_URL"); cu.Value != "http://$(POD_IP):8080" || at < podIPAt {
		t.Errorf("BROWSERD_CLUSTER_URL: got %q at %d (POD_IP at %d)", cu.Value, at, podIPAt)
	}
	if e, _ := r.env(t, "BROWSERD_DRAIN_TIMEOUT"); e.Value != fmt.Sprintf("%ds", drainSeconds) {
		t.Errorf("BROWSERD_DRAIN_TIMEOUT: got %q, want %ds", e.Value, drainSeconds)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g != drainSeconds+30 {
		t.Errorf("terminationGracePeriodSeconds: got %v, want %d (drain + 30 s)", g, drainSeconds+30)
	}
	if e, _ := r.env(t, "BROWSERD_ADDR"); e.Value != "0.0.0.0:8080" {
		t.Errorf("BROWSERD_ADDR: got %q", e.Value)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports: got %+v, want http 8080", c.Ports)
	}

	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"startup": {c.StartupProbe, "/healthz"}, "liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: got %+v, want GET %s on port http", name, p.probe, p.path)
		}
	}
	if sp := c.StartupProbe; sp != nil && sp.PeriodSeconds*sp.FailureThreshold < 120 {
		t.Errorf("startup probe allows %d s; want at least 2 minutes", sp.PeriodSeconds*sp.FailureThreshold)
	}

	// Every secret by reference.
	for _, e := range c.Env {
		if slices.Contains(secretEnv, e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s is not a secretKeyRef: %+v", e.Name, e)
		}
		if strings.Contains(e.Value, "postgres://") || strings.Contains(e.Value, "@") {
			t.Errorf("%s holds what looks like a credential: %q", e.Name, e.Value)
		}
	}

	// The sandbox: user namespaces need seccomp and AppArmor unconfined, bubblewrap's
	// /proc needs procMount Unmasked, which the API server allows only with hostUsers false.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 10001 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined ||
		psc.AppArmorProfile == nil || psc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Errorf("pod securityContext: got %+v", psc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext: got %+v", sc)
	}
	if sc != nil && sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount &&
		(pod.HostUsers == nil || *pod.HostUsers) {
		t.Error("procMount Unmasked without hostUsers: false; the API server refuses it")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it never uses")
	}

	// Volumes: the data dir and a memory-backed /dev/shm, both emptyDirs.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, v := range pod.Volumes {
		if v.EmptyDir == nil {
			t.Errorf("volume %s is not an emptyDir: %+v", v.Name, v.VolumeSource)
		}
	}
	if mounts["data"] != "/var/lib/browserd" || mounts["shm"] != "/dev/shm" {
		t.Errorf("mounts: got %v", mounts)
	}
	if e, _ := r.env(t, "BROWSERD_DATA_DIR"); e.Value != "/var/lib/browserd" {
		t.Errorf("BROWSERD_DATA_DIR: got %q", e.Value)
	}
	for _, v := range pod.Volumes {
		if v.Name == "shm" && (v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory) {
			t.Errorf("shm volume is not memory-backed: %+v", v.VolumeSource)
		}
	}

	// Selectors: the Deployment's, the Service's and the PDB's match the pods.
	podLabels := r.deploy.Spec.Template.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(r.deploy.Spec.Selector.MatchLabels) {
		t.Errorf("Deployment selector %v does not match the pods %v", r.deploy.Spec.Selector.MatchLabels, podLabels)
	}
	var svc corev1.Service
	r.decode(t, "Service/bd-browserd", &svc)
	if !matches(svc.Spec.Selector) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service: selector %v, ports %+v", svc.Spec.Selector, svc.Spec.Ports)
	}
	var pdb policyv1.PodDisruptionBudget
	r.decode(t, "PodDisruptionBudget/bd-browserd", &pdb)
	if !matches(pdb.Spec.Selector.MatchLabels) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget: selector %v, maxUnavailable %v", pdb.Spec.Selector.MatchLabels, pdb.Spec.MaxUnavailable)
	}
}

// checkSecretRef checks that env name comes from key of the Secret secret.
func checkSecretRef(t *testing.T, r *rendered, name, secret, key string) {
	t.Helper()
	e, _ := r.env(t, name)
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret || e.ValueFrom.SecretKeyRef.Key != key {
		t.Errorf("%s: got %+v, want secretKeyRef %s/%s", name, e.ValueFrom, secret, key)
	}
}

// checkQuantity compares a resource quantity with want.
func checkQuantity(t *testing.T, what string, got resource.Quantity, want string) {
	t.Helper()
	if got.Cmp(resource.MustParse(want)) != 0 {
		t.Errorf("%s: got %s, want %s", what, got.String(), want)
	}
}

// Every BROWSERD_* variable the chart sets (values from every test set) is a flag of
// `browserd serve`, read from internal/server's flag table.
func TestEnvNamesAreFlags(t *testing.T) {
	flagDef := regexp.MustCompile(`\bf\.\w+\(&[^,]+, "([a-z0-9-]+)"`)
	files, err := filepath.Glob("../../../internal/server/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("internal/server sources: %v %v", files, err)
	}
	flags := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range flagDef.FindAllStringSubmatch(string(src), -1) {
			flags["BROWSERD_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	if !flags["BROWSERD_MAX_SESSIONS"] || !flags["BROWSERD_DATABASE"] {
		t.Fatalf("read no flag table from internal/server (got %d flags)", len(flags))
	}
	for _, files := range [][]string{required, secrets, withKEDA} {
		r := renderValid(t, files)
		for _, e := range r.container(t).Env {
			if !strings.HasPrefix(e.Name, "BROWSERD_") || flags[e.Name] {
				continue
			}
			t.Errorf("the chart sets %s, which no flag of browserd serve reads", e.Name)
		}
	}
}

// The install command in README.md ("Running a cluster") renders valid objects with the
// image and the secrets it names.
func TestREADMEInstall(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmd := regexp.MustCompile(`(?m)^helm install browserd deploy/helm/browserd(( \\\n|[^\n])*)`).FindSubmatch(readme)
	if cmd == nil {
		t.Fatal("README.md has no `helm install browserd deploy/helm/browserd` command")
	}
	// The words of the command after the chart, shell quotes ('…') removed.
	words := regexp.MustCompile(`(?:'[^']*'|[^\s\\'])+`).FindAllString(string(cmd[1]), -1)
	var sets []string
	for i := 0; i < len(words); i++ {
		switch words[i] {
		case "--set":
			i++
			sets = append(sets, strings.ReplaceAll(words[i], "'", ""))
		case "-n":
			i++
		default:
			t.Fatalf("README's helm install has %q, which this test does not know", words[i])
		}
	}
	r := renderValid(t, nil, sets...)
	if img := r.container(t).Image; img != "registry.example.com/browserd:1" {
		t.Errorf("image: got %q", img)
	}
	checkSecretRef(t, r, "BROWSERD_DATABASE", "browserd-postgres", "url")
	checkSecretRef(t, r, "AWS_SECRET_ACCESS_KEY", "browserd-s3", "AWS_SECRET_ACCESS_KEY")
	checkSecretRef(t, r, "BROWSERD_API_KEY", "browserd-api-key", "api-key")
	if e, _ := r.env(t, "BROWSERD_BLOB_STORE"); !strings.HasPrefix(e.Value, "s3://browserd/prod?endpoint=") {
		t.Errorf("BROWSERD_BLOB_STORE: got %q", e.Value)
	}
}
