package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/pipeline"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// act makes the decision on rev's verdict, once: promote a healthy
// revision, revert or hold a failed one. Every push is a compare-and-swap,
// so repeating act after a crash writes nothing twice.
func (r *Reconciler) act(ctx context.Context, rn *run) {
	commit := rn.rev.Commit.Hash.String()
	st, err := r.store.Load(ctx, r.env.Name)
	if err != nil {
		rn.log.Error("decide", "error", err)
		return
	}
	v, ok := st.VerdictFor(commit)
	if !ok || (!v.Action.IsZero() && st.Promote == nil) || st.Suspended != nil {
		return // a suspended environment decides once resumed
	}
	if !v.Action.IsZero() {
		// A person asked to promote again (`ferry promote`): the hops not
		// promoted yet are decided anew, e.g. after a hold was resolved.
		if v.Outcome != state.OutcomeHealthy || r.env.Promote == nil {
			r.clearPromoteRequest(ctx)
			return
		}
		v.Action = state.Action{}
		v.Hops = slices.Clone(v.Hops)
		for i := range v.Hops {
			if v.Hops[i].Action.Kind != state.ActionPromoted {
				v.Hops[i].Action = state.Action{}
			}
		}
	}
	var action state.Action
	hopped := false // each hop announced itself
	switch {
	case v.Outcome == state.OutcomeHealthy && r.env.Promote != nil:
		var done bool
		action, done, err = r.promoteAll(ctx, rn, st, v)
		if err == nil && !done {
			return // some hops wait; a poke or the window's opening resumes them
		}
		hopped = true
	case v.Outcome == state.OutcomeHealthy:
		action = state.None()
	case v.Outcome == state.OutcomeQuarantined:
		action = state.Held(v.Reason)
	case r.env.OnFailure == "revert":
		action, err = r.revert(ctx, rn, st, v)
	default:
		action = state.Held("onFailure is hold")
	}
	if err != nil {
		// Transient (git unreachable, say): the next pass decides again.
		rn.log.Error("decide", "error", err)
		return
	}
	stopped := ""
	if v.Outcome.Failed() && r.graph != nil && len(r.graph.Downstream(r.env.Name)) > 0 {
		stopped = pipeline.Halt{At: r.env.Name, Reason: v.Reason, Missed: r.graph.Downstream(r.env.Name)}.String()
	}
	_, err = r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.SetAction(commit, action)
		for i := range st.History {
			if st.History[i].Commit == commit && stopped != "" {
				st.History[i].Stopped = stopped
			}
		}
		st.Promote = nil
		switch {
		case action.Kind == state.ActionStalled:
			st.Phase, st.Message = state.PhaseStalled, action.Reason
		case action.Kind == state.ActionHeld && v.Outcome != state.OutcomeHealthy:
			st.Message = v.Reason + " (" + action.String() + ")"
		case stopped != "":
			// Say where the tree stopped, and who will not receive it.
			st.Message = stopped + " (" + action.String() + ")"
		case hopped:
			st.Message = ""
		}
		return nil
	})
	if err != nil {
		rn.log.Error("record decision", "error", err)
		return
	}
	rn.log.Info("decided", "action", action.String())
	if !hopped {
		r.announceAction(ctx, commit, v, action)
	}
}

func (r *Reconciler) clearPromoteRequest(ctx context.Context) {
	if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Promote = nil
		return nil
	}); err != nil {
		r.log.Error("clear the promote request", "error", err)
	}
}

