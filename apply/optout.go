package apply

import (
	"encoding/json"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The opt-out annotations (ReconcileAnnotation, PruneAnnotation,
// ForceAnnotation) count only when the object in git carries them. ssa's
// selectors also match the live object, so whoever can edit a live object
// could annotate it by hand and have ferry skip it (and call the commit
// healthy without applying it), keep it, or recreate it. ferry passes ssa
// no selectors and decides here instead:
//
//   - reconcile and force are read from the rendered object only;
//   - prune is read from the live object, since a pruned object is no
//     longer in git, but only where ferry's own apply wrote it there: the
//     annotation's field is owned by ferry's field manager, so it came from
//     the last rendering that held the object (TestOptOutsComeFromGit).

// disabled reports whether the rendered object opts out of reconciliation.
func disabled(desired *unstructured.Unstructured) bool {
	return desired.GetAnnotations()[ReconcileAnnotation] == "disabled"
}

// forced reports whether the rendered object may be deleted and recreated
// when its change hits an immutable field.
func (a *Applier) forced(desired *unstructured.Unstructured) bool {
	return a.opts.Force || desired.GetAnnotations()[ForceAnnotation] == "enabled"
}

// skipped is the change set entry of a rendered object left alone.
func skipped(desired *unstructured.Unstructured) ssa.ChangeSetEntry {
	return ssa.ChangeSetEntry{
		ObjMetadata:  object.UnstructuredToObjMetadata(desired),
		GroupVersion: desired.GroupVersionKind().Version,
		Subject:      ssautils.FmtUnstructured(desired),
		Action:       ssa.SkippedAction,
	}
}

// keptByGit reports whether a live object is annotated
// PruneAnnotation=disabled by ferry's own apply, that is by git.
func keptByGit(live *unstructured.Unstructured) bool {
	if live.GetAnnotations()[PruneAnnotation] != "disabled" {
		return false
	}
	return ownsAnnotation(live.GetManagedFields(), FieldManager, PruneAnnotation)
}

// ownsAnnotation reports whether manager's server-side apply owns the
// annotation key.
func ownsAnnotation(fields []metav1.ManagedFieldsEntry, manager, key string) bool {
	for _, f := range fields {
		if f.Manager != manager || f.Operation != metav1.ManagedFieldsOperationApply || f.FieldsV1 == nil {
			continue
		}
		var set struct {
			Metadata struct {
				Annotations map[string]json.RawMessage `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if json.Unmarshal(f.FieldsV1.Raw, &set) != nil {
			continue
		}
		if _, ok := set.Metadata.Annotations["f:"+key]; ok {
			return true
		}
	}
	return false
}
