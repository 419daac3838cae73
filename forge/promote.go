package forge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"ferry.dev/ferry/state"
)

// PullRequests is what promotion by pull request needs of a forge: list
// the open pull requests into a branch, open one, close one. The GitHub,
// GitLab and Gitea providers implement it.
type PullRequests interface {
	OpenPullRequests(ctx context.Context, repo Repo, base string) ([]PullRequest, error)
	PullRequestOpener
}

// Ref is how people name the pull request in text: "#12".
func (pr PullRequest) Ref() string { return fmt.Sprintf("#%d", pr.Number) }

// PromoteBranchPrefix starts the head branches of promotion pull requests
// into env: "ferry/promote/<env>/".
func PromoteBranchPrefix(env string) string { return "ferry/promote/" + env + "/" }

// Promotion proposes a verified commit to an environment's branch.
type Promotion struct {
	Repo Repo
	// Environment is the environment promoted into; Base is its branch.
	Environment, Base string
	// Commit is the verified commit.
	Commit string
	// Title and Body are the pull request's; Body carries the evidence.
	Title, Body string
}

// Branch is the promotion's head branch: ferry/promote/<env>/<short commit>.
func (p Promotion) Branch() string { return PromoteBranchPrefix(p.Environment) + state.Short(p.Commit) }

// Proposal is what Propose did.
type Proposal struct {
	// PullRequest carries the promotion; zero when there was nothing to propose.
	PullRequest PullRequest
	// Opened is true when Propose opened it, false when it was open already.
	Opened bool
	// NotClosed says which superseded pull requests could not be closed.
	// They stay open; the promotion is made all the same.
	NotClosed error
}

// Propose opens p's pull request through prs, once per commit. When one
// is open for p's branch already, it is returned and push is not called.
// Otherwise push puts p's branch on the forge's repository, or returns
// false when there is nothing to propose. Once the pull request is open,
// the older promotion pull requests into the same environment are closed,
// each with a comment pointing at the new one.
func Propose(ctx context.Context, prs PullRequests, p Promotion, push func(context.Context) (bool, error)) (Proposal, error) {
	open, err := prs.OpenPullRequests(ctx, p.Repo, p.Base)
	if err != nil {
		return Proposal{}, err
	}
	for _, pr := range open {
		if pr.Branch == p.Branch() {
			return Proposal{PullRequest: pr}, nil
		}
	}
	if pushed, err := push(ctx); err != nil || !pushed {
		return Proposal{}, err
	}
	pr, err := prs.CreatePullRequest(ctx, p.Repo, p.Branch(), p.Base, p.Title, p.Body)
	if err != nil {
		return Proposal{}, err
	}
	var notClosed []error
	for _, old := range open {
		if strings.HasPrefix(old.Branch, PromoteBranchPrefix(p.Environment)) {
			comment := "Superseded by " + pr.Ref() + ", which promotes a newer verified commit."
			if err := prs.ClosePullRequest(ctx, p.Repo, old.Number, comment); err != nil {
				notClosed = append(notClosed, fmt.Errorf("close superseded %s: %w", old.Ref(), err))
			}
		}
	}
	return Proposal{PullRequest: pr, Opened: true, NotClosed: errors.Join(notClosed...)}, nil
}