// promoteAll takes a healthy revision to each target, one hop at a time:
// a hop enters when every environment its target requires holds the same
// tree healthy and the window is open (or a person said --now); it waits
// otherwise, and stops for good when a required environment failed the
// tree. Each hop's result is recorded in the verdict as it is decided.
// done is false while a hop waits; action sums up the hops once all are
// decided.
func (r *Reconciler) promoteAll(ctx context.Context, rn *run, st *state.State, v state.Verdict) (action state.Action, done bool, err error) {
	commit := rn.rev.Commit.Hash.String()
	req := st.Promote
	now := r.now()
	graph := r.graph
	if graph == nil {
		graph = pipeline.New(nil)
	}
	hops := make([]state.Hop, 0, len(r.env.Promote.Targets))
	waiting := []string{}
	var wake time.Time
	for _, t := range r.env.Promote.Targets {
		to := t.env.Name
		if h, ok := v.Hop(to); ok && !h.Action.IsZero() {
			hops = append(hops, *h)
			continue
		}
		if req != nil && req.To != "" && req.To != to {
			// A person promoted to another target only; this one keeps
			// whatever it was waiting for.
			if h, ok := v.Hop(to); ok {
				hops = append(hops, *h)
				waiting = append(waiting, to+": "+h.Waiting)
				continue
			}
		}
		window := r.env.Promote.Window
		if req != nil && req.Now && (req.To == "" || req.To == to) {
			window = nil
		}
		d := graph.Admit(to, func(env string) pipeline.Seen { return r.seen(ctx, env, rn.rev.Commit.TreeHash) }, window, now)
		hop := state.Hop{To: to}
		switch d.Verdict {
		case pipeline.Enter:
			a, err := r.promote(ctx, rn, t)
			if err != nil {
				return state.Action{}, false, err
			}
			if a.Kind == state.ActionPromoted && req != nil && req.By != "" {
				a.Reason = strings.TrimPrefix(a.Reason+", by "+req.By, ", ")
			}
			hop.Action = a
			r.announceAction(ctx, commit, v, a)
		case pipeline.Stop:
			hop.Action = state.Held(d.Reason)
			r.announceAction(ctx, commit, v, hop.Action)
		default:
			hop.Waiting, hop.Until = d.Reason, d.Until
			waiting = append(waiting, to+": "+d.Reason)
			if !d.Until.IsZero() && (wake.IsZero() || d.Until.Before(wake)) {
				wake = d.Until
			}
		}
		hops = append(hops, hop)
	}
	if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		for i := range st.History {
			if st.History[i].Commit == commit {
				st.History[i].Hops = hops
			}
		}
		if len(waiting) > 0 {
			st.Message = "promotion " + strings.Join(waiting, "; ")
		}
		if req != nil {
			st.Promote = nil // a request is acted on once
		}
		return nil
	}); err != nil {
		return state.Action{}, false, err
	}
	if len(waiting) > 0 {
		r.wake = wake
		return state.Action{}, false, nil
	}
	return sumHops(hops), true, nil
}

// sumHops is the action of a verdict whose hops are all decided: one hop
// is its own action; several promoted are "promoted to a, b"; a mix says
// each.
func sumHops(hops []state.Hop) state.Action {
	if len(hops) == 1 {
		return hops[0].Action
	}
	var promoted, parts []string
	for _, h := range hops {
		if h.Action.Kind == state.ActionPromoted {
			promoted = append(promoted, h.To)
		}
		parts = append(parts, h.To+": "+h.Action.String())
	}
	if len(promoted) == len(hops) {
		return state.Promoted(strings.Join(promoted, ", "), "")
	}
	return state.Held(strings.Join(parts, "; "))
}

// seen is how the tree stands in env: the newest verdict there on a
// commit with exactly this tree, or Verifying while such a commit is being
// reconciled, else Absent. Trees, not commits, are compared: a promotion
// commit carries the verified tree under a new hash.
func (r *Reconciler) seen(ctx context.Context, env string, tree plumbing.Hash) pipeline.Seen {
	p, ok := r.peers[env]
	if !ok {
		return pipeline.Seen{Standing: pipeline.Absent}
	}
	st, err := p.store.Load(ctx, env)
	if err != nil {
		return pipeline.Seen{Standing: pipeline.Absent}
	}
	sameTree := func(commit string) bool {
		rev, err := p.env.Repo.Revision(plumbing.NewHash(commit))
		return err == nil && rev.Commit.TreeHash == tree
	}
	for _, v := range st.History {
		if !sameTree(v.Commit) {
			continue
		}
		switch {
		case v.Outcome == state.OutcomeHealthy:
			return pipeline.Seen{Standing: pipeline.Healthy}
		case v.Action.IsZero():
			return pipeline.Seen{Standing: pipeline.Failed, Reason: v.Reason}
		default:
			return pipeline.Seen{Standing: pipeline.Failed, Reason: v.Reason + " (" + v.Action.String() + ")"}
		}
	}
	if st.Target != nil && sameTree(st.Target.Commit) {
		return pipeline.Seen{Standing: pipeline.Verifying}
	}
	return pipeline.Seen{Standing: pipeline.Absent}
}

