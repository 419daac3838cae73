package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/apply"
)

func kubeClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func objects(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatalf("%v\n%s", err, d)
		}
		out = append(out, u)
	}
	return out
}

func configMap(name, value string, annotations ...string) string {
	ann := ""
	if len(annotations) > 0 {
		ann = "\n  annotations:\n"
		for i := 0; i+1 < len(annotations); i += 2 {
			ann += fmt.Sprintf("    %s: %q\n", annotations[i], annotations[i+1])
		}
		ann = strings.TrimSuffix(ann, "\n")
	}
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s%s\ndata:\n  value: %q\n", name, ann, value)
}

func newApplier(t *testing.T, env, ns string) (*apply.Applier, client.Client) {
	c := kubeClient(t)
	opts := apply.DefaultOptions()
	opts.Environment, opts.DefaultNamespace = env, ns
	return apply.New(c, opts), c
}

func actions(cs *ssa.ChangeSet) map[string]ssa.Action {
	out := map[string]ssa.Action{}
	for _, e := range cs.Entries {
		out[e.ObjMetadata.Name] = e.Action
	}
	return out
}

func getCM(t *testing.T, c client.Client, ns, name string) (*corev1.ConfigMap, bool) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm, true
}

func TestApplyIsIdempotentAndCorrectsDrift(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	a, c := newApplier(t, "drift", ns)
	objs := objects(t, configMap("a", "1"), configMap("b", "2"))
	cs, err := a.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs); got["a"] != ssa.CreatedAction || got["b"] != ssa.CreatedAction {
		t.Fatalf("first apply: %v", got)
	}
	cm, _ := getCM(t, c, ns, "a")
	if cm.Labels[apply.OwnerLabel] != "drift" {
		t.Fatalf("owner label missing: %v", cm.Labels)
	}
	cs, err = a.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs); got["a"] != ssa.UnchangedAction || got["b"] != ssa.UnchangedAction {
		t.Fatalf("second apply should change nothing: %v", got)
	}
	// A person edits the object by hand (an update, as kubectl edit does).
	cm.Data["value"] = "edited"
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	cs, err = a.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs); got["a"] != ssa.ConfiguredAction {
		t.Fatalf("drifted object not corrected: %v", got)
	}
	if cm, _ := getCM(t, c, ns, "a"); cm.Data["value"] != "1" {
		t.Fatalf("value = %q, want 1", cm.Data["value"])
	}
}

func TestApplyInvalidObjectAppliesNothing(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	newNS := ns + "-extra"
	a, c := newApplier(t, "invalid", ns)
	objs := objects(t,
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+newNS+"\n",
		configMap("good", "1"),
		// replicas must be an integer: the API server's schema refuses it.
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  replicas: many\n  selector:\n    matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n    spec:\n      containers: [{name: app, image: x}]\n",
	)
	_, err := a.Apply(ctx, objs)
	if err == nil {
		t.Fatal("apply of an invalid Deployment succeeded")
	}
	if !strings.Contains(err.Error(), "bad") {
		t.Fatalf("error does not name the object: %v", err)
	}
	if _, ok := getCM(t, c, ns, "good"); ok {
		t.Fatal("a valid object of the failed set was applied")
	}
	nsObj := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: newNS}, nsObj); !apierrors.IsNotFound(err) {
		t.Fatalf("the set's new Namespace was created before the invalid object was found (err=%v)", err)
	}
}

func TestApplyImmutableFieldNeedsForce(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	a, c := newApplier(t, "immutable", ns)
	secret := func(typ string, annotations string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n" + annotations + "type: " + typ + "\nstringData:\n  k: v\n"
	}
	if _, err := a.Apply(ctx, objects(t, secret("Opaque", ""))); err != nil {
		t.Fatal(err)
	}
	// A Secret's type is immutable.
	_, err := a.Apply(ctx, objects(t, secret("ferry.dev/other", "")))
	if err == nil || !strings.Contains(err.Error(), apply.ForceAnnotation) {
		t.Fatalf("immutable change: want an error naming %s, got %v", apply.ForceAnnotation, err)
	}
	forced := secret("ferry.dev/other", "  annotations:\n    "+apply.ForceAnnotation+": enabled\n")
	if _, err := a.Apply(ctx, objects(t, forced)); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "s"}, s); err != nil {
		t.Fatal(err)
	}
	if s.Type != "ferry.dev/other" {
		t.Fatalf("type = %s, want the recreated Secret's type", s.Type)
	}
}

// TestPruneRefusesWhatIsNotOwned pins the delete path: only objects that
// still carry this environment's owner label and no opt-out annotation are
// deleted.
func TestPruneRefusesWhatIsNotOwned(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	a, c := newApplier(t, "prune", ns)
	other, _ := newApplier(t, "someone-else", ns)
	cs, err := a.Apply(ctx, objects(t, configMap("owned", "1"), configMap("keep", "1", apply.PruneAnnotation, "disabled"), configMap("relabelled", "1")))
	if err != nil {
		t.Fatal(err)
	}
	inv := apply.InventoryOf(cs)
	if _, err := other.Apply(ctx, objects(t, configMap("other-env", "1"))); err != nil {
		t.Fatal(err)
	}
	// Not created by ferry at all.
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1ObjectMeta(ns, "handmade")}); err != nil {
		t.Fatal(err)
	}
	// A person took this one over by removing ferry's label.
	rel, _ := getCM(t, c, ns, "relabelled")
	delete(rel.Labels, apply.OwnerLabel)
	if err := c.Update(ctx, rel); err != nil {
		t.Fatal(err)
	}
	stale := append(apply.Inventory{}, inv...)
	for _, name := range []string{"other-env", "handmade"} {
		stale = append(stale, apply.Entry{ID: ns + "_" + name + "__ConfigMap", Version: "v1"})
	}
	pcs, err := a.Prune(ctx, stale)
	if err != nil {
		t.Fatal(err)
	}
	got := actions(pcs)
	want := map[string]ssa.Action{"owned": ssa.DeletedAction, "keep": ssa.SkippedAction, "relabelled": ssa.SkippedAction,
		"other-env": ssa.SkippedAction, "handmade": ssa.SkippedAction}
	for name, action := range want {
		if got[name] != action {
			t.Errorf("%s: %s, want %s", name, got[name], action)
		}
	}
	for name := range want {
		_, exists := getCM(t, c, ns, name)
		if exists == (name == "owned") {
			t.Errorf("%s: exists=%v after prune", name, exists)
		}
	}
}

func metav1ObjectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}

func namespaceObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
