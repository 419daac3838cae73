// Package apply converges a cluster onto a set of rendered objects with
// server-side apply: staged (definitions first), dry-run first, only drifted
// objects written, under one field manager and owner label. It returns one
// change set that feeds the inventory, health checks, reports and logs.
package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"ferry.dev/ferry/internal/crd"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/defaults"
)

// Labels and annotations ferry reads or writes on applied objects.
const (
	// OwnerLabel names the environment that applied an object.
	OwnerLabel = "ferry.dev/environment"
	// PruneAnnotation set to "disabled" on an object in git keeps the object
	// when it later leaves the rendering; set by hand on the live object
	// only, it is ignored.
	PruneAnnotation = "ferry.dev/prune"
	// ForceAnnotation set to "enabled" on an object in git lets ferry delete
	// and recreate it when its change touches an immutable field.
	ForceAnnotation = "ferry.dev/force"
	// ReconcileAnnotation set to "disabled" on an object in git makes ferry
	// leave its live copy alone; set on the live object only, it is ignored.
	ReconcileAnnotation = "ferry.dev/reconcile"
	// FieldManager is the server-side apply field manager.
	FieldManager = "ferry"
)

// Options configures an Applier.
type Options struct {
	// Environment is written into OwnerLabel on every object.
	Environment string
	// DefaultNamespace is set on namespaced objects that have none.
	DefaultNamespace string
	// Force recreates every object whose change hits an immutable field; when
	// false only objects annotated ForceAnnotation=enabled are recreated.
	Force bool
	// Concurrency bounds parallel requests (default 8).
	Concurrency int
	// WaitTimeout bounds the wait for definitions (CRDs, Namespaces) to be ready.
	WaitTimeout time.Duration
}

// DefaultOptions returns concurrency 8 and a one minute definition wait.
func DefaultOptions() Options {
	return Options{Concurrency: 8, WaitTimeout: time.Minute}
}

// Applier applies object sets for one environment.
type Applier struct {
	client client.Client
	rm     *ssa.ResourceManager
	opts   Options
	// watches, when set, tell which objects someone else touched (known.go);
	// writer then makes the writes (create.go).
	watches *Watches
	writer  *writer
	// passCreated are the objects the running pass created (under mu).
	passCreated []*created
	// mu makes passes (Apply, Correct) one at a time.
	mu sync.Mutex
	// knownMu guards known and desired.
	knownMu sync.Mutex
	// known is what each converged object was left as, by ID.
	known map[string]known
	// desired are the objects of the last pass that went through, by ID.
	desired map[string]applied
	stats   stats
}

// New returns an Applier that talks to the cluster through c.
func New(c client.Client, opts Options) *Applier {
	d := DefaultOptions()
	defaults.Positive(&opts.Concurrency, d.Concurrency)
	defaults.Positive(&opts.WaitTimeout, d.WaitTimeout)
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: "ferry.dev"})
	rm.SetConcurrency(opts.Concurrency)
	return &Applier{client: c, rm: rm, opts: opts, known: map[string]known{}}
}

// OwnerLabels are the labels ferry puts on every object of the environment.
func (a *Applier) OwnerLabels() map[string]string {
	return map[string]string{OwnerLabel: a.opts.Environment}
}

// applyOptions are ssa's options for desired: no selectors, which would
// also match the live object (optout.go).
func (a *Applier) applyOptions(desired *unstructured.Unstructured) ssa.ApplyOptions {
	o := ssa.DefaultApplyOptions()
	o.Force = a.forced(desired)
	o.WaitTimeout = a.opts.WaitTimeout
	return o
}

// diffOptions are ssa's dry-run options for desired, without selectors.
func (a *Applier) diffOptions(desired *unstructured.Unstructured) ssa.DiffOptions {
	return ssa.DiffOptions{Force: a.forced(desired)}
}

// Prepare returns objs with owner labels and default namespaces set, in
// the form they are applied and diffed. Each is a new object with a copy of
// the metadata; everything else (the spec, say) is shared with objs, and
// ferry changes neither: a thousand objects are not copied whole for the
// labels of each pass.
func (a *Applier) Prepare(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	err := a.eachPlaced(objs, func(o *unstructured.Unstructured, ns string) {
		o = withOwnMetadata(o)
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[OwnerLabel] = a.opts.Environment
		o.SetLabels(labels)
		o.SetNamespace(ns)
		out = append(out, o)
	})
	return out, err
}

