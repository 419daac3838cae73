package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
	fcluster "ferry.dev/ferry/cluster"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

const driftService = `apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: https, port: 443, targetPort: 8443}
`

// kubectl runs the sandbox's kubectl against the test cluster.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	bin, err := sandbox.Tools()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, env string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "environment" && l.GetValue() == env {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestDriftIsCorrectedFromWatches: with a poll interval of ten minutes,
// hand edits are undone from the watches within seconds, exactly as git
// says; a field only a controller owns is left alone; a drift that cannot
// be corrected shows as Drifted in state, history and metrics, and is not
// the verdict of the next commit.
func TestDriftIsCorrectedFromWatches(t *testing.T) {
	files := appFiles("v1")
	files["base/deployment.yaml"] = strings.Replace(files["base/deployment.yaml"], "  replicas: 2\n", "", 1)
	files["base/config.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  labels: {tier: web}\ndata:\n  greeting: hello\n"
	files["base/service.yaml"] = driftService
	files["base/kustomization.yaml"] = "resources:\n  - deployment.yaml\n  - config.yaml\n  - service.yaml\n"
	e := newEnv(t, files)
	e.health = "{timeout: 1m, interval: 250ms}"
	reg := prometheus.NewRegistry()
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(e.config(), "interval: 1s", "interval: 10m", 1)
	startFerryWith(t, cfg, func(o *reconciler.Options) { o.Metrics = metrics })
	first := e.head(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, time.Minute))
	ctx, c, ns := t.Context(), e.c, e.ns

	corrected := func(what string, start time.Time, cond func() (bool, string)) {
		t.Helper()
		eventually(t, 10*time.Second, cond)
		t.Logf("%s: corrected %s after the edit", what, time.Since(start).Round(time.Millisecond))
	}

	// A port list replaced with kubectl patch: git's two ports, exactly.
	start := time.Now()
	kubectl(t, "", "-n", ns, "patch", "service", "shop", "--type=json", "-p",
		`[{"op":"replace","path":"/spec/ports","value":[{"name":"http","port":8080,"targetPort":8080}]}]`)
	corrected("Service ports", start, func() (bool, string) {
		svc := &corev1.Service{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, svc); err != nil {
			return false, err.Error()
		}
		var got []string
		for _, p := range svc.Spec.Ports {
			got = append(got, fmt.Sprintf("%s:%d->%s", p.Name, p.Port, p.TargetPort.String()))
		}
		return slices.Equal(got, []string{"http:80->8080", "https:443->8443"}), fmt.Sprintf("ports %v", got)
	})

	// A label overwritten by hand.
	start = time.Now()
	kubectl(t, "", "-n", ns, "label", "configmap", "app-config", "tier=hacked", "--overwrite")
	corrected("label", start, func() (bool, string) {
		cm, _ := getCM(t, c, ns, "app-config")
		return cm != nil && cm.Labels["tier"] == "web", fmt.Sprintf("labels %v", cm.Labels)
	})

	// A ConfigMap deleted by hand.
	start = time.Now()
	kubectl(t, "", "-n", ns, "delete", "configmap", "extra")
	corrected("deleted ConfigMap", start, func() (bool, string) {
		cm, ok := getCM(t, c, ns, "extra")
		return ok && cm.Data["k"] == "v", "extra not recreated"
	})

	// An autoscaler's replica count (written through the scale
	// subresource by kube-controller-manager) is not git's: left alone.
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	if err := c.SubResource("scale").Update(ctx, dep, client.WithSubResourceBody(scale), client.FieldOwner("kube-controller-manager")); err != nil {
		t.Fatal(err)
	}
	replicas := func() (bool, string) {
		d, ok := e.deployment(t, ns)
		return ok && d.Spec.Replicas != nil && *d.Spec.Replicas == 3, "replicas not 3"
	}
	consistently(t, 3*time.Second, replicas)

	// A drift that cannot be corrected: an admission policy refuses git's
	// greeting, and a person changed it.
	policy := "vap-" + ns
	kubectl(t, fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: %[1]s}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  validations:
    - expression: "(object.metadata.name != 'app-config' && object.metadata.name != 'probe') || !has(object.data) || !('greeting' in object.data) || object.data.greeting != 'hello'"
      message: greeting hello is not allowed here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: %[1]s}
