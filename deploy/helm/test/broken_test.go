package charttest

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// The validation the render tests rely on fails on what the API server would refuse: each
// case breaks one field of a valid rendered object and must be caught, naming the field.
func TestValidatorCatchesBrokenManifests(t *testing.T) {
	v, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]map[string]any{}
	for _, obj := range render(t, withKEDA) {
		good[kindName(obj)] = obj
	}
	deployment, scaled, monitor := good["Deployment/bd-browserd"], good["ScaledObject/bd-browserd"], good["ServiceMonitor/bd-browserd"]
	if deployment == nil || scaled == nil || monitor == nil {
		t.Fatalf("rendered %v; want the Deployment, the ScaledObject and the ServiceMonitor", good)
	}
	for k, obj := range good {
		if err := v.validate(obj); err != nil {
			t.Fatalf("the unbroken %s is not valid: %v", k, err)
		}
	}

	podSpec := func(obj map[string]any) map[string]any {
		return obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	}
	container := func(obj map[string]any) map[string]any {
		return podSpec(obj)["containers"].([]any)[0].(map[string]any)
	}
	rename := func(m map[string]any, from, to string) {
		m[to] = m[from]
		delete(m, from)
	}
	cases := []struct {
		name    string
		obj     map[string]any
		breakIt func(obj map[string]any)
		want    string // in the error
	}{
		{"misspelled pod field", deployment, func(o map[string]any) {
			rename(podSpec(o), "terminationGracePeriodSeconds", "terminationGracePeriodSecond")
		}, "terminationGracePeriodSecond"},
		{"misspelled probe field", deployment, func(o map[string]any) {
			rename(container(o)["readinessProbe"].(map[string]any), "httpGet", "httpGett")
		}, "httpGett"},
		{"misspelled env source", deployment, func(o map[string]any) {
			env := container(o)["env"].([]any)
			rename(env[0].(map[string]any), "valueFrom", "valueForm")
		}, "valueForm"},
		{"replicas not a number", deployment, func(o map[string]any) {
			o["spec"].(map[string]any)["replicas"] = "two"
		}, "replicas"},
		{"hostUsers not a boolean", deployment, func(o map[string]any) {
			podSpec(o)["hostUsers"] = "false"
		}, "hostUsers"},
		{"memory not a quantity", deployment, func(o map[string]any) {
			container(o)["resources"].(map[string]any)["limits"].(map[string]any)["memory"] = "lots"
		}, "quantities must match"},
		{"unknown kind", deployment, func(o map[string]any) {
			o["kind"] = "Deploymnet"
		}, "Deploymnet"},
		{"misspelled ScaledObject field", scaled, func(o map[string]any) {
			rename(o["spec"].(map[string]any), "minReplicaCount", "minReplicas")
		}, "minReplicas"},
		{"ScaledObject without triggers", scaled, func(o map[string]any) {
			delete(o["spec"].(map[string]any), "triggers")
		}, "triggers"},
		{"ScaledObject trigger metadata not strings", scaled, func(o map[string]any) {
			trig := o["spec"].(map[string]any)["triggers"].([]any)[0].(map[string]any)
			trig["metadata"].(map[string]any)["threshold"] = int64(12)
		}, "threshold"},
		{"misspelled ServiceMonitor field", monitor, func(o map[string]any) {
			ep := o["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)
			rename(ep, "authorization", "authorisation")
		}, "authorisation"},
		{"ScaledObject min above max (the CRD's CEL rule)", scaled, func(o map[string]any) {
			o["spec"].(map[string]any)["minReplicaCount"] = int64(30)
		}, "minReplicaCount must be less than or equal to maxReplicaCount"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := runtime.DeepCopyJSON(c.obj)
			c.breakIt(obj)
			err := v.validate(obj)
			if err == nil {
				t.Fatal("validated")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("the error does not name %q: %v", c.want, err)
			}
			t.Log(err)
		})
	}
}

// A typo in a value the chart passes through to the manifest (a probe, a security context)
// renders a manifest the validation refuses. (Enum values, such as a misspelled seccomp
// profile type, are the API server's semantic validation, which the schemas do not
// hold: those pass here.)
func TestValidatorCatchesBrokenValues(t *testing.T) {
	v, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{
		"probes.liveness.httpGett.path=/healthz",
		"securityContext.runAsUsr=10001",
		"podSecurityContext.runAsUser=browserd", // a name where a uid goes
	} {
		t.Run(set, func(t *testing.T) {
			caught := false
			for _, obj := range render(t, required, set) {
				if err := v.validate(obj); err != nil {
					caught = true
					t.Logf("%s: %v", kindName(obj), err)
				}
			}
			if !caught {
				t.Errorf("--set %s rendered only valid objects", set)
			}
		})
	}
}