// eachPlaced calls fn with each object of objs and its namespace once
// prepared (namespaceOf), and returns the errors of the objects it could
// not place.
func (a *Applier) eachPlaced(objs []*unstructured.Unstructured, fn func(o *unstructured.Unstructured, ns string)) error {
	var errs []error
	for _, o := range objs {
		ns, err := a.namespaceOf(o, objs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fn(o, ns)
	}
	return errors.Join(errs...)
}

// withOwnMetadata is a new object whose metadata is a copy of o's and
// whose other fields are o's.
func withOwnMetadata(o *unstructured.Unstructured) *unstructured.Unstructured {
	obj := make(map[string]any, len(o.Object))
	for k, v := range o.Object {
		obj[k] = v
	}
	if md, ok := o.Object["metadata"]; ok {
		obj["metadata"] = runtime.DeepCopyJSONValue(md)
	}
	return &unstructured.Unstructured{Object: obj}
}

// Inventory is the inventory Apply would record for objs: their IDs as
// Prepare leaves them, without copying them.
func (a *Applier) Inventory(objs []*unstructured.Unstructured) (Inventory, error) {
	cs := ssa.NewChangeSet()
	err := a.eachPlaced(objs, func(o *unstructured.Unstructured, ns string) {
		id := object.UnstructuredToObjMetadata(o)
		id.Namespace = ns
		cs.Add(ssa.ChangeSetEntry{ObjMetadata: id, GroupVersion: o.GroupVersionKind().Version, Action: ssa.UnknownAction})
	})
	if err != nil {
		return nil, err
	}
	return InventoryOf(cs), nil
}

// namespaceOf is o's namespace once prepared: its own, or the default
// namespace for a namespaced object without one.
func (a *Applier) namespaceOf(o *unstructured.Unstructured, set []*unstructured.Unstructured) (string, error) {
	if ns := o.GetNamespace(); ns != "" {
		return ns, nil
	}
	namespaced, err := a.isNamespaced(o, set)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", ssautils.FmtUnstructured(o), err)
	case !namespaced:
		return "", nil
	case a.opts.DefaultNamespace == "":
		return "", fmt.Errorf("%s: namespaced object without a namespace, and the environment sets no default namespace", ssautils.FmtUnstructured(o))
	}
	return a.opts.DefaultNamespace, nil
}

// isNamespaced asks the API server's discovery, or, for a kind whose CRD is
// in the same set and not installed yet, the CRD's scope.
func (a *Applier) isNamespaced(o *unstructured.Unstructured, set []*unstructured.Unstructured) (bool, error) {
	namespaced, err := a.client.IsObjectNamespaced(o)
	if err == nil {
		return namespaced, nil
	}
	gk := o.GroupVersionKind().GroupKind()
	if namespaced, found := crd.Namespaced(gk, set); found {
		return namespaced, nil
	}
	return false, fmt.Errorf("unknown kind %s: %w", gk, err)
}

