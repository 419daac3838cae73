package reconciler

import (
	"context"
	"fmt"
	"time"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

// notifier tells people what happened: commit statuses on the forge,
// Prometheus metrics, and Kubernetes Events on the state ConfigMap. Every
// method is a no-op for the parts not configured.
type notifier struct {
	reporter    *forge.Reporter
	metrics     *server.Metrics
	externalURL string
	repo        forge.Repo
	hasRepo     bool
	events      bool
}

// status posts the environment's status on commit (and, through the
// reporter, on the head of the pull request that brought it).
func (r *Reconciler) status(commit string, s forge.State, description string) {
	n := r.notify
	if n.reporter == nil || !n.hasRepo {
		return
	}
	n.reporter.Post(n.repo, forge.Status{
		Environment: r.env.Name, Commit: commit, State: s, Description: description,
		TargetURL: forge.TargetURL(n.externalURL, r.env.Name, commit),
	})
}

// event records a Kubernetes Event on the environment's state ConfigMap.
func (r *Reconciler) event(ctx context.Context, warning bool, reason, format string, args ...any) {
	if !r.notify.events {
		return
	}
	if err := r.store.Event(ctx, r.env.Name, warning, reason, fmt.Sprintf(format, args...)); err != nil {
		r.log.Debug("event", "error", err)
	}
}

// announceVerdict posts, counts and records a verdict.
func (r *Reconciler) announceVerdict(ctx context.Context, commit string, outcome state.Outcome, reason string, started time.Time) {
	r.notify.metrics.Verdict(r.env.Name, outcome)
	r.notify.metrics.ObserveReconcile(r.env.Name, r.now().Sub(started))
	switch outcome {
	case state.OutcomeHealthy:
		r.status(commit, forge.Success, forge.DescHealthy(commit))
		r.event(ctx, false, "Healthy", "%s is healthy: %s", state.Short(commit), reason)
	default:
		r.status(commit, forge.Failure, reason)
		r.event(ctx, true, string(outcome), "%s: %s", state.Short(commit), reason)
	}
}

// announceAction posts, counts and records the decision on a verdict.
func (r *Reconciler) announceAction(ctx context.Context, commit string, v state.Verdict, action state.Action) {
	decided := v
	decided.Action = action
	switch {
	case action.Kind == state.ActionPromoted:
		r.notify.metrics.Promoted(r.env.Name, action.Target)
		r.postFinal(decided)
		r.event(ctx, false, "Promoted", "%s %s", state.Short(commit), action)
	case action.Kind == state.ActionReverted:
		r.notify.metrics.Reverted(r.env.Name)
		r.postFinal(decided)
		r.event(ctx, true, "Reverted", "%s failed (%s) and was %s", state.Short(commit), v.Reason, action)
	case action.Kind == state.ActionStalled:
		r.postFinal(decided)
		r.event(ctx, true, "Stalled", "%s", action)
	case action.Kind == state.ActionHeld && v.Outcome != state.OutcomeHealthy:
		r.postFinal(decided)
		r.event(ctx, true, "Held", "%s %s", state.Short(commit), action)
	case action.Kind == state.ActionHeld:
		r.event(ctx, true, "PromotionHeld", "%s %s", state.Short(commit), action)
	}
}
