package apply

import (
	"context"
	"errors"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ObjectDiff is the planned change of one object.
type ObjectDiff struct {
	// Subject names the object: Kind/namespace/name.
	Subject string
	// Action is created, configured or unchanged for rendered objects, and
	// deleted for objects that would be pruned.
	Action ssa.Action
	// Unified is a unified diff of the live object against the dry-run
	// result. A Secret's values are never in it: each shows as a short
	// keyed hash, and a first line says which keys were added, changed or
	// removed. Empty when unchanged.
	Unified string
	// Keys, for a Secret, are its keys that were added, changed or
	// removed; nil for other kinds.
	Keys *KeyChanges
}

// Plan is what applying a rendering would change, found by a server-side
// dry-run; nothing is written.
type Plan struct {
	Objects                  []ObjectDiff
	Created, Changed, Pruned int
}

// HasChanges reports whether applying would change the cluster.
func (p *Plan) HasChanges() bool { return p.Created+p.Changed+p.Pruned > 0 }

// Plan dry-runs objs against the cluster and lists, besides, the objects of
// inventory that applying objs would prune.
func (a *Applier) Plan(ctx context.Context, objs []*unstructured.Unstructured, inventory Inventory) (*Plan, error) {
	prepared, err := a.Prepare(objs)
	if err != nil {
		return nil, err
	}
	plan := &Plan{}
	var errs []error
	desired := Inventory{}
	for _, o := range prepared {
		if disabled(o) {
			continue // left alone, as Apply leaves it
		}
		entry, live, dry, err := a.rm.Diff(ctx, o, a.diffOptions(o))
		if err != nil {
			errs = append(errs, explain(err))
			continue
		}
		if entry.Action == ssa.SkippedAction {
			continue
		}
		desired = append(desired, Entry{ID: entry.ObjMetadata.String(), Version: entry.GroupVersion})
		d := ObjectDiff{Subject: entry.Subject, Action: entry.Action}
		switch entry.Action {
		case ssa.CreatedAction:
			plan.Created++
			d.Unified, d.Keys, err = unified(nil, dry)
		case ssa.ConfiguredAction:
			plan.Changed++
			d.Unified, d.Keys, err = unified(live, dry)
		}
		errs = append(errs, err)
		plan.Objects = append(plan.Objects, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pruned, err := a.prunable(ctx, inventory.Stale(desired))
	if err != nil {
		return nil, err
	}
	plan.Objects = append(plan.Objects, pruned...)
	plan.Pruned = len(pruned)
	return plan, nil
}

// prunable returns the stale objects that Prune would delete.
func (a *Applier) prunable(ctx context.Context, stale Inventory) ([]ObjectDiff, error) {
	var out []ObjectDiff
	for _, e := range stale {
		stub, err := e.Object()
		if err != nil {
			return nil, err
		}
		live := stub.DeepCopy()
		if err := a.client.Get(ctx, client.ObjectKeyFromObject(stub), live); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", ssautils.FmtUnstructured(stub), err)
		}
		if live.GetLabels()[OwnerLabel] != a.opts.Environment || keptByGit(live) {
			continue
		}
		u, keys, err := unified(live, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, ObjectDiff{Subject: ssautils.FmtUnstructured(live), Action: ssa.DeletedAction, Unified: u, Keys: keys})
	}
	return out, nil
}

// unified renders a unified diff between two versions of an object (either
// may be nil), without server-owned metadata. A Secret's values are
// replaced by keyed hashes (see maskSecret) and the diff starts with the
// line of its key changes, also returned.
func unified(before, after *unstructured.Unstructured) (string, *KeyChanges, error) {
	before, after = clean(before), clean(after)
	var keys *KeyChanges
	if isSecret(before) || isSecret(after) {
		kc := secretKeyChanges(before, after)
		keys = &kc
		for _, o := range []*unstructured.Unstructured{before, after} {
			if err := maskSecret(o); err != nil {
				return "", nil, err
			}
		}
	}
	a, err := toYAML(before)
	if err != nil {
		return "", nil, err
	}
	b, err := toYAML(after)
	if err != nil {
		return "", nil, err
	}
	name := ""
	for _, o := range []*unstructured.Unstructured{after, before} {
		if o != nil {
			name = ssautils.FmtUnstructured(o)
			break
		}
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: "live/" + name, ToFile: "desired/" + name, Context: 3,
	})
	if err != nil || keys == nil {
		return d, keys, err
	}
	return "# Secret values: " + keys.String() + "; each value shows as a keyed hash\n" + d, keys, nil
}

func toYAML(o *unstructured.Unstructured) (string, error) {
	if o == nil {
		return "", nil
	}
	data, err := yaml.Marshal(o.Object)
	return string(data), err
}

func clean(o *unstructured.Unstructured) *unstructured.Unstructured {
	if o == nil {
		return nil
	}
	o = o.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "status")
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	if ann := o.GetAnnotations(); ann != nil {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		if len(ann) == 0 {
			ann = nil
		}
		o.SetAnnotations(ann)
	}
	return o
}
