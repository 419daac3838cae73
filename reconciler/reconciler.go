// Package reconciler runs each environment's loop: fetch, render, apply,
// prune, verify, decide, forge. It is the only package that knows the
// order; each step is a short function that records its phase in the state
// store, so status and badges show where an environment stands.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fluxcd/pkg/ssa"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/health"
	"ferry.dev/ferry/internal/faults"
	"ferry.dev/ferry/pipeline"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/scope"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// Environment is one environment's wiring, built from configuration.
type Environment struct {
	Name string
	// Path is the directory of the environment's overlay in the repository.
	Path string
	// Interval is how often drift is corrected when no commit arrives.
	Interval time.Duration
	// Prune deletes objects that left the rendering.
	Prune  bool
	Health health.Options
	// Repo is the clone of the environment's repository; Branch its branch.
	Repo   *source.Repository
	Branch string
	// OnFailure is "revert" or "hold".
	OnFailure string
	// MaxPruneFraction bounds how much of the inventory a revert or a
	// promotion into this environment may delete without a person.
	MaxPruneFraction float64
	// AllowDestructive lets reverts and promotions delete Namespaces,
	// PersistentVolumeClaims and CRDs, and exceed MaxPruneFraction.
	AllowDestructive bool
	// Promote, when set, promotes healthy revisions.
	Promote *Promotion
	// Scope is what its revisions may write, checked on every rendering
	// before anything is dry-run; Namespaced answers the check from the
	// API server's discovery.
	Scope      scope.Scope
	Namespaced scope.NamespacedFunc
	// Limits bound each rendering.
	Limits render.Limits
	// DriftCheckInterval is how often a pass dry-runs every object.
	DriftCheckInterval time.Duration
}

// Promotion says where healthy revisions go.
type Promotion struct {
	// Targets are the environments promoted into, each a hop of its own.
	Targets []*Reconciler
	// RequireSoak promotes only revisions verified with a soak.
	RequireSoak bool
	// PullRequest opens a pull request instead of pushing.
	PullRequest bool
	// Window is when promotions may leave; nil is always.
	Window *pipeline.Window
}

// Reconciler keeps one environment converged on its branch.
type Reconciler struct {
	env      Environment
	watcher  *source.Watcher
	renderer *render.Renderer
	applier  *apply.Applier
	checker  *health.Checker
	store    *state.Store
	log      *slog.Logger
	now      func() time.Time
	// sourceErr is the source error last recorded in the state.
	sourceErr string
	// pulls opens promotion pull requests; nil without a forge.
	pulls  forge.PullRequests
	notify notifier
	// keys reads the environment's SOPS decryption keys.
	keys keyLoader
	// graph is the shape of all environments, peers their reconcilers by
	// name, and deps those this one depends on.
	graph *pipeline.Graph
	peers map[string]*Reconciler
	deps  []*Reconciler
	// poke asks the loop to reconcile its current revision again: a
	// required environment or a dependency decided, or a window opened.
	poke chan struct{}
	// requests carries reconcile requests (RequestedAt values) seen on
	// the state ConfigMap (requests.go).
	requests chan string
	// wakePeer wakes another environment (Manager.wake), in this process
	// or on the replica holding it; nil wakes peers directly.
	wakePeer func(ctx context.Context, env string, poll bool)
	// wake is when a promotion window opens for a waiting hop; zero for
	// none.
	wake time.Time
	// stalls holds back the drift ticker from a commit a terminal error
	// stalled.
	stalls stalls
	// passes bound the environments of this process that render and
	// apply at once (passes.go); nil bounds nothing.
	passes passSlots
	// watches, when set, report changes of live objects (drift.go); nil
	// for one-shot commands.
	watches *apply.Watches
	drift   *drift
	// fullCheck is when the last pass dry-ran every object.
	fullCheck time.Time
	// last is what the last apply that went through left, to pass over a
	// converged rendering without redoing it (apply).
	last lastApply
}

