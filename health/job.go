package health

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

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
