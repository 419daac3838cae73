package health

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// VerifyAnnotation marks a Job as a verification: with the value "true",
// the Job must complete for the check to be Healthy, and its failure fails
// the check at once. The annotation is read on the live Job.
const VerifyAnnotation = "ferry.dev/verify"

var jobKind = schema.GroupKind{Group: "batch", Kind: "Job"}

// jobFailure fails a Job with condition Failed=True, or FailureTarget=True,
// which the Job controller sets first, once the failure is decided, while
// it still terminates the Job's pods.
//
// The pods of a Job are not judged: a pod exiting non-zero is retried up to
// the Job's backoffLimit, and only the Job knows when that is spent.
func jobFailure(obj *unstructured.Unstructured) (string, error) {
	j, err := fromUnstructured[batchv1.Job](obj)
	if err != nil {
		return "", err
	}
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) && c.Status == corev1.ConditionTrue {
			return withMessage(string(c.Type)+optional(": ", c.Reason), c.Message), nil
		}
	}
	return "", nil
}

// verifying reads VerifyAnnotation on obj: true for "true", false when it
// is absent or "false". Any other value, or the annotation on an object
// that is not a Job, is a mistake in the manifests, returned as the
// message of a Failed status rather than ignored (TestEvaluateVerify).
func verifying(obj *unstructured.Unstructured, gk schema.GroupKind) (bool, string) {
	v, ok := obj.GetAnnotations()[VerifyAnnotation]
	switch {
	case !ok || v == "false":
		return false, ""
	case v != "true":
		return false, fmt.Sprintf("annotation %s: %q: use \"true\", or remove it", VerifyAnnotation, v)
	case gk != jobKind:
		return false, fmt.Sprintf("annotation %s is for Jobs only; a %s cannot be verified", VerifyAnnotation, gk.Kind)
	}
	return true, ""
}

// verification judges a verification Job that has not failed: Current once
// its condition Complete is True, InProgress before. kstatus alone calls a
// running Job Current.
func verification(obj *unstructured.Unstructured) (status.Status, string, error) {
	j, err := fromUnstructured[batchv1.Job](obj)
	if err != nil {
		return status.UnknownStatus, "", err
	}
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return status.CurrentStatus, fmt.Sprintf("verification complete: succeeded %d", j.Status.Succeeded), nil
		}
	}
	return status.InProgressStatus, fmt.Sprintf("verification not complete: active %d, succeeded %d, failed %d",
		j.Status.Active, j.Status.Succeeded, j.Status.Failed), nil
}