// lastApply is a rendering's digest with its planned inventory, and the
// change set and inventory its last apply returned.
type lastApply struct {
	digest  string
	planned apply.Inventory
	applied *ssa.ChangeSet
	inv     apply.Inventory
}

// New wires a Reconciler for env.
func New(env Environment, w *source.Watcher, r *render.Renderer, a *apply.Applier, c *health.Checker, s *state.Store, log *slog.Logger) *Reconciler {
	return &Reconciler{env: env, watcher: w, renderer: r, applier: a, checker: c, store: s,
		log: log.With("environment", env.Name), now: time.Now,
		poke: make(chan struct{}, 1), requests: make(chan string, 1), drift: newDrift()}
}

// Poke asks the loop to reconcile its current revision again, without
// polling the branch. It never blocks; pokes coalesce.
func (r *Reconciler) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// pokePeers wakes the environments that may wait on this one: those
// depending on it, and the sources of those requiring it.
func (r *Reconciler) pokePeers(ctx context.Context) {
	if r.graph == nil {
		return
	}
	names := r.graph.Dependents(r.env.Name)
	for _, w := range r.graph.Waiting(r.env.Name) {
		names = append(names, r.graph.Sources(w)...)
	}
	for _, n := range names {
		if p, ok := r.peers[n]; ok {
			r.wakeOther(ctx, p, false)
		}
	}
}

// Name returns the environment's name.
func (r *Reconciler) Name() string { return r.env.Name }

// Trigger asks for an immediate poll of the environment's branch and a
// pass over the current revision, and lets a commit stalled by a terminal
// error be tried again.
func (r *Reconciler) Trigger() {
	r.stalls.clear()
	r.watcher.Trigger()
	r.Poke()
}

// Run reconciles until ctx is done. Each new tip of the branch is
// reconciled at once; between tips, drift is corrected every Interval.
// A newer tip cancels a running verification.
func (r *Reconciler) Run(ctx context.Context) error {
	r.redeliver(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- r.watcher.Run(ctx) }()
	// The first pass comes at a random point of the interval, and each
	// next one an interval later, give or take a tenth: environments
	// started together do not all pass at once.
	tick := time.NewTimer(time.Duration(float64(r.env.Interval) * (0.5 + 0.5*rand.Float64())))
	defer tick.Stop()
	driftDone := make(chan struct{})
	go func() { defer close(driftDone); r.correctDrift(ctx) }()
	r.fullCheck = r.now()
	var current *source.Revision
	for {
		var next *source.Revision
		var wake <-chan time.Time
		var timer *time.Timer
		if !r.wake.IsZero() {
			// The window's opening, measured on the loop's clock.
			timer = time.NewTimer(max(r.wake.Sub(r.now()), 0) + time.Second)
			wake = timer.C
		}
		request := ""
		select {
		case <-ctx.Done():
			<-watchErr
			<-driftDone
			return nil
		case next = <-r.watcher.Revisions():
			r.stalls.clear()
		case <-tick.C:
			tick.Reset(time.Duration(float64(r.env.Interval) * (0.9 + 0.2*rand.Float64())))
			r.noteSource(ctx)
			if current != nil && r.stalls.holds(current.Commit.Hash.String(), r.now()) {
				continue
			}
			if r.now().Sub(r.fullCheck) >= r.env.DriftCheckInterval {
				// The safety net: this pass asks about every object.
				r.applier.Forget()
				r.fullCheck = r.now()
			}
			next = current
		case <-r.poke:
			next = current
		case <-wake:
			next = current
		case request = <-r.requests:
			// Poll now and reconcile the tip, whatever the watcher's
			// timing; the watcher delivers the same tip later, which is
			// then a pass over a decided revision.
			if rev, err := r.env.Repo.Fetch(ctx, r.env.Branch); err == nil {
				next = rev
			} else {
				r.log.Error("reconcile request: fetch", "error", err)
				r.event(ctx, true, "ReconcileRequestFailed", "fetch %s for a reconcile request: %v; reconciling the current revision", r.env.Branch, err)
				next = current
			}
		}
		if timer != nil {
			timer.Stop()
		}
		r.wake = time.Time{}
		for next != nil {
			current = next
			next = r.reconcile(ctx, current)
		}
		if request != "" {
			if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
				st.Handled = request
				return nil
			}); err != nil {
				r.log.Error("record the handled request", "error", err)
			}
		}
	}
}

