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

func TestGitHubTrust(t *testing.T) {
	f, p := newGitHubForge(t)
	tr := p.(Trust)
	f.handle("GET", "/repos/acme/app/pulls/4", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"number": 4,
			"head": map[string]any{"sha": commitB, "repo": map[string]any{"full_name": "mallory/app"}},
			"base": map[string]any{"ref": "main", "repo": map[string]any{"full_name": "acme/app"}}})
	})
	f.handle("GET", "/repos/acme/app/issues/4/comments", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, []map[string]any{
			{"id": 1, "body": "/ferry plan", "user": map[string]any{"login": "mallory"}},
			{"id": 2, "body": "/ferry plan", "user": map[string]any{"login": "alice"}},
		})
	})
	f.handle("GET", "/repos/acme/app/collaborators/alice/permission", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"permission": "write"})
	})
	f.handle("GET", "/repos/acme/app/collaborators/mallory/permission", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"permission": "read"})
	})
	ctx, repo := testContext(t), Repo{"acme", "app"}
	if pr, err := tr.PullRequest(ctx, repo, 4); err != nil || !pr.Fork || pr.HeadRef != "refs/pull/4/head" {
		t.Fatalf("PullRequest = %+v, %v; want a fork", pr, err)
	}
	if who, err := tr.PlanRequesters(ctx, repo, 4); err != nil || !slices.Equal(who, []string{"mallory", "alice"}) {
		t.Fatalf("PlanRequesters = %v, %v", who, err)
	}
	for user, want := range map[string]bool{"alice": true, "mallory": false} {
		if ok, err := tr.CanWrite(ctx, repo, user); err != nil || ok != want {
			t.Errorf("CanWrite(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}
}

func TestGitLabTrust(t *testing.T) {
	f, p := newGitLabForge(t)
	tr := p.(Trust)
	f.handle("GET", "/projects/acme%2Fapp/merge_requests/7", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"id": 70, "iid": 7, "sha": commitB, "target_branch": "main", "source_project_id": 12, "target_project_id": 11})
	})
	f.handle("GET", "/projects/acme%2Fapp/merge_requests/7/notes", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, []map[string]any{
			{"id": 1, "body": "/ferry plan", "system": true, "author": map[string]any{"username": "gitlab"}},
			{"id": 2, "body": "/ferry plan", "author": map[string]any{"username": "mallory"}},
			{"id": 3, "body": "/ferry plan", "author": map[string]any{"username": "alice"}},
		})
	})
	f.handle("GET", "/users", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		id := map[string]int{"alice": 5, "mallory": 6}[r.URL.Query().Get("username")]
		reply(w, http.StatusOK, []map[string]any{{"id": id, "username": r.URL.Query().Get("username")}})
	})
	f.handle("GET", "/projects/acme%2Fapp/members/all/5", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusOK, map[string]any{"id": 5, "access_level": 30})
	})
	f.handle("GET", "/projects/acme%2Fapp/members/all/6", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		reply(w, http.StatusNotFound, map[string]any{"message": "404 Not found"})
	})
	ctx, repo := testContext(t), Repo{"acme", "app"}
	if pr, err := tr.PullRequest(ctx, repo, 7); err != nil || !pr.Fork || pr.HeadRef != "refs/merge-requests/7/head" {
		t.Fatalf("PullRequest = %+v, %v; want a fork fetched from refs/merge-requests", pr, err)
	}
	if who, err := tr.PlanRequesters(ctx, repo, 7); err != nil || !slices.Equal(who, []string{"mallory", "alice"}) {
		t.Fatalf("PlanRequesters = %v, %v", who, err)
	}
	for user, want := range map[string]bool{"alice": true, "mallory": false} {
		if ok, err := tr.CanWrite(ctx, repo, user); err != nil || ok != want {
			t.Errorf("CanWrite(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}
}
