package reconciler

import (
	"context"
	"fmt"
	"sync"

	"github.com/fluxcd/pkg/ssa"

	"ferry.dev/ferry/forge"
)

// planned remembers which pull request heads were planned, per environment.
type planned struct {
	mu   sync.Mutex
	seen map[string]bool // env + "@" + head SHA
}

func (p *planned) first(env, head string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	key := env + "@" + head
	if p.seen[key] {
		return false
	}
	p.seen[key] = true
	return true
}

// PlanPullRequest posts, for each environment that follows base of repo,
// the plan of pull request number at head: status ferry/plan/<env> on the
// head commit and one comment on the pull request, updated in place on
// later pushes. It renders the pull request's head and dry-runs it against
// the environment's cluster; nothing is written there. A head already
// planned is not planned again.
func (m *Manager) PlanPullRequest(ctx context.Context, repo forge.Repo, number int, head, base string) {
	for _, name := range m.Watches(repo, base) {
		r := m.envs[name]
		if r.notify.reporter == nil || !m.planned.first(name, head) {
			continue
		}
		plan := r.plan(ctx, number, head)
		r.notify.reporter.Post(r.notify.repo, plan.Status(forge.TargetURL(r.notify.externalURL, name, head)))
		r.notify.reporter.Comment(r.notify.repo, number, plan.Marker(), plan.Comment())
		r.log.Info("planned pull request", "number", number, "head", head[:min(7, len(head))], "summary", plan.Summary())
	}
}

// plan renders and dry-runs the head of pull request number.
func (r *Reconciler) plan(ctx context.Context, number int, head string) forge.Plan {
	p := forge.Plan{Environment: r.env.Name, Commit: head}
	rev, err := r.env.Repo.FetchRef(ctx, fmt.Sprintf("refs/pull/%d/head", number))
	if err != nil {
		p.Err = err.Error()
		return p
	}
	if rev.Hash().String() != head {
		// The pull request moved on; its newer head gets its own plan.
		p.Commit = rev.Hash().String()
	}
	res, err := r.renderer.Render(ctx, rev.Tree, r.env.Path)
	if err != nil {
		p.Err = fmt.Sprintf("render %s: %v", r.env.Path, err)
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
		p.Objects = append(p.Objects, forge.PlanObject{Subject: o.Subject, Action: action, Diff: o.Unified})
	}
	return p
}

// pollPullRequests plans the open pull requests into the environment's
// branch that no webhook announced.
func (m *Manager) pollPullRequests(ctx context.Context, prs pullRequestLister) {
	for _, e := range m.cfg.Environments {
		r := m.envs[e.Name]
		if !r.notify.hasRepo {
			continue
		}
		open, err := prs.OpenPullRequests(ctx, r.notify.repo, e.Source.Branch)
		if err != nil {
			r.log.Debug("list pull requests", "error", err)
			continue
		}
		for _, pr := range open {
			m.PlanPullRequest(ctx, r.notify.repo, pr.Number, pr.Head, e.Source.Branch)
		}
	}
}