// noteSource records a change of the source's error in the state, so a
// wrong token or an unreachable server shows in status, not only in logs.
func (r *Reconciler) noteSource(ctx context.Context) {
	msg := ""
	if err := r.watcher.Err(); err != nil {
		msg = err.Error()
	}
	if msg == r.sourceErr {
		return
	}
	if msg != "" {
		r.log.Error("source", "error", msg)
	} else {
		r.log.Info("source recovered")
	}
	if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.SourceError = msg
		return nil
	}); err == nil {
		r.sourceErr = msg
	}
}

// run is one reconcile of rev: the list of steps.
type run struct {
	rev      *source.Revision
	started  time.Time
	rendered *render.Result
	applied  *ssa.ChangeSet
	inv      apply.Inventory
	newer    *source.Revision
	log      *slog.Logger
	// drifted is set when apply left objects out as drift.
	drifted bool
	// deadlines counts the renderings of this pass that ran past their
	// deadline.
	deadlines int
	// slot is the pass's claim on one of the process's pass slots, held
	// from render to verify.
	slot hold
}

// reconcile takes rev through the steps. It returns a newer revision that
// arrived during verification, which the caller reconciles next.
func (r *Reconciler) reconcile(ctx context.Context, rev *source.Revision) *source.Revision {
	commit := rev.Commit.Hash.String()
	rn := &run{rev: rev, started: r.now(), log: r.log.With("revision", state.Short(commit))}
	st, err := r.loadState(ctx, rn)
	if err != nil {
		return rn.newer
	}
	r.drift.setSuspended(st.Suspended != nil)
	if st.Suspended != nil {
		// Hands off: nothing is applied, pruned, reverted or promoted.
		rn.log.Info("suspended; not reconciling", "suspension", st.Suspended.String())
		r.status(commit, forge.Pending, st.Suspended.String())
		return nil
	}
	// A revision seen before is only re-applied to correct drift; one
	// refused as a whole is not applied at all. A refusal can be the
	// machine's (three renderings past their deadline), and a later
	// rendering that got through would otherwise apply what the verdict
	// says was not: what git has of it is reverted or held instead.
	v, decided := st.VerdictFor(commit)
	if decided && v.Outcome == state.OutcomeRefused {
		r.act(ctx, rn)
		return nil
	}
	steps := []struct {
		name string
		fn   func(context.Context, *run, bool) error
	}{
		{"dependencies", r.waitDeps},
		{"render", r.render},
		{"scope", r.scope},
		{"quarantine", r.gate},
		{"apply", r.apply},
		{"prune", r.prune},
		{"verify", r.verify},
	}
	completed := true
	rn.slot = hold{slots: r.passes}
	defer rn.slot.give()
	for _, s := range steps {
		switch s.name {
		case "render":
			if err := rn.slot.take(ctx); err != nil {
				return nil
			}
		case "verify":
			rn.slot.give()
		}
		if err := r.runStep(ctx, rn, s.name, s.fn, decided); err != nil {
			if errors.Is(err, errWaiting) {
				return nil // no verdict to act on; a dependency's decision pokes the loop
			}
			completed = errors.Is(err, errHeld)
			break
		}
	}
	if rn.newer == nil && ctx.Err() == nil {
		if completed && decided {
			r.settle(ctx, rn)
		}
		r.act(ctx, rn)
	}
	return rn.newer
}

