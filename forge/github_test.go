package forge

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newGitHubForge is a loopback GitHub Enterprise API (/api/v3): every
// request must carry the token as a bearer and ask for the v3 media type.
func newGitHubForge(t *testing.T) (*forge, Provider) { return forgeWith(t, "/api/v3", "", NewGitHub) }

func checkGitHubHeaders(t *testing.T, r *http.Request) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("%s %s: Authorization %q, want the bearer token", r.Method, r.URL.Path, got)
	}
	if got := r.Header.Get("Accept"); !strings.Contains(got, "application/vnd.github") {
		t.Errorf("%s %s: Accept %q, want application/vnd.github…", r.Method, r.URL.Path, got)
	}
	if r.Header.Get("X-GitHub-Api-Version") == "" {
		t.Errorf("%s %s: no X-GitHub-Api-Version", r.Method, r.URL.Path)
	}
}

func TestGitHubSetStatus(t *testing.T) {
	f, p := newGitHubForge(t)
	long := strings.Repeat("é", 200)
	f.handle("POST", "/repos/acme/app/statuses/"+commitA, func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitHubHeaders(t, r)
		m := decode(t, r, body)
		fields(t, "status", m, map[string]any{
			"state": "failure", "context": "ferry/staging",
			"description": strings.Repeat("é", 139) + "…",
			"target_url":  "https://ferry.example/environments/staging?commit=" + commitA,
		})
		reply(w, http.StatusCreated, map[string]any{"id": 1, "state": m["state"], "context": m["context"]})
	})
	err := p.SetStatus(testContext(t), Repo{"acme", "app"}, Status{
		Environment: "staging", Commit: commitA, State: Failure, Description: long,
		TargetURL: TargetURL("https://ferry.example/", "staging", commitA),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(); len(got) != 1 {
		t.Fatalf("calls %v, want one", got)
	}
}

func TestGitHubStatesAndPlanContext(t *testing.T) {
	f, p := newGitHubForge(t)
	for _, tc := range []struct {
		state State
		want  string
	}{{Pending, "pending"}, {Success, "success"}, {Failure, "failure"}, {Error, "error"}} {
		f.reset()
		f.handle("POST", "/repos/acme/app/statuses/"+commitB, func(w http.ResponseWriter, r *http.Request, body []byte) {
			m := decode(t, r, body)
			// No link configured: no target_url field at all.
			fields(t, "status", m, map[string]any{"state": tc.want, "context": "ferry/plan/production", "description": "1 created, 0 changed, 0 pruned"})
			reply(w, http.StatusCreated, map[string]any{"id": 2})
		})
		err := p.SetStatus(testContext(t), Repo{"acme", "app"}, Status{Environment: "production", Context: PlanContext("production"),
			Commit: commitB, State: tc.state, Description: "1 created, 0 changed, 0 pruned"})
		if err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
	}
}

func TestGitHubPullRequestHeads(t *testing.T) {
	f, p := newGitHubForge(t)
	merged := "2026-01-02T03:04:05Z"
	f.handle("GET", "/repos/acme/app/commits/"+commitA+"/pulls", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGitHubHeaders(t, r)
		if r.URL.Query().Get("per_page") != "100" {
			t.Errorf("per_page %q, want 100", r.URL.Query().Get("per_page"))
		}
		reply(w, http.StatusOK, []map[string]any{
			{"number": 1, "state": "closed", "merged_at": merged, "head": map[string]any{"sha": commitB, "ref": "feature"}},
			{"number": 2, "state": "open", "merged_at": nil, "head": map[string]any{"sha": commitC, "ref": "other"}},
			// A fast-forward merge: the head is the commit itself.
			{"number": 3, "state": "closed", "merged_at": merged, "head": map[string]any{"sha": commitA, "ref": "ff"}},
			{"number": 4, "state": "closed", "merged_at": merged, "head": map[string]any{"sha": commitB, "ref": "again"}},
		})
	})
	heads, err := p.PullRequestHeads(testContext(t), Repo{"acme", "app"}, commitA)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(heads) != fmt.Sprint([]string{commitB}) {
		t.Fatalf("heads %v, want [%s]", heads, commitB)
	}
}