// Apply converges the cluster onto objs in stages: definitions
// (Namespaces, CRDs, cluster roles, classes) first, then everything else.
// Every object is dry-run before anything is written, so an invalid object
// stops the whole set; only objects whose Namespace or CRD is new in the
// same set are dry-run after their definition is written, because they
// cannot be checked before. Only drifted objects are written. The change
// set lists every object with its action.
//
// Objects the watches show as ferry left them, with git's version
// unchanged, are known converged and cost no request (known.go). An object
// git did not change that fails because someone else changed it is drift,
// not the revision's fault: everything else is applied, and the error is a
// *DriftError naming it.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) (*ssa.ChangeSet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.passCreated = nil
	prepared, err := a.Prepare(objs)
	if err != nil {
		return nil, err
	}
	if a.watches != nil {
		ids := make([]object.ObjMetadata, 0, len(prepared))
		for _, o := range prepared {
			ids = append(ids, object.UnstructuredToObjMetadata(o))
		}
		a.watches.Ensure(ctx, ids, watchSync)
	}
	var defs, rest []*unstructured.Unstructured
	for _, o := range prepared {
		if ssautils.IsClusterDefinition(o) || ssautils.IsClassDefinition(o) {
			defs = append(defs, o)
		} else {
			rest = append(rest, o)
		}
	}
	defPlan := a.diffAll(ctx, defs, true)
	ready, deferred := dependsOnNew(rest, defPlan)
	restPlan := a.diffAll(ctx, ready, true)
	if err := errors.Join(append(defPlan.errs, restPlan.errs...)...); err != nil {
		return nil, err
	}
	// New objects first: one that fails undoes the others before anything
	// else is written (create.go).
	if err := a.createAll(ctx, restPlan); err != nil {
		return nil, err
	}
	cs := ssa.NewChangeSet()
	if err := a.writeAll(ctx, defPlan); err != nil {
		return nil, err
	}
	cs.Append(defPlan.entries)
	if defPlan.writes() > 0 {
		if err := a.rm.WaitForSetWithContext(ctx, defPlan.set(), ssa.WaitOptions{Interval: time.Second, Timeout: a.opts.WaitTimeout}); err != nil {
			return cs, fmt.Errorf("waiting for definitions: %w", err)
		}
	}
	deferredPlan := a.diffAll(ctx, deferred, true)
	if err := errors.Join(deferredPlan.errs...); err != nil {
		return cs, err
	}
	restPlan.add(deferredPlan)
	if err := a.writeAll(ctx, restPlan); err != nil {
		return cs, err
	}
	cs.Append(restPlan.entries)
	if err := a.setDesired(prepared); err != nil {
		return cs, err
	}
	defPlan.add(restPlan)
	if len(defPlan.drift) > 0 {
		return cs, &DriftError{Objects: defPlan.failed, Errs: defPlan.drift}
	}
	return cs, nil
}

// watchSync bounds the wait for a new watch's first list.
const watchSync = 10 * time.Second

// plan is the dry-run result of a set of objects: the objects to apply
// with their entries, the errors that fail the set, and drift (objects
// left out, named in failed).
type plan struct {
	objs    []*unstructured.Unstructured
	entries []ssa.ChangeSetEntry
	// unchecked objects are created without a dry-run (create.go);
	// written ones have been applied already.
	unchecked, written []bool
	errs               []error
	drift              []error
	failed             []string
}

func (p *plan) add(q *plan) {
	p.objs = append(p.objs, q.objs...)
	p.entries = append(p.entries, q.entries...)
	p.unchecked = append(p.unchecked, q.unchecked...)
	p.written = append(p.written, q.written...)
	p.errs = append(p.errs, q.errs...)
	p.drift = append(p.drift, q.drift...)
	p.failed = append(p.failed, q.failed...)
}

func drifted(e ssa.ChangeSetEntry) bool {
	return e.Action == ssa.CreatedAction || e.Action == ssa.ConfiguredAction
}

// remove takes the objects at the indexes of drop out of p.
func (p *plan) remove(drop map[int]bool) {
	keep := func(i int) bool { return !drop[i] }
	n := 0
	for i := range p.objs {
		if keep(i) {
			p.objs[n], p.entries[n], p.unchecked[n], p.written[n] = p.objs[i], p.entries[i], p.unchecked[i], p.written[i]
			n++
		}
	}
	p.objs, p.entries, p.unchecked, p.written = p.objs[:n], p.entries[:n], p.unchecked[:n], p.written[:n]
}

func (p *plan) writes() int {
	n := 0
	for _, e := range p.entries {
		if drifted(e) {
			n++
		}
	}
	return n
}

func (p *plan) set() object.ObjMetadataSet {
	set := object.ObjMetadataSet{}
	for _, e := range p.entries {
		set = append(set, e.ObjMetadata)
	}
	return set
}