// settle ends a Stalled, Retrying or Drifted phase that a drift pass over
// a decided revision left, once a pass goes through without drift: the
// phase returns to the verdict's.
func (r *Reconciler) settle(ctx context.Context, rn *run) {
	commit := rn.rev.Commit.Hash.String()
	unsettled := func(p state.Phase) bool {
		return p == state.PhaseStalled || p == state.PhaseRetrying || (p == state.PhaseDrifted && !rn.drifted)
	}
	if st, err := r.store.Load(ctx, r.env.Name); err != nil || !unsettled(st.Phase) {
		return // nothing to settle, or nothing readable: the next pass looks again
	}
	if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		v, ok := st.VerdictFor(commit)
		if !ok || !unsettled(st.Phase) || v.Action.Kind == state.ActionStalled {
			return nil
		}
		st.Phase, st.Message = state.PhaseHealthy, v.Reason
		if v.Outcome != state.OutcomeHealthy {
			st.Phase = state.PhaseFailed
		}
		return nil
	}); err != nil {
		rn.log.Error("settle phase", "error", err)
	}
}

func (r *Reconciler) setPhase(ctx context.Context, run *run, phase state.Phase, msg string) error {
	switch phase {
	case state.PhaseApplying:
		r.status(run.rev.Commit.Hash.String(), forge.Pending, forge.DescApplying)
	case state.PhaseVerifying:
		r.status(run.rev.Commit.Hash.String(), forge.Pending, forge.DescVerifying(r.env.Health.Soak))
	}
	_, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Phase, st.Message = phase, msg
		st.Target = &state.Revision{Commit: run.rev.Commit.Hash.String(), Time: run.started}
		if run.rendered != nil {
			st.Target.Digest = run.rendered.Digest
		}
		return nil
	})
	return err
}

func (r *Reconciler) render(ctx context.Context, run *run, decided bool) error {
	if !decided {
		if err := r.setPhase(ctx, run, state.PhaseRendering, ""); err != nil {
			return err
		}
	}
	res, err := r.renderTree(ctx, run.rev.Tree)
	if errors.Is(err, errKeys) {
		// No verdict on the commit: the keys are ferry's problem. The
		// next interval renders again.
		run.log.Error("render", "error", err)
		if _, uerr := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
			st.Phase, st.Message = state.PhaseFailed, err.Error()
			return nil
		}); uerr != nil {
			return uerr
		}
		return errHeld
	}
	if err != nil {
		return renderFault(run, err)
	}
	run.rendered = res
	return nil
}

// renderDeadlineTries is how many times a pass renders a commit whose
// rendering runs past its deadline before that is the commit's verdict.
const renderDeadlineTries = 3

// renderFault is the render step's error: a rendering past its deadline is
// tried again, renderDeadlineTries times in all, before it is a verdict. A
// deadline is the machine's as much as the commit's: ten environments
// starting at once on two cores slow a build of a good commit past it, and
// the retry joins that build and waits for it. Every other render error is
// the commit's and stays as it is.
func renderFault(run *run, err error) error {
	if !errors.Is(err, render.ErrDeadline) {
		return err
	}
	run.deadlines++
	if run.deadlines >= renderDeadlineTries {
		return fmt.Errorf("%w (%d tries)", err, run.deadlines)
	}
	return faults.Mark(faults.Transient, err)
}

// scope refuses a rendering that writes outside the environment's scope,
// before anything of it is dry-run or applied.
func (r *Reconciler) scope(_ context.Context, run *run, _ bool) error {
	return r.checkScope(run.rendered)
}

// checkScope checks a rendering against the environment's scope.
func (r *Reconciler) checkScope(res *render.Result) error {
	if r.env.Namespaced == nil {
		return nil // no cluster to ask: Environments built in tests
	}
	return scope.Check(r.env.Scope, res.Objects, res.Files, r.env.Namespaced)
}

// errHeld stops a reconcile that recorded its own verdict, without failure.
var errHeld = errors.New("held")

// errWaiting stops a reconcile that waits for its dependencies.
var errWaiting = errors.New("waiting for dependencies")

