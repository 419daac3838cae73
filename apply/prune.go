package apply

import (
	"context"
	"errors"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Prune deletes the stale objects of the environment. An object is deleted
// only if its live copy still carries this environment's owner label and
// is not annotated PruneAnnotation=disabled; others are reported as
// skipped. Objects already gone count as deleted. Callers prune only after
// a successful render and apply of the new inventory.
func (a *Applier) Prune(ctx context.Context, stale Inventory) (*ssa.ChangeSet, error) {
	objs := make([]*unstructured.Unstructured, 0, len(stale))
	for _, e := range stale {
		o, err := e.Object()
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	// Delete in the reverse of the apply order: workloads before their
	// Namespaces and CRDs.
	sort.Sort(sort.Reverse(ssa.SortableUnstructureds(objs)))
	opts := ssa.DeleteOptions{
		PropagationPolicy: ssa.DefaultDeleteOptions().PropagationPolicy,
		Inclusions:        a.OwnerLabels(),
		Exclusions:        map[string]string{PruneAnnotation: "disabled"},
	}
	cs := ssa.NewChangeSet()
	var errs []error
	for _, o := range objs {
		entry, err := a.rm.Delete(ctx, o, opts)
		if entry != nil {
			cs.Add(*entry)
		}
		errs = append(errs, err)
	}
	return cs, errors.Join(errs...)
}
