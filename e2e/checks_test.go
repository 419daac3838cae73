package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/health"
)

// The custom resource of TestChecks: a Widget whose status only the test
// writes, as its controller would.
const (
	widgetGroup = "checks.e2e.ferry.dev"
	widgetCRD   = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.` + widgetGroup + `
spec:
  group: ` + widgetGroup + `
  scope: Namespaced
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
	widgetReady  = "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
	widgetFailed = "status.?phase.orValue('') == 'Failed'"
)

func widgetObject(name string) string {
	return fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: %s\nspec:\n  size: 1\n", widgetGroup, name)
}

// verifyJob is a Job annotated ferry.dev/verify: "true" whose one pod kwok
// runs and completes; podLabels add labels to that pod, such as kwok's
// failure stage.
func verifyJob(name, podLabels string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
  annotations: {%s: "true"}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {app: %s%s}
    spec:
      restartPolicy: Never
      containers: [{name: smoke, image: smoke:1}]
`, name, health.VerifyAnnotation, name, podLabels)
}

// TestChecks runs health checks from configuration against the kwok
// cluster: a CEL check on a custom resource, and verification Jobs.
func TestChecks(t *testing.T) {
	c := kubeClient(t)
	createWidgetCRD(t, c)
	// A client made once the CRD is served resolves its kind.
	c = kubeClient(t)
	h := config.Health{
		Timeout: time.Minute, Interval: 200 * time.Millisecond,
		Checks: []config.HealthCheck{{APIVersion: widgetGroup + "/v1", Kind: "Widget", Current: widgetReady, Failed: widgetFailed}},
	}
	opts, err := h.Options()
	if err != nil {
		t.Fatal(err)
	}
	checker := health.NewChecker(c)

	t.Run("CEL current once the status says so", func(t *testing.T) {
		ctx := t.Context()
		ns := newNamespace(t)
		objs := createObjects(t, c, ns, widgetObject("ready"), configMap("settings", "1"))
		verdicts := make(chan checkResult, 1)
		go func() {
			v, err := checker.Check(ctx, objectIDs(objs), opts)
			verdicts <- checkResult{v, err}
		}()
		// Without a status the Widget is InProgress, not an error: the
		// check keeps waiting.
		select {
		case got := <-verdicts:
			t.Fatalf("verdict before the Widget had a status: %+v, %v", got.v, got.err)
		case <-time.After(2 * time.Second):
		}
		written := time.Now()
		writeStatus(t, c, objs[0], map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}})
		got := awaitVerdict(t, verdicts)
		t.Logf("verdict: %s %q after %s", got.Outcome, got.Reason, got.Duration)
		if got.Outcome != health.Healthy {
			t.Fatalf("verdict = %s %q, want Healthy", got.Outcome, got.Reason)
		}
		if w := got.Objects[0]; w.Status != status.CurrentStatus || w.Message != "current: "+widgetReady {
			t.Errorf("Widget = %s %q, want Current by the CEL check", w.Status, w.Message)
		}
		if took := time.Since(written); took > 5*time.Second {
			t.Errorf("Healthy %s after the status was written", took)
		}
	})

	t.Run("CEL failed fails fast", func(t *testing.T) {
		ns := newNamespace(t)
		objs := createObjects(t, c, ns, widgetObject("broken"))
		writeStatus(t, c, objs[0], map[string]any{"phase": "Failed"})
		v, err := checker.Check(t.Context(), objectIDs(objs), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("verdict: %s %q after %s", v.Outcome, v.Reason, v.Duration)
		want := fmt.Sprintf("Widget %s/broken: failed: %s", ns, widgetFailed)
		if v.Outcome != health.Failed || v.Reason != want || v.Duration > 5*time.Second {
			t.Fatalf("verdict = %s %q after %s, want Failed %q at once", v.Outcome, v.Reason, v.Duration, want)
		}
	})

	// kwok's pod-complete stage runs a Job's pod to Succeeded, and the Job
	// controller of the control plane marks the Job Complete.
	t.Run("verification Job completes", func(t *testing.T) {
		ns := newNamespace(t)
		objs := createObjects(t, c, ns, verifyJob("smoke", ""), configMap("settings", "1"))
		v, err := checker.Check(t.Context(), objectIDs(objs), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("verdict: %s %q after %s", v.Outcome, v.Reason, v.Duration)
		if v.Outcome != health.Healthy {
			t.Fatalf("verdict = %s %q, want Healthy", v.Outcome, v.Reason)
		}
		if j := v.Objects[0]; j.Status != status.CurrentStatus || j.Message != "verification complete: succeeded 1" {
			t.Errorf("Job = %s %q, want a complete verification", j.Status, j.Message)
		}
	})

	// kwok's chaos stage fails the pod of this Job (exit code 1); with
	// backoffLimit 0 the Job controller fails the Job.
	t.Run("verification Job fails", func(t *testing.T) {
		ns := newNamespace(t)
		objs := createObjects(t, c, ns, verifyJob("smoke-fails", `, pod-container-running-failed.stage.kwok.x-k8s.io: "true"`), configMap("settings", "1"))
		v, err := checker.Check(t.Context(), objectIDs(objs), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("verdict: %s %q after %s", v.Outcome, v.Reason, v.Duration)
		prefix := fmt.Sprintf("Job %s/smoke-fails: verification failed: ", ns)
		if v.Outcome != health.Failed || !strings.HasPrefix(v.Reason, prefix) || !strings.Contains(v.Reason, "BackoffLimitExceeded") {
			t.Fatalf("verdict = %s %q, want Failed with %q and BackoffLimitExceeded", v.Outcome, v.Reason, prefix)
		}
		if v.Duration > 20*time.Second {
			t.Errorf("Failed after %s, want it soon after the pod failed, not at the timeout", v.Duration)
		}
	})
}

type checkResult struct {
	v   *health.Verdict
	err error
}

func awaitVerdict(t *testing.T, verdicts <-chan checkResult) *health.Verdict {
	t.Helper()
	select {
	case got := <-verdicts:
		if got.err != nil {
			t.Fatal(got.err)
		}
		return got.v
	case <-time.After(90 * time.Second):
		t.Fatal("no verdict within 90s")
		return nil
	}
}

// createWidgetCRD creates the Widget CRD and waits until it is Established; it
// is deleted when the test ends.
func createWidgetCRD(t *testing.T, c client.Client) {
	t.Helper()
	crd := objects(t, widgetCRD)[0]
	if err := c.Create(t.Context(), crd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, crd); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete CRD: %v", err)
		}
	})
	eventually(t, 30*time.Second, func() (bool, string) {
		got := crd.DeepCopy()
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(crd), got); err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, cond := range conds {
			if m, ok := cond.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("CRD conditions: %v", conds)
	})
}

// createObjects creates docs in namespace ns, in order.
func createObjects(t *testing.T, c client.Client, ns string, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	objs := objects(t, docs...)
	for _, o := range objs {
		o.SetNamespace(ns)
		if err := c.Create(t.Context(), o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	return objs
}

func objectIDs(objs []*unstructured.Unstructured) object.ObjMetadataSet {
	set := make(object.ObjMetadataSet, 0, len(objs))
	for _, o := range objs {
		set = append(set, object.UnstructuredToObjMetadata(o))
	}
	return set
}

// writeStatus writes obj's status through the status subresource, as a
// controller does.
func writeStatus(t *testing.T, c client.Client, obj *unstructured.Unstructured, st map[string]any) {
	t.Helper()
	obj.Object["status"] = st
	if err := c.Status().Update(t.Context(), obj); err != nil {
		t.Fatalf("status of %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}