// waitDeps lets the reconcile go on only while every environment this one
// depends on is healthy at its current tip; otherwise the phase is Waiting
// with the reason, as "infra is Verifying 1a2b3c4".
func (r *Reconciler) waitDeps(ctx context.Context, run *run, decided bool) error {
	if len(r.deps) == 0 {
		return nil
	}
	deps := make([]pipeline.Dep, 0, len(r.deps))
	for _, d := range r.deps {
		st, err := d.store.Load(ctx, d.env.Name)
		if err != nil {
			return err
		}
		dep := pipeline.Dep{Name: d.env.Name, Phase: string(st.Phase)}
		if st.Target != nil {
			dep.Tip = st.Target.Commit
		}
		if st.LastHealthy != nil {
			dep.Healthy = st.LastHealthy.Commit
		}
		deps = append(deps, dep)
	}
	ready, reason := pipeline.Ready(deps)
	commit := run.rev.Commit.Hash.String()
	if ready {
		if decided {
			// A pass over a decided revision: leave Waiting for the phase
			// its verdict earned.
			_, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
				if st.Phase == state.PhaseWaiting {
					v, _ := st.VerdictFor(commit)
					st.Phase, st.Message = phaseOf(v.Outcome), v.Reason
				}
				return nil
			})
			return err
		}
		return nil
	}
	run.log.Info("waiting for dependencies", "reason", reason)
	_, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Phase, st.Message = state.PhaseWaiting, reason
		st.Target = &state.Revision{Commit: commit, Time: run.started}
		return nil
	})
	if err != nil {
		return err
	}
	r.status(commit, forge.Pending, "waiting: "+reason)
	return errWaiting
}

// phaseOf is the phase a verdict's outcome leaves an environment in.
func phaseOf(o state.Outcome) state.Phase {
	if o == state.OutcomeHealthy {
		return state.PhaseHealthy
	}
	return state.PhaseFailed
}

// gate holds a revision that renders to a quarantined digest, unless its
// commit carries the override trailer.
func (r *Reconciler) gate(ctx context.Context, run *run, decided bool) error {
	st, err := r.store.Load(ctx, r.env.Name)
	if err != nil {
		return err
	}
	q, ok := st.Quarantined(run.rendered.Digest)
	if !ok || slices.Contains(source.Trailer(run.rev.Commit.Message, source.TrailerOverride), "quarantine") {
		return nil
	}
	if !decided {
		reason := fmt.Sprintf("identical to reverted %s; release it with `ferry release %s %s`", state.Short(q.Commit), r.env.Name, state.Short(q.Commit))
		commit := run.rev.Commit.Hash.String()
		if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
			st.Phase, st.Message = state.PhaseFailed, reason
			st.Record(state.Verdict{Commit: commit, Digest: run.rendered.Digest, Outcome: state.OutcomeQuarantined, Reason: reason, Started: run.started, Finished: r.now()})
			return nil
		}); err != nil {
			return err
		}
		run.log.Info("held: quarantined rendering", "reverted", state.Short(q.Commit))
		r.announceVerdict(ctx, commit, state.OutcomeQuarantined, reason, run.started)
	}
	return errHeld
}

