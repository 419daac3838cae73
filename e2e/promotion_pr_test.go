package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	ferryforge "ferry.dev/ferry/forge"
	"ferry.dev/ferry/reconciler"
)

// TestPromoteByPullRequest: in pull-request mode a verified commit gets
// one pull request into production (none twice), and a newer verified
// commit supersedes it.
func TestPromoteByPullRequest(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	cfg := strings.Replace(p.config(), "mode: push", "mode: pull-request", 1) +
		fmt.Sprintf("report: {provider: gitea, url: %q, tokenFile: %s}\n", strings.TrimSuffix(forge.URL, "/"), p.tokenFile)
	provider, err := ferryforge.NewGitea(strings.TrimSuffix(forge.URL, "/"), forge.Token)
	if err != nil {
		t.Fatal(err)
	}
	first := p.tip(t, "main")
	startFerryWith(t, cfg, func(o *reconciler.Options) { o.PullRequests = provider.(ferryforge.PullRequests) })
	if v := p.waitDecided(t, "staging", first, 2*time.Minute); v.Action.String() != "promoted to production" {
		t.Fatalf("first commit (production already has its tree): %+v", v)
	}
	openPRs := func() []*gitea.PullRequest {
		prs, _, err := forge.Client.ListRepoPullRequests(forge.User, p.repo, gitea.ListPullRequestsOptions{State: gitea.StateOpen})
		if err != nil {
			t.Fatal(err)
		}
		return prs
	}

	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	v := p.waitDecided(t, "staging", good, 2*time.Minute)
	if !strings.HasPrefix(v.Action.String(), "promoted to production (pull request #") {
		t.Fatalf("good commit: %+v", v)
	}
	// More reconciles of the same commit open nothing more.
	consistently(t, 3*time.Second, func() (bool, string) {
		prs := openPRs()
		return len(prs) <= 1, fmt.Sprintf("%d open pull requests", len(prs))
	})
	prs := openPRs()
	if len(prs) != 1 || prs[0].Head.Ref != "ferry/promote/production/"+good[:7] || prs[0].Base.Ref != "production" ||
		!strings.Contains(prs[0].Body, "ferry verified `"+good[:7]+"` in **staging**") {
		t.Fatalf("open pull requests: %+v", prs)
	}
	firstPR := prs[0]
	if tip := p.tip(t, "production"); tip == good {
		t.Fatal("pull-request mode pushed to production")
	}

	newer := p.pushMain(t, pipelineFiles("v3"), "Deploy web v3")
	v = p.waitDecided(t, "staging", newer, 2*time.Minute)
	if !strings.HasPrefix(v.Action.String(), "promoted to production (pull request #") {
		t.Fatalf("newer commit: %+v", v)
	}
	prs = openPRs()
	if len(prs) != 1 || prs[0].Head.Ref != "ferry/promote/production/"+newer[:7] {
		t.Fatalf("after a newer commit, open pull requests: %+v", prs)
	}
	old, _, err := forge.Client.GetPullRequest(forge.User, p.repo, firstPR.Index)
	if err != nil {
		t.Fatal(err)
	}
	comments, _, err := forge.Client.ListIssueComments(forge.User, p.repo, firstPR.Index, gitea.ListIssueCommentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if old.State != gitea.StateClosed || len(comments) != 1 || !strings.Contains(comments[0].Body, fmt.Sprintf("Superseded by #%d", prs[0].Index)) {
		t.Fatalf("superseded pull request: state %s, comments %d", old.State, len(comments))
	}
}
