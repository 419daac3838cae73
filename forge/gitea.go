package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"code.gitea.io/sdk/gitea"

	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// giteaDescriptionLimit is the longest description ferry sends to Gitea.
const giteaDescriptionLimit = 255

type giteaProvider struct {
	baseURL string
	token   string
	http    *http.Client
}

// NewGitea returns a Provider for a Gitea (or Forgejo) server at baseURL,
// through its API v1.
func NewGitea(baseURL, token string) (Provider, error) {
	if token == "" {
		return nil, errors.New("gitea provider: no token")
	}
	if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitea provider: base URL %s is not an http(s) URL", redactURL(baseURL))
	}
	return &giteaProvider{baseURL: baseURL, token: token, http: newHTTPClient()}, nil
}

// client returns an SDK client bound to ctx. Why one per call: the SDK
// holds its context on the client, so a shared client would let one
// caller's cancellation end another's request. Building one is cheap: the
// version probe is skipped.
func (g *giteaProvider) client(ctx context.Context) (*gitea.Client, error) {
	c, err := gitea.NewClient(g.baseURL, gitea.SetToken(g.token), gitea.SetHTTPClient(g.http),
		gitea.SetContext(ctx), gitea.SetGiteaVersion(""), gitea.SetUserAgent("ferry"))
	if err != nil {
		return nil, fmt.Errorf("gitea client: %s", text.Scrub(err.Error(), g.token))
	}
	return c, nil
}

var giteaStates = map[State]gitea.StatusState{
	Pending: gitea.StatusPending, Success: gitea.StatusSuccess, Failure: gitea.StatusFailure, Error: gitea.StatusError,
}

func (g *giteaProvider) SetStatus(ctx context.Context, repo Repo, s Status) error {
	op, err := s.op(repo)
	if err != nil {
		return err
	}
	c, err := g.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, resp, err := c.CreateStatus(repo.Owner, repo.Name, s.Commit, gitea.CreateStatusOption{
		State:       giteaStates[s.State],
		TargetURL:   s.TargetURL,
		Description: text.Truncate(s.Description, giteaDescriptionLimit),
		Context:     s.StatusContext(),
	})
	return g.error(ctx, op, resp, err)
}

// PullRequestHeads asks Gitea for the pull request merged as commit. Gitea
// records the commit a merge produced: the merge commit, the squash commit,
// or the last rebased commit; a 404 means no pull request produced commit.
func (g *giteaProvider) PullRequestHeads(ctx context.Context, repo Repo, commit string) ([]string, error) {
	op := fmt.Sprintf("%s@%s find pull requests", repo, state.Short(commit))
	c, err := g.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pr, resp, err := c.GetCommitPullRequest(repo.Owner, repo.Name, commit)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound && ctx.Err() == nil {
			return nil, nil
		}
		return nil, g.error(ctx, op, resp, err)
	}
	if pr == nil || !pr.HasMerged || pr.Head == nil || pr.Head.Sha == "" {
		return nil, nil
	}
	return appendHead(nil, commit, pr.Head.Sha), nil
}

// OpenPullRequests filters on the base branch itself: the SDK's listing
// has no such parameter.
func (g *giteaProvider) OpenPullRequests(ctx context.Context, repo Repo, base string) ([]PullRequest, error) {
	op := fmt.Sprintf("%s list pull requests into %s", repo, base)
	c, err := g.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	opt := gitea.ListPullRequestsOptions{ListOptions: gitea.ListOptions{Page: 1, PageSize: 50}, State: gitea.StateOpen}
	var out []PullRequest
	for {
		prs, resp, err := c.ListRepoPullRequests(repo.Owner, repo.Name, opt)
		if err != nil {
			return nil, g.error(ctx, op, resp, err)
		}
		for _, pr := range prs {
			if pr.Base == nil || pr.Base.Ref != base || pr.Head == nil {
				continue
			}
			out = append(out, PullRequest{Number: int(pr.Index), Head: pr.Head.Sha, Base: pr.Base.Ref, Branch: pr.Head.Ref, URL: pr.HTMLURL})
		}
		if resp == nil || resp.NextPage == 0 || len(prs) == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

func (g *giteaProvider) Comment(ctx context.Context, repo Repo, pr int, marker, body string) error {
	op := fmt.Sprintf("%s#%d comment %s", repo, pr, marker)
	c, err := g.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	list := func(page int) ([]comment, int, error) {
		opt := gitea.ListIssueCommentOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}}
		comments, resp, err := c.ListIssueComments(repo.Owner, repo.Name, int64(pr), opt)
		if err != nil {
			return nil, 0, g.error(ctx, op, resp, err)
		}
		out := make([]comment, 0, len(comments))
		for _, cm := range comments {
			out = append(out, comment{id: cm.ID, body: cm.Body})
		}
		if resp == nil || len(comments) == 0 {
			return out, 0, nil // Gitea may name a next page that is empty
		}
		return out, resp.NextPage, nil
	}
	edit := func(id int64, full string) error {
		_, resp, err := c.EditIssueComment(repo.Owner, repo.Name, id, gitea.EditIssueCommentOption{Body: full})
		return g.error(ctx, op, resp, err)
	}
	create := func(full string) error {
		_, resp, err := c.CreateIssueComment(repo.Owner, repo.Name, int64(pr), gitea.CreateIssueCommentOption{Body: full})
		return g.error(ctx, op, resp, err)
	}
	return upsertComment(op, marker, body, list, edit, create)
}

func (g *giteaProvider) error(ctx context.Context, op string, resp *gitea.Response, err error) error {
	return forgeError(ctx, "gitea", op, httpResponse(resp), err, g.token)
}

// CreatePullRequest opens a pull request from branch head into base.
func (g *giteaProvider) CreatePullRequest(ctx context.Context, repo Repo, head, base, title, body string) (PullRequest, error) {
	op := fmt.Sprintf("%s open pull request %s into %s", repo, head, base)
	c, err := g.client(ctx)
	if err != nil {
		return PullRequest{}, fmt.Errorf("%s: %w", op, err)
	}
	pr, resp, err := c.CreatePullRequest(repo.Owner, repo.Name, gitea.CreatePullRequestOption{Head: head, Base: base, Title: title, Body: body})
	if err != nil {
		return PullRequest{}, g.error(ctx, op, resp, err)
	}
	out := PullRequest{Number: int(pr.Index), Base: base, Branch: head, URL: pr.HTMLURL}
	if pr.Head != nil {
		out.Head = pr.Head.Sha
	}
	return out, nil
}

// ClosePullRequest comments on pull request number and closes it.
func (g *giteaProvider) ClosePullRequest(ctx context.Context, repo Repo, number int, comment string) error {
	op := fmt.Sprintf("%s close pull request #%d", repo, number)
	c, err := g.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, resp, err := c.CreateIssueComment(repo.Owner, repo.Name, int64(number), gitea.CreateIssueCommentOption{Body: comment}); err != nil {
		return g.error(ctx, op, resp, err)
	}
	closed := gitea.StateClosed
	if _, resp, err := c.EditPullRequest(repo.Owner, repo.Name, int64(number), gitea.EditPullRequestOption{State: &closed}); err != nil {
		return g.error(ctx, op, resp, err)
	}
	return nil
}
