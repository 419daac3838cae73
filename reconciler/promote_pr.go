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

// PullRequests lists, opens and closes pull requests on the forge, for
// pull-request-mode promotion. The report providers implement it.
type PullRequests interface {
	OpenPullRequests(ctx context.Context, repo forge.Repo, base string) ([]forge.PullRequest, error)
	forge.PullRequestOpener
}

// promoteBranchPrefix starts the branches of promotion pull requests into env.
func promoteBranchPrefix(env string) string { return "ferry/promote/" + env + "/" }

// promoteByPullRequest pushes ferry/promote/<to>/<short> with what a push
// promotion would put on the target branch, and opens one pull request
// for it with the evidence. An open promotion pull request for an older
// commit is closed with a pointer to the new one. A commit that already
// has its pull request gets no second one.
func (r *Reconciler) promoteByPullRequest(ctx context.Context, rn *run, t *Reconciler) (state.Action, error) {
	if r.pulls == nil {
		return state.Held("pull-request promotion needs forge.provider (github, gitlab or gitea)"), nil
	}
	c := rn.rev.Commit
	repo, to := t.env.Repo, t.env.Name
	forgeRepo, err := forge.ParseRepo(repo.URL())
	if err != nil {
		return state.Held("pull-request promotion: " + err.Error()), nil
	}
	branch := promoteBranchPrefix(to) + state.Short(c.Hash.String())
	open, err := r.pulls.OpenPullRequests(ctx, forgeRepo, t.env.Branch)
	if err != nil {
		return state.Action{}, err
	}
	for _, pr := range open {
		if pr.Branch == branch {
			return state.Promoted(to, "pull request "+prRef(pr)), nil
		}
	}
	tip, err := repo.Fetch(ctx, t.env.Branch)
	if err != nil {
		return state.Action{}, err
	}
	if tip.Commit.TreeHash == c.TreeHash {
		return state.Promoted(to, ""), nil // nothing to propose
	}
	head := c.Hash
	if ff, err := repo.IsAncestor(tip.Hash(), c.Hash); err != nil {
		return state.Action{}, err
	} else if !ff {
		if held, err := r.divergence(tip.Hash(), c, t); err != nil || !held.IsZero() {
			return held, err
		}
		rev, err := repo.CommitTree(c.TreeHash, []plumbing.Hash{tip.Hash()}, r.promotionMessage(c), r.now())
		if err != nil {
			return state.Action{}, err
		}
		head = rev.Hash()
	}
	if err := repo.Push(ctx, branch, head, plumbing.ZeroHash); err != nil {
		return state.Action{}, err
	}
	title := fmt.Sprintf("Promote %s@%s to %s: %s", r.env.Name, state.Short(c.Hash.String()), to, source.Subject(c.Message))
	pr, err := r.pulls.CreatePullRequest(ctx, forgeRepo, branch, t.env.Branch, title, r.evidence(ctx, rn))
	if err != nil {
		return state.Action{}, err
	}
	for _, old := range open {
		if strings.HasPrefix(old.Branch, promoteBranchPrefix(to)) {
			if err := r.pulls.ClosePullRequest(ctx, forgeRepo, old.Number, "Superseded by "+prRef(pr)+", which promotes a newer verified commit."); err != nil {
				rn.log.Error("close superseded promotion pull request", "number", old.Number, "error", err)
			}
		}
	}
	return state.Promoted(to, "pull request "+prRef(pr)), nil
}

func prRef(pr forge.PullRequest) string { return fmt.Sprintf("#%d", pr.Number) }

// evidence is the body of a promotion pull request: the verdict the
// commit earned in this environment.
func (r *Reconciler) evidence(ctx context.Context, rn *run) string {
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
	fmt.Fprintf(&b, "\nMerging moves %s onto this tree.\n", r.env.Promote.Target.env.Name)
	return b.String()
}
