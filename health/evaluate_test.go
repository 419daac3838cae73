package health

import (
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestEvaluate(t *testing.T) {
	d := deployment()
	oldRS, newRS := replicaSet("web-5c9", "1", d), replicaSet("web-6d4", "2", d)
	rss := items(oldRS, newRS)
	// revisionPods picks the current-revision pods of dep, owning rss.
	revisionPods := func(dep *appsv1.Deployment, pods ...*corev1.Pod) []corev1.Pod {
		return deploymentRevisionPods(dep, rss, items(pods...))
	}
	newPod := func(mods ...func(*corev1.Pod)) *corev1.Pod { return pod("web-6d4-abcde", newRS, "ReplicaSet", mods...) }
	oldPod := func(mods ...func(*corev1.Pod)) *corev1.Pod { return pod("web-5c9-zyxwv", oldRS, "ReplicaSet", mods...) }
	crashLoop := waiting("CrashLoopBackOff", "back-off 10s restarting failed container=app pod=web-6d4-abcde")

	sts := statefulSet(func(s *appsv1.StatefulSet) { s.Status.CurrentRevision = "db-old" })
	ds := daemonSet()
	revisions := []appsv1.ControllerRevision{controllerRevision("aaa", 1, ds), controllerRevision("bbb", 2, ds)}

	tests := []struct {
		name        string
		obj         *unstructured.Unstructured
		pods        []corev1.Pod
		wantStatus  status.Status
		wantMessage string
	}{
		{
			name: "healthy deployment",
			obj:  toUnstructured(t, d),
			pods: revisionPods(d, newPod()), wantStatus: status.CurrentStatus,
			wantMessage: "Deployment is available. Replicas: 2",
		},
		{
			name: "CrashLoopBackOff", obj: toUnstructured(t, d), pods: revisionPods(d, oldPod(), newPod(crashLoop)),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde container app: CrashLoopBackOff (back-off 10s restarting failed container=app pod=web-6d4-abcde)",
		},
		{
			name: "CrashLoopBackOff after OOMKilled", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(crashLoop, lastTerminated("OOMKilled", 137, 3))),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde container app: CrashLoopBackOff (back-off 10s restarting failed container=app pod=web-6d4-abcde); last terminated: OOMKilled, exit code 137",
		},
		{
			name: "ImagePullBackOff", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(waiting("ImagePullBackOff", `Back-off pulling image "web:3"`))),
			wantStatus:  status.FailedStatus,
			wantMessage: `pod web-6d4-abcde container app: ImagePullBackOff (Back-off pulling image "web:3")`,
		},
		{
			name: "ErrImagePull", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(waiting("ErrImagePull", "manifest unknown"))),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde container app: ErrImagePull (manifest unknown)",
		},
		{
			name: "CreateContainerConfigError", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(waiting("CreateContainerConfigError", `secret "db" not found`))),
			wantStatus:  status.FailedStatus,
			wantMessage: `pod web-6d4-abcde container app: CreateContainerConfigError (secret "db" not found)`,
		},
		{
			name: "InvalidImageName", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(waiting("InvalidImageName", ""))),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde container app: InvalidImageName",
		},
		{
			name: "still creating the container", obj: toUnstructured(t, deployment(rolling)),
			pods:        revisionPods(deployment(rolling), newPod(waiting("ContainerCreating", ""))),
			wantStatus:  status.InProgressStatus,
			wantMessage: "Updated: 1/2",
		},
		{
			name: "pod phase Failed", obj: toUnstructured(t, d),
			pods: revisionPods(d, newPod(func(p *corev1.Pod) {
				p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}
			})),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde phase Failed: Evicted (The node was low on resource: memory.)",
		},
		{
			name: "container terminated with an error", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(terminated("Error", 1))),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde container app: terminated: Error, exit code 1",
		},
		{
			name: "OOMKilled in the last run, running again", obj: toUnstructured(t, d),
			pods:        revisionPods(d, newPod(lastTerminated("OOMKilled", 137, 1))),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde container app: last terminated: OOMKilled, exit code 137",
		},
		{
			name: "init container crashing", obj: toUnstructured(t, d),
			pods: revisionPods(d, newPod(func(p *corev1.Pod) {
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: corev1.ContainerState{
					Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"},
				}}}
			})),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod web-6d4-abcde init container migrate: CrashLoopBackOff",
		},
		{
			// A fix rolls out while the broken revision still crashes.
			name: "old revision crashing", obj: toUnstructured(t, deployment(rolling)),
			pods:       revisionPods(deployment(rolling), oldPod(crashLoop), oldPod(func(p *corev1.Pod) { p.Name = "web-5c9-b" }, terminated("Error", 2)), newPod()),
			wantStatus: status.InProgressStatus, wantMessage: "Updated: 1/2",
		},
		{
			// The fix was applied but the controller has not seen it: the
			// revision annotation still names the broken ReplicaSet.
			name: "unobserved generation", obj: toUnstructured(t, deployment(func(d *appsv1.Deployment) { d.Generation = 3 })),
			pods:        revisionPods(deployment(func(d *appsv1.Deployment) { d.Generation = 3 }), newPod(crashLoop)),
			wantStatus:  status.InProgressStatus,
			wantMessage: "Deployment generation is 3, but latest observed generation is 2",
		},
		{
			name: "pods of a ReplicaSet not controlled by the Deployment", obj: toUnstructured(t, d),
			pods: deploymentRevisionPods(d, []appsv1.ReplicaSet{*replicaSet("web-6d4", "2", deployment(func(o *appsv1.Deployment) { o.UID = "other-uid" }))},
				items(newPod(crashLoop))),
			wantStatus: status.CurrentStatus, wantMessage: "Deployment is available. Replicas: 2",
		},
		{
			name: "terminating pod stopped with SIGTERM", obj: toUnstructured(t, d),
			pods:       revisionPods(d, newPod(terminated("Error", 143), func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} })),
			wantStatus: status.CurrentStatus, wantMessage: "Deployment is available. Replicas: 2",
		},
		{
			name: "ProgressDeadlineExceeded",
			obj: toUnstructured(t, deployment(rolling, func(d *appsv1.Deployment) {
				d.Status.Conditions[1] = appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
					Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "web-6d4" has timed out progressing.`}
			})),
			wantStatus:  status.FailedStatus,
			wantMessage: `ProgressDeadlineExceeded (ReplicaSet "web-6d4" has timed out progressing.)`,
		},
		{
			name: "ProgressDeadlineExceeded of the previous generation",
			obj: toUnstructured(t, deployment(rolling, func(d *appsv1.Deployment) {
				d.Generation = 3
				d.Status.Conditions[1] = appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
					Reason: "ProgressDeadlineExceeded"}
			})),
			wantStatus:  status.InProgressStatus,
			wantMessage: "Deployment generation is 3, but latest observed generation is 2",
		},
		{
			name: "StatefulSet updated pod crashing", obj: toUnstructured(t, sts),
			pods: statefulSetRevisionPods(sts, items(
				pod("db-0", sts, "StatefulSet", withRevisionLabel("db-old")),
				pod("db-1", sts, "StatefulSet", withRevisionLabel("db-new"), crashLoop),
			)),
			wantStatus:  status.FailedStatus,
			wantMessage: "pod db-1 container app: CrashLoopBackOff (back-off 10s restarting failed container=app pod=web-6d4-abcde)",
		},
		{
			name: "StatefulSet pod of the old revision crashing", obj: toUnstructured(t, sts),
			pods: statefulSetRevisionPods(sts, items(
				pod("db-0", sts, "StatefulSet", withRevisionLabel("db-old"), crashLoop),
				pod("db-1", sts, "StatefulSet", withRevisionLabel("db-new")),
			)),
			wantStatus: status.InProgressStatus, wantMessage: "Waiting for updated revision to match current",
		},
		{
			name: "DaemonSet pod of the newest revision failing", obj: toUnstructured(t, ds),
			pods: daemonSetRevisionPods(ds, revisions, items(
				pod("agent-a", ds, "DaemonSet", withRevisionLabel("aaa"), crashLoop),
				pod("agent-b", ds, "DaemonSet", withRevisionLabel("bbb"), waiting("ImagePullBackOff", "")),
			)),
			wantStatus: status.FailedStatus, wantMessage: "pod agent-b container app: ImagePullBackOff",
		},
		{
			name: "DaemonSet pod of an older revision failing", obj: toUnstructured(t, ds),
			pods: daemonSetRevisionPods(ds, revisions, items(
				pod("agent-a", ds, "DaemonSet", withRevisionLabel("aaa"), crashLoop),
				pod("agent-b", ds, "DaemonSet", withRevisionLabel("bbb")),
			)),
			wantStatus: status.CurrentStatus, wantMessage: "All replicas scheduled as expected. Replicas: 2",
		},
		{
			name: "Job failed",
			obj: toUnstructured(t, job(batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
				Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"})),
			wantStatus:  status.FailedStatus,
			wantMessage: "Failed: BackoffLimitExceeded (Job has reached the specified backoff limit)",
		},
		{
			name: "Job running", obj: toUnstructured(t, job()),
			wantStatus: status.CurrentStatus, wantMessage: "Job in progress. success:0, active: 0, failed: 0",
		},
		{
			name: "bare Pod failed",
			obj: toUnstructured(t, pod("smoke", nil, "", terminated("Error", 3), func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
			})),
			wantStatus: status.FailedStatus, wantMessage: "container app: terminated: Error, exit code 3",
		},
		{
			name: "bare Pod evicted",
			obj: toUnstructured(t, pod("smoke", nil, "", func(p *corev1.Pod) {
				p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}
			})),
			wantStatus: status.FailedStatus, wantMessage: "phase Failed: Evicted",
		},
		{
			name: "bare Pod ready", obj: toUnstructured(t, pod("smoke", nil, "")),
			wantStatus: status.CurrentStatus, wantMessage: "Pod is Ready",
		},
		{
			name: "custom resource not ready",
			obj: &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "example.com/v1", "kind": "Database",
				"metadata": map[string]any{"name": "db", "namespace": ns},
				"status": map[string]any{"conditions": []any{map[string]any{
					"type": "Ready", "status": "False", "reason": "Provisioning", "message": "creating volume",
				}}},
			}},
			wantStatus: status.InProgressStatus, wantMessage: "creating volume",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Evaluate(tt.obj, tt.pods, nil)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got.Status != tt.wantStatus || got.Message != tt.wantMessage {
				t.Errorf("Evaluate = %s %q, want %s %q", got.Status, got.Message, tt.wantStatus, tt.wantMessage)
			}
			if got.ID.Name != tt.obj.GetName() || got.ID.GroupKind.Kind != tt.obj.GetKind() {
				t.Errorf("Evaluate ID = %v, want %s %s", got.ID, tt.obj.GetKind(), tt.obj.GetName())
			}
		})
	}
}

func TestEvaluateError(t *testing.T) {
	obj := toUnstructured(t, deployment())
	if err := unstructured.SetNestedField(obj.Object, "not a list", "status", "conditions"); err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(obj, nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "Deployment staging/web status: ") {
		t.Errorf("Evaluate error = %v, want one naming Deployment staging/web", err)
	}
	if got.Status != status.UnknownStatus {
		t.Errorf("Evaluate status = %s, want Unknown", got.Status)
	}
}
