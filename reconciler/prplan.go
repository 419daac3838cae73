package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/ssa"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/internal/text"
)

// Pull requests are untrusted: anyone may open one, and from a fork anyone
// wrote it. So a plan renders and dry-runs a pull request's head only when
// it comes from the repository itself, or report.planForks allows forks,
// or a user with write access asked with a "/ferry plan" comment (checked
// through the forge's API); otherwise its status says it was skipped and
// how to have it planned, and nothing of it is fetched. The plan never
// shows an object outside the environment's scope: such a rendering fails
// the plan with the scope's message. Plans run in a bounded queue, each
// under a deadline (planqueue.go), and the fetched head is released after.

// skippedFork is the status of a fork's pull request nobody allowed.
const skippedFork = "from a fork, not rendered; a user with write access may comment " + forge.PlanCommand + ", or set report.planForks"

// PlanPullRequest posts, for each environment that follows base of repo,
// the plan of pull request number at head: status ferry/plan/<env> on the
// head commit and one comment on the pull request, updated in place on
// later pushes. The plans run in the background, in the plan queue; a head
// already planned is not planned again. Only the replica running an
// environment plans for it: another one asks that replica, through a
// reconcile request, to poll the environment's pull requests now.
func (m *Manager) PlanPullRequest(ctx context.Context, repo forge.Repo, number int, head, base string) {
	for _, name := range m.Watches(repo, base) {
		r := m.envs[name]
		if r.notify.reporter == nil {
			continue
		}
		le, local := m.isLocal(name)
		if !local {
			m.wake(ctx, name, true)
			continue
		}
		m.planIn(le.ctx, r, repo, number, head)
	}
}

// planIn queues the plan of pull request number at head for r, unless it
// was planned already; ctx is r's run.
func (m *Manager) planIn(ctx context.Context, r *Reconciler, repo forge.Repo, number int, head string) {
	key := r.env.Name + "@" + head
	if !m.plans.first(key) {
		return
	}
	if !m.plans.submit(ctx, func(ctx context.Context) { m.planOne(ctx, r, repo, number, head, key) }) {
		m.plans.forget(key) // the queue is full: the next poll finds it again
		r.log.Warn("plan queue full; pull request planned later", "number", number)
	}
}

// planOne plans one pull request for one environment, if it is trusted.
func (m *Manager) planOne(ctx context.Context, r *Reconciler, repo forge.Repo, number int, head, key string) {
	plan := forge.Plan{Environment: r.env.Name, Commit: head}
	ref, why, err := m.trusted(ctx, repo, number)
	switch {
	case err != nil:
		r.log.Warn("pull request not planned", "number", number, "error", err)
		why = "not planned yet: the forge could not tell whether it may be (" + text.OneLine(err.Error(), 200) + "); asked again at the next poll"
		fallthrough
	case why != "":
		// Asked again at the next poll, for a "/ferry plan" comment or
		// after the forge's error; the reporter posts the same status only
		// once.
		m.plans.forget(key)
		plan.Skipped = why
		r.notify.reporter.Post(r.notify.repo, plan.Status(forge.TargetURL(r.notify.externalURL, r.env.Name, head)))
		return
	}
	plan = r.plan(ctx, ref, head)
	r.notify.reporter.Post(r.notify.repo, plan.Status(forge.TargetURL(r.notify.externalURL, r.env.Name, head)))
	r.notify.reporter.Comment(r.notify.repo, number, plan.Marker(), plan.Comment())
	r.log.Info("planned pull request", "number", number, "head", head[:min(7, len(head))], "summary", plan.Summary())
}

// trusted returns the ref of pull request number's head when it may be
// planned, or why not.
func (m *Manager) trusted(ctx context.Context, repo forge.Repo, number int) (ref, why string, err error) {
	ref = forge.HeadRef(m.cfg.Report.Provider, number)
	if m.trust == nil {
		return ref, "", nil // a forge that cannot tell forks lists no pull requests either
	}
	pr, err := m.trust.PullRequest(ctx, repo, number)
	if err != nil {
		return "", "", err
	}
	if pr.HeadRef != "" {
		ref = pr.HeadRef
	}
	if !pr.Fork || m.cfg.Report.PlanForks {
		return ref, "", nil
	}
	users, err := m.trust.PlanRequesters(ctx, repo, number)
	if err != nil {
		return "", "", err
	}
	for _, u := range users {
		ok, err := m.trust.CanWrite(ctx, repo, u)
		if err != nil {
			return "", "", err
		}
		if ok {
			return ref, "", nil
		}
	}
	return "", skippedFork, nil
}

// plan renders and dry-runs the head of a pull request, fetched from ref,
// and releases the fetched ref after.
func (r *Reconciler) plan(ctx context.Context, ref, head string) forge.Plan {
	p := forge.Plan{Environment: r.env.Name, Commit: head}
	rev, err := r.env.Repo.FetchRef(ctx, ref)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	defer func() {
		if err := r.env.Repo.ReleaseRef(ref); err != nil {
			r.log.Warn("release pull request ref", "ref", ref, "error", err)
		}
	}()
	if rev.Hash().String() != head {
		// The pull request moved on; its newer head gets its own plan.
		p.Commit = rev.Hash().String()
	}
	res, err := r.renderTree(ctx, rev.Tree)
	if err != nil {
		p.Err = fmt.Sprintf("render %s: %v", r.env.Path, err)
		return p
	}
	if err := r.checkScope(res); err != nil {
		p.Err = fmt.Sprintf("not applied: %v", err)
		return p
	}
	st, err := r.store.Load(ctx, r.env.Name)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	dry, err := r.applier.Plan(ctx, res.Objects, st.Inventory)
	if err != nil {
		p.Err = fmt.Sprintf("dry-run: %v", err)
		return p
	}
	p.Created, p.Changed, p.Pruned = dry.Created, dry.Changed, dry.Pruned
	for _, o := range dry.Objects {
		action := string(o.Action)
		if o.Action == ssa.DeletedAction {
			action = "pruned"
		}
		po := forge.PlanObject{Subject: o.Subject, Action: action, Diff: o.Unified}
		if o.Keys != nil {
			po.Detail = o.Keys.String()
		}
		p.Objects = append(p.Objects, po)
	}
	return p
}

// pollPullRequests plans the open pull requests into r's branch that no
// webhook announced, every planEvery and whenever now receives, until ctx
// (r's run) is done.
func (m *Manager) pollPullRequests(ctx context.Context, r *Reconciler, now <-chan struct{}) {
	tick := time.NewTicker(m.planEvery)
	defer tick.Stop()
	for {
		open, err := m.pulls.OpenPullRequests(ctx, r.notify.repo, r.env.Branch)
		if err != nil {
			r.log.Debug("list pull requests", "error", err)
		}
		for _, pr := range open {
			m.planIn(ctx, r, r.notify.repo, pr.Number, pr.Head)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-now:
		}
	}
}
