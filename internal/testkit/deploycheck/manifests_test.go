package deploycheck

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/onboarding-service/onboarding/internal/devstack"
	"github.com/onboarding-service/onboarding/internal/testkit/monitoring"
)

var update = flag.Bool("update", false, "regenerate deploy/k8s/prometheusrule.yaml from the rules file")

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// manifests holds the decoded resources of the kustomization, by kind.
type manifests struct {
	all          []Object
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	jobs         []*batchv1.Job
	configMaps   []*corev1.ConfigMap
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	netpols      []*networkingv1.NetworkPolicy
	podMonitors  []*monitoringv1.PodMonitor
	svcMonitors  []*monitoringv1.ServiceMonitor
	promRules    []*monitoringv1.PrometheusRule
	unclassified []Object
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	objs, err := LoadManifests(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	m := manifests{all: objs}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, v)
		case *corev1.Service:
			m.services = append(m.services, v)
		case *batchv1.Job:
			m.jobs = append(m.jobs, v)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, v)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, v)
		case *networkingv1.NetworkPolicy:
			m.netpols = append(m.netpols, v)
		case *monitoringv1.PodMonitor:
			m.podMonitors = append(m.podMonitors, v)
		case *monitoringv1.ServiceMonitor:
			m.svcMonitors = append(m.svcMonitors, v)
		case *monitoringv1.PrometheusRule:
			m.promRules = append(m.promRules, v)
		default:
			m.unclassified = append(m.unclassified, o)
		}
	}
	return m
}

// selected returns the Deployments whose pod template labels sel matches.
func (m manifests) selected(t *testing.T, what string, sel *metav1.LabelSelector) []*appsv1.Deployment {
	t.Helper()
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		t.Errorf("%s: empty selector (it would select every pod)", what)
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", what, err)
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range m.deployments {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

// one returns the single Deployment sel selects, failing otherwise.
func (m manifests) one(t *testing.T, what string, sel *metav1.LabelSelector) *appsv1.Deployment {
	t.Helper()
	ds := m.selected(t, what, sel)
	if len(ds) != 1 {
		names := []string{}
		for _, d := range ds {
			names = append(names, d.Name)
		}
		t.Errorf("%s selects the pods of %d Deployments %v, want exactly one", what, len(ds), names)
		return nil
	}
	return ds[0]
}

// containerPorts maps the port names of a Deployment's containers to their numbers.
func containerPorts(d *appsv1.Deployment) map[string]int32 {
	ports := map[string]int32{}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
	}
	return ports
}

// checkPort requires a named port to be a container port name of d, a numbered one a container
// port number.
func checkPort(t *testing.T, what string, d *appsv1.Deployment, p intstr.IntOrString) {
	t.Helper()
	ports := containerPorts(d)
	if p.Type == intstr.String {
		if _, ok := ports[p.StrVal]; !ok {
			t.Errorf("%s: port %q is not a container port name of %s (%v)", what, p.StrVal, d.Name, ports)
		}
		return
	}
	for _, n := range ports {
		if n == p.IntVal {
			return
		}
	}
	t.Errorf("%s: port %d is not a container port of %s (%v)", what, p.IntVal, d.Name, ports)
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	root := repoRoot(t)
	k, err := LoadKustomization(root)
	if err != nil {
		t.Fatal(err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(root, K8sDir, "*.yaml"))
	var want []string
	for _, f := range files {
		switch b := filepath.Base(f); b {
		case "kustomization.yaml", "secret.example.yaml": // the secret is created by hand
		default:
			want = append(want, b)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources = %v, want every manifest of %s: %v", got, K8sDir, want)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "onboarding" {
		t.Errorf("kustomization.yaml images = %+v, want one, named onboarding", k.Images)
	}
}

// TestManifestsDecodeStrictly decodes every YAML file of deploy/k8s, the example Secret
// included, into its API type.
func TestManifestsDecodeStrictly(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, K8sDir, "*.yaml"))
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := DecodeFile(root, filepath.ToSlash(filepath.Join(K8sDir, filepath.Base(f))))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, o := range objs {
			gvk := o.Obj.GetObjectKind().GroupVersionKind()
			t.Logf("%s #%d: %s", o.File, o.Doc, gvk)
			n++
		}
	}
	if n < 14 {
		t.Errorf("decoded %d objects, expected at least 14", n)
	}
	m := loadManifests(t)
	if len(m.unclassified) > 0 {
		t.Errorf("objects of kinds the checks do not know: %v", m.unclassified)
	}
}

