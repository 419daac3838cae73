package reconciler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/report"
)

// notifier tells people what happened: commit statuses on the forge,
// Prometheus metrics, and Kubernetes Events on the state ConfigMap. Every
// method is a no-op for the parts not configured.
type notifier struct {
	reporter    *report.Reporter
	metrics     *report.Metrics
	externalURL string
	repo        report.Repo
	hasRepo     bool
	client      client.Client
	namespace   string
}

// status posts the environment's status on commit (and, through the
// reporter, on the head of the pull request that brought it).
func (r *Reconciler) status(commit string, state report.State, description string) {
	n := r.notify
	if n.reporter == nil || !n.hasRepo {
		return
	}
	n.reporter.Post(n.repo, report.Status{
		Environment: r.env.Name, Commit: commit, State: state, Description: description,
		TargetURL: report.TargetURL(n.externalURL, r.env.Name, commit),
	})
}

// event records a Kubernetes Event on the environment's state ConfigMap.
func (r *Reconciler) event(ctx context.Context, warning bool, reason, format string, args ...any) {
	n := r.notify
	if n.client == nil {
		return
	}
	cm := &corev1.ConfigMap{}
	if err := n.client.Get(ctx, client.ObjectKey{Namespace: n.namespace, Name: ConfigMapName(r.env.Name)}, cm); err != nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: cm.Name + ".", Namespace: n.namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: n.namespace, Name: cm.Name,
			UID: cm.UID, ResourceVersion: cm.ResourceVersion},
		Reason: reason, Message: oneLine(fmt.Sprintf(format, args...), 1000), Type: typ,
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source: corev1.EventSource{Component: "ferry"},
	}
	if err := n.client.Create(ctx, ev); err != nil {
		r.log.Debug("event", "error", err)
	}
}

// announceVerdict posts, counts and records a verdict.
func (r *Reconciler) announceVerdict(ctx context.Context, commit string, outcome Outcome, reason string, started time.Time) {
	r.notify.metrics.Verdict(r.env.Name, string(outcome))
	r.notify.metrics.ObserveReconcile(r.env.Name, r.now().Sub(started))
	switch outcome {
	case OutcomeHealthy:
		r.status(commit, report.Success, report.DescHealthy(commit))
		r.event(ctx, false, "Healthy", "%s is healthy: %s", commit[:7], reason)
	default:
		r.status(commit, report.Failure, reason)
		r.event(ctx, true, string(outcome), "%s: %s", commit[:7], reason)
	}
}

// announceAction posts, counts and records the decision on a verdict.
func (r *Reconciler) announceAction(ctx context.Context, commit string, v Verdict, action string) {
	switch {
	case len(action) > len(actionPromoted) && action[:len(actionPromoted)] == actionPromoted:
		r.notify.metrics.Promoted(r.env.Name, r.env.Promote.Target.env.Name)
		r.status(commit, report.Success, action)
		r.event(ctx, false, "Promoted", "%s %s", commit[:7], action)
	case len(action) > len(actionReverted) && action[:len(actionReverted)] == actionReverted:
		r.notify.metrics.Reverted(r.env.Name)
		r.status(commit, report.Failure, action)
		r.event(ctx, true, "Reverted", "%s failed (%s) and was %s", commit[:7], v.Reason, action)
	case len(action) > len(actionStalled) && action[:len(actionStalled)] == actionStalled:
		r.status(commit, report.Error, action)
		r.event(ctx, true, "Stalled", "%s", action)
	case len(action) > len(actionHeld) && action[:len(actionHeld)] == actionHeld && v.Outcome != OutcomeHealthy:
		r.status(commit, report.Failure, oneLine(v.Reason+" ("+action+")", 300))
		r.event(ctx, true, "Held", "%s %s", commit[:7], action)
	case len(action) > len(actionHeld) && action[:len(actionHeld)] == actionHeld:
		r.event(ctx, true, "PromotionHeld", "%s %s", commit[:7], action)
	}
}
