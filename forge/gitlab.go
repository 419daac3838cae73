package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// gitlabDescriptionLimit is the longest description ferry sends to GitLab,
// whose commit status description is a 255-character string.
const gitlabDescriptionLimit = 255

type gitLab struct {
	client *gitlab.Client
	token  string
}

// NewGitLab returns a Provider for GitLab through its REST API v4. baseURL
// "" is gitlab.com; otherwise the instance's URL (/api/v4/ is added). The
// client's own retries are off: the Reporter retries, with backoff.
func NewGitLab(baseURL, token string) (Provider, error) {
	if token == "" {
		return nil, errors.New("gitlab provider: no token")
	}
	opts := []gitlab.ClientOptionFunc{gitlab.WithHTTPClient(newHTTPClient()), gitlab.WithoutRetries()}
	if baseURL != "" {
		// Checked here so a bad URL is refused, never logged by the client.
		if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("gitlab provider: base URL %s is not an http(s) URL", redactURL(baseURL))
		}
		opts = append(opts, gitlab.WithBaseURL(baseURL))
	}
	c, err := gitlab.NewClient(token, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab provider: %s", text.Scrub(err.Error(), token))
	}
	return &gitLab{client: c, token: token}, nil
}

// gitlabStates maps a state to GitLab's. Pending is "running": ferry is at
// work, and GitLab shows "pending" as waiting in a queue.
var gitlabStates = map[State]gitlab.BuildStateValue{
	Pending: gitlab.Running, Success: gitlab.Success, Failure: gitlab.Failed, Error: gitlab.Failed,
}

func (g *gitLab) SetStatus(ctx context.Context, repo Repo, s Status) error {
	op, err := s.op(repo)
	if err != nil {
		return err
	}
	opt := &gitlab.SetCommitStatusOptions{
		State:       gitlabStates[s.State],
		Name:        gitlab.Ptr(s.StatusContext()),
		Description: gitlab.Ptr(text.Truncate(s.Description, gitlabDescriptionLimit)),
	}
	if s.TargetURL != "" {
		opt.TargetURL = gitlab.Ptr(s.TargetURL)
	}
	_, resp, err := g.client.Commits.SetCommitStatus(repo.String(), s.Commit, opt, gitlab.WithContext(ctx))
	if err != nil && sameStateTransition(resp, err) {
		// GitLab keeps one running status per name and refuses to move it
		// from running to running ("Cannot transition status via :run from
		// :running"), after it saved the new description and link. The
		// status reads as asked, so this is success
		// (TestGitLabRunningToRunning).
		return nil
	}
	return g.error(ctx, op, resp, err)
}

// sameStateTransition recognises GitLab's 400 answer to a status posted
// again in the state it already has.
func sameStateTransition(resp *gitlab.Response, err error) bool {
	return resp != nil && resp.StatusCode == http.StatusBadRequest &&
		strings.Contains(err.Error(), "Cannot transition status via")
}

func (g *gitLab) PullRequestHeads(ctx context.Context, repo Repo, commit string) ([]string, error) {
	op := fmt.Sprintf("%s@%s find merge requests", repo, state.Short(commit))
	mrs, resp, err := g.client.Commits.ListMergeRequestsByCommit(repo.String(), commit, gitlab.WithContext(ctx))
	if err != nil {
		return nil, g.error(ctx, op, resp, err)
	}
	var heads []string
	for _, mr := range mrs {
		if mr.State != "merged" || mr.SHA == "" {
			continue // open merge requests containing commit did not bring it
		}
		heads = appendHead(heads, commit, mr.SHA)
	}
	return heads, nil
}

