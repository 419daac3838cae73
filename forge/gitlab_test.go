package forge

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newGitLabForge is a loopback GitLab REST API v4: every request must carry
// the token in PRIVATE-TOKEN and name the project by its URL-encoded path.
func newGitLabForge(t *testing.T) (*forge, Provider) { return forgeWith(t, "/api/v4", "", NewGitLab) }

func checkGitLabHeaders(t *testing.T, r *http.Request) {
	t.Helper()
	if got := r.Header.Get("Private-Token"); got != testToken {
		t.Errorf("%s %s: PRIVATE-TOKEN %q, want the token", r.Method, r.URL.Path, got)
	}
}

func TestGitLabSetStatus(t *testing.T) {
	f, p := newGitLabForge(t)
	for _, tc := range []struct {
		state State
		want  string
	}{{Pending, "running"}, {Success, "success"}, {Failure, "failed"}, {Error, "failed"}} {
		f.reset()
		f.handle("POST", "/projects/group%2Fsub%2Fapp/statuses/"+commitA, func(w http.ResponseWriter, r *http.Request, body []byte) {
			checkGitLabHeaders(t, r)
			m := decode(t, r, body)
			fields(t, "status", m, map[string]any{
				"state": tc.want, "name": "ferry/staging", "description": "verifying (soak 2m)",
				"target_url": "https://ferry.example/environments/staging?commit=" + commitA,
			})
			reply(w, http.StatusCreated, map[string]any{"id": 93, "sha": commitA, "status": tc.want, "name": "ferry/staging"})
		})
		err := p.SetStatus(testContext(t), Repo{"group/sub", "app"}, Status{Environment: "staging", Commit: commitA, State: tc.state,
			Description: DescVerifying(2 * time.Minute), TargetURL: TargetURL("https://ferry.example", "staging", commitA)})
		if err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
		if n := len(f.Calls()); n != 1 {
			t.Fatalf("%s: %d calls, want 1", tc.state, n)
		}
	}
}

// TestGitLabRunningToRunning: GitLab refuses to move a running status to
// running with a 400, after it saved the new description; that is success.
func TestGitLabRunningToRunning(t *testing.T) {
	f, p := newGitLabForge(t)
	f.handle("POST", "/projects/acme%2Fapp/statuses/"+commitA, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		reply(w, http.StatusBadRequest, map[string]any{"message": `Cannot transition status via :run from :running (Reason(s): Status cannot transition via "run")`})
	})
	err := p.SetStatus(testContext(t), Repo{"acme", "app"}, Status{Environment: "staging", Commit: commitA, State: Pending, Description: DescVerifying(time.Minute)})
	if err != nil {
		t.Fatalf("same-state transition: %v, want success", err)
	}
}

