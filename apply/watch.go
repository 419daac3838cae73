package apply

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// kept is what the watches keep of an object (trim): its name,
// namespace and resourceVersion, its owner label, and two facts computed
// from the metadata the watch delivered. Nothing else is cached: no spec,
// no status, no managed fields, no maps.
type kept struct {
	metav1.ObjectMeta // Name, Namespace and ResourceVersion only
	// fingerprint is Fingerprint of the object as delivered.
	fingerprint string
	// owner is its OwnerLabel.
	owner string
	// imperative: an imperative manager owns fields of it.
	imperative bool
}

// GetObjectKind is no kind: the watch knows it.
func (w *kept) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies w.
func (w *kept) DeepCopyObject() runtime.Object {
	c := *w
	c.ObjectMeta = *w.ObjectMeta.DeepCopy()
	return &c
}

// ImperativeManagers are the field managers of hand edits. Where ferry owns
// an object, it takes their fields back before applying git's version
// (takeover.go), so that a list item or field they set and git does not is
// removed, as git says.
var ImperativeManagers = []string{"kubectl-edit", "kubectl-patch", "kubectl-scale", "kubectl-set", "kubectl", "before-first-apply"}

// Change is a watched object that someone changed or deleted.
type Change struct {
	ID object.ObjMetadata
	// Owner is the object's OwnerLabel; empty for objects watched without
	// the owner selector (pods, for health).
	Owner string
	// Fingerprint sums the object's metadata that a write changes
	// (fingerprint); empty when Deleted.
	Fingerprint string
	Deleted     bool
	// Status is true when the fingerprint did not change: a controller
	// wrote status. Health cares; drift does not.
	Status bool
}

// Watches keeps one metadata-only watch per kind and namespace, shared by
// every environment whose requests use the same identity. Owned watches
// are narrowed by OwnerLabel; pods are watched whole per namespace, to wake
// health checks. Objects are cached trimmed (trim). A kind or namespace
// that the identity may not list is remembered as unwatchable, and its
// objects are always asked about.
type Watches struct {
	client metadata.Interface
	mapper meta.RESTMapper
	// writer makes the applier's writes (create.go).
	writer *writer

	mu       sync.Mutex
	ctx      context.Context
	watches  map[watchKey]*watch
	handlers []func(Change)
}

type watchKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	owned     bool
}

type watch struct {
	informer cache.SharedIndexInformer
	// denied is set when the identity may not list the kind here.
	denied error
}

// NewWatches returns watches that use cfg's identity and mapper's kinds.
// They start on the first Ensure after Start.
func NewWatches(cfg *rest.Config, mapper meta.RESTMapper) (*Watches, error) {
	c, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("watches: %w", err)
	}
	wr, err := newWriter(cfg, mapper)
	if err != nil {
		return nil, err
	}
	return &Watches{client: c, mapper: mapper, writer: wr, watches: map[watchKey]*watch{}}, nil
}

// Start lets Ensure start watches, which end with ctx.
func (w *Watches) Start(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx = ctx
}

// OnChange registers fn for every change any watch sees. fn must not block.
func (w *Watches) OnChange(fn func(Change)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers = append(w.handlers, fn)
}

// Ensure starts the owned watches that ids need, and waits up to wait for
// new ones to sync. Watches that could not start are not an error: their
// objects are asked about at every reconcile (Fingerprint says unknown).
func (w *Watches) Ensure(ctx context.Context, ids []object.ObjMetadata, wait time.Duration) {
	var started []cache.InformerSynced
	for _, id := range ids {
		if s := w.ensure(ctx, id.GroupKind, id.Namespace, true); s != nil {
			started = append(started, s)
		}
	}
	w.waitSynced(ctx, started, wait)
}

// EnsurePods starts the pod watches of namespaces, for health.
func (w *Watches) EnsurePods(ctx context.Context, namespaces []string, wait time.Duration) {
	var started []cache.InformerSynced
	for _, ns := range namespaces {
		if s := w.ensure(ctx, schema.GroupKind{Kind: "Pod"}, ns, false); s != nil {
			started = append(started, s)
		}
	}
	w.waitSynced(ctx, started, wait)
}

func (w *Watches) waitSynced(ctx context.Context, synced []cache.InformerSynced, wait time.Duration) {
	if len(synced) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cache.WaitForCacheSync(ctx.Done(), synced...)
}

// ensure starts the watch of gk in namespace unless it runs; it returns
// HasSynced of a watch it started.
func (w *Watches) ensure(ctx context.Context, gk schema.GroupKind, namespace string, owned bool) cache.InformerSynced {
	w.mu.Lock()
	base := w.ctx
	w.mu.Unlock()
	if base == nil {
		return nil
	}
	mapping, err := w.mapper.RESTMapping(gk)
	if err != nil {
		return nil // a kind not served yet: asked about until it is
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		namespace = ""
	}
	key := watchKey{gvr: mapping.Resource, namespace: namespace, owned: owned}
	w.mu.Lock()
	if _, ok := w.watches[key]; ok {
		w.mu.Unlock()
		return nil
	}
	wt := &watch{}
	w.watches[key] = wt
	w.mu.Unlock()

	tweak := func(o *metav1.ListOptions) {}
	if owned {
		tweak = func(o *metav1.ListOptions) { o.LabelSelector = OwnerLabel }
	}
	// One small list first: a watch the identity may not make would only
	// retry forever (ferry-env-* may not list Namespaces).
	probe := metav1.ListOptions{Limit: 1}
	tweak(&probe)
	if _, err := w.client.Resource(mapping.Resource).Namespace(namespace).List(ctx, probe); apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		w.mu.Lock()
		wt.denied = err
		w.mu.Unlock()
		return nil
	}
	inf := metadatainformer.NewFilteredMetadataInformer(w.client, mapping.Resource, namespace, 0, cache.Indexers{}, tweak).Informer()
	_ = inf.SetTransform(trim)
	gkKind := mapping.GroupVersionKind.GroupKind()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if m := asMeta(obj); m != nil && !initial {
				c := change(gkKind, m, false)
				c.Status = true // new pods matter to health; a new object is no drift
				w.emit(c)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, n := asMeta(oldObj), asMeta(newObj)
			if o == nil || n == nil || o.GetResourceVersion() == n.GetResourceVersion() {
				return // a relist that found nothing new
			}
			c := change(gkKind, n, false)
			c.Status = keptOf(oldObj).fingerprint == c.Fingerprint
			w.emit(c)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m := asMeta(obj); m != nil {
				w.emit(change(gkKind, m, true))
			}
		},
	})
	w.mu.Lock()
	wt.informer = inf
	w.mu.Unlock()
	go inf.RunWithContext(base)
	return inf.HasSynced
}

