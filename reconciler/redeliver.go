package reconciler

import (
	"context"

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

// redeliver posts the final status of the environment's newest verdict
// when ferry starts. The Reporter's queue lives in memory: a status a forge
// outage held back when ferry stopped is re-derived from the state, so a
// restart loses none. The forge shows the same status again at worst.
func (r *Reconciler) redeliver(ctx context.Context) {
	if r.notify.reporter == nil || !r.notify.hasRepo {
		return
	}
	st, err := r.store.Load(ctx, r.env.Name)
	if err != nil {
		r.log.Warn("redeliver the last status", "error", err)
		return
	}
	if len(st.History) == 0 {
		return
	}
	r.postFinal(st.History[0])
}

// postFinal posts v's final status on its commit.
func (r *Reconciler) postFinal(v state.Verdict) {
	s, desc := finalStatus(v)
	r.status(v.Commit, s, desc)
}
