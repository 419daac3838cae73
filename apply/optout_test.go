package apply

import (
	"testing"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func annotated(kv ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("app")
	u.SetName("cm")
	ann := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		ann[kv[i]] = kv[i+1]
	}
	u.SetAnnotations(ann)
	return u
}

// managed is a managedFields entry of manager owning the annotation keys.
func managed(manager string, op metav1.ManagedFieldsOperationType, keys ...string) metav1.ManagedFieldsEntry {
	raw := `{"f:metadata":{"f:annotations":{`
	for i, k := range keys {
		if i > 0 {
			raw += ","
		}
		raw += `"f:` + k + `":{}`
	}
	raw += `}},"f:data":{".":{}}}`
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(raw)}}
}

// TestOptOutsComeFromGit pins that the opt-out annotations count only when
// git carries them: reconcile and force on the rendered object, prune on
// the live object only where ferry's own apply wrote it.
func TestOptOutsComeFromGit(t *testing.T) {
	if !disabled(annotated(ReconcileAnnotation, "disabled")) || disabled(annotated()) || disabled(annotated(ReconcileAnnotation, "enabled")) {
		t.Error("disabled reads the rendered object's reconcile annotation wrong")
	}
	a := &Applier{opts: Options{}}
	if !a.forced(annotated(ForceAnnotation, "enabled")) || a.forced(annotated()) {
		t.Error("forced reads the rendered object's force annotation wrong")
	}
	if e := skipped(annotated()); e.Action != ssa.SkippedAction || e.Subject != "ConfigMap/app/cm" || e.ObjMetadata.String() != "app_cm__ConfigMap" {
		t.Errorf("skipped = %+v", e)
	}

	for _, tc := range []struct {
		name   string
		fields []metav1.ManagedFieldsEntry
		value  string
		want   bool
	}{
		{"applied from git", []metav1.ManagedFieldsEntry{managed(FieldManager, metav1.ManagedFieldsOperationApply, PruneAnnotation)}, "disabled", true},
		{"annotated by hand", []metav1.ManagedFieldsEntry{
			managed(FieldManager, metav1.ManagedFieldsOperationApply),
			managed("kubectl-annotate", metav1.ManagedFieldsOperationUpdate, PruneAnnotation),
		}, "disabled", false},
		{"applied by hand under another manager", []metav1.ManagedFieldsEntry{managed("kubectl", metav1.ManagedFieldsOperationApply, PruneAnnotation)}, "disabled", false},
		{"an update by ferry's name, not an apply", []metav1.ManagedFieldsEntry{managed(FieldManager, metav1.ManagedFieldsOperationUpdate, PruneAnnotation)}, "disabled", false},
		{"another value", []metav1.ManagedFieldsEntry{managed(FieldManager, metav1.ManagedFieldsOperationApply, PruneAnnotation)}, "enabled", false},
		{"no managed fields", nil, "disabled", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := annotated(PruneAnnotation, tc.value)
			live.SetManagedFields(tc.fields)
			if got := keptByGit(live); got != tc.want {
				t.Errorf("keptByGit = %v, want %v", got, tc.want)
			}
		})
	}
}
