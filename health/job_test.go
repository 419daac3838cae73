package health

import (
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// annotated sets VerifyAnnotation to value on obj.
func annotated[T client.Object](obj T, value string) T {
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[VerifyAnnotation] = value
	obj.SetAnnotations(ann)
	return obj
}

func running(j *batchv1.Job) *batchv1.Job {
	j.Status.Active = 1
	return j
}

var (
	jobComplete = batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}
	jobFailed   = batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
		Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}
	jobFailureTarget = batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}
)

func TestEvaluateVerify(t *testing.T) {
	tests := []struct {
		name        string
		obj         client.Object
		wantStatus  status.Status
		wantMessage string
	}{
		{
			name: "verification running", obj: annotated(running(job()), "true"),
			wantStatus: status.InProgressStatus, wantMessage: "verification not complete: active 1, succeeded 0, failed 0",
		},
		{
			name: "verification retrying", obj: annotated(func() *batchv1.Job { j := running(job()); j.Status.Failed = 2; return j }(), "true"),
			wantStatus: status.InProgressStatus, wantMessage: "verification not complete: active 1, succeeded 0, failed 2",
		},
		{
			name: "verification complete", obj: annotated(func() *batchv1.Job { j := job(jobComplete); j.Status.Succeeded = 1; return j }(), "true"),
			wantStatus: status.CurrentStatus, wantMessage: "verification complete: succeeded 1",
		},
		{
			name: "verification failed", obj: annotated(job(jobFailed), "true"),
			wantStatus:  status.FailedStatus,
			wantMessage: "verification failed: Failed: BackoffLimitExceeded (Job has reached the specified backoff limit)",
		},
		{
			name: "verification failing", obj: annotated(running(job(jobFailureTarget)), "true"),
			wantStatus: status.FailedStatus, wantMessage: "verification failed: FailureTarget: BackoffLimitExceeded",
		},
		{
			// Today's behaviour: kstatus calls a running Job Current.
			name: "Job without the annotation", obj: running(job()),
			wantStatus: status.CurrentStatus, wantMessage: "Job in progress. success:0, active: 1, failed: 0",
		},
		{
			name: "annotation false", obj: annotated(running(job()), "false"),
			wantStatus: status.CurrentStatus, wantMessage: "Job in progress. success:0, active: 1, failed: 0",
		},
		{
			name: "Job without the annotation failed", obj: job(jobFailed),
			wantStatus: status.FailedStatus, wantMessage: "Failed: BackoffLimitExceeded (Job has reached the specified backoff limit)",
		},
		{
			name: "annotation value misspelt", obj: annotated(job(jobComplete), "yes"),
			wantStatus: status.FailedStatus, wantMessage: `annotation ferry.dev/verify: "yes": use "true", or remove it`,
		},
		{
			name: "annotation on a Deployment", obj: annotated(deployment(), "true"),
			wantStatus: status.FailedStatus, wantMessage: "annotation ferry.dev/verify is for Jobs only; a Deployment cannot be verified",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Evaluate(toUnstructured(t, tt.obj), nil, nil)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got.Status != tt.wantStatus || got.Message != tt.wantMessage {
				t.Errorf("Evaluate = %s %q, want %s %q", got.Status, got.Message, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

// TestCheckVerifyJob drives a verification Job through the loop: the check
// waits for it to complete, and fails at once when it fails.
func TestCheckVerifyJob(t *testing.T) {
	jobID := id("Job", "batch", "migrate")
	tests := []struct {
		name string
		// finish, when not nil, ends the running Job after 50ms.
		finish      func(*batchv1.Job)
		timeout     time.Duration
		wantOutcome Outcome
		wantReason  string
	}{
		{
			name: "completes", timeout: time.Minute, wantOutcome: Healthy, wantReason: "2 objects Current",
			finish: func(j *batchv1.Job) {
				j.Status.Active, j.Status.Succeeded, j.Status.CompletionTime = 0, 1, j.Status.StartTime
				j.Status.Conditions = []batchv1.JobCondition{jobComplete}
			},
		},
		{
			name: "fails", timeout: time.Minute, wantOutcome: Failed,
			wantReason: "Job staging/migrate: verification failed: Failed: BackoffLimitExceeded (Job has reached the specified backoff limit)",
			finish: func(j *batchv1.Job) {
				j.Status.Active, j.Status.Failed = 0, 1
				j.Status.Conditions = []batchv1.JobCondition{jobFailed}
			},
		},
		{
			name: "never completes", timeout: 100 * time.Millisecond, wantOutcome: TimedOut,
			wantReason: "1 of 2 not Current: Job staging/migrate InProgress: verification not complete: active 1, succeeded 0, failed 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			cl := newFakeClient(nil, annotated(running(job()), "true"), webObjects(deployment())[4])
			done := make(chan error, 1)
			go func() {
				if tt.finish == nil {
					done <- nil
					return
				}
				// why a sleep: the Job must finish while the check already
				// waits on it, and the checker has no hook to wait on.
				time.Sleep(50 * time.Millisecond)
				j := &batchv1.Job{}
				if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "migrate"}, j); err != nil {
					done <- err
					return
				}
				tt.finish(j)
				done <- cl.Status().Update(ctx, j)
			}()
			v, err := NewChecker(cl).Check(ctx, object.ObjMetadataSet{jobID, configID}, fastOptions(tt.timeout, 0))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("finish: %v", err)
			}
			if v.Outcome != tt.wantOutcome || !strings.Contains(v.Reason, tt.wantReason) {
				t.Errorf("Check = %s %q, want %s with %q", v.Outcome, v.Reason, tt.wantOutcome, tt.wantReason)
			}
			if tt.finish != nil && v.Duration > 10*time.Second {
				t.Errorf("Check took %s, want the end of the Job seen at the next poll", v.Duration)
			}
		})
	}
}