func TestGitHubOpenPullRequests(t *testing.T) {
	f, p := newGitHubForge(t)
	f.handle("GET", "/repos/acme/app/pulls", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGitHubHeaders(t, r)
		q := r.URL.Query()
		if q.Get("state") != "open" || q.Get("base") != "production" {
			t.Errorf("query %v, want state=open base=production", q)
		}
		if q.Get("page") == "" {
			w.Header().Set("Link", fmt.Sprintf(`<%s/api/v3/repos/acme/app/pulls?page=2>; rel="next"`, f.srv.URL))
			reply(w, http.StatusOK, []map[string]any{{"number": 4, "head": map[string]any{"sha": commitB}, "base": map[string]any{"ref": "production"}}})
			return
		}
		reply(w, http.StatusOK, []map[string]any{{"number": 9, "head": map[string]any{"sha": commitC}, "base": map[string]any{"ref": "production"}}})
	})
	prs, err := p.OpenPullRequests(testContext(t), Repo{"acme", "app"}, "production")
	want := []PullRequest{{Number: 4, Head: commitB, Base: "production"}, {Number: 9, Head: commitC, Base: "production"}}
	if err != nil || fmt.Sprint(prs) != fmt.Sprint(want) {
		t.Fatalf("%v, %v; want %v", prs, err, want)
	}
}

func TestGitHubCommentCreatesThenUpdates(t *testing.T) {
	f, p := newGitHubForge(t)
	repo := Repo{"acme", "app"}
	var comments []map[string]any
	nextID := 100
	f.handle("GET", "/repos/acme/app/issues/7/comments", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGitHubHeaders(t, r)
		// Two pages: an unrelated comment first, as GitHub pages them.
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page <= 1 {
			w.Header().Set("Link", fmt.Sprintf(`<%s/api/v3/repos/acme/app/issues/7/comments?page=2&per_page=100>; rel="next"`, f.srv.URL))
			reply(w, http.StatusOK, []map[string]any{{"id": 1, "body": "> <!-- ferry/plan/staging -->\nquoted by someone"}})
			return
		}
		reply(w, http.StatusOK, comments)
	})
	f.handle("POST", "/repos/acme/app/issues/7/comments", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitHubHeaders(t, r)
		m := decode(t, r, body)
		fields(t, "comment", m, map[string]any{"body": m["body"]})
		c := map[string]any{"id": nextID, "body": m["body"]}
		nextID++
		comments = append(comments, c)
		reply(w, http.StatusCreated, c)
	})
	f.handle("PATCH", "/repos/acme/app/issues/comments/*", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitHubHeaders(t, r)
		m := decode(t, r, body)
		fields(t, "comment", m, map[string]any{"body": m["body"]})
		id := strings.TrimPrefix(r.URL.Path, "/api/v3/repos/acme/app/issues/comments/")
		for _, c := range comments {
			if fmt.Sprint(c["id"]) == id {
				c["body"] = m["body"]
				reply(w, http.StatusOK, c)
				return
			}
		}
		reply(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
	})

	ctx := testContext(t)
	if err := p.Comment(ctx, repo, 7, "ferry/plan/staging", "plan one"); err != nil {
		t.Fatal(err)
	}
	if err := p.Comment(ctx, repo, 7, "ferry/plan/staging", "plan two"); err != nil {
		t.Fatal(err)
	}
	// The same body again changes nothing.
	if err := p.Comment(ctx, repo, 7, "ferry/plan/staging", "plan two"); err != nil {
		t.Fatal(err)
	}
	if len(comments) != 1 || comments[0]["body"] != "<!-- ferry/plan/staging -->\nplan two" {
		t.Fatalf("comments %v, want one updated in place", comments)
	}
	var writes []string
	for _, c := range f.Calls() {
		if !strings.HasPrefix(c, "GET") {
			writes = append(writes, c)
		}
	}
	want := []string{"POST /repos/acme/app/issues/7/comments", "PATCH /repos/acme/app/issues/comments/100"}
	if fmt.Sprint(writes) != fmt.Sprint(want) {
		t.Fatalf("writes %v, want %v", writes, want)
	}
}

