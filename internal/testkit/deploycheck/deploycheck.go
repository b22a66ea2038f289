// Package deploycheck reads the deploy files of deploy/ offline: the Kubernetes manifests of
// deploy/k8s decoded strictly into their API types (k8s.io/api, and the Prometheus Operator's
// monitoring.coreos.com/v1 types), the PrometheusRule generated from the shipped alert rules,
// and the Dockerfile's build lines. Its tests (run by `make test`) hold them against each other,
// against the compose files and the Helm values, and against the code.
package deploycheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// Paths relative to the repository root.
const (
	K8sDir            = "deploy/k8s"
	Kustomization     = "deploy/k8s/kustomization.yaml"
	PrometheusRule    = "deploy/k8s/prometheusrule.yaml"
	RulesFile         = "deploy/observability/rules/onboarding.rules.yml"
	Dockerfile        = "deploy/Dockerfile"
	ComposeFile       = "deploy/compose.yaml"
	ComposeOverlay    = "deploy/observability/compose.yaml"
	ComposeProduction = "deploy/compose.production.yaml"
	TemporalDynConfig = "deploy/temporal/dynamicconfig.yaml"
	HelmValues        = "deploy/helm/temporal-values.yaml"
)

// Scheme knows every kind the manifests may hold; a kind outside it fails the decode.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictDecoder is apimachinery's YAML/JSON deserializer in strict mode: an unknown or
// duplicated field, a field in the wrong case, or an apiVersion/kind outside Scheme is an error.
var strictDecoder = serializer.NewCodecFactory(Scheme, serializer.EnableStrict).UniversalDeserializer()

// Object is one decoded manifest document.
type Object struct {
	File string // relative to the repository root
	Doc  int    // 0-based index of the document in File
	Obj  runtime.Object
}

// DecodeFile decodes every document of a manifest file strictly.
func DecodeFile(root, rel string) ([]Object, error) {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", rel, i, err)
		}
		if isEmptyYAML(doc) {
			continue
		}
		obj, _, err := strictDecoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", rel, i, err)
		}
		objs = append(objs, Object{File: rel, Doc: i, Obj: obj})
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no documents", rel)
	}
	return objs, nil
}

func isEmptyYAML(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && l != "---" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// KustomizationFile is the subset of kustomize's Kustomization that deploy/k8s uses, decoded
// strictly so a misspelt key fails (sigs.k8s.io/kustomize/api would bring all of kustomize).
type KustomizationFile struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
		IncludeTemplates bool              `yaml:"includeTemplates"`
	} `yaml:"labels"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// LoadKustomization reads deploy/k8s/kustomization.yaml strictly.
func LoadKustomization(root string) (KustomizationFile, error) {
	var k KustomizationFile
	err := DecodeYAMLStrict(filepath.Join(root, Kustomization), &k)
	return k, err
}

// DecodeYAMLStrict decodes a one-document YAML file into v, refusing unknown keys.
func DecodeYAMLStrict(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// LoadManifests decodes every resource the kustomization lists.
func LoadManifests(root string) ([]Object, error) {
	k, err := LoadKustomization(root)
	if err != nil {
		return nil, err
	}
	var all []Object
	for _, res := range k.Resources {
		objs, err := DecodeFile(root, filepath.ToSlash(filepath.Join(K8sDir, res)))
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// RuleGroups reads the shipped rules file into the Prometheus Operator's rule types, strictly,
// so it compares field by field with the PrometheusRule's spec.
func RuleGroups(root string) ([]monitoringv1.RuleGroup, error) {
	data, err := os.ReadFile(filepath.Join(root, RulesFile))
	if err != nil {
		return nil, err
	}
	// Wrapped as a PrometheusRule, the file goes through the same strict decoder.
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, err
	}
	doc, err := prometheusRuleNode(&node)
	if err != nil {
		return nil, err
	}
	out, err := encodeYAML(doc)
	if err != nil {
		return nil, err
	}
	obj, _, err := strictDecoder.Decode(out, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s as a PrometheusRule: %w", RulesFile, err)
	}
	return obj.(*monitoringv1.PrometheusRule).Spec.Groups, nil
}

// PrometheusRuleHeader heads the generated deploy/k8s/prometheusrule.yaml.
const PrometheusRuleHeader = `# GENERATED from deploy/observability/rules/onboarding.rules.yml: do not edit. Regenerate with
#   go test ./internal/testkit/deploycheck -run TestPrometheusRule -update
# The alerts of the rules file (comments included) as a Prometheus Operator PrometheusRule.
# kube-prometheus-stack only loads rules labelled for its release (ruleSelector, e.g.
# release: <release name>): add that label in an overlay.
`

// GeneratePrometheusRule renders deploy/k8s/prometheusrule.yaml from the rules file: the file's
// own YAML tree (comments and quoting kept) under spec.
func GeneratePrometheusRule(root string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(root, RulesFile))
	if err != nil {
		return nil, err
	}
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, fmt.Errorf("%s: %w", RulesFile, err)
	}
	doc, err := prometheusRuleNode(&node)
	if err != nil {
		return nil, err
	}
	out, err := encodeYAML(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte(PrometheusRuleHeader), out...), nil
}

func prometheusRuleNode(rules *yaml.Node) (*yaml.Node, error) {
	if rules.Kind != yaml.DocumentNode || len(rules.Content) != 1 || rules.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", RulesFile)
	}
	spec := rules.Content[0]
	// The rules file's head comment (about the file) is replaced by the generated header.
	rules.HeadComment = ""
	if len(spec.Content) > 0 {
		spec.Content[0].HeadComment = ""
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	mapping := func(kv ...*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: kv}
	}
	root := mapping(
		str("apiVersion"), str("monitoring.coreos.com/v1"),
		str("kind"), str("PrometheusRule"),
		str("metadata"), mapping(
			str("name"), str("onboarding"),
			str("labels"), mapping(
				str("app.kubernetes.io/name"), str("onboarding"),
				str("app.kubernetes.io/component"), str("alerts"),
			),
		),
		str("spec"), spec,
	)
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}, nil
}

func encodeYAML(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