// diffAll dry-runs the objects of objs not known converged, in parallel;
// with create, objects the watches show absent are planned as unchecked
// creates instead (create.go), and without, they are read all the same.
// An object whose dry-run fails is left out of the plan: as drift when
// foreign says so, otherwise as an error that fails the set.
func (a *Applier) diffAll(ctx context.Context, objs []*unstructured.Unstructured, create bool) *plan {
	entries := make([]ssa.ChangeSetEntry, len(objs))
	unchecked := make([]bool, len(objs))
	errs := make([]error, len(objs))
	var g errgroup.Group
	g.SetLimit(a.opts.Concurrency)
	for i, o := range objs {
		if disabled(o) {
			entries[i] = skipped(o)
			continue
		}
		if e, ok := a.converged(o); ok {
			a.stats.known.Add(1)
			entries[i] = e
			continue
		}
		if create && a.unchecked(o) {
			entries[i], unchecked[i] = entryOf(o, ssa.CreatedAction), true
			continue
		}
		g.Go(func() error {
			entries[i], errs[i] = a.diffOne(ctx, o.DeepCopy(), create)
			return nil
		})
	}
	_ = g.Wait() // errors are collected per object
	p := &plan{}
	for i, o := range objs {
		switch {
		case errs[i] == nil:
			p.objs, p.entries = append(p.objs, o), append(p.entries, entries[i])
			p.unchecked, p.written = append(p.unchecked, unchecked[i]), append(p.written, false)
		case a.foreign(o):
			p.drift = append(p.drift, explain(errs[i]))
			p.failed = append(p.failed, ssautils.FmtUnstructured(o))
		default:
			p.errs = append(p.errs, explain(errs[i]))
		}
	}
	return p
}

// writeAll applies the drifted objects of p in parallel, the unchecked
// ones first (createAll). An object whose
// change hits an immutable field, and that may be recreated, goes through
// ssa's single-object apply, which deletes and recreates it.
func (a *Applier) writeAll(ctx context.Context, p *plan) error {
	if err := a.createAll(ctx, p); err != nil {
		return err
	}
	errs := make([]error, len(p.objs))
	var g errgroup.Group
	g.SetLimit(a.opts.Concurrency)
	for i, o := range p.objs {
		if !drifted(p.entries[i]) || p.written[i] {
			continue
		}
		g.Go(func() error {
			err := a.write(ctx, o)
			if err != nil && ssaerrors.IsImmutableError(err) {
				_, err = a.rm.Apply(ctx, o.DeepCopy(), a.applyOptions(o))
			}
			if err != nil {
				errs[i] = explain(fmt.Errorf("%s apply: %w", ssautils.FmtUnstructured(o), err))
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// write applies o, forced, and remembers the live object it left.
func (a *Applier) write(ctx context.Context, o *unstructured.Unstructured) error {
	var live metav1.Object
	var err error
	if a.writer != nil {
		live, _, err = a.writer.apply(ctx, o, false)
	} else {
		written := o.DeepCopy()
		err = a.client.Patch(ctx, written, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
		live = written
	}
	if err != nil {
		a.forget(o)
		return err
	}
	a.remember(o, live)
	return nil
}

// dependsOnNew splits objs into those that can be dry-run now and those
// whose Namespace or CRD the definition plan creates.
func dependsOnNew(objs []*unstructured.Unstructured, defs *plan) (ready, deferred []*unstructured.Unstructured) {
	newNamespaces := map[string]bool{}
	newKinds := map[schema.GroupKind]bool{}
	for i, d := range defs.objs {
		if defs.entries[i].Action != ssa.CreatedAction {
			continue
		}
		switch {
		case ssautils.IsNamespace(d):
			newNamespaces[d.GetName()] = true
		case ssautils.IsCRD(d):
			group, _, _ := unstructured.NestedString(d.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(d.Object, "spec", "names", "kind")
			newKinds[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	for _, o := range objs {
		if newNamespaces[o.GetNamespace()] || newKinds[o.GroupVersionKind().GroupKind()] {
			deferred = append(deferred, o)
		} else {
			ready = append(ready, o)
		}
	}
	return ready, deferred
}

// explain adds the fix to errors a person can act on.
func explain(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "field is immutable") || strings.Contains(msg, "is immutable"):
		return fmt.Errorf("%w (annotate the object with %s: enabled to let ferry delete and recreate it)", err, ForceAnnotation)
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w (ferry's ServiceAccount lacks permission for this object)", err)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%w (install the CRD for this kind, in this environment or before it)", err)
	}
	return err
}