func (r *Reconciler) apply(ctx context.Context, run *run, decided bool) error {
	if !decided {
		if err := r.setPhase(ctx, run, state.PhaseApplying, fmt.Sprintf("%d objects", len(run.rendered.Objects))); err != nil {
			return err
		}
	}
	if decided && r.last.applied != nil && r.last.digest == run.rendered.Digest && r.applier.Settled() {
		// The same rendering, and the watches show every object as ferry
		// left it: nothing to ask the API server, nothing to write.
		run.applied, run.inv = r.last.applied, r.last.inv
		return nil
	}
	// Record every object this apply may create before creating it, so a
	// crash midway cannot leave an object that no inventory knows.
	planned, err := r.plannedInventory(run.rendered)
	if err != nil {
		return err
	}
	if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Inventory = union(st.Inventory, planned)
		return nil
	}); err != nil {
		return err
	}
	cs, err := r.applier.Apply(ctx, run.rendered.Objects)
	var de *apply.DriftError
	if errors.As(err, &de) {
		// Objects git did not change and someone else did: drift, no
		// verdict on this revision; they are left out of its verification.
		r.noteDrift(ctx, de)
		run.drifted, err = true, nil
	}
	if err != nil {
		return err
	}
	run.applied, run.inv = cs, apply.InventoryOf(cs)
	if r.watches != nil {
		// The pods of these namespaces are what the next verification
		// reads: their watches start now, not in the middle of it.
		if set, err := run.inv.ObjMetadataSet(); err == nil {
			_, namespaces := inventoryNamespaces(set)
			r.watches.EnsurePods(ctx, namespaces, watchSync)
		}
	}
	r.last = lastApply{digest: run.rendered.Digest, planned: planned, applied: cs, inv: run.inv}
	if run.drifted {
		r.last = lastApply{}
	}
	r.notify.metrics.Applied(r.env.Name, r.now())
	if changed := apply.Changes(cs); len(changed) > 0 {
		run.log.Info("applied", "changes", changed)
		for action, subjects := range changed {
			r.notify.metrics.AddChanges(r.env.Name, action, len(subjects))
		}
	}
	return nil
}

func (r *Reconciler) prune(ctx context.Context, run *run, decided bool) error {
	st, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		if !decided {
			st.Phase, st.Message = state.PhasePruning, ""
		}
		if la := st.LastApplied; la == nil || la.Commit != run.rev.Commit.Hash.String() || la.Digest != run.rendered.Digest {
			st.LastApplied = &state.Revision{Commit: run.rev.Commit.Hash.String(), Digest: run.rendered.Digest, Time: r.now()}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Stale is what left the rendering. An object still in git but left
	// alone (ferry.dev/reconcile: disabled in git) is not applied, so it is
	// not in run.inv; it is not stale either, and stays in the inventory
	// (TestLiveOptOutIsIgnored).
	rendered, err := r.plannedInventory(run.rendered)
	if err != nil {
		return err
	}
	stale := st.Inventory.Stale(rendered)
	leftAlone := st.Inventory.Stale(stale)
	keep := apply.Inventory{}
	if r.env.Prune && len(stale) > 0 {
		cs, err := r.applier.Prune(ctx, stale)
		if cs != nil {
			for _, e := range cs.Entries {
				if e.Action == ssa.UnknownAction { // delete failed: keep it for the next try
					keep = append(keep, apply.Entry{ID: e.ObjMetadata.String(), Version: e.GroupVersion})
				}
			}
			if changed := apply.Changes(cs); len(changed) > 0 {
				run.log.Info("pruned", "changes", changed)
			}
		}
		if err != nil {
			run.log.Error("prune", "error", err)
		}
	}
	_, err = r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Inventory = union(union(run.inv, keep), leftAlone)
		return nil
	})
	return err
}

func (r *Reconciler) verify(ctx context.Context, run *run, decided bool) error {
	// From here on the pass needs the rendering's digest only, and a
	// verification may take minutes: the objects go.
	run.rendered.Objects, run.rendered.Files = nil, nil
	if decided {
		return nil
	}
	msg := "waiting for health"
	if r.env.Health.Soak > 0 {
		msg = fmt.Sprintf("verifying (soak %s)", r.env.Health.Soak)
	}
	if err := r.setPhase(ctx, run, state.PhaseVerifying, msg); err != nil {
		return err
	}
	set, err := run.inv.ObjMetadataSet()
	if err != nil {
		return err
	}
	if r.watches != nil {
		namespaces, list := inventoryNamespaces(set)
		r.watches.EnsurePods(ctx, list, watchSync)
		r.drift.verifying(namespaces)
		defer r.drift.verifying(nil)
	}
	vctx, cancel := context.WithCancel(ctx)
	newer := make(chan *source.Revision, 1)
	go func() {
		select {
		case rev := <-r.watcher.Revisions():
			newer <- rev
			cancel()
		case <-vctx.Done():
			newer <- nil
		}
	}()
	verdict, err := r.checker.Check(vctx, set, r.env.Health)
	cancel()
	run.newer = <-newer
	if run.newer != nil {
		run.log.Info("verification cancelled by a newer commit", "newer", state.Short(run.newer.Commit.Hash.String()))
		return nil
	}
	if err != nil {
		return err
	}
	return r.decide(ctx, run, verdict)
}