func (w *Watches) emit(c Change) {
	w.mu.Lock()
	hs := slices.Clone(w.handlers)
	w.mu.Unlock()
	for _, h := range hs {
		h(c)
	}
}

// Seen is what the owned watch of an object knows of it.
type Seen struct {
	// Known is false when no synced watch covers the object: only a
	// request can tell.
	Known bool
	// Exists is false when the watch has no such object.
	Exists      bool
	Fingerprint string
	// Imperative is true when an imperative manager owns fields of it.
	Imperative bool
}

// Seen returns what the watches know of id now.
func (w *Watches) Seen(id object.ObjMetadata) Seen {
	if w == nil {
		return Seen{}
	}
	mapping, err := w.mapper.RESTMapping(id.GroupKind)
	if err != nil {
		return Seen{}
	}
	ns := id.Namespace
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		ns = ""
	}
	w.mu.Lock()
	wt, ok := w.watches[watchKey{gvr: mapping.Resource, namespace: ns, owned: true}]
	var inf cache.SharedIndexInformer
	if ok {
		inf = wt.informer
	}
	w.mu.Unlock()
	if inf == nil || !inf.HasSynced() {
		return Seen{}
	}
	key := id.Name
	if ns != "" {
		key = ns + "/" + id.Name
	}
	obj, exists, err := inf.GetStore().GetByKey(key)
	if err != nil {
		return Seen{}
	}
	if !exists {
		return Seen{Known: true}
	}
	m := asMeta(obj)
	if m == nil {
		return Seen{}
	}
	k := keptOf(obj)
	return Seen{Known: true, Exists: true, Fingerprint: k.fingerprint, Imperative: k.imperative}
}

// Count returns how many watches run, and how many kinds or namespaces
// could not be watched.
func (w *Watches) Count() (running, denied int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.watches {
		switch {
		case wt.denied != nil:
			denied++
		case wt.informer != nil:
			running++
		}
	}
	return running, denied
}

func change(gk schema.GroupKind, m metav1.Object, deleted bool) Change {
	k := keptOf(m)
	c := Change{ID: object.ObjMetadata{GroupKind: gk, Namespace: m.GetNamespace(), Name: m.GetName()},
		Owner: k.owner, Deleted: deleted}
	if !deleted {
		c.Fingerprint = k.fingerprint
	}
	return c
}

// keptOf is what trim kept of a cached object; for an object cached whole
// (not trimmed), its owner label only.
func keptOf(obj any) *kept {
	if w, ok := obj.(*kept); ok {
		return w
	}
	if m := asMeta(obj); m != nil {
		return &kept{owner: m.GetLabels()[OwnerLabel]}
	}
	return &kept{}
}

func asMeta(obj any) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m
}

// trim keeps of a watched object only what Seen and Change read, so that
// thousands of objects cost kilobytes (TestTrimKeepsOnlyIdentity).
func trim(obj any) (any, error) {
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &kept{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, ResourceVersion: p.ResourceVersion},
		fingerprint: Fingerprint(p), owner: p.Labels[OwnerLabel], imperative: imperative(p.GetManagedFields())}, nil
}

// Fingerprint sums what a write other than a status update changes in an
// object's metadata: generation, labels, annotations, deletion, and every
// managed-fields entry except those of the status subresource (with the
// time each manager last changed the object). A controller writing status
// leaves it alone; a hand edit, a scale or ferry's own apply changes it.
// It is 16 bytes of a SHA-256, to compare, not to show.
func Fingerprint(m metav1.Object) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%t\x00", m.GetGeneration(), m.GetDeletionTimestamp() != nil)
	for _, kv := range []map[string]string{m.GetLabels(), m.GetAnnotations()} {
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%s\x00", k, kv[k])
		}
		h.Write([]byte{1})
	}
	for _, f := range m.GetManagedFields() {
		if f.Subresource == "status" {
			continue
		}
		t := ""
		if f.Time != nil {
			t = f.Time.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", f.Manager, f.Operation, f.APIVersion, f.Subresource, t)
		if f.FieldsV1 != nil {
			h.Write(f.FieldsV1.Raw)
		}
	}
	return string(h.Sum(nil)[:16])
}

// imperative reports whether an imperative manager owns fields of the
// object itself (not a subresource).
func imperative(fields []metav1.ManagedFieldsEntry) bool {
	for _, f := range fields {
		if f.Subresource == "" && slices.Contains(ImperativeManagers, f.Manager) {
			return true
		}
	}
	return false
}
