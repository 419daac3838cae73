package reconciler

import (
	"context"
	"time"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// finalStatus is the last status ferry posts on a verdict's commit: the
// action's, when the action is one people must see (promoted, reverted,
// stalled, held after a failure), else the verdict's own.
func finalStatus(v state.Verdict) (forge.State, string) {
	switch a := v.Action; {
	case a.Kind == state.ActionPromoted:
		return forge.Success, a.String()
	case a.Kind == state.ActionReverted:
		return forge.Failure, a.String()
	case a.Kind == state.ActionStalled:
		return forge.Error, a.String()
	case a.Kind == state.ActionHeld && v.Outcome != state.OutcomeHealthy:
		return forge.Failure, text.OneLine(v.Reason+" ("+a.String()+")", 300)
	case v.Outcome == state.OutcomeHealthy:
		return forge.Success, forge.DescHealthy(v.Commit)
	}
	return forge.Failure, v.Reason
}

// redeliver posts again every status the state says should stand on the
// forge, when this process starts running the environment (at start, or on
// taking over its lease). The Reporter's queue lives in memory: a status
// that a forge outage held back in the process that ran the environment
// before is re-derived from the state, so a restart or a takeover loses
// none. The forge shows the same status again at worst; the queue keeps
// only the newest per (commit, context) and is bounded.
func (r *Reconciler) redeliver(ctx context.Context) {
	if r.notify.reporter == nil || !r.notify.hasRepo {
		return
	}
	st, err := r.store.Load(ctx, r.env.Name)
	if err != nil {
		r.log.Warn("redeliver the statuses", "error", err)
		return
	}
	for _, s := range derivedStatuses(st, r.env.Health.Soak) {
		r.status(s.Commit, s.State, s.Description)
	}
}

// derivedStatuses are the statuses st says should stand on the forge, in
// the order to post them: the final status of every verdict in the
// history, oldest first, then the pending status of the revision in
// progress. The Reporter also posts each on the heads of the pull requests
// that brought the commit. A commit's newest verdict comes last, so it is
// the one that stands (TestDerivedStatuses).
func derivedStatuses(st *state.State, soak time.Duration) []forge.Status {
	var out []forge.Status
	for i := len(st.History) - 1; i >= 0; i-- {
		v := st.History[i]
		s, desc := finalStatus(v)
		out = append(out, forge.Status{Commit: v.Commit, State: s, Description: desc})
	}
	if st.Target == nil || st.Target.Commit == "" {
		return out
	}
	if _, decided := st.VerdictFor(st.Target.Commit); decided {
		return out
	}
	desc := ""
	switch {
	case st.Suspended != nil:
		desc = st.Suspended.String()
	case st.Phase == state.PhaseApplying || st.Phase == state.PhasePruning:
		desc = forge.DescApplying
	case st.Phase == state.PhaseVerifying:
		desc = forge.DescVerifying(soak)
	case st.Phase == state.PhaseWaiting:
		desc = "waiting: " + st.Message
	default:
		// Rendering posts nothing; Retrying keeps the pending status
		// posted before it, which the loop posts again as it resumes the
		// revision.
		return out
	}
	return append(out, forge.Status{Commit: st.Target.Commit, State: forge.Pending, Description: desc})
}

// postFinal posts v's final status on its commit.
func (r *Reconciler) postFinal(v state.Verdict) {
	s, desc := finalStatus(v)
	r.status(v.Commit, s, desc)
}
