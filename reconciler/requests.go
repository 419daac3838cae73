package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/state"
)

// A reconcile request (a webhook that reached another replica, `ferry
// reconcile`, suspend, resume, promote, a promotion into an environment
// held elsewhere) is the RequestedAt annotation on the environment's state
// ConfigMap, as Flux's reconcile.fluxcd.io/requestedAt. Every replica
// watches the state ConfigMaps of ferry's namespace, narrowed by their
// label, and the one running the environment hands a new value to its loop
// at once (TestReplicas in e2e).

// requestWatch is the informer on the state ConfigMaps of one cluster.
type requestWatch struct {
	cluster   config.Cluster
	namespace string
	factory   informers.SharedInformerFactory
	informer  cache.SharedIndexInformer
}

// resourceVersion is the version of env's state ConfigMap the watch saw
// last; false before it synced or when it saw none.
func (w *requestWatch) resourceVersion(env string) (string, bool) {
	if !w.informer.HasSynced() {
		return "", false
	}
	obj, ok, err := w.informer.GetStore().GetByKey(w.namespace + "/" + state.ConfigMapName(env))
	if err != nil || !ok {
		return "", false
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return "", false
	}
	return cm.ResourceVersion, true
}

// newRequestWatches builds one watch per cluster that holds state; offer
// receives each state ConfigMap's environment, request and last handled
// request as they are listed and change.
func newRequestWatches(cfg *config.Config, offer func(env, at, handled string)) ([]*requestWatch, error) {
	seen := map[config.Cluster]bool{}
	var out []*requestWatch
	for _, env := range cfg.Environments {
		if seen[env.Cluster] {
			continue
		}
		seen[env.Cluster] = true
		rc, err := cluster.RESTConfig(env.Cluster)
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(cfg.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = state.EnvironmentLabel }))
		inf := factory.Core().V1().ConfigMaps().Informer()
		if err := inf.SetTransform(trimState); err != nil {
			return nil, err
		}
		handle := func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				if env, at := cm.Labels[state.EnvironmentLabel], cm.Annotations[state.RequestedAt]; env != "" && at != "" {
					offer(env, at, handled(cm))
				}
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    handle,
			UpdateFunc: func(_, obj any) { handle(obj) },
		}); err != nil {
			return nil, err
		}
		out = append(out, &requestWatch{cluster: env.Cluster, namespace: cfg.Namespace, factory: factory, informer: inf})
	}
	return out, nil
}

// trimState keeps of a state ConfigMap what the watch reads: its identity
// and version, the environment label, the request annotation and the last
// handled request. The state itself, with its history and inventory, is
// tens of kilobytes that the loop reads from the API server when it needs
// them.
func trimState(obj any) (any, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj, nil
	}
	out := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cm.Name, Namespace: cm.Namespace, UID: cm.UID,
		ResourceVersion: cm.ResourceVersion, Labels: map[string]string{}, Annotations: map[string]string{}}}
	if v, ok := cm.Labels[state.EnvironmentLabel]; ok {
		out.Labels[state.EnvironmentLabel] = v
	}
	if v, ok := cm.Annotations[state.RequestedAt]; ok {
		out.Annotations[state.RequestedAt] = v
	}
	if h := handled(cm); h != "" {
		data, err := json.Marshal(map[string]string{"handled": h})
		if err != nil {
			return nil, err
		}
		out.Data = map[string]string{state.DataKey: string(data)}
	}
	return out, nil
}

// handled is the last request the state in cm says was handled.
func handled(cm *corev1.ConfigMap) string {
	var st struct {
		Handled string `json:"handled"`
	}
	_ = json.Unmarshal([]byte(cm.Data[state.DataKey]), &st) // unreadable: offer it; the loop reads the state itself
	return st.Handled
}

func (w *requestWatch) start(ctx context.Context) { w.factory.Start(ctx.Done()) }

func (w *requestWatch) stop() { w.factory.Shutdown() }

// synced reports whether the watch listed the state ConfigMaps once.
func (w *requestWatch) synced() error {
	if !w.informer.HasSynced() {
		return errors.New("the watch on the state ConfigMaps has not synced yet")
	}
	return nil
}

// request hands the loop a reconcile request; a newer one replaces one
// the loop has not taken yet. It never blocks.
func (r *Reconciler) request(at string) {
	for {
		select {
		case r.requests <- at:
			return
		default:
		}
		select {
		case <-r.requests:
		default:
		}
	}
}

// wakeOther wakes peer p: poll true asks it to poll its branch (this loop
// pushed to it), false to reconcile its current revision again (this loop
// decided what p waits for). Through the Manager, p is woken wherever it
// runs.
func (r *Reconciler) wakeOther(ctx context.Context, p *Reconciler, poll bool) {
	switch {
	case r.wakePeer != nil:
		r.wakePeer(ctx, p.env.Name, poll)
	case poll:
		p.watcher.Trigger()
	default:
		p.Poke()
	}
}
