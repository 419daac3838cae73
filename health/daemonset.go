package health

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// daemonSetPods reads the pods of the DaemonSet's current revision. A
// DaemonSet's status does not name its revision, so its ControllerRevisions
// are read too.
func daemonSetPods(ctx context.Context, r client.Reader, ds *appsv1.DaemonSet) ([]corev1.Pod, error) {
	if !observed(ds.Generation, ds.Status.ObservedGeneration) || ds.Spec.Selector == nil {
		return nil, nil
	}
	return revisionPods(ctx, r, ds.Namespace, ds.Spec.Selector, &appsv1.ControllerRevisionList{}, "controllerrevisions",
		func(crs *appsv1.ControllerRevisionList, pods []corev1.Pod) []corev1.Pod {
			return daemonSetRevisionPods(ds, crs.Items, pods)
		})
}

// daemonSetRevisionPods picks the pods of ds's current revision: those it
// controls whose controller-revision-hash label equals that of the newest
// ControllerRevision it controls (the highest .revision; a rollback to an
// older template renumbers that template's revision as the newest).
func daemonSetRevisionPods(ds *appsv1.DaemonSet, revisions []appsv1.ControllerRevision, pods []corev1.Pod) []corev1.Pod {
	if !observed(ds.Generation, ds.Status.ObservedGeneration) {
		return nil
	}
	var newest *appsv1.ControllerRevision
	for i := range revisions {
		cr := &revisions[i]
		if metav1.IsControlledBy(cr, ds) && (newest == nil || cr.Revision > newest.Revision) {
			newest = cr
		}
	}
	if newest == nil {
		return nil
	}
	hash := newest.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	if hash == "" {
		return nil
	}
	return controlledPods(pods, ds, func(p *corev1.Pod) bool {
		return p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
	})
}