// revert writes a revert commit on the environment's branch whose tree is
// the last healthy revision's, naming every commit since it, and pushes it
// only while the failed commit is still the tip.
func (r *Reconciler) revert(ctx context.Context, rn *run, st *state.State, v state.Verdict) (state.Action, error) {
	c := rn.rev.Commit
	if len(source.Trailer(c.Message, source.TrailerReverted)) > 0 {
		return state.Stalled(fmt.Sprintf("the revert %s failed too (%s); ferry does not revert a revert, a person must fix %s", state.Short(c.Hash.String()), v.Reason, r.env.Branch)), nil
	}
	if st.LastHealthy == nil {
		return state.Held("no healthy revision to revert to (first deploy)"), nil
	}
	lkg := plumbing.NewHash(st.LastHealthy.Commit)
	undone, err := r.env.Repo.FirstParents(c.Hash, lkg, 200)
	if err != nil {
		return state.Held("the last healthy revision is not in the branch's history: " + err.Error()), nil
	}
	lkgRev, err := r.env.Repo.Revision(lkg)
	if err != nil {
		return state.Action{}, err
	}
	if reason, err := r.destructive(ctx, lkgRev.Tree, st.Inventory); err != nil || reason != "" {
		if err != nil {
			return state.Action{}, err
		}
		return state.Held("the revert " + reason), nil
	}
	// Quarantine first: a crash after the push must not let the failed
	// rendering back in.
	if v.Digest != "" {
		if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
			if _, ok := st.Quarantined(v.Digest); !ok {
				st.Quarantine = append(st.Quarantine, state.Quarantined{Digest: v.Digest, Commit: c.Hash.String(), Reason: v.Reason, Time: r.now()})
			}
			return nil
		}); err != nil {
			return state.Action{}, err
		}
	}
	rev, err := r.env.Repo.CommitTree(lkgRev.Commit.TreeHash, []plumbing.Hash{c.Hash}, revertMessage(undone, v.Reason), r.now())
	if err != nil {
		return state.Action{}, err
	}
	if err := r.env.Repo.Push(ctx, r.env.Branch, rev.Hash(), c.Hash); err != nil {
		if errors.Is(err, source.ErrRejected) {
			return state.Superseded(), nil
		}
		return state.Action{}, err
	}
	rn.log.Info("reverted", "revert", rev.Short(), "undone", len(undone))
	r.watcher.Trigger()
	return state.Reverted(rev.Hash().String()), nil
}

// revertMessage is git's own revert form, one "This reverts" line per
// commit undone, plus ferry's trailers.
func revertMessage(undone []*object.Commit, reason string) string {
	var b strings.Builder
	subject := source.Subject(undone[0].Message)
	if len(undone) == 1 {
		fmt.Fprintf(&b, "Revert %q\n\n", subject)
	} else {
		fmt.Fprintf(&b, "Revert %q and %d earlier commits\n\n", subject, len(undone)-1)
	}
	for _, c := range undone {
		fmt.Fprintf(&b, "This reverts commit %s.\n", c.Hash)
	}
	b.WriteString("\n")
	for _, c := range undone {
		fmt.Fprintf(&b, "%s: %s\n", source.TrailerReverted, c.Hash)
	}
	fmt.Fprintf(&b, "%s: %s\n", source.TrailerReason, text.OneLine(reason, 200))
	return b.String()
}

// promote moves the verified revision to the target environment's branch:
// a fast-forward when possible, else a promotion commit on the target's
// tip with exactly the verified tree. It never drops a commit the target
// has and the revision lacks, other than ferry's own.
func (r *Reconciler) promote(ctx context.Context, rn *run, t *Reconciler) (state.Action, error) {
	to := t.env.Name
	if r.env.Promote.RequireSoak && r.env.Health.Soak == 0 {
		return state.Held("requireSoak is set and the environment has no soak"), nil
	}
	if t.env.Repo != r.env.Repo {
		return state.Held("promotion into another repository is not supported"), nil
	}
	c := rn.rev.Commit
	res, err := t.renderTree(ctx, rn.rev.Tree)
	if err != nil {
		return state.Held(fmt.Sprintf("%s does not render at %s: %v", to, state.Short(c.Hash.String()), err)), nil
	}
	tst, err := t.store.Load(ctx, to)
	if err != nil {
		return state.Action{}, err
	}
	if q, ok := tst.Quarantined(res.Digest); ok {
		return state.Held(fmt.Sprintf("%s renders identical to %s, reverted there", to, state.Short(q.Commit))), nil
	}
	if reason, err := t.destructive(ctx, rn.rev.Tree, tst.Inventory); err != nil || reason != "" {
		if err != nil {
			return state.Action{}, err
		}
		return state.Held("promoting to " + to + " " + reason), nil
	}
	if r.env.Promote.PullRequest {
		return r.promoteByPullRequest(ctx, rn, t)
	}
	for range 3 {
		action, err := r.promoteOnce(ctx, c, t)
		if errors.Is(err, source.ErrRejected) {
			continue // the target moved: fetch and decide again
		}
		if err == nil {
			r.wakeOther(ctx, t, true)
		}
		return action, err
	}
	return state.Action{}, fmt.Errorf("promote to %s: the branch kept moving", to)
}

