package forge

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestGitHubPromotionPullRequest checks opening and closing a promotion
// pull request against GitHub's documented API.
func TestGitHubPromotionPullRequest(t *testing.T) {
	f, p := newGitHubForge(t)
	opener := p.(PullRequestOpener)
	f.handle("POST", "/repos/acme/app/pulls", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitHubHeaders(t, r)
		fields(t, "pull request", decode(t, r, body), map[string]any{
			"title": "Promote staging@0123456 to production", "head": "ferry/promote/production/0123456",
			"base": "production", "body": "evidence",
		})
		reply(w, http.StatusCreated, map[string]any{"number": 12, "html_url": "https://github.example/acme/app/pull/12",
			"head": map[string]any{"sha": commitA, "ref": "ferry/promote/production/0123456"}})
	})
	pr, err := opener.CreatePullRequest(testContext(t), Repo{"acme", "app"}, "ferry/promote/production/0123456", "production",
		"Promote staging@0123456 to production", "evidence")
	if err != nil || pr.Number != 12 || pr.Branch != "ferry/promote/production/0123456" || pr.Head != commitA {
		t.Fatalf("CreatePullRequest = %+v, %v", pr, err)
	}
	f.handle("POST", "/repos/acme/app/issues/12/comments", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitHubHeaders(t, r)
		fields(t, "comment", decode(t, r, body), map[string]any{"body": "Superseded by #13."})
		reply(w, http.StatusCreated, map[string]any{"id": 1})
	})
	f.handle("PATCH", "/repos/acme/app/pulls/12", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitHubHeaders(t, r)
		fields(t, "edit", decode(t, r, body), map[string]any{"state": "closed"})
		reply(w, http.StatusOK, map[string]any{"number": 12, "state": "closed"})
	})
	if err := opener.ClosePullRequest(testContext(t), Repo{"acme", "app"}, 12, "Superseded by #13."); err != nil {
		t.Fatal(err)
	}
	f.handle("POST", "/repos/acme/app/pulls", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
	})
	if _, err := opener.CreatePullRequest(testContext(t), Repo{"acme", "app"}, "x", "production", "t", "b"); forgeErr(t, err).Code != 422 {
		t.Fatalf("a refused pull request: %v", err)
	}
}

// TestGitLabPromotionMergeRequest checks opening and closing a promotion
// merge request against GitLab's documented API.
func TestGitLabPromotionMergeRequest(t *testing.T) {
	f, p := newGitLabForge(t)
	opener := p.(PullRequestOpener)
	f.handle("POST", "/projects/acme%2Fapp/merge_requests", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitLabHeaders(t, r)
		fields(t, "merge request", decode(t, r, body), map[string]any{
			"title": "Promote", "source_branch": "ferry/promote/production/0123456", "target_branch": "production", "description": "evidence",
		})
		reply(w, http.StatusCreated, map[string]any{"iid": 7, "sha": commitA, "web_url": "https://gitlab.example/acme/app/-/merge_requests/7"})
	})
	pr, err := opener.CreatePullRequest(testContext(t), Repo{"acme", "app"}, "ferry/promote/production/0123456", "production", "Promote", "evidence")
	if err != nil || pr.Number != 7 || pr.Head != commitA {
		t.Fatalf("CreatePullRequest = %+v, %v", pr, err)
	}
	f.handle("POST", "/projects/acme%2Fapp/merge_requests/7/notes", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitLabHeaders(t, r)
		fields(t, "note", decode(t, r, body), map[string]any{"body": "Superseded by !8."})
		reply(w, http.StatusCreated, map[string]any{"id": 1})
	})
	f.handle("PUT", "/projects/acme%2Fapp/merge_requests/7", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitLabHeaders(t, r)
		fields(t, "update", decode(t, r, body), map[string]any{"state_event": "close"})
		reply(w, http.StatusOK, map[string]any{"iid": 7, "state": "closed"})
	})
	if err := opener.ClosePullRequest(testContext(t), Repo{"acme", "app"}, 7, "Superseded by !8."); err != nil {
		t.Fatal(err)
	}
}

// TestProposeOpensOnceAndClosesSuperseded drives a promotion through the
// GitHub provider: the first proposal pushes, opens #12 and closes the
// older promotion #11 (not the person's #5); the second finds #12 open
// and neither pushes nor opens again.
func TestProposeOpensOnceAndClosesSuperseded(t *testing.T) {
	f, p := newGitHubForge(t)
	prs := p.(PullRequests)
	promo := Promotion{Repo: Repo{Owner: "acme", Name: "app"}, Environment: "production", Base: "production", Commit: commitA,
		Title: "Promote staging@0123456 to production", Body: "evidence"}
	if promo.Branch() != "ferry/promote/production/0123456" {
		t.Fatalf("branch %s", promo.Branch())
	}
	open := []map[string]any{
		{"number": 5, "head": map[string]any{"sha": commitB, "ref": "fix-typo"}, "base": map[string]any{"ref": "production"}},
		{"number": 11, "head": map[string]any{"sha": commitC, "ref": "ferry/promote/production/fedcba9"}, "base": map[string]any{"ref": "production"}},
	}
	f.handle("GET", "/repos/acme/app/pulls", func(w http.ResponseWriter, _ *http.Request, _ []byte) { reply(w, http.StatusOK, open) })
	f.handle("POST", "/repos/acme/app/pulls", func(w http.ResponseWriter, r *http.Request, body []byte) {
		fields(t, "pull request", decode(t, r, body), map[string]any{"head": promo.Branch(), "base": "production", "title": promo.Title, "body": "evidence"})
		reply(w, http.StatusCreated, map[string]any{"number": 12, "head": map[string]any{"sha": commitA, "ref": promo.Branch()}})
	})
	f.handle("POST", "/repos/acme/app/issues/11/comments", func(w http.ResponseWriter, r *http.Request, body []byte) {
		fields(t, "comment", decode(t, r, body), map[string]any{"body": "Superseded by #12, which promotes a newer verified commit."})
		reply(w, http.StatusCreated, map[string]any{"id": 1})
	})
	f.handle("PATCH", "/repos/acme/app/pulls/11", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"number": 11, "state": "closed"})
	})
	pushes := 0
	push := func(context.Context) (bool, error) { pushes++; return true, nil }
	got, err := Propose(testContext(t), prs, promo, push)
	if err != nil || !got.Opened || got.PullRequest.Ref() != "#12" || got.NotClosed != nil || pushes != 1 {
		t.Fatalf("first proposal: %+v, %v, %d pushes", got, err, pushes)
	}
	if calls := strings.Join(f.Calls(), ", "); !strings.Contains(calls, "PATCH /repos/acme/app/pulls/11") || strings.Contains(calls, "/pulls/5") {
		t.Fatalf("calls: %s", calls)
	}
	open = append(open[:1], map[string]any{"number": 12, "head": map[string]any{"sha": commitA, "ref": promo.Branch()}, "base": map[string]any{"ref": "production"}})
	got, err = Propose(testContext(t), prs, promo, push)
	if err != nil || got.Opened || got.PullRequest.Number != 12 || pushes != 1 {
		t.Fatalf("second proposal: %+v, %v, %d pushes", got, err, pushes)
	}
	got, err = Propose(testContext(t), prs, Promotion{Repo: promo.Repo, Environment: "production", Base: "production", Commit: commitB},
		func(context.Context) (bool, error) { return false, nil })
	if err != nil || got.PullRequest.Number != 0 {
		t.Fatalf("nothing to propose: %+v, %v", got, err)
	}
}