func TestGitLabPullRequestHeads(t *testing.T) {
	f, p := newGitLabForge(t)
	f.handle("GET", "/projects/acme%2Fapp/repository/commits/"+commitA+"/merge_requests", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGitLabHeaders(t, r)
		reply(w, http.StatusOK, []map[string]any{
			{"id": 1, "iid": 11, "state": "merged", "sha": commitB, "merge_commit_sha": nil, "squash_commit_sha": commitA},
			{"id": 2, "iid": 12, "state": "opened", "sha": commitC},
			{"id": 3, "iid": 13, "state": "merged", "sha": commitA, "merge_commit_sha": nil},
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

func TestGitLabOpenPullRequests(t *testing.T) {
	f, p := newGitLabForge(t)
	f.handle("GET", "/projects/acme%2Fapp/merge_requests", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGitLabHeaders(t, r)
		if q := r.URL.Query(); q.Get("state") != "opened" || q.Get("target_branch") != "main" {
			t.Errorf("query %v, want state=opened target_branch=main", q)
		}
		reply(w, http.StatusOK, []map[string]any{{"id": 100, "iid": 7, "sha": commitB, "target_branch": "main", "state": "opened"}})
	})
	prs, err := p.OpenPullRequests(testContext(t), Repo{"acme", "app"}, "main")
	want := []PullRequest{{Number: 7, Head: commitB, Base: "main"}}
	if err != nil || fmt.Sprint(prs) != fmt.Sprint(want) {
		t.Fatalf("%v, %v; want %v", prs, err, want)
	}
}

func TestGitLabCommentCreatesThenUpdates(t *testing.T) {
	f, p := newGitLabForge(t)
	var notes []map[string]any
	f.handle("GET", "/projects/acme%2Fapp/merge_requests/5/notes", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		checkGitLabHeaders(t, r)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page <= 1 {
			w.Header().Set("X-Next-Page", "2")
			w.Header().Set("X-Page", "1")
			reply(w, http.StatusOK, []map[string]any{{"id": 1, "body": "<!-- ferry/plan/staging -->\nsystem note", "system": true}})
			return
		}
		w.Header().Set("X-Page", "2")
		w.Header().Set("X-Next-Page", "")
		reply(w, http.StatusOK, notes)
	})
	f.handle("POST", "/projects/acme%2Fapp/merge_requests/5/notes", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitLabHeaders(t, r)
		m := decode(t, r, body)
		fields(t, "note", m, map[string]any{"body": m["body"]})
		n := map[string]any{"id": 40 + len(notes), "body": m["body"], "system": false}
		notes = append(notes, n)
		reply(w, http.StatusCreated, n)
	})
	f.handle("PUT", "/projects/acme%2Fapp/merge_requests/5/notes/*", func(w http.ResponseWriter, r *http.Request, body []byte) {
		checkGitLabHeaders(t, r)
		m := decode(t, r, body)
		fields(t, "note", m, map[string]any{"body": m["body"]})
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		for _, n := range notes {
			if fmt.Sprint(n["id"]) == id {
				n["body"] = m["body"]
				reply(w, http.StatusOK, n)
				return
			}
		}
		reply(w, http.StatusNotFound, map[string]any{"message": "404 Not found"})
	})
	ctx := testContext(t)
	repo := Repo{"acme", "app"}
	for _, body := range []string{"plan one", "plan two"} {
		if err := p.Comment(ctx, repo, 5, "ferry/plan/staging", body); err != nil {
			t.Fatal(err)
		}
	}
	if len(notes) != 1 || notes[0]["body"] != "<!-- ferry/plan/staging -->\nplan two" {
		t.Fatalf("notes %v, want one updated in place", notes)
	}
	var writes []string
	for _, c := range f.Calls() {
		if !strings.HasPrefix(c, "GET") {
			writes = append(writes, c)
		}
	}
	want := []string{"POST /projects/acme%2Fapp/merge_requests/5/notes", "PUT /projects/acme%2Fapp/merge_requests/5/notes/40"}
	if fmt.Sprint(writes) != fmt.Sprint(want) {
		t.Fatalf("writes %v, want %v", writes, want)
	}
}

func TestGitLabErrors(t *testing.T) {
	s := Status{Environment: "staging", Commit: commitA, State: Success, Description: "healthy at 0123456"}
	reset := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name      string
		answer    func(w http.ResponseWriter, r *http.Request)
		code      int
		transient bool
		retryAt   func(start time.Time) time.Time
		message   string
	}{
		{"unauthorized echoing the token", func(w http.ResponseWriter, r *http.Request) {
			reply(w, 401, map[string]any{"message": "401 Unauthorized " + r.Header.Get("Private-Token")})
		}, 401, false, nil, "401 Unauthorized"},
		{"project not found", func(w http.ResponseWriter, _ *http.Request) {
			reply(w, 404, map[string]any{"message": "404 Project Not Found"})
		}, 404, false, nil, "Not Found"},
		{"invalid field", func(w http.ResponseWriter, _ *http.Request) {
			reply(w, 400, map[string]any{"error": "state does not have a valid value"})
		}, 400, false, nil, "state does not have a valid value"},
		{"unavailable", func(w http.ResponseWriter, _ *http.Request) {
			reply(w, 503, map[string]any{"message": "503 Service Unavailable"})
		}, 503, true, nil, "503"},
		{"rate limited with Retry-After", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "20")
			w.Header().Set("RateLimit-Limit", "600")
			w.Header().Set("RateLimit-Remaining", "0")
			w.Header().Set("RateLimit-Reset", strconv.FormatInt(time.Now().Add(20*time.Second).Unix(), 10))
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(429)
			_, _ = w.Write([]byte("Retry later\n"))
		}, 429, true, func(start time.Time) time.Time { return start.Add(20 * time.Second) }, "Retry later"},
		{"rate limited with a reset only", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("RateLimit-Remaining", "0")
			w.Header().Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
			reply(w, 429, map[string]any{"message": "Retry later"})
		}, 429, true, func(time.Time) time.Time { return reset }, "Retry later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := newGitLabForge(t)
			f.handle("POST", "/projects/acme%2Fapp/statuses/"+commitA, func(w http.ResponseWriter, r *http.Request, _ []byte) { tc.answer(w, r) })
			start := time.Now()
			err := p.SetStatus(testContext(t), Repo{"acme", "app"}, s)
			fe := forgeErr(t, err)
			if fe.Code != tc.code || fe.Transient() != tc.transient || fe.Forge != "gitlab" {
				t.Errorf("code %d transient %v forge %s, want %d %v gitlab", fe.Code, fe.Transient(), fe.Forge, tc.code, tc.transient)
			}
			if tc.retryAt == nil && !fe.RetryAt.IsZero() {
				t.Errorf("RetryAt %v, want none", fe.RetryAt)
			}
			if tc.retryAt != nil {
				if want := tc.retryAt(start); fe.RetryAt.Before(want.Add(-time.Second)) || fe.RetryAt.After(want.Add(2*time.Second)) {
					t.Errorf("RetryAt %v, want about %v", fe.RetryAt, want)
				}
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.HasPrefix(err.Error(), "acme/app@0123456 set status ferry/staging: gitlab answered") {
				t.Errorf("error %q, want the subject first and %q", err, tc.message)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows the token: %q", err)
			}
			// The client's own retries are off: one request, the Reporter retries.
			if n := len(f.Calls()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestGitLabBaseURL(t *testing.T) {
	for _, u := range []string{"gitlab.example.com", "ftp://gitlab.example.com", "https://user:" + testToken + "@"} {
		_, err := NewGitLab(u, testToken)
		if err == nil {
			t.Errorf("%q: no error", u)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%q: error shows the token: %v", u, err)
		}
	}
}