// TestStrictDecoderRefuses shows the decoder is strict, so the test above means something.
func TestStrictDecoderRefuses(t *testing.T) {
	base := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n"
	if _, _, err := strictDecoder.Decode([]byte(base), nil, nil); err != nil {
		t.Fatalf("valid Deployment refused: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":    base + "  replica: 2\n",
		"field case":       base + "  Replicas: 2\n",
		"duplicate field":  base + "  replicas: 2\n  replicas: 3\n",
		"wrong type":       base + "  replicas: two\n",
		"unknown kind":     strings.Replace(base, "kind: Deployment", "kind: Deploymint", 1),
		"unknown version":  strings.Replace(base, "apps/v1", "apps/v2", 1),
		"monitoring field": "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  podMetricsEndpoints: [{prt: metrics}]\n",
	} {
		if _, _, err := strictDecoder.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDeploymentsSelectTheirPods(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) != 2 {
		t.Fatalf("%d Deployments, want the API and the worker", len(m.deployments))
	}
	for _, d := range m.deployments {
		what := "Deployment " + d.Name
		if got := m.selected(t, what, d.Spec.Selector); len(got) != 1 || got[0] != d {
			t.Errorf("%s: its selector does not select exactly its own pods", what)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil {
					checkPort(t, what+" probe "+p.HTTPGet.Path, d, p.HTTPGet.Port)
				}
			}
		}
		// The prometheus.io annotations (plain Prometheus' pod discovery) name the metrics port.
		if got, want := d.Spec.Template.Annotations["prometheus.io/port"], strconv.Itoa(int(containerPorts(d)["metrics"])); got != want {
			t.Errorf("%s: prometheus.io/port = %q, want the metrics port %s", what, got, want)
		}
	}
	for _, s := range m.services {
		d := m.one(t, "Service "+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if d == nil {
			continue
		}
		for _, p := range s.Spec.Ports {
			checkPort(t, "Service "+s.Name, d, p.TargetPort)
		}
	}
}

func TestEveryDeploymentHasItsPolicies(t *testing.T) {
	m := loadManifests(t)
	count := map[string]map[string]int{}
	add := func(kind string, d *appsv1.Deployment) {
		if d == nil {
			return
		}
		if count[d.Name] == nil {
			count[d.Name] = map[string]int{}
		}
		count[d.Name][kind]++
	}
	deploymentByName := map[string]*appsv1.Deployment{}
	for _, d := range m.deployments {
		deploymentByName[d.Name] = d
	}

	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		d := deploymentByName[ref.Name]
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || d == nil {
			t.Errorf("HPA %s: scaleTargetRef %+v is not a Deployment of the manifests", h.Name, ref)
			continue
		}
		add("HorizontalPodAutoscaler", d)
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HPA %s: replicas %v..%d, want at least 2 and max >= min", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		cpu := false
		for _, mt := range h.Spec.Metrics {
			if mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU {
				cpu = true
				// Utilization is relative to requests: without a CPU request the HPA cannot compute it.
				for _, c := range d.Spec.Template.Spec.Containers {
					if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
						t.Errorf("HPA %s scales on CPU but container %s has no CPU request", h.Name, c.Name)
					}
				}
			}
		}
		if !cpu {
			t.Errorf("HPA %s: no CPU metric", h.Name)
		}
	}
	for _, p := range m.pdbs {
		d := m.one(t, "PDB "+p.Name, p.Spec.Selector)
		add("PodDisruptionBudget", d)
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.Type != intstr.Int || p.Spec.MinAvailable.IntVal < 1 {
			t.Errorf("PDB %s: minAvailable %v, want at least one replica kept", p.Name, p.Spec.MinAvailable)
			continue
		}
		// The budget must leave room for one eviction, or a drain never finishes.
		if d != nil && d.Spec.Replicas != nil && *d.Spec.Replicas <= p.Spec.MinAvailable.IntVal {
			t.Errorf("PDB %s: minAvailable %d with %d replicas blocks every drain", p.Name, p.Spec.MinAvailable.IntVal, *d.Spec.Replicas)
		}
		for _, h := range m.hpas {
			if d != nil && h.Spec.ScaleTargetRef.Name == d.Name && *h.Spec.MinReplicas <= p.Spec.MinAvailable.IntVal {
				t.Errorf("PDB %s: minAvailable %d >= HPA %s's minReplicas", p.Name, p.Spec.MinAvailable.IntVal, h.Name)
			}
		}
	}
	for _, np := range m.netpols {
		what := "NetworkPolicy " + np.Name
		d := m.one(t, what, &np.Spec.PodSelector)
		add("NetworkPolicy", d)
		if d == nil {
			continue
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Errorf("%s: policyTypes %v, want Ingress and Egress", what, np.Spec.PolicyTypes)
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("%s: an ingress rule without ports opens every port", what)
			}
			for _, p := range rule.Ports {
				if p.Port == nil {
					t.Errorf("%s: an ingress port without a number or name", what)
					continue
				}
				checkPort(t, what+" ingress", d, *p.Port)
			}
		}
		egress := map[string]bool{}
		for _, rule := range np.Spec.Egress {
			for _, p := range rule.Ports {
				if p.Port != nil && p.Protocol != nil {
					egress[fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String())] = true
				}
			}
		}
		want := []string{"UDP/53", "TCP/53", "TCP/5432", "TCP/7233"}
		if d.Name == "onboarding-worker" {
			want = append(want, "TCP/443") // Resend and webhook endpoints
		}
		for _, w := range want {
			if !egress[w] {
				t.Errorf("%s: no egress to %s (have %v)", what, w, egress)
			}
		}
	}
	jobs := prometheusJobs(t)
	for _, pm := range m.podMonitors {
		what := "PodMonitor " + pm.Name
		d := m.one(t, what, &pm.Spec.Selector)
		add("monitor", d)
		if d == nil {
			continue
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if ep.Port == nil {
				t.Errorf("%s: endpoint without a port name", what)
				continue
			}
			checkPort(t, what, d, intstr.FromString(*ep.Port))
		}
		// The alert rules and dashboards select on the job names of prometheus.yml.
		job := d.Spec.Template.Labels[pm.Spec.JobLabel]
		if pm.Spec.JobLabel == "" || !slices.Contains(jobs, job) {
			t.Errorf("%s: jobLabel %q gives job %q, want one of prometheus.yml's jobs %v", what, pm.Spec.JobLabel, job, jobs)
		}
	}
	for _, sm := range m.svcMonitors {
		add("monitor", m.one(t, "ServiceMonitor "+sm.Name, &sm.Spec.Selector))
	}
	for _, d := range m.deployments {
		for _, kind := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "monitor"} {
			if n := count[d.Name][kind]; n != 1 {
				t.Errorf("Deployment %s has %d %s, want 1", d.Name, n, kind)
			}
		}
	}
}

