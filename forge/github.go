package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v75/github"

	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// githubDescriptionLimit is the longest description GitHub accepts.
const githubDescriptionLimit = 140

type gitHub struct {
	client *github.Client
	token  string
}

// NewGitHub returns a Provider for GitHub through its REST API. baseURL ""
// is api.github.com; for GitHub Enterprise give the server's URL (the
// /api/v3/ path is added when missing).
func NewGitHub(baseURL, token string) (Provider, error) {
	if token == "" {
		return nil, errors.New("github provider: no token")
	}
	c := github.NewClient(newHTTPClient()).WithAuthToken(token)
	if baseURL != "" {
		var err error
		if c, err = c.WithEnterpriseURLs(baseURL, baseURL); err != nil {
			return nil, fmt.Errorf("github provider: base URL %s: %w", redactURL(baseURL), errors.New("not a URL"))
		}
	}
	return &gitHub{client: c, token: token}, nil
}

var githubStates = map[State]string{Pending: "pending", Success: "success", Failure: "failure", Error: "error"}

func (g *gitHub) SetStatus(ctx context.Context, repo Repo, s Status) error {
	op, err := s.op(repo)
	if err != nil {
		return err
	}
	st := &github.RepoStatus{
		State:       github.Ptr(githubStates[s.State]),
		Context:     github.Ptr(s.StatusContext()),
		Description: github.Ptr(text.Truncate(s.Description, githubDescriptionLimit)),
	}
	if s.TargetURL != "" {
		st.TargetURL = github.Ptr(s.TargetURL)
	}
	_, resp, err := g.client.Repositories.CreateStatus(ctx, repo.Owner, repo.Name, s.Commit, st)
	return g.error(ctx, op, resp, err)
}

func (g *gitHub) PullRequestHeads(ctx context.Context, repo Repo, commit string) ([]string, error) {
	op := fmt.Sprintf("%s@%s find pull requests", repo, state.Short(commit))
	prs, resp, err := g.client.PullRequests.ListPullRequestsWithCommit(ctx, repo.Owner, repo.Name, commit, &github.ListOptions{PerPage: 100})
	if err != nil {
		return nil, g.error(ctx, op, resp, err)
	}
	var heads []string
	for _, pr := range prs {
		if pr.MergedAt == nil || pr.GetHead().GetSHA() == "" {
			continue // open pull requests containing commit did not bring it
		}
		heads = appendHead(heads, commit, pr.GetHead().GetSHA())
	}
	return heads, nil
}