func TestGitHubErrors(t *testing.T) {
	repo := Repo{"acme", "app"}
	s := Status{Environment: "staging", Commit: commitA, State: Success, Description: "healthy at 0123456"}
	for _, tc := range []struct {
		name      string
		answer    func(w http.ResponseWriter, r *http.Request)
		code      int
		transient bool
		retryIn   time.Duration // 0: no RetryAt
		message   string
	}{
		{"validation", func(w http.ResponseWriter, _ *http.Request) {
			reply(w, 422, map[string]any{"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
				"errors": []map[string]any{{"resource": "Status", "code": "custom", "field": "context", "message": "context is invalid"}}})
		}, 422, false, 0, "Validation Failed"},
		{"bad credentials echoing the token", func(w http.ResponseWriter, r *http.Request) {
			reply(w, 401, map[string]any{"message": "Bad credentials: " + r.Header.Get("Authorization"), "documentation_url": "https://docs.github.com/rest"})
		}, 401, false, 0, "Bad credentials"},
		{"not found", func(w http.ResponseWriter, _ *http.Request) {
			reply(w, 404, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
		}, 404, false, 0, "Not Found"},
		{"server error", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		}, 502, true, 0, ""},
		{"secondary rate limit 429", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "30")
			reply(w, 429, map[string]any{"message": "You have exceeded a secondary rate limit.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
		}, 429, true, 30 * time.Second, "secondary rate limit"},
		{"secondary rate limit 403", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "45")
			reply(w, 403, map[string]any{"message": "You have exceeded a secondary rate limit.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
		}, 403, true, 45 * time.Second, "secondary rate limit"},
		{"forbidden without a limit", func(w http.ResponseWriter, _ *http.Request) {
			reply(w, 403, map[string]any{"message": "Resource not accessible by integration"})
		}, 403, false, 0, "not accessible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := newGitHubForge(t)
			f.handle("POST", "/repos/acme/app/statuses/"+commitA, func(w http.ResponseWriter, r *http.Request, _ []byte) { tc.answer(w, r) })
			start := time.Now()
			err := p.SetStatus(testContext(t), repo, s)
			fe := forgeErr(t, err)
			if fe.Code != tc.code || fe.Transient() != tc.transient || fe.Forge != "github" {
				t.Errorf("code %d transient %v forge %s, want %d %v github", fe.Code, fe.Transient(), fe.Forge, tc.code, tc.transient)
			}
			checkRetryAt(t, fe, start, tc.retryIn)
			if !strings.Contains(err.Error(), tc.message) || !strings.HasPrefix(err.Error(), "acme/app@0123456 set status ferry/staging: github answered") {
				t.Errorf("error %q, want the subject first and %q", err, tc.message)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows the token: %q", err)
			}
		})
	}
}

func checkRetryAt(t *testing.T, fe *ForgeError, start time.Time, in time.Duration) {
	t.Helper()
	if in == 0 {
		if !fe.RetryAt.IsZero() {
			t.Errorf("RetryAt %v, want none", fe.RetryAt)
		}
		return
	}
	if lo, hi := start.Add(in-time.Second), time.Now().Add(in+time.Second); fe.RetryAt.Before(lo) || fe.RetryAt.After(hi) {
		t.Errorf("RetryAt %v, want about %v from now", fe.RetryAt, in)
	}
}

// TestGitHubRateLimit: an exhausted primary limit (403 with
// X-RateLimit-Remaining: 0) gives its reset; go-github then refuses the
// next request itself, and the error still tells when to come back.
func TestGitHubRateLimit(t *testing.T) {
	f, p := newGitHubForge(t)
	reset := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	f.handle("POST", "/repos/acme/app/statuses/*", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Used", "5000")
		w.Header().Set("X-RateLimit-Resource", "core")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		reply(w, 403, map[string]any{"message": "API rate limit exceeded for user ID 1.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"})
	})
	s := Status{Environment: "staging", Commit: commitA, State: Pending, Description: DescApplying}
	for i := range 2 {
		fe := forgeErr(t, p.SetStatus(testContext(t), Repo{"acme", "app"}, s))
		if !fe.Transient() || !fe.RetryAt.Equal(reset) {
			t.Fatalf("try %d: transient %v RetryAt %v, want true %v (%v)", i, fe.Transient(), fe.RetryAt, reset, fe)
		}
	}
	if n := len(f.Calls()); n != 1 {
		t.Fatalf("%d requests reached the forge, want 1 (the client knows the limit)", n)
	}
}

func TestGitHubNoToken(t *testing.T) {
	if _, err := NewGitHub("", ""); err == nil {
		t.Fatal("no error without a token")
	}
}