// prometheusJobs are the job names of deploy/observability/prometheus.yml.
func prometheusJobs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), monitoring.Dir, monitoring.PrometheusConfig))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	return jobs
}

// TestConfigMapMatchesPorts: the listen addresses of the ConfigMap are the container ports,
// bound on all interfaces where something outside the pod connects.
func TestConfigMapMatchesPorts(t *testing.T) {
	m := loadManifests(t)
	if len(m.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(m.configMaps))
	}
	cm := m.configMaps[0].Data
	byName := map[string]*appsv1.Deployment{}
	for _, d := range m.deployments {
		byName[d.Name] = d
	}
	for _, c := range []struct{ key, deployment, port string }{
		{"HTTP_ADDR", "onboarding-api", "http"},
		{"METRICS_ADDR", "onboarding-api", "metrics"},
		{"WORKER_METRICS_ADDR", "onboarding-worker", "metrics"},
	} {
		host, port, err := net.SplitHostPort(cm[c.key])
		if err != nil {
			t.Errorf("ConfigMap %s=%q: %v", c.key, cm[c.key], err)
			continue
		}
		if host != "" && host != "0.0.0.0" {
			t.Errorf("ConfigMap %s=%q binds %s: Prometheus and the probes could not reach it", c.key, cm[c.key], host)
		}
		d := byName[c.deployment]
		if d == nil {
			t.Errorf("no Deployment %s", c.deployment)
			continue
		}
		if want := strconv.Itoa(int(containerPorts(d)[c.port])); port != want {
			t.Errorf("ConfigMap %s port %s, but %s's port %q is %s", c.key, port, c.deployment, c.port, want)
		}
	}
}

