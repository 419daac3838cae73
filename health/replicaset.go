package health

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// replicaSetPods reads the pods of a ReplicaSet applied on its own: all the
// pods it controls, since a ReplicaSet has one revision.
func replicaSetPods(ctx context.Context, r client.Reader, rs *appsv1.ReplicaSet) ([]corev1.Pod, error) {
	if !observed(rs.Generation, rs.Status.ObservedGeneration) {
		return nil, nil
	}
	pods, err := listPods(ctx, r, rs.Namespace, rs.Spec.Selector)
	if err != nil {
		return nil, err
	}
	return controlledPods(pods, rs, nil), nil
}
