package health

import (
	"context"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/text"
)

// rules is what the check knows about one kind beyond kstatus. Either
// function may be nil.
type rules struct {
	// failure says why the object failed, from its own status, or "" when
	// it has not.
	failure func(obj *unstructured.Unstructured) (string, error)
	// pods lists the pods of the object's current revision.
	pods func(ctx context.Context, r client.Reader, obj *unstructured.Unstructured) ([]corev1.Pod, error)
}

// kinds holds the rules of every kind with more to check than kstatus. Each
// kind's rules live in its own file.
var kinds = map[schema.GroupKind]rules{
	{Group: "apps", Kind: "Deployment"}:  {failure: deploymentFailure, pods: podsOf(deploymentPods)},
	{Group: "apps", Kind: "ReplicaSet"}:  {pods: podsOf(replicaSetPods)},
	{Group: "apps", Kind: "StatefulSet"}: {pods: podsOf(statefulSetPods)},
	{Group: "apps", Kind: "DaemonSet"}:   {pods: podsOf(daemonSetPods)},
	{Group: "batch", Kind: "Job"}:        {failure: jobFailure},
	{Group: "", Kind: "Pod"}:             {failure: bareFailure, pods: podsOf(barePods)},
}

// podsOf adapts a kind's typed pod lookup to the unstructured object a
// check holds.
func podsOf[T any](pods func(ctx context.Context, r client.Reader, obj *T) ([]corev1.Pod, error)) func(context.Context, client.Reader, *unstructured.Unstructured) ([]corev1.Pod, error) {
	return func(ctx context.Context, r client.Reader, obj *unstructured.Unstructured) ([]corev1.Pod, error) {
		t, err := fromUnstructured[T](obj)
		if err != nil {
			return nil, err
		}
		return pods(ctx, r, t)
	}
}

// Evaluate judges one object in a single pass, from the object as read from
// the cluster (with its GroupVersionKind set), the pods of its current
// revision and the CEL check of its kind, if there is one. It does not read
// the cluster.
//
// The status is the kstatus status and message, or, when check is not nil,
// what check's expressions say instead (see [CheckSpec]). It is Failed
// whatever they say when the object's own status says so (a Deployment
// past its progress deadline, a failed Job, a failed bare Pod) or when one
// of pods cannot become ready without a change (see podFailure). A bare
// Pod is judged from obj itself.
//
// A Job annotated [VerifyAnnotation] "true" is Current only once it
// completed; its failure is a failed verification.
//
// The error reports an object whose status cannot be computed; the returned
// status is then Unknown.
func Evaluate(obj *unstructured.Unstructured, pods []corev1.Pod, check *Check) (ObjectStatus, error) {
	id := object.UnstructuredToObjMetadata(obj)
	verify, mistake := verifying(obj, id.GroupKind)
	if mistake != "" {
		return ObjectStatus{ID: id, Status: status.FailedStatus, Message: mistake}, nil
	}
	st := ObjectStatus{ID: id}
	if check != nil {
		st.Status, st.Message = check.evaluate(obj.Object)
	} else {
		res, err := status.Compute(obj)
		if err != nil {
			return unknown(id, err), fmt.Errorf("%s status: %w", describe(id), err)
		}
		st.Status, st.Message = res.Status, res.Message
	}
	if r := kinds[id.GroupKind]; r.failure != nil {
		msg, err := r.failure(obj)
		if err != nil {
			return unknown(id, err), fmt.Errorf("%s status: %w", describe(id), err)
		}
		if msg != "" {
			if verify {
				msg = "verification failed: " + msg
			}
			return ObjectStatus{ID: id, Status: status.FailedStatus, Message: msg}, nil
		}
	}
	if msg := podsFailure(pods); msg != "" {
		return ObjectStatus{ID: id, Status: status.FailedStatus, Message: msg}, nil
	}
	if verify && st.Status != status.FailedStatus {
		var err error
		if st.Status, st.Message, err = verification(obj); err != nil {
			return unknown(id, err), fmt.Errorf("%s status: %w", describe(id), err)
		}
	}
	return st, nil
}

// unknown is the status of an object that could not be read or judged.
func unknown(id object.ObjMetadata, err error) ObjectStatus {
	return ObjectStatus{ID: id, Status: status.UnknownStatus, Message: err.Error()}
}

// fromUnstructured converts obj to its typed form.
func fromUnstructured[T any](obj *unstructured.Unstructured) (*T, error) {
	t := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, t); err != nil {
		return nil, fmt.Errorf("convert %s: %w", obj.GroupVersionKind().Kind, err)
	}
	return t, nil
}

// observed reports whether a controller has seen the latest spec of its
// object. Until it has, the object's status, conditions and revision
// describe the previous spec: judging them would fail a fix for the fault it
// fixes (TestEvaluate "unobserved generation").
func observed(generation, observedGeneration int64) bool {
	return observedGeneration >= generation
}

// withMessage is "reason (message)", or the reason alone without a message.
func withMessage(reason, message string) string {
	if message = text.OneLine(message, maxMessage); message == "" {
		return reason
	}
	return reason + " (" + message + ")"
}