func (g *gitLab) OpenPullRequests(ctx context.Context, repo Repo, base string) ([]PullRequest, error) {
	op := fmt.Sprintf("%s list merge requests into %s", repo, base)
	opt := &gitlab.ListProjectMergeRequestsOptions{
		ListOptions: gitlab.ListOptions{PerPage: 100, Page: 1},
		State:       gitlab.Ptr("opened"), TargetBranch: gitlab.Ptr(base),
	}
	var out []PullRequest
	for {
		mrs, resp, err := g.client.MergeRequests.ListProjectMergeRequests(repo.String(), opt, gitlab.WithContext(ctx))
		if err != nil {
			return nil, g.error(ctx, op, resp, err)
		}
		for _, mr := range mrs {
			out = append(out, PullRequest{Number: int(mr.IID), Head: mr.SHA, Base: mr.TargetBranch, Branch: mr.SourceBranch, URL: mr.WebURL})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

func (g *gitLab) Comment(ctx context.Context, repo Repo, pr int, marker, body string) error {
	op := fmt.Sprintf("%s!%d comment %s", repo, pr, marker)
	list := func(page int) ([]comment, int, error) {
		opt := &gitlab.ListMergeRequestNotesOptions{ListOptions: gitlab.ListOptions{PerPage: 100, Page: int64(page)}}
		notes, resp, err := g.client.Notes.ListMergeRequestNotes(repo.String(), int64(pr), opt, gitlab.WithContext(ctx))
		if err != nil {
			return nil, 0, g.error(ctx, op, resp, err)
		}
		out := make([]comment, 0, len(notes))
		for _, n := range notes {
			if !n.System { // GitLab's own notes ("added 1 commit") are never ferry's
				out = append(out, comment{id: n.ID, body: n.Body})
			}
		}
		return out, int(resp.NextPage), nil
	}
	edit := func(id int64, full string) error {
		_, resp, err := g.client.Notes.UpdateMergeRequestNote(repo.String(), int64(pr), id,
			&gitlab.UpdateMergeRequestNoteOptions{Body: gitlab.Ptr(full)}, gitlab.WithContext(ctx))
		return g.error(ctx, op, resp, err)
	}
	create := func(full string) error {
		_, resp, err := g.client.Notes.CreateMergeRequestNote(repo.String(), int64(pr),
			&gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr(full)}, gitlab.WithContext(ctx))
		return g.error(ctx, op, resp, err)
	}
	return upsertComment(op, marker, body, list, edit, create)
}

func (g *gitLab) error(ctx context.Context, op string, resp *gitlab.Response, err error) error {
	out := forgeError(ctx, "gitlab", op, httpResponse(resp), err, g.token)
	var fe *ForgeError
	var er *gitlab.ErrorResponse
	if errors.As(out, &fe) && errors.As(err, &er) {
		// The message without the client's "METHOD URL: code" prefix,
		// which the ForgeError says already.
		if msg := strings.TrimSpace(er.Message); msg != "" {
			fe.Message = text.Scrub(msg, g.token)
		} else {
			fe.Message = http.StatusText(fe.Code)
		}
	}
	return out
}

// CreatePullRequest opens a merge request from branch head into base.
func (g *gitLab) CreatePullRequest(ctx context.Context, repo Repo, head, base, title, body string) (PullRequest, error) {
	op := fmt.Sprintf("%s open merge request %s into %s", repo, head, base)
	mr, resp, err := g.client.MergeRequests.CreateMergeRequest(repo.String(), &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr(title), SourceBranch: gitlab.Ptr(head), TargetBranch: gitlab.Ptr(base), Description: gitlab.Ptr(body),
	}, gitlab.WithContext(ctx))
	if err != nil {
		return PullRequest{}, g.error(ctx, op, resp, err)
	}
	return PullRequest{Number: int(mr.IID), Head: mr.SHA, Base: base, Branch: head, URL: mr.WebURL}, nil
}

// ClosePullRequest comments on merge request number and closes it.
func (g *gitLab) ClosePullRequest(ctx context.Context, repo Repo, number int, comment string) error {
	op := fmt.Sprintf("%s!%d close", repo, number)
	if _, resp, err := g.client.Notes.CreateMergeRequestNote(repo.String(), int64(number),
		&gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr(comment)}, gitlab.WithContext(ctx)); err != nil {
		return g.error(ctx, op, resp, err)
	}
	_, resp, err := g.client.MergeRequests.UpdateMergeRequest(repo.String(), int64(number),
		&gitlab.UpdateMergeRequestOptions{StateEvent: gitlab.Ptr("close")}, gitlab.WithContext(ctx))
	return g.error(ctx, op, resp, err)
}
