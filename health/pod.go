package health

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// failingWaitingReasons are the waiting reasons of a container that will not
// start without a change to its pod, its image or its configuration.
var failingWaitingReasons = map[string]bool{
	"CrashLoopBackOff":           true,
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"CreateContainerConfigError": true,
	"InvalidImageName":           true,
}

// podFailure says why pod p cannot become ready without a change, or ""
// when it still can. The message names the container, e.g.
// "container app: CrashLoopBackOff (back-off 10s restarting failed container)".
//
// A pod is failing when a container (init containers included) waits for one
// of failingWaitingReasons, when a container terminated with a non-zero exit
// code, now or in its last run (OOMKilled, Error), or when the pod's phase is
// Failed.
func podFailure(p *corev1.Pod) string {
	// Why: a pod being deleted sees its containers stopped with SIGTERM and
	// exit codes like 143; a scale-down is not a failure
	// (TestPodFailure "terminating").
	if p.DeletionTimestamp != nil {
		return ""
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if msg := containerFailure(cs); msg != "" {
			return "init container " + cs.Name + ": " + msg
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if msg := containerFailure(cs); msg != "" {
			return "container " + cs.Name + ": " + msg
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return "phase Failed" + optional(": ", withMessage(p.Status.Reason, p.Status.Message))
	}
	return ""
}

// containerFailure says why one container is failing, or "".
func containerFailure(cs corev1.ContainerStatus) string {
	last := ""
	if t := cs.LastTerminationState.Terminated; t != nil && t.ExitCode != 0 {
		last = "last terminated: " + termination(t)
	}
	if w := cs.State.Waiting; w != nil && failingWaitingReasons[w.Reason] {
		return withMessage(w.Reason, w.Message) + optional("; ", last)
	}
	if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
		return "terminated: " + termination(t)
	}
	return last
}

// termination reads "OOMKilled, exit code 137 (message)".
func termination(t *corev1.ContainerStateTerminated) string {
	reason := t.Reason
	if reason == "" {
		reason = "terminated"
	}
	return withMessage(fmt.Sprintf("%s, exit code %d", reason, t.ExitCode), t.Message)
}

// optional is sep+s, or "" when s is empty.
func optional(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// podsFailure says why the first failing pod of pods fails:
// "pod web-6d4-abcde container app: CrashLoopBackOff (...)"; or "".
func podsFailure(pods []corev1.Pod) string {
	for i := range pods {
		if msg := podFailure(&pods[i]); msg != "" {
			return "pod " + pods[i].Name + " " + msg
		}
	}
	return ""
}

// controlledPods returns the pods controlled by owner, sorted by name.
func controlledPods(pods []corev1.Pod, owner metav1.Object, match func(*corev1.Pod) bool) []corev1.Pod {
	var out []corev1.Pod
	for i := range pods {
		if metav1.IsControlledBy(&pods[i], owner) && (match == nil || match(&pods[i])) {
			out = append(out, pods[i])
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// listPods lists the pods in namespace ns matched by a workload's selector.
func listPods(ctx context.Context, r client.Reader, ns string, selector *metav1.LabelSelector) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := listSelected(ctx, r, ns, selector, &pods, "pods"); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// revisionPods reads what picks the pods of a workload's current revision:
// the objects naming its revisions (into list: ReplicaSets or
// ControllerRevisions) and the pods its selector matches; pick chooses.
func revisionPods[L client.ObjectList](ctx context.Context, r client.Reader, ns string, selector *metav1.LabelSelector,
	list L, what string, pick func(L, []corev1.Pod) []corev1.Pod) ([]corev1.Pod, error) {
	if err := listSelected(ctx, r, ns, selector, list, what); err != nil {
		return nil, err
	}
	pods, err := listPods(ctx, r, ns, selector)
	if err != nil {
		return nil, err
	}
	return pick(list, pods), nil
}

// listSelected lists into list the objects in namespace ns matched by a
// workload's selector: its pods, or the ReplicaSets or ControllerRevisions
// that name its revisions. A nil selector lists nothing.
func listSelected(ctx context.Context, r client.Reader, ns string, selector *metav1.LabelSelector, list client.ObjectList, what string) error {
	// Why: a nil selector matches nothing, but it goes over the wire as an
	// empty string, which matches everything.
	if selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	if err := r.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("list %s: %w", what, err)
	}
	return nil
}

// bareFailure judges a Pod applied on its own, which kstatus calls Current
// even when its phase is Failed.
func bareFailure(obj *unstructured.Unstructured) (string, error) {
	p, err := fromUnstructured[corev1.Pod](obj)
	if err != nil {
		return "", err
	}
	return podFailure(p), nil
}

// barePods returns the Pod itself, so that its restarts count in the soak.
func barePods(_ context.Context, _ client.Reader, p *corev1.Pod) ([]corev1.Pod, error) {
	return []corev1.Pod{*p}, nil
}
