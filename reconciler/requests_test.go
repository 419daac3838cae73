package reconciler

import (
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// TestRequestsReachTheHolder: a trigger for an environment whose loop runs
// on another replica is recorded on its state ConfigMap; the replica
// running it hands each new request to its loop once, and a replica not
// running it hands it to nobody.
func TestRequestsReachTheHolder(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	store := state.NewStore(c, "ferry")
	r := New(Environment{Name: "staging"}, source.NewWatcher(nil, "main", source.WatchOptions{}), nil, nil, nil, store, slog.New(slog.DiscardHandler))
	m := &Manager{envs: map[string]*Reconciler{"staging": r}, log: slog.New(slog.DiscardHandler),
		local: map[string]*localEnv{}, handed: map[string]string{}}

	// Not running here: the trigger is a request on the ConfigMap.
	if !m.Trigger(t.Context(), "staging") {
		t.Fatal("Trigger of a configured environment held elsewhere: false")
	}
	at, err := store.Requested(t.Context(), "staging")
	if err != nil || at == "" {
		t.Fatalf("no request recorded on the state ConfigMap: %q, %v", at, err)
	}
	m.offer("staging", at, "")
	if got := pending(r); got != "" {
		t.Fatalf("a replica not running staging handed %q to its loop", got)
	}

	// Running here: handed once, newer ones replace a request not taken,
	// handled ones are not handed again.
	m.local["staging"] = &localEnv{ctx: t.Context(), plans: make(chan struct{}, 1)}
	m.offer("staging", at, "")
	m.offer("staging", at, "")
	if got := pending(r); got != at {
		t.Fatalf("handed %q, want %q", got, at)
	}
	if got := pending(r); got != "" {
		t.Fatalf("the same request handed twice: %q", got)
	}
	m.offer("staging", "2026-01-01T00:00:01.000000000Z", "")
	m.offer("staging", "2026-01-01T00:00:02.000000000Z", "")
	if got := pending(r); got != "2026-01-01T00:00:02.000000000Z" {
		t.Fatalf("handed %q, want the newest request", got)
	}
	m.offer("staging", "2026-01-01T00:00:03.000000000Z", "2026-01-01T00:00:03.000000000Z")
	if got := pending(r); got != "" {
		t.Fatalf("a handled request handed again: %q", got)
	}
	select {
	case <-m.local["staging"].plans:
	default:
		t.Error("a request did not ask for a poll of the pull requests")
	}

	// Running here: a trigger goes straight to the loop, not the ConfigMap.
	if !m.Trigger(t.Context(), "staging") {
		t.Fatal("Trigger of a local environment: false")
	}
	if again, _ := store.Requested(t.Context(), "staging"); again != at {
		t.Errorf("a local trigger wrote a request %q", again)
	}
	select {
	case <-r.poke:
	default:
		t.Error("a local trigger did not poke the loop")
	}
	if m.Trigger(t.Context(), "nowhere") {
		t.Error("Trigger of an unknown environment: true")
	}
}

// pending takes the request waiting for r's loop, if any.
func pending(r *Reconciler) string {
	select {
	case at := <-r.requests:
		return at
	default:
		return ""
	}
}

// TestTrimState: the request watch caches a state ConfigMap as its
// identity, version, environment, request and last handled request only;
// the state's history and inventory are not kept.
func TestTrimState(t *testing.T) {
	st := `{"phase":"Healthy","handled":"2026-12-06T10:00:00Z","history":[{"commit":"abc"}],"inventory":[{"id":"shop_web_apps_Deployment","v":"v1"}]}`
	in := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: state.ConfigMapName("staging"), Namespace: "ferry", ResourceVersion: "42",
		Labels:      map[string]string{state.EnvironmentLabel: "staging", "app.kubernetes.io/managed-by": "ferry"},
		Annotations: map[string]string{state.RequestedAt: "2026-12-06T10:01:00Z", "other": "x"}},
		Data: map[string]string{state.DataKey: st}}
	obj, err := trimState(in)
	if err != nil {
		t.Fatal(err)
	}
	cm := obj.(*corev1.ConfigMap)
	if cm.Name != in.Name || cm.Namespace != "ferry" || cm.ResourceVersion != "42" {
		t.Fatalf("identity lost: %+v", cm.ObjectMeta)
	}
	if len(cm.Labels) != 1 || cm.Labels[state.EnvironmentLabel] != "staging" || len(cm.Annotations) != 1 || cm.Annotations[state.RequestedAt] != "2026-12-06T10:01:00Z" {
		t.Fatalf("labels %v, annotations %v; want the environment and the request only", cm.Labels, cm.Annotations)
	}
	if handled(cm) != "2026-12-06T10:00:00Z" || strings.Contains(cm.Data[state.DataKey], "history") {
		t.Fatalf("data %v: want the handled request only", cm.Data)
	}
	// A state that never handled a request keeps no data at all.
	in.Data[state.DataKey] = `{"phase":"Healthy"}`
	obj, _ = trimState(in)
	if cm := obj.(*corev1.ConfigMap); len(cm.Data) != 0 || handled(cm) != "" {
		t.Fatalf("data %v, want none", cm.Data)
	}
}
