package forge

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The real Gitea exercises this provider end to end (e2e/report_test.go);
// these tests pin requests and error handling on a loopback stand-in.

func newGiteaForge(t *testing.T) (*forge, Provider) { return forgeWith(t, "/api/v1", "/", NewGitea) }

func checkGiteaHeaders(t *testing.T, r *http.Request) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "token "+testToken {
		t.Errorf("%s %s: Authorization %q, want the token", r.Method, r.URL.Path, got)
	}
}

func TestGiteaSetStatus(t *testing.T) {
	f, p := newGiteaForge(t)
	f.handle("POST", "/repos/acme/app/statuses/"+commitA, func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGiteaHeaders(t, r)
		m := decode(t, r, body)
		fields(t, "status", m, map[string]any{"state": "success", "context": "ferry/staging", "description": "healthy at 0123456",
			"target_url": "http://127.0.0.1:8080/environments/staging?commit=" + commitA})
		reply(w, http.StatusCreated, map[string]any{"id": 1, "status": "success", "context": "ferry/staging"})
	})
	err := p.SetStatus(testContext(t), Repo{"acme", "app"}, Status{Environment: "staging", Commit: commitA, State: Success,
		Description: DescHealthy(commitA), TargetURL: TargetURL("http://127.0.0.1:8080", "staging", commitA)})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGiteaPullRequestHeads(t *testing.T) {
	f, p := newGiteaForge(t)
	f.handle("GET", "/repos/acme/app/commits/"+commitA+"/pull", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGiteaHeaders(t, r)
		reply(w, http.StatusOK, map[string]any{"number": 3, "merged": true, "merge_commit_sha": commitA,
			"head": map[string]any{"sha": commitB, "ref": "feature"}, "base": map[string]any{"ref": "main"}})
	})
	f.handle("GET", "/repos/acme/app/commits/"+commitC+"/pull", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, http.StatusNotFound, map[string]any{"message": "pull request does not exist [id: 0]"})
	})
	ctx := testContext(t)
	heads, err := p.PullRequestHeads(ctx, Repo{"acme", "app"}, commitA)
	if err != nil || fmt.Sprint(heads) != fmt.Sprint([]string{commitB}) {
		t.Fatalf("heads %v, %v; want [%s]", heads, err, commitB)
	}
	heads, err = p.PullRequestHeads(ctx, Repo{"acme", "app"}, commitC)
	if err != nil || len(heads) != 0 {
		t.Fatalf("commit without a pull request: heads %v, %v; want none", heads, err)
	}
}

func TestGiteaOpenPullRequests(t *testing.T) {
	f, p := newGiteaForge(t)
	f.handle("GET", "/repos/acme/app/pulls", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGiteaHeaders(t, r)
		if r.URL.Query().Get("state") != "open" {
			t.Errorf("query %v, want state=open", r.URL.Query())
		}
		reply(w, http.StatusOK, []map[string]any{
			{"number": 2, "head": map[string]any{"sha": commitB}, "base": map[string]any{"ref": "main"}},
			{"number": 3, "head": map[string]any{"sha": commitC}, "base": map[string]any{"ref": "production"}},
		})
	})
	prs, err := p.OpenPullRequests(testContext(t), Repo{"acme", "app"}, "main")
	want := []PullRequest{{Number: 2, Head: commitB, Base: "main"}}
	if err != nil || fmt.Sprint(prs) != fmt.Sprint(want) {
		t.Fatalf("%v, %v; want %v", prs, err, want)
	}
}

func TestGiteaCommentCreatesThenUpdates(t *testing.T) {
	f, p := newGiteaForge(t)
	var comments []map[string]any
	f.handle("GET", "/repos/acme/app/issues/2/comments", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGiteaHeaders(t, r)
		reply(w, http.StatusOK, comments)
	})
	f.handle("POST", "/repos/acme/app/issues/2/comments", func(w http.ResponseWriter, r *http.Request, body []byte) {
		m := decode(t, r, body)
		c := map[string]any{"id": 7 + len(comments), "body": m["body"]}
		comments = append(comments, c)
		reply(w, http.StatusCreated, c)
	})
	f.handle("PATCH", "/repos/acme/app/issues/comments/7", func(w http.ResponseWriter, r *http.Request, body []byte) {
		m := decode(t, r, body)
		comments[0]["body"] = m["body"]
		reply(w, http.StatusOK, comments[0])
	})
	for _, body := range []string{"one", "two"} {
		if err := p.Comment(testContext(t), Repo{"acme", "app"}, 2, "ferry/plan/staging", body); err != nil {
			t.Fatal(err)
		}
	}
	if len(comments) != 1 || comments[0]["body"] != "<!-- ferry/plan/staging -->\ntwo" {
		t.Fatalf("comments %v, want one updated in place", comments)
	}
}

func TestGiteaErrors(t *testing.T) {
	for _, tc := range []struct {
		code      int
		transient bool
	}{{401, false}, {403, false}, {404, false}, {422, false}, {500, true}, {429, true}} {
		f, p := newGiteaForge(t)
		f.handle("POST", "/repos/acme/app/statuses/"+commitA, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			reply(w, tc.code, map[string]any{"message": "no: " + r.Header.Get("Authorization")})
		})
		err := p.SetStatus(testContext(t), Repo{"acme", "app"}, Status{Environment: "staging", Commit: commitA, State: Pending, Description: "applying"})
		fe := forgeErr(t, err)
		if fe.Code != tc.code || fe.Transient() != tc.transient {
			t.Errorf("%d: code %d transient %v, want %d %v", tc.code, fe.Code, fe.Transient(), tc.code, tc.transient)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%d: error shows the token: %v", tc.code, err)
		}
	}
}

func TestGiteaUnreachable(t *testing.T) {
	f, p := newGiteaForge(t)
	f.srv.Close()
	err := p.SetStatus(testContext(t), Repo{"acme", "app"}, Status{Environment: "staging", Commit: commitA, State: Pending, Description: "applying"})
	if fe := forgeErr(t, err); fe.Code != 0 || !fe.Transient() {
		t.Fatalf("unreachable forge: code %d transient %v, want 0 true", fe.Code, fe.Transient())
	}
}
