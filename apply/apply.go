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
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and annotations ferry reads or writes on applied objects.
const (
	// OwnerLabel names the environment that applied an object.
	OwnerLabel = "ferry.dev/environment"
	// PruneAnnotation set to "disabled" keeps an object when it leaves the rendering.
	PruneAnnotation = "ferry.dev/prune"
	// ForceAnnotation set to "enabled" lets ferry delete and recreate an
	// object whose change touches an immutable field.
	ForceAnnotation = "ferry.dev/force"
	// ReconcileAnnotation set to "disabled" makes ferry leave a live object alone.
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
}

// New returns an Applier that talks to the cluster through c.
func New(c client.Client, opts Options) *Applier {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultOptions().Concurrency
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = DefaultOptions().WaitTimeout
	}
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: "ferry.dev"})
	rm.SetConcurrency(opts.Concurrency)
	return &Applier{client: c, rm: rm, opts: opts}
}

// OwnerLabels are the labels ferry puts on every object of the environment.
func (a *Applier) OwnerLabels() map[string]string {
	return map[string]string{OwnerLabel: a.opts.Environment}
}

func (a *Applier) applyOptions() ssa.ApplyOptions {
	o := ssa.DefaultApplyOptions()
	o.Force = a.opts.Force
	o.ForceSelector = map[string]string{ForceAnnotation: "enabled"}
	o.ExclusionSelector = map[string]string{ReconcileAnnotation: "disabled"}
	o.WaitTimeout = a.opts.WaitTimeout
	return o
}

// Prepare returns copies of objs with owner labels and default namespaces
// set, in the form they are applied and diffed.
func (a *Applier) Prepare(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	var errs []error
	for _, o := range objs {
		o = o.DeepCopy()
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[OwnerLabel] = a.opts.Environment
		o.SetLabels(labels)
		if o.GetNamespace() == "" {
			namespaced, err := a.isNamespaced(o, objs)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ssautils.FmtUnstructured(o), err))
				continue
			}
			if namespaced {
				if a.opts.DefaultNamespace == "" {
					errs = append(errs, fmt.Errorf("%s: namespaced object without a namespace, and the environment sets no default namespace", ssautils.FmtUnstructured(o)))
					continue
				}
				o.SetNamespace(a.opts.DefaultNamespace)
			}
		}
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}

// isNamespaced asks the API server's discovery, or, for a kind whose CRD is
// in the same set and not installed yet, the CRD's scope.
func (a *Applier) isNamespaced(o *unstructured.Unstructured, set []*unstructured.Unstructured) (bool, error) {
	namespaced, err := a.client.IsObjectNamespaced(o)
	if err == nil {
		return namespaced, nil
	}
	gk := o.GroupVersionKind().GroupKind()
	for _, crd := range set {
		if !ssautils.IsCRD(crd) {
			continue
		}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		if group == gk.Group && kind == gk.Kind {
			scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
			return scope == "Namespaced", nil
		}
	}
	return false, fmt.Errorf("unknown kind %s: %w", gk, err)
}

// Apply converges the cluster onto objs. Every object is validated by a
// server-side dry-run before anything is written: when one is invalid,
// nothing of the set is applied. The returned change set lists every
// object with its action.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) (*ssa.ChangeSet, error) {
	prepared, err := a.Prepare(objs)
	if err != nil {
		return nil, err
	}
	if err := a.validate(ctx, prepared); err != nil {
		return nil, err
	}
	cs, err := a.rm.ApplyAllStaged(ctx, prepared, a.applyOptions())
	if err != nil {
		return cs, explain(err)
	}
	return cs, nil
}

// validate dry-runs the objects that ssa would apply after the definition
// stage. ssa validates each stage before writing it, so without this an
// invalid Deployment would be found only after a new Namespace was created.
// Only needed when some definition changes; objects whose Namespace or CRD
// is itself new cannot be validated before it exists and are left to ssa.
func (a *Applier) validate(ctx context.Context, objs []*unstructured.Unstructured) error {
	var defs, rest []*unstructured.Unstructured
	newNamespaces := map[string]bool{}
	newKinds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if ssautils.IsClusterDefinition(o) || ssautils.IsClassDefinition(o) {
			defs = append(defs, o)
		} else {
			rest = append(rest, o)
		}
	}
	changed := false
	for _, d := range defs {
		entry, _, _, err := a.rm.Diff(ctx, d, ssa.DefaultDiffOptions())
		if err != nil {
			return explain(err)
		}
		if entry.Action == ssa.CreatedAction || entry.Action == ssa.ConfiguredAction {
			changed = true
		}
		if entry.Action == ssa.CreatedAction {
			switch {
			case ssautils.IsNamespace(d):
				newNamespaces[d.GetName()] = true
			case ssautils.IsCRD(d):
				group, _, _ := unstructured.NestedString(d.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(d.Object, "spec", "names", "kind")
				newKinds[schema.GroupKind{Group: group, Kind: kind}] = true
			}
		}
	}
	if !changed {
		return nil // ssa's ApplyAll validates the remaining single stage before writing.
	}
	errs := make([]error, len(rest))
	var g errgroup.Group
	g.SetLimit(a.opts.Concurrency)
	for i, o := range rest {
		if newNamespaces[o.GetNamespace()] || newKinds[o.GroupVersionKind().GroupKind()] {
			continue
		}
		g.Go(func() error {
			_, _, _, errs[i] = a.rm.Diff(ctx, o, ssa.DefaultDiffOptions())
			return nil
		})
	}
	_ = g.Wait() // errors are collected per object in errs
	return explain(errors.Join(errs...))
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
