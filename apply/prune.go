package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Prune deletes the stale objects of the environment. An object is deleted
// only if its live copy still carries this environment's owner label and
// was not annotated PruneAnnotation=disabled in git (optout.go); others are
// reported as skipped. Objects already gone count as deleted. Callers prune only after
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
	}
	cs := ssa.NewChangeSet()
	var errs []error
	for _, o := range objs {
		live := o.DeepCopy()
		err := a.client.Get(ctx, client.ObjectKeyFromObject(o), live)
		switch {
		case apierrors.IsNotFound(err):
			// ssa's Delete reports it as deleted.
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", ssautils.FmtUnstructured(o), err))
			continue
		case keptByGit(live):
			cs.Add(skipped(live))
			continue
		}
		entry, err := a.rm.Delete(ctx, o, opts)
		if entry != nil {
			cs.Add(*entry)
		}
		errs = append(errs, err)
	}
	return cs, errors.Join(errs...)
}
