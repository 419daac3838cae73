package health

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// revisionAnnotation holds the revision of a Deployment and of each of its
// ReplicaSets; the ReplicaSet with the Deployment's revision is the one
// being rolled out.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// progressDeadlineExceeded is the reason of the Progressing condition of a
// Deployment whose rollout stopped making progress.
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// deploymentFailure fails a Deployment whose rollout exceeded its progress
// deadline: condition Progressing=False, reason ProgressDeadlineExceeded.
func deploymentFailure(obj *unstructured.Unstructured) (string, error) {
	d, err := fromUnstructured[appsv1.Deployment](obj)
	if err != nil {
		return "", err
	}
	if !observed(d.Generation, d.Status.ObservedGeneration) {
		return "", nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == progressDeadlineExceeded {
			return withMessage(progressDeadlineExceeded, c.Message), nil
		}
	}
	return "", nil
}

// deploymentPods reads the pods of the Deployment's current revision.
func deploymentPods(ctx context.Context, r client.Reader, d *appsv1.Deployment) ([]corev1.Pod, error) {
	if !observed(d.Generation, d.Status.ObservedGeneration) || d.Spec.Selector == nil {
		return nil, nil
	}
	return revisionPods(ctx, r, d.Namespace, d.Spec.Selector, &appsv1.ReplicaSetList{}, "replicasets",
		func(rss *appsv1.ReplicaSetList, pods []corev1.Pod) []corev1.Pod {
			return deploymentRevisionPods(d, rss.Items, pods)
		})
}

// deploymentRevisionPods picks, among rss and pods, the pods of d's current
// revision: those controlled by the ReplicaSet that d controls and whose
// revision annotation equals d's. Pods of older ReplicaSets are left out, so
// that a broken revision still crashing during the rollout of its fix does
// not fail the fix (TestEvaluate "old revision crashing").
func deploymentRevisionPods(d *appsv1.Deployment, rss []appsv1.ReplicaSet, pods []corev1.Pod) []corev1.Pod {
	revision := d.Annotations[revisionAnnotation]
	if revision == "" || !observed(d.Generation, d.Status.ObservedGeneration) {
		return nil
	}
	for i := range rss {
		rs := &rss[i]
		if metav1.IsControlledBy(rs, d) && rs.Annotations[revisionAnnotation] == revision {
			return controlledPods(pods, rs, nil)
		}
	}
	return nil
}
