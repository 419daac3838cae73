package forge

import (
	"net/http"
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
