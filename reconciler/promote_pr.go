package reconciler

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// promoteByPullRequest proposes the verified commit to the target
// environment as a pull request (forge.Propose): its branch
// ferry/promote/<to>/<short> holds what a push promotion would put on the
// target branch, and its body the evidence. A commit that has its pull
// request gets no second one; older promotion pull requests are closed.
func (r *Reconciler) promoteByPullRequest(ctx context.Context, rn *run, t *Reconciler) (state.Action, error) {
	if r.pulls == nil {
		return state.Held("pull-request promotion needs report.provider (github, gitlab or gitea)"), nil
	}
	c := rn.rev.Commit
	repo, to := t.env.Repo, t.env.Name
	forgeRepo, err := forge.ParseRepo(repo.URL())
	if err != nil {
		return state.Held("pull-request promotion: " + err.Error()), nil
	}
	p := forge.Promotion{Repo: forgeRepo, Environment: to, Base: t.env.Branch, Commit: c.Hash.String(),
		Title: fmt.Sprintf("Promote %s@%s to %s: %s", r.env.Name, state.Short(c.Hash.String()), to, source.Subject(c.Message)),
		Body:  r.evidence(ctx, rn, to)}
	var held state.Action
	push := func(ctx context.Context) (bool, error) {
		tip, err := repo.Fetch(ctx, t.env.Branch)
		if err != nil || tip.Commit.TreeHash == c.TreeHash {
			return false, err // nothing to propose when the target has the tree
		}
		head := c.Hash
		if ff, err := repo.IsAncestor(tip.Hash(), c.Hash); err != nil {
			return false, err
		} else if !ff {
			if held, err = r.divergence(tip.Hash(), c, t); err != nil || !held.IsZero() {
				return false, err
			}
			rev, err := repo.CommitTree(c.TreeHash, []plumbing.Hash{tip.Hash()}, r.promotionMessage(c), r.now())
			if err != nil {
				return false, err
			}
			head = rev.Hash()
		}
		return true, repo.Push(ctx, p.Branch(), head, plumbing.ZeroHash)
	}
	proposal, err := forge.Propose(ctx, r.pulls, p, push)
	switch {
	case err != nil:
		return state.Action{}, err
	case !held.IsZero():
		return held, nil
	case proposal.PullRequest.Number == 0:
		return state.Promoted(to, ""), nil
	}
	if proposal.NotClosed != nil {
		rn.log.Error("close superseded promotion pull requests", "error", proposal.NotClosed)
		r.event(ctx, true, "SupersededPullRequestsOpen", "superseded promotion pull requests into %s left open: %v", to, proposal.NotClosed)
	}
	return state.Promoted(to, "pull request "+proposal.PullRequest.Ref()), nil
}

// evidence is the body of a promotion pull request: the verdict the
// commit earned in this environment.
func (r *Reconciler) evidence(ctx context.Context, rn *run, to string) string {
	commit := rn.rev.Commit.Hash.String()
	var b strings.Builder
	fmt.Fprintf(&b, "ferry verified `%s` in **%s** and promotes exactly that tree.\n\n", state.Short(commit), r.env.Name)
	if st, err := r.store.Load(ctx, r.env.Name); err == nil {
		if v, ok := st.VerdictFor(commit); ok {
			fmt.Fprintf(&b, "| | |\n|---|---|\n| verdict | %s |\n| reason | %s |\n| digest | `%s` |\n| verified in | %s |\n",
				v.Outcome, v.Reason, v.Digest, v.Finished.Sub(v.Started).Round(1e6))
		}
	}
	if r.env.Health.Soak > 0 {
		fmt.Fprintf(&b, "| soak | %s |\n", r.env.Health.Soak)
	}
	fmt.Fprintf(&b, "\nMerging moves %s onto this tree.\n", to)
	return b.String()
}
