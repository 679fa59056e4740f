// Package charttest lints and renders the Helm chart in deploy/helm/browserd with the real
// helm CLI (helm.sh/helm/v4, pinned in this module's go.mod as a tool), and validates every
// rendered object against the Kubernetes schemas: the built-in kinds against the OpenAPI
// schema client-go embeds for server-side apply and by strict decoding into the k8s.io/api
// types, KEDA's ScaledObject and the Prometheus Operator's ServiceMonitor against their own
// CRDs (testdata) with the API server's custom resource validation. It is a module of its own so that the main module never
// depends on Kubernetes; scripts/test.sh runs it.
package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../browserd"

// helmBin is the helm binary TestMain resolved.
var helmBin string

func TestMain(m *testing.M) {
	bin, err := buildHelm()
	if err != nil {
		fmt.Fprintln(os.Stderr, "charttest:", err)
		os.Exit(1)
	}
	helmBin = bin
	os.Exit(m.Run())
}

// buildHelm returns the path of the pinned helm CLI, built by `go tool` (the module's
// tool directive) and kept in Go's build cache, so a later run reuses it.
func buildHelm() (string, error) {
	cmd := exec.Command("go", "tool", "-n", "helm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n helm: %v: %s", err, stderr.Bytes())
	}
	bin := strings.TrimSpace(string(out))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("go tool -n helm printed %q: %v", bin, err)
	}
	return bin, nil
}

// helm runs the helm CLI with args and returns its standard output; a failure carries
// the standard error. HELM_* directories point into a temporary dir, so that neither the
// user's helm configuration nor a repository cache changes what the test sees.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), nil
}

// valueArgs turns values files (in testdata) and --set pairs into helm flags.
func valueArgs(files []string, sets []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", filepath.Join("testdata", f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// render runs `helm template` for a release "bd" in namespace "browsers" and returns the
// objects it printed, each as the map it decodes to.
func render(t *testing.T, files []string, sets ...string) []map[string]any {
	t.Helper()
	args := append([]string{"template", "bd", chartDir, "--namespace", "browsers"}, valueArgs(files, sets)...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := splitManifests(out)
	if err != nil {
		t.Fatalf("helm template output: %v\n%s", err, out)
	}
	if len(objs) == 0 {
		t.Fatalf("helm template rendered nothing:\n%s", out)
	}
	return objs
}

// splitManifests decodes a multi-document YAML stream into objects, skipping empty
// documents (a template that rendered nothing).
func splitManifests(s string) ([]map[string]any, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(s)))
	var objs []map[string]any
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		// Through JSON with apimachinery's decoder, as the API server reads objects:
		// whole numbers become int64 (CEL rules and the schemas expect integers).
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%w in document:\n%s", err, doc)
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(j, &obj); err != nil {
			return nil, fmt.Errorf("%w in document:\n%s", err, doc)
		}
		if len(obj) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
}

// kindName is "Kind/name" of an object, for messages and lookups.
func kindName(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v", obj["kind"], md["name"])
}

// The values files the tests render: what an install must give (required.yaml), with
// every secret set (secrets.yaml), with KEDA and a ServiceMonitor (keda.yaml).
var (
	required = []string{"required.yaml"}
	secrets  = []string{"required.yaml", "secrets.yaml"}
	withKEDA = []string{"required.yaml", "keda.yaml"}
)

func TestLint(t *testing.T) {
	// With the chart's own values alone, too (what a chart repository's lint does).
	for _, files := range [][]string{nil, required, secrets, withKEDA} {
		t.Run(strings.Join(append([]string{"values.yaml"}, files...), "+"), func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir}, valueArgs(files, nil)...)
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint did not report success:\n%s", out)
			}
		})
	}
}

// The chart refuses to render without what a cluster needs, and with a combination that
// cannot work, with a message that says what to set. (helm lint renders in its lint mode,
// where required and fail only log, so only helm template and install refuse.)
func TestRefusals(t *testing.T) {
	cases := []struct {
		name  string
		files []string
		sets  []string
		want  string
	}{
		{"no database", nil, []string{"blobStore.url=s3://b", "blobStore.existingSecret=s3"}, "database.existingSecret is required"},
		{"no blob store", nil, []string{"database.existingSecret=pg", "blobStore.existingSecret=s3"}, "blobStore.url is required"},
		{"no S3 credentials", nil, []string{"database.existingSecret=pg", "blobStore.url=s3://b"}, "blobStore.existingSecret is required"},
		{"credentials in the S3 URL", required, []string{"blobStore.url=s3://key:secret@b/p?region=x"}, "must not hold credentials"},
		{"KEDA without a metrics token", required, []string{"keda.enabled=true"}, "keda.enabled needs metricsToken.existingSecret"},
		{"ServiceMonitor without a metrics token", required, []string{"serviceMonitor.enabled=true"}, "serviceMonitor.enabled needs metricsToken.existingSecret"},
		{"KEDA min above max", withKEDA, []string{"keda.minReplicaCount=5", "keda.maxReplicaCount=2"}, "maxReplicaCount must be at least"},
		{"drain timeout not a number", required, []string{"browserd.drainTimeoutSeconds=5m"}, "drainTimeoutSeconds"},
		{"misspelled value (values.schema.json)", required, []string{"databse.existingSecret=pg"}, "additional properties 'databse' not allowed"},
		{"public URL not a URL", required, []string{"browserd.publicURL=browsers.example.com"}, "publicURL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values := valueArgs(c.files, c.sets)
			_, err := helm(t, append([]string{"template", "bd", chartDir}, values...)...)
			if err == nil {
				t.Fatalf("helm template succeeded; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not say %q:\n%v", c.want, err)
			}
		})
	}
}