func (r *Reconciler) promoteOnce(ctx context.Context, c *object.Commit, t *Reconciler) (state.Action, error) {
	repo, to := t.env.Repo, t.env.Name
	tip, err := repo.Fetch(ctx, t.env.Branch)
	if err != nil {
		return state.Action{}, err
	}
	if tip.Commit.TreeHash == c.TreeHash {
		return state.Promoted(to, ""), nil // already there, e.g. before a crash
	}
	ff, err := repo.IsAncestor(tip.Hash(), c.Hash)
	if err != nil {
		return state.Action{}, err
	}
	if ff {
		return state.Promoted(to, ""), repo.Push(ctx, t.env.Branch, c.Hash, tip.Hash())
	}
	if held, err := r.divergence(tip.Hash(), c, t); err != nil || !held.IsZero() {
		return held, err
	}
	rev, err := repo.CommitTree(c.TreeHash, []plumbing.Hash{tip.Hash()}, r.promotionMessage(c), r.now())
	if err != nil {
		return state.Action{}, err
	}
	return state.Promoted(to, ""), repo.Push(ctx, t.env.Branch, rev.Hash(), tip.Hash())
}

// divergence says why promoting c onto the target's tip would drop a
// commit someone made there (a hotfix), or "" when it would not.
func (r *Reconciler) divergence(tip plumbing.Hash, c *object.Commit, t *Reconciler) (state.Action, error) {
	missing, err := t.env.Repo.Missing(tip, c.Hash)
	if err != nil {
		return state.Action{}, err
	}
	for _, m := range missing {
		if !ferryCommit(m) {
			return state.Held(fmt.Sprintf("%s has %s (%s) that %s lacks", t.env.Branch, state.Short(m.Hash.String()), source.Subject(m.Message), r.env.Branch)), nil
		}
	}
	return state.Action{}, nil
}

func (r *Reconciler) promotionMessage(c *object.Commit) string {
	return fmt.Sprintf("Promote %s@%s: %s\n\n%s: %s@%s\n", r.env.Name, state.Short(c.Hash.String()), source.Subject(c.Message),
		source.TrailerPromotedFrom, r.env.Name, c.Hash)
}

// ferryCommit reports whether ferry wrote c (a promotion or a revert).
func ferryCommit(c *object.Commit) bool {
	return len(source.Trailer(c.Message, source.TrailerPromotedFrom)) > 0 || len(source.Trailer(c.Message, source.TrailerReverted)) > 0
}

// destructive says why applying this environment's path of tree would be
// too destructive for ferry to do without a person: it would delete a
// Namespace, PersistentVolumeClaim or CRD, or more than MaxPruneFraction of
// the inventory. Empty when it is not, or when the environment allows it.
func (r *Reconciler) destructive(ctx context.Context, tree *object.Tree, inv apply.Inventory) (string, error) {
	if r.env.AllowDestructive || len(inv) == 0 {
		return "", nil
	}
	res, err := r.renderTree(ctx, tree)
	if err != nil {
		return "", nil // nothing would be applied, so nothing pruned
	}
	planned, err := r.plannedInventory(res)
	if err != nil {
		return "", nil
	}
	return deletionRisk(inv, planned, r.env.MaxPruneFraction), nil
}

// deletionRisk is the pure rule behind destructive.
func deletionRisk(inv, planned apply.Inventory, maxFraction float64) string {
	stale := inv.Stale(planned)
	for _, e := range stale {
		m, err := e.Metadata()
		if err != nil {
			continue
		}
		switch m.GroupKind.Kind {
		case "Namespace", "PersistentVolumeClaim", "CustomResourceDefinition":
			return fmt.Sprintf("would delete %s %s; a person must do this", m.GroupKind.Kind, strings.TrimPrefix(m.Namespace+"/"+m.Name, "/"))
		}
	}
	if maxFraction > 0 && float64(len(stale)) > maxFraction*float64(len(inv)) {
		return fmt.Sprintf("would delete %d of %d objects, more than maxPruneFraction %.2f", len(stale), len(inv), maxFraction)
	}
	return ""
}