func (g *gitHub) OpenPullRequests(ctx context.Context, repo Repo, base string) ([]PullRequest, error) {
	op := fmt.Sprintf("%s list pull requests into %s", repo, base)
	opts := &github.PullRequestListOptions{State: "open", Base: base, ListOptions: github.ListOptions{PerPage: 100}}
	var out []PullRequest
	for {
		prs, resp, err := g.client.PullRequests.List(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return nil, g.error(ctx, op, resp, err)
		}
		for _, pr := range prs {
			out = append(out, PullRequest{Number: pr.GetNumber(), Head: pr.GetHead().GetSHA(), Base: pr.GetBase().GetRef(),
				Branch: pr.GetHead().GetRef(), URL: pr.GetHTMLURL()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

func (g *gitHub) Comment(ctx context.Context, repo Repo, pr int, marker, body string) error {
	op := fmt.Sprintf("%s#%d comment %s", repo, pr, marker)
	list := func(page int) ([]comment, int, error) {
		opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
		if page > 1 {
			opts.Page = page
		}
		comments, resp, err := g.client.Issues.ListComments(ctx, repo.Owner, repo.Name, pr, opts)
		if err != nil {
			return nil, 0, g.error(ctx, op, resp, err)
		}
		out := make([]comment, 0, len(comments))
		for _, c := range comments {
			out = append(out, comment{id: c.GetID(), body: c.GetBody()})
		}
		return out, resp.NextPage, nil
	}
	edit := func(id int64, full string) error {
		_, resp, err := g.client.Issues.EditComment(ctx, repo.Owner, repo.Name, id, &github.IssueComment{Body: github.Ptr(full)})
		return g.error(ctx, op, resp, err)
	}
	create := func(full string) error {
		_, resp, err := g.client.Issues.CreateComment(ctx, repo.Owner, repo.Name, pr, &github.IssueComment{Body: github.Ptr(full)})
		return g.error(ctx, op, resp, err)
	}
	return upsertComment(op, marker, body, list, edit, create)
}

// CreatePullRequest opens a pull request from branch head into base.
func (g *gitHub) CreatePullRequest(ctx context.Context, repo Repo, head, base, title, body string) (PullRequest, error) {
	op := fmt.Sprintf("%s open pull request %s into %s", repo, head, base)
	pr, resp, err := g.client.PullRequests.Create(ctx, repo.Owner, repo.Name, &github.NewPullRequest{
		Title: github.Ptr(title), Head: github.Ptr(head), Base: github.Ptr(base), Body: github.Ptr(body)})
	if err != nil {
		return PullRequest{}, g.error(ctx, op, resp, err)
	}
	return PullRequest{Number: pr.GetNumber(), Head: pr.GetHead().GetSHA(), Base: base, Branch: head, URL: pr.GetHTMLURL()}, nil
}

// ClosePullRequest comments on pull request number and closes it.
func (g *gitHub) ClosePullRequest(ctx context.Context, repo Repo, number int, comment string) error {
	op := fmt.Sprintf("%s#%d close", repo, number)
	if _, resp, err := g.client.Issues.CreateComment(ctx, repo.Owner, repo.Name, number, &github.IssueComment{Body: github.Ptr(comment)}); err != nil {
		return g.error(ctx, op, resp, err)
	}
	_, resp, err := g.client.PullRequests.Edit(ctx, repo.Owner, repo.Name, number, &github.PullRequest{State: github.Ptr("closed")})
	return g.error(ctx, op, resp, err)
}

// error converts a go-github error; nil stays nil. go-github refuses
// requests on its own while a known rate limit lasts, with a made-up 403
// answer and the reset in the error (TestGitHubRateLimit).
func (g *gitHub) error(ctx context.Context, op string, resp *github.Response, err error) error {
	out := forgeError(ctx, "github", op, httpResponse(resp), err, g.token)
	var fe *ForgeError
	if !errors.As(out, &fe) {
		return out
	}
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	msg := ""
	switch {
	case errors.As(err, &rl):
		msg = rl.Message
		if !rl.Rate.Reset.IsZero() {
			fe.Code, fe.RetryAt = http.StatusForbidden, rl.Rate.Reset.Time
		}
	case errors.As(err, &abuse):
		msg = abuse.Message
		if abuse.RetryAfter != nil && fe.RetryAt.IsZero() {
			fe.RetryAt = time.Now().Add(*abuse.RetryAfter)
		}
	case errors.As(err, &er):
		// The message without go-github's "METHOD URL: code" prefix, which
		// the ForgeError says already.
		parts := []string{er.Message}
		for _, e := range er.Errors {
			if e.Message != "" {
				parts = append(parts, e.Message)
			} else {
				parts = append(parts, strings.TrimSpace(e.Field+" "+e.Code))
			}
		}
		msg = strings.Join(parts, ": ")
	}
	if msg = strings.TrimSpace(msg); msg != "" {
		fe.Message = text.Scrub(msg, g.token)
	} else if hr := httpResponse(resp); hr != nil {
		fe.Message = http.StatusText(hr.StatusCode)
	}
	return fe
}

// appendHead adds head to heads unless it is commit itself or already there.
func appendHead(heads []string, commit, head string) []string {
	if strings.EqualFold(head, commit) {
		return heads
	}
	for _, h := range heads {
		if strings.EqualFold(h, head) {
			return heads
		}
	}
	return append(heads, head)
}
