package health

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Hand-built objects of namespace "staging", as the controllers of a real
// cluster would leave them. Each builder returns a healthy object; the
// mutators passed to it break it.

const ns = "staging"

var selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}

func objectMeta(name string, uid types.UID, owner metav1.Object, kind string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: ns, UID: uid, Labels: map[string]string{"app": "web"}, Generation: 2}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: to(true),
		}}
	}
	return m
}

func deployment(mods ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta("web", "web-uid", nil, ""),
		Spec: appsv1.DeploymentSpec{
			Replicas: to[int32](2), Selector: selector, ProgressDeadlineSeconds: to[int32](600),
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
			},
		},
	}
	d.Annotations = map[string]string{revisionAnnotation: "2"}
	for _, m := range mods {
		m(d)
	}
	return d
}

// rolling leaves a Deployment halfway through its rollout.
func rolling(d *appsv1.Deployment) {
	d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 3, 1, 2, 2
	d.Status.Conditions[1].Reason = "ReplicaSetUpdated"
}

func replicaSet(name string, revision string, owner *appsv1.Deployment) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: objectMeta(name, types.UID(name+"-uid"), owner, "Deployment"),
		Spec:       appsv1.ReplicaSetSpec{Selector: selector},
	}
	rs.Annotations = map[string]string{revisionAnnotation: revision}
	return rs
}

func pod(name string, owner metav1.Object, ownerKind string, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: objectMeta(name, types.UID(name+"-uid"), owner, ownerKind),
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:2"}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func waiting(reason, message string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions[0].Status = corev1.ConditionFalse
		p.Status.ContainerStatuses[0].Ready = false
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message},
		}
	}
}

func terminated(reason string, code int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code},
		}
	}
}

func lastTerminated(reason string, code int32, restarts int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].RestartCount = restarts
		p.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code},
		}
	}
}

func statefulSet(mods ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta("db", "db-uid", nil, ""),
		Spec:       appsv1.StatefulSetSpec{Replicas: to[int32](2), Selector: selector},
		Status: appsv1.StatefulSetStatus{
			ObservedGeneration: 2, Replicas: 2, ReadyReplicas: 2, CurrentReplicas: 2, UpdatedReplicas: 2,
			CurrentRevision: "db-new", UpdateRevision: "db-new",
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func daemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: objectMeta("agent", "agent-uid", nil, ""),
		Spec:       appsv1.DaemonSetSpec{Selector: selector},
		Status: appsv1.DaemonSetStatus{
			ObservedGeneration: 2, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
			UpdatedNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2,
		},
	}
}

func controllerRevision(hash string, revision int64, owner *appsv1.DaemonSet) appsv1.ControllerRevision {
	cr := appsv1.ControllerRevision{ObjectMeta: objectMeta(owner.Name+"-"+hash, types.UID(hash+"-uid"), owner, "DaemonSet"), Revision: revision}
	cr.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	return cr
}

func withRevisionLabel(hash string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[appsv1.ControllerRevisionHashLabelKey] = hash }
}

func job(conditions ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta("migrate", "migrate-uid", nil, ""),
		Status: batchv1.JobStatus{
			StartTime: &metav1.Time{Time: time.Now()}, Conditions: conditions,
		},
	}
}

// toUnstructured turns a typed object into what the Checker reads.
func toUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("convert %s: %v", obj.GetName(), err)
	}
	return &unstructured.Unstructured{Object: m}
}

func items[T any](objs ...*T) []T {
	out := make([]T, len(objs))
	for i, o := range objs {
		out[i] = *o
	}
	return out
}

func to[T any](v T) *T { return &v }