// TestContainersRunTheImageBinaries: every container runs a binary the Dockerfile installs,
// and the Jobs run the worker's subcommands for migrations and search attributes.
func TestContainersRunTheImageBinaries(t *testing.T) {
	root := repoRoot(t)
	info, err := ParseDockerfile(filepath.Join(root, Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	installed := installedBinaries(info)
	m := loadManifests(t)
	var specs []struct {
		name string
		spec corev1.PodSpec
	}
	for _, d := range m.deployments {
		specs = append(specs, struct {
			name string
			spec corev1.PodSpec
		}{"Deployment " + d.Name, d.Spec.Template.Spec})
	}
	subcommands := map[string]bool{}
	for _, j := range m.jobs {
		specs = append(specs, struct {
			name string
			spec corev1.PodSpec
		}{"Job " + j.Name, j.Spec.Template.Spec})
		for _, c := range j.Spec.Template.Spec.Containers {
			if len(c.Command) > 1 {
				subcommands[c.Command[1]] = true
			}
		}
	}
	for _, s := range specs {
		for _, c := range s.spec.Containers {
			if c.Image != "onboarding" {
				t.Errorf("%s: image %q, want onboarding (the name kustomization.yaml rewrites)", s.name, c.Image)
			}
			if len(c.Command) == 0 || !installed[c.Command[0]] {
				t.Errorf("%s: command %v does not run a binary the Dockerfile installs (%v)", s.name, c.Command, installed)
			}
		}
	}
	for _, want := range []string{"migrate", "register-search-attributes"} {
		if !subcommands[want] {
			t.Errorf("no Job runs onboarding-worker %s", want)
		}
	}
}

// installedBinaries are the paths in the final image of the binaries the Dockerfile builds.
func installedBinaries(info DockerfileInfo) map[string]bool {
	out := map[string]bool{}
	for _, src := range info.Copied {
		out[strings.TrimSuffix(info.CopyDest, "/")+"/"+filepath.Base(src)] = true
	}
	return out
}

// TestPrometheusRuleIsTheRulesFile: the PrometheusRule is generated from the rules file and
// carries exactly its groups and alerts.
func TestPrometheusRuleIsTheRulesFile(t *testing.T) {
	root := repoRoot(t)
	want, err := GeneratePrometheusRule(root)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, PrometheusRule)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the rules file's: regenerate it with\n  go test ./internal/testkit/deploycheck -run TestPrometheusRule -update", PrometheusRule)
	}

	m := loadManifests(t)
	if len(m.promRules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(m.promRules))
	}
	groups, err := RuleGroups(root)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.promRules[0].Spec.Groups, groups) {
		t.Errorf("the PrometheusRule's groups differ from %s", RulesFile)
		for i := range max(len(groups), len(m.promRules[0].Spec.Groups)) {
			if i >= len(groups) || i >= len(m.promRules[0].Spec.Groups) || !reflect.DeepEqual(groups[i], m.promRules[0].Spec.Groups[i]) {
				t.Errorf("group %d differs", i)
			}
		}
	}
	// Cross-check with the monitoring package's own reading of the rules.
	rules, err := monitoring.LoadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	var alerts, crAlerts []string
	for _, r := range rules {
		alerts = append(alerts, r.Alert)
	}
	for _, g := range m.promRules[0].Spec.Groups {
		for _, r := range g.Rules {
			crAlerts = append(crAlerts, r.Alert)
			if strings.TrimSpace(r.Expr.String()) == "" || r.Annotations["runbook_url"] == "" {
				t.Errorf("alert %s: empty expr or no runbook_url", r.Alert)
			}
		}
	}
	if !slices.Equal(alerts, crAlerts) || len(alerts) == 0 {
		t.Errorf("PrometheusRule alerts %v, rules file alerts %v", crAlerts, alerts)
	}
}