spec:
  policyName: %[1]s
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: %[2]s}
`, policy, ns), "apply", "-f", "-")
	t.Cleanup(func() {
		bin, _ := sandbox.Tools()
		for _, kind := range []string{"validatingadmissionpolicybinding", "validatingadmissionpolicy"} {
			_ = exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", cluster.Kubeconfig, "delete", "--ignore-not-found", kind, policy).Run()
		}
	})
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}, Data: map[string]string{"greeting": "x"}}
	if err := c.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		p := probe.DeepCopy()
		p.Data["greeting"] = "hello"
		err := c.Update(ctx, p, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "greeting hello is not allowed"), fmt.Sprintf("policy not enforced yet: %v", err)
	})
	failuresBefore := counterValue(t, reg, "ferry_drift_failures_total", e.name)
	kubectl(t, "", "-n", ns, "patch", "configmap", "app-config", "-p", `{"data":{"greeting":"bye"}}`)
	subject := "ConfigMap/" + ns + "/app-config"
	eventually(t, 10*time.Second, func() (bool, string) {
		st := e.state(t, e.name)
		return st.Phase == state.PhaseDrifted && strings.HasPrefix(st.Message, subject+":") && strings.Contains(st.Message, "greeting hello is not allowed"),
			fmt.Sprintf("phase %s: %s", st.Phase, st.Message)
	})
	st := e.state(t, e.name)
	if len(st.Drift) == 0 || st.Drift[0].Object != subject || st.Drift[0].Corrected {
		t.Fatalf("drift records: %+v", st.Drift)
	}
	if got := counterValue(t, reg, "ferry_drift_failures_total", e.name); got <= failuresBefore {
		t.Fatalf("ferry_drift_failures_total = %v, want more than %v", got, failuresBefore)
	}
	if got := counterValue(t, reg, "ferry_drift_corrections_total", e.name); got < 3 {
		t.Fatalf("ferry_drift_corrections_total = %v, want at least the 3 corrections above", got)
	}
	out, code := ferryCLI(t, buildFerry(t), writeConfig(t, cfg), "history", e.name)
	if code != 0 || !strings.Contains(out, "Drifted") || !strings.Contains(out, "drift ") ||
		!strings.Contains(out, subject+" not corrected: ") || !strings.Contains(out, subject+" corrected") {
		t.Fatalf("ferry history (exit %d) does not show the drift:\n%s", code, out)
	}

	// A commit that does not touch the ConfigMap: its verdict is its own.
	next := e.push(t, map[string]string{"envs/staging/kustomization.yaml": strings.Replace(files["envs/staging/kustomization.yaml"], "newTag: v1", "newTag: v2", 1)}, nil, "web v2")
	kubectl(t, "", "-n", e.stateNS, "annotate", "--overwrite", "configmap", state.ConfigMapName(e.name), "ferry.dev/requested-at="+time.Now().Format(time.RFC3339Nano))
	v := e.waitVerdict(t, e.name, next, time.Minute)
	requireHealthy(t, v)
	if tip := e.tip(t, "main"); tip != next {
		t.Fatalf("main moved to %s after a drift elsewhere: a revert of an innocent commit?", tip)
	}
	if cm, _ := getCM(t, c, ns, "app-config"); cm.Data["greeting"] != "bye" {
		t.Fatalf("greeting = %q: the refused value changed", cm.Data["greeting"])
	}
	consistently(t, time.Second, replicas)

	// The policy goes: the drift is corrected, and the phase is the
	// verdict's again.
	kubectl(t, "", "delete", "validatingadmissionpolicybinding", policy)
	kubectl(t, "", "delete", "validatingadmissionpolicy", policy)
	eventually(t, 90*time.Second, func() (bool, string) {
		cm, _ := getCM(t, c, ns, "app-config")
		st := e.state(t, e.name)
		return cm.Data["greeting"] == "hello" && st.Phase == state.PhaseHealthy, fmt.Sprintf("greeting %q, phase %s: %s", cm.Data["greeting"], st.Phase, st.Message)
	})
}

// TestNoOpReconcileMakesNoRequestPerObject: an applier with watches
// applies 300 objects; applying the same rendering again makes no request
// at all, counted by a round-tripper on its client; after one object is
// edited by hand, only that object is asked about.
func TestNoOpReconcileMakesNoRequestPerObject(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	a, counter := watchedApplier(t, "noop", ns)
	var docs []string
	for i := range 300 {
		docs = append(docs, configMap(fmt.Sprintf("cm-%03d", i), "1"))
	}
	objs := objects(t, docs...)
	if _, err := a.Apply(ctx, objs); err != nil {
		t.Fatal(err)
	}
	// apply applies objs and returns the requests it made and its changes.
	apply := func() (int64, map[string][]string) {
		before := counter.Load()
		cs, err := a.Apply(ctx, objs)
		if err != nil {
			t.Fatal(err)
		}
		return counter.Load() - before, apply.Changes(cs)
	}
	// The watch sees ferry's own writes; once it has them all, nothing is
	// left to ask about.
	var requests int64
	eventually(t, 10*time.Second, func() (bool, string) {
		n, ch := apply()
		return n == 0 && len(ch) == 0, fmt.Sprintf("%d requests, changes %v", n, ch)
	})
	// A hand edit: only that object costs requests.
	cm, _ := getCM(t, kubeClient(t), ns, "cm-007")
	cm.Data["value"] = "edited"
	if err := kubeClient(t).Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		var ch map[string][]string
		requests, ch = apply()
		return len(ch["configured"]) == 1, fmt.Sprintf("changes %v", ch)
	})
	if requests > 3 {
		t.Fatalf("correcting one edited object of 300 took %d requests, want at most 3 (get, dry-run, apply)", requests)
	}
	t.Logf("no-op apply of 300 objects: 0 requests; one edited object: %d requests", requests)
	if got := a.Stats(); got.Known == 0 {
		t.Fatalf("stats: %+v", got)
	}
}

// TestConvergedReconcileCostsFewRequests: a whole reconcile pass of an
// unchanged rendering of 300 objects, asked for through the state
// ConfigMap, makes at most 5 requests of ferry's own (counted on every
// client ferry makes), none of them per object.
func TestConvergedReconcileCostsFewRequests(t *testing.T) {
	files := appFiles("v1")
	var res []string
	for i := range 300 {
		name := fmt.Sprintf("many-%03d.yaml", i)
		files["envs/staging/"+name] = configMap(fmt.Sprintf("many-%03d", i), "1")
		res = append(res, "  - "+name)
	}
	files["envs/staging/kustomization.yaml"] = strings.Replace(files["envs/staging/kustomization.yaml"], "resources:\n  - ../../base\n  - extra.yaml\n",
		"resources:\n  - ../../base\n  - extra.yaml\n"+strings.Join(res, "\n")+"\n", 1)
	e := newEnv(t, files)
	e.health = "{timeout: 1m, interval: 250ms}"
	startFerry(t, strings.Replace(e.config(), "interval: 1s", "interval: 10m", 1))
	requireHealthy(t, e.waitVerdict(t, e.name, e.head(t), time.Minute))
	if n := len(e.state(t, e.name).Inventory); n < 300 {
		t.Fatalf("inventory has %d objects, want the 300 ConfigMaps and more", n)
	}
	// why a sleep: the controllers' first writes (the Deployment's
	// revision) reach the watch and are taken in, as between intervals.
	time.Sleep(3 * time.Second)
	pass := func() int64 {
		before := fcluster.Requests.Load()
		at := time.Now().UTC().Format(time.RFC3339Nano)
		kubectl(t, "", "-n", e.stateNS, "annotate", "--overwrite", "configmap", state.ConfigMapName(e.name), state.RequestedAt+"="+at)
		eventually(t, 30*time.Second, func() (bool, string) {
			st := e.state(t, e.name)
			return st.Handled == at, fmt.Sprintf("handled %q, want %q", st.Handled, at)
		})
		return fcluster.Requests.Load() - before
	}
	pass() // the first pass after the start may meet the controllers' writes
	n := pass()
	t.Logf("a converged reconcile of %d objects made %d requests", len(e.state(t, e.name).Inventory), n)
	if n > 5 {
		t.Fatalf("a converged reconcile made %d requests, want at most 5", n)
	}
}