// decide records the verdict. A healthy revision becomes the environment's
// last known good revision.
func (r *Reconciler) decide(ctx context.Context, run *run, v *health.Verdict) error {
	commit := run.rev.Commit.Hash.String()
	outcome := state.OutcomeHealthy
	phase := state.PhaseHealthy
	switch v.Outcome {
	case health.Failed:
		outcome, phase = state.OutcomeFailed, state.PhaseFailed
	case health.TimedOut:
		outcome, phase = state.OutcomeTimedOut, state.PhaseFailed
	}
	_, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Phase, st.Message = phase, v.Reason
		st.Record(state.Verdict{Commit: commit, Digest: run.rendered.Digest, Outcome: outcome, Reason: v.Reason,
			Started: run.started, Finished: r.now()})
		if outcome == state.OutcomeHealthy {
			st.LastHealthy = &state.Revision{Commit: commit, Digest: run.rendered.Digest, Time: r.now()}
		}
		return nil
	})
	if err != nil {
		return err
	}
	run.log.Info("verdict", "outcome", outcome, "reason", v.Reason, "duration", r.now().Sub(run.started).Round(time.Millisecond))
	r.announceVerdict(ctx, commit, outcome, v.Reason, run.started)
	r.pokePeers(ctx)
	return nil
}

// fail records a render or apply error as the revision's verdict. Nothing
// is pruned after a failure.
func (r *Reconciler) fail(ctx context.Context, run *run, step string, err error, decided bool) {
	if decided {
		// Already recorded: this is a drift-correction pass over a known failure.
		run.log.Debug(step+" failed", "error", err)
		return
	}
	run.log.Error(step+" failed", "error", err)
	commit := run.rev.Commit.Hash.String()
	reason := fmt.Sprintf("%s: %v", step, err)
	outcome := state.OutcomeError
	if errors.Is(err, scope.ErrOutOfScope) || errors.Is(err, render.ErrLimit) {
		// The commit itself is refused: nothing of it was applied.
		outcome, reason = state.OutcomeRefused, fmt.Sprintf("not applied: %v", err)
	}
	digest := ""
	if run.rendered != nil {
		digest = run.rendered.Digest
	}
	if _, uerr := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Phase, st.Message = state.PhaseFailed, reason
		st.Record(state.Verdict{Commit: commit, Digest: digest, Outcome: outcome, Reason: reason, Started: run.started, Finished: r.now()})
		return nil
	}); uerr != nil {
		run.log.Error("record failure", "error", errors.Join(err, uerr))
		return
	}
	r.announceVerdict(ctx, commit, outcome, reason, run.started)
	r.pokePeers(ctx)
}

func (r *Reconciler) plannedInventory(res *render.Result) (apply.Inventory, error) {
	if r.last.planned != nil && r.last.digest == res.Digest {
		return r.last.planned, nil
	}
	return r.applier.Inventory(res.Objects)
}

func union(a, b apply.Inventory) apply.Inventory {
	cs := ssa.NewChangeSet()
	for _, inv := range []apply.Inventory{a, b} {
		for _, e := range inv {
			m, err := e.Metadata()
			if err != nil {
				continue
			}
			cs.Add(ssa.ChangeSetEntry{ObjMetadata: m, GroupVersion: e.Version})
		}
	}
	return apply.InventoryOf(cs)
}
