package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/apply"
	fcluster "ferry.dev/ferry/cluster"
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

// watchedApplier is an applier with watches, as ferry run makes it, whose
// requests count on the returned counter.
func watchedApplier(t *testing.T, env, ns string) (*apply.Applier, *fcluster.Counter) {
	t.Helper()
	counter := &fcluster.Counter{}
	cfg := counter.Wrap(rest.CopyConfig(cluster.Config))
	c, err := fcluster.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.DefaultOptions()
	opts.Environment, opts.DefaultNamespace = env, ns
	a := apply.New(c, opts)
	ws, err := apply.NewWatches(cfg, c.RESTMapper())
	if err != nil {
		t.Fatal(err)
	}
	ws.Start(t.Context())
	a.SetWatches(ws)
	return a, counter
}

// TestApplyCreatesNewObjectsWithOneRequest: objects the watches show
// absent cost one request each, no dry-run, and come out as git has them.
func TestApplyCreatesNewObjectsWithOneRequest(t *testing.T) {
	ns := newNamespace(t)
	a, counter := watchedApplier(t, "creates", ns)
	// The watches of a kind start with its first pass; this one makes them.
	svc := func(name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  clusterIP: None\n  selector: {app: web}\n  ports: [{port: 80}]\n"
	}
	if _, err := a.Apply(t.Context(), objects(t, configMap("first", "1"), svc("first"))); err != nil {
		t.Fatal(err)
	}
	var docs []string
	for i := range 20 {
		docs = append(docs, configMap(fmt.Sprintf("new-%02d", i), "1"))
	}
	docs = append(docs, svc("web"))
	// why a sleep: the watches take in the first pass's writes, so that
	// the pass below knows those objects converged without asking.
	time.Sleep(time.Second)
	before := counter.Load()
	cs, err := a.Apply(t.Context(), objects(t, append(docs, configMap("first", "1"), svc("first"))...))
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.Load() - before; n > 21 {
		t.Fatalf("creating 21 new objects took %d requests, want 21", n)
	}
	for name, action := range actions(cs) {
		if want := ssa.CreatedAction; name != "first" && action != want {
			t.Fatalf("%s: %s, want %s", name, action, want)
		}
	}
	cm, ok := getCM(t, kubeClient(t), ns, "new-07")
	if !ok || cm.Data["value"] != "1" || cm.Labels[apply.OwnerLabel] != "creates" {
		t.Fatalf("new-07 = %+v, want git's data and ferry's owner label", cm)
	}
}

// TestApplyUndoesTheCreatesOfAFailedPass: when a new object is refused,
// the objects the pass created are deleted again and nothing else is
// written. The undo refuses to delete what the pass did not create: an
// object ferry applied before, and one someone else made that the watches
// cannot see (no owner label), which the create found existing.
func TestApplyUndoesTheCreatesOfAFailedPass(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	c := kubeClient(t)
	a, _ := watchedApplier(t, "undo", ns)
	if _, err := a.Apply(ctx, objects(t, configMap("kept", "1"))); err != nil {
		t.Fatal(err)
	}
	theirs := &corev1.ConfigMap{ObjectMeta: metav1ObjectMeta(ns, "theirs"), Data: map[string]string{"value": "theirs"}}
	if err := c.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	_, err := a.Apply(ctx, objects(t,
		configMap("kept", "2"),
		configMap("theirs", "ferry's"),
		configMap("new-a", "1"),
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: new-svc\nspec:\n  clusterIP: None\n  selector: {app: web}\n  ports: [{port: 80}]\n",
		// A data key may not hold a space: the API server refuses it.
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  bad key: x\n",
	))
	if err == nil {
		t.Fatal("a pass with an invalid new object succeeded")
	}
	if !strings.Contains(err.Error(), "bad") || !strings.Contains(err.Error(), "deleted again") {
		t.Fatalf("error does not name the refused object and the undo: %v", err)
	}
	for _, name := range []string{"new-a", "bad"} {
		if _, ok := getCM(t, c, ns, name); ok {
			t.Fatalf("%s, created by the failed pass, is still there", name)
		}
	}
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "new-svc"}, svc); !apierrors.IsNotFound(err) {
		t.Fatalf("new-svc, created by the failed pass, is still there (err=%v)", err)
	}
	if cm, ok := getCM(t, c, ns, "kept"); !ok || cm.Data["value"] != "1" {
		t.Fatalf("kept = %+v, want it there and unwritten (value 1)", cm)
	}
	if cm, ok := getCM(t, c, ns, "theirs"); !ok || cm.Data["value"] != "theirs" {
		t.Fatalf("theirs = %+v, want it there and unwritten", cm)
	}
	// The same set without the invalid object goes through: the existing
	// objects the checked way, the new ones created.
	cs, err := a.Apply(ctx, objects(t, configMap("kept", "2"), configMap("theirs", "ferry's"), configMap("new-a", "1")))
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs); got["kept"] != ssa.ConfiguredAction || got["theirs"] != ssa.ConfiguredAction || got["new-a"] != ssa.CreatedAction {
		t.Fatalf("actions %v, want kept and theirs configured, new-a created", got)
	}
	if cm, _ := getCM(t, c, ns, "theirs"); cm.Data["value"] != "ferry's" {
		t.Fatalf("theirs = %v after a pass that applies it", cm.Data)
	}
}
