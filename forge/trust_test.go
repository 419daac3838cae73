package forge

import (
	"net/http"
	"slices"
	"testing"
)

func TestIsPlanCommandAndHeadRef(t *testing.T) {
	for body, want := range map[string]bool{
		"/ferry plan": true, "  /ferry plan  \nplease": true, "/ferry planned": false,
		"please /ferry plan": false, "> /ferry plan": false, "": false,
	} {
		if got := isPlanCommand(body); got != want {
			t.Errorf("isPlanCommand(%q) = %v", body, got)
		}
	}
	if got := HeadRef("gitlab", 7); got != "refs/merge-requests/7/head" {
		t.Errorf("GitLab head ref %q", got)
	}
	if got := HeadRef("gitea", 7); got != "refs/pull/7/head" {
		t.Errorf("Gitea head ref %q", got)
	}
}

// TestGiteaTrust: a pull request from another repository is a fork; the
// plan requesters are the authors of "/ferry plan" comments; write access
// is read from the collaborator permission.
func TestGiteaTrust(t *testing.T) {
	f, p := newGiteaForge(t)
	tr := p.(Trust)
	f.handle("GET", "/repos/acme/app/pulls/4", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"number": 4,
			"head": map[string]any{"sha": commitB, "ref": "feature", "repo_id": 9},
			"base": map[string]any{"ref": "main", "repo_id": 1}})
	})
	f.handle("GET", "/repos/acme/app/issues/4/comments", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, []map[string]any{
			{"id": 1, "body": "/ferry plan", "user": map[string]any{"login": "mallory"}},
			{"id": 2, "body": "looks fine\n/ferry plan", "user": map[string]any{"login": "bob"}},
			{"id": 3, "body": "/ferry plan", "user": map[string]any{"login": "alice"}},
		})
	})
	f.handle("GET", "/repos/acme/app/collaborators/alice/permission", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"permission": "write"})
	})
	f.handle("GET", "/repos/acme/app/collaborators/mallory/permission", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusForbidden, map[string]any{"message": "not a collaborator"})
	})
	ctx, repo := testContext(t), Repo{"acme", "app"}
	pr, err := tr.PullRequest(ctx, repo, 4)
	if err != nil || !pr.Fork || pr.HeadRef != "refs/pull/4/head" || pr.Head != commitB {
		t.Fatalf("PullRequest = %+v, %v; want a fork", pr, err)
	}
	who, err := tr.PlanRequesters(ctx, repo, 4)
	if err != nil || !slices.Equal(who, []string{"mallory", "alice"}) {
		t.Fatalf("PlanRequesters = %v, %v", who, err)
	}
	for user, want := range map[string]bool{"alice": true, "mallory": false} {
		if ok, err := tr.CanWrite(ctx, repo, user); err != nil || ok != want {
			t.Errorf("CanWrite(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}
}
