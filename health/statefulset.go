package health

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statefulSetPods reads the pods of the StatefulSet's current revision.
func statefulSetPods(ctx context.Context, r client.Reader, s *appsv1.StatefulSet) ([]corev1.Pod, error) {
	if !observed(s.Generation, s.Status.ObservedGeneration) || s.Status.UpdateRevision == "" {
		return nil, nil
	}
	pods, err := listPods(ctx, r, s.Namespace, s.Spec.Selector)
	if err != nil {
		return nil, err
	}
	return statefulSetRevisionPods(s, pods), nil
}

// statefulSetRevisionPods picks the pods of s's current revision: those it
// controls whose controller-revision-hash label equals
// status.updateRevision. Pods not yet replaced by a rolling update (or by
// hand, with the OnDelete strategy) are left out.
func statefulSetRevisionPods(s *appsv1.StatefulSet, pods []corev1.Pod) []corev1.Pod {
	revision := s.Status.UpdateRevision
	if revision == "" || !observed(s.Generation, s.Status.ObservedGeneration) {
		return nil
	}
	return controlledPods(pods, s, func(p *corev1.Pod) bool {
		return p.Labels[appsv1.ControllerRevisionHashLabelKey] == revision
	})
}
