package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	ferryforge "ferry.dev/ferry/forge"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

// reportRepo creates a repository with one commit on main and returns its
// working copy, the commit, and the repository as report names it.
func reportRepo(t *testing.T, name string) (*sandbox.Clone, string, ferryforge.Repo) {
	t.Helper()
	wc, sha := newRepo(t, name, map[string]string{"envs/staging/cm.yaml": "v: 1\n"}, "Add staging")
	repo, err := ferryforge.ParseRepo(forge.CloneURL(name))
	if err != nil {
		t.Fatal(err)
	}
	return wc, sha, repo
}

// statuses reads back the statuses of commit, oldest first, as
// "context state description".
func statuses(t *testing.T, repo ferryforge.Repo, commit string) []string {
	t.Helper()
	list, _, err := forge.Client.ListStatuses(repo.Owner, repo.Name, commit, gitea.ListStatusesOption{ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatalf("list statuses of %s: %v", commit, err)
	}
	slices.SortFunc(list, func(a, b *gitea.Status) int { return int(a.ID - b.ID) })
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s %s %s", s.Context, s.State, s.Description))
	}
	return out
}

// branchAndPR pushes a commit on a new branch from origin/main, then one on
// main so no merge is a fast-forward, and opens a pull request of the
// branch into main. It returns the pull request and its head.
func branchAndPR(t *testing.T, wc *sandbox.Clone, name, branch string) (*gitea.PullRequest, string) {
	t.Helper()
	ctx := t.Context()
	for _, args := range [][]string{{"fetch", "--quiet", "origin"}, {"checkout", "--quiet", "-B", branch, "origin/main"}} {
		if _, err := wc.Git(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	head, err := wc.CommitAndPush(ctx, map[string]string{"envs/staging/" + branch + ".yaml": "b: " + branch + "\n"}, "Change "+branch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Git(ctx, "checkout", "--quiet", "-B", "main", "origin/main"); err != nil {
		t.Fatal(err)
	}
	if _, err := wc.CommitAndPush(ctx, map[string]string{"main-" + branch + ".txt": "x\n"}, "Main moves on before "+branch); err != nil {
		t.Fatal(err)
	}
	pr, err := forge.OpenPullRequest(name, branch, "main", "Change "+branch)
	if err != nil {
		t.Fatal(err)
	}
	return pr, head
}

// merge merges pr with style, retrying while Gitea still checks whether it
// can be merged, and returns the commit the merge produced on main.
func merge(t *testing.T, name string, pr *gitea.PullRequest, style gitea.MergeStyle) string {
	t.Helper()
	var merged *gitea.PullRequest
	eventually(t, 30*time.Second, func() (bool, string) {
		var err error
		merged, err = forge.MergePullRequest(name, pr.Index, style)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if merged.MergedCommitID == nil || *merged.MergedCommitID == "" {
		t.Fatalf("pull request #%d merged (%s) without a merge commit", pr.Index, style)
	}
	return *merged.MergedCommitID
}

// TestReportGitea drives the Gitea provider against the real forge: status
// lifecycle, the pull request heads of merge, squash and rebase merges, a
// plan comment updated in place, and the Reporter posting on the merged
// commit and the pull request's head.
func TestReportGitea(t *testing.T) {
	ctx := t.Context()
	name := "report-gitea"
	wc, base, repo := reportRepo(t, name)
	p, err := ferryforge.NewGitea(forge.URL, forge.Token)
	if err != nil {
		t.Fatal(err)
	}
	target := ferryforge.TargetURL("http://127.0.0.1:8080", "staging", base)

	t.Run("status lifecycle", func(t *testing.T) {
		for _, s := range []ferryforge.Status{
			{Environment: "staging", Commit: base, State: ferryforge.Pending, Description: ferryforge.DescApplying, TargetURL: target},
			{Environment: "staging", Commit: base, State: ferryforge.Pending, Description: ferryforge.DescVerifying(2 * time.Minute), TargetURL: target},
			{Environment: "staging", Commit: base, State: ferryforge.Success, Description: ferryforge.DescHealthy(base), TargetURL: target},
			{Environment: "staging", Context: ferryforge.PlanContext("staging"), Commit: base, State: ferryforge.Failure, Description: strings.Repeat("x", 300)},
		} {
			if err := p.SetStatus(ctx, repo, s); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{
			"ferry/staging pending applying",
			"ferry/staging pending verifying (soak 2m)",
			"ferry/staging success healthy at " + base[:7],
			"ferry/plan/staging failure " + strings.Repeat("x", 254) + "…",
		}
		if got := statuses(t, repo, base); !slices.Equal(got, want) {
			t.Fatalf("statuses\n%q\nwant\n%q", got, want)
		}
		combined, _, err := forge.Client.GetCombinedStatus(repo.Owner, repo.Name, base)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range combined.Statuses {
			if s.Context == "ferry/staging" && s.TargetURL != target {
				t.Errorf("target URL %q, want %q", s.TargetURL, target)
			}
		}
	})

	t.Run("status on an unknown repository", func(t *testing.T) {
		err := p.SetStatus(ctx, ferryforge.Repo{Owner: repo.Owner, Name: "no-such-repo"},
			ferryforge.Status{Environment: "staging", Commit: base, State: ferryforge.Pending, Description: "x"})
		var fe *ferryforge.ForgeError
		if err == nil || !errors.As(err, &fe) || fe.Code != 404 || fe.Transient() || strings.Contains(err.Error(), forge.Token) {
			t.Fatalf("error %v, want a permanent 404 ForgeError without the token", err)
		}
	})

	// Open every pull request first: Gitea checks them in the background
	// before it lets them merge.
	styles := []gitea.MergeStyle{gitea.MergeStyleMerge, gitea.MergeStyleSquash, gitea.MergeStyleRebase}
	prs := map[gitea.MergeStyle]*gitea.PullRequest{}
	prHeads := map[gitea.MergeStyle]string{}
	for _, style := range styles {
		prs[style], prHeads[style] = branchAndPR(t, wc, name, "feature-"+string(style))
	}
	heads := map[gitea.MergeStyle][2]string{} // style → merged commit, pull request head
	for _, style := range styles {
		t.Run("pull request heads of a "+string(style)+" merge", func(t *testing.T) {
			pr, head := prs[style], prHeads[style]
			merged := merge(t, name, pr, style)
			if merged == head {
				t.Fatalf("%s merge was a fast-forward; the test needs a new commit", style)
			}
			got, err := p.PullRequestHeads(ctx, repo, merged)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []string{head}) {
				t.Fatalf("heads of %s: %v, want [%s]", merged[:7], got, head)
			}
			heads[style] = [2]string{merged, head}
		})
	}
	t.Run("no pull request", func(t *testing.T) {
		got, err := p.PullRequestHeads(ctx, repo, base)
		if err != nil || len(got) != 0 {
			t.Fatalf("heads of a pushed commit: %v, %v; want none", got, err)
		}
	})

	t.Run("plan comment updated in place", func(t *testing.T) {
		pr, head := branchAndPR(t, wc, name, "feature-plan")
		open, err := p.OpenPullRequests(ctx, repo, "main")
		if err != nil || !slices.ContainsFunc(open, func(o ferryforge.PullRequest) bool {
			return o.Number == int(pr.Index) && o.Head == head && o.Base == "main" && o.Branch == "feature-plan"
		}) {
			t.Fatalf("open pull requests %v, %v; want #%d at %s", open, err, pr.Index, head[:7])
		}
		plan := ferryforge.Plan{Environment: "staging", Commit: head, Created: 1}
		if err := p.Comment(ctx, repo, int(pr.Index), plan.Marker(), plan.Comment()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := forge.Client.CreateIssueComment(repo.Owner, repo.Name, pr.Index, gitea.CreateIssueCommentOption{Body: "looks good"}); err != nil {
			t.Fatal(err)
		}
		plan.Changed = 2
		if err := p.Comment(ctx, repo, int(pr.Index), plan.Marker(), plan.Comment()); err != nil {
			t.Fatal(err)
		}
		comments, _, err := forge.Client.ListIssueComments(repo.Owner, repo.Name, pr.Index, gitea.ListIssueCommentOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, c := range comments {
			bodies = append(bodies, c.Body)
		}
		if len(bodies) != 2 || !strings.Contains(bodies[0], "**1 created, 2 changed, 0 pruned**") || bodies[1] != "looks good" {
			t.Fatalf("comments %q, want the plan updated in place and the reply", bodies)
		}
	})

	t.Run("reporter posts on the merged commit and the pull request head", func(t *testing.T) {
		sq, ok := heads[gitea.MergeStyleSquash]
		if !ok {
			t.Fatal("the squash merge failed above, so there is nothing to post on")
		}
		merged, head := sq[0], sq[1]
		r := ferryforge.NewReporter(p, ferryforge.DefaultReporterOptions())
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { r.Run(rctx); close(done) }()
		defer func() { cancel(); <-done }()
		for _, s := range []ferryforge.Status{
			{Environment: "staging", Commit: merged, State: ferryforge.Pending, Description: ferryforge.DescApplying},
			{Environment: "staging", Commit: merged, State: ferryforge.Pending, Description: ferryforge.DescApplying}, // identical: not re-posted
			{Environment: "staging", Commit: merged, State: ferryforge.Success, Description: ferryforge.DescHealthy(merged)},
		} {
			r.Post(repo, s)
		}
		fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
		defer fcancel()
		if err := r.Flush(fctx); err != nil {
			t.Fatal(err)
		}
		want := []string{"ferry/staging pending applying", "ferry/staging success healthy at " + merged[:7]}
		for _, sha := range []string{merged, head} {
			if got := statuses(t, repo, sha); !slices.Equal(got, want) {
				t.Errorf("statuses of %s\n%q\nwant\n%q", sha[:7], got, want)
			}
		}
	})
}

// hookSource is a server.Source following main of one repository as
// "staging", recording triggers and pull request events.
type hookSource struct {
	repo      ferryforge.Repo
	mu        sync.Mutex
	triggered []time.Time
	prs       []string
}

func (s *hookSource) Edges() []server.GraphEdge { return nil }

func (s *hookSource) Environments() []string { return []string{"staging"} }
func (s *hookSource) Environment(context.Context, string) (*state.Environment, error) {
	return &state.Environment{Name: "staging"}, nil
}
func (s *hookSource) Trigger(context.Context, string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggered = append(s.triggered, time.Now())
	return true
}
func (s *hookSource) Watches(repo ferryforge.Repo, branch string) []string {
	if repo.Is(s.repo) && branch == "main" {
		return []string{"staging"}
	}
	return nil
}

// TestReportGiteaWebhooks: Gitea's real, signed deliveries reach the
// server; a push to main triggers staging, an opened pull request reaches
// OnPullRequest, and a hook with the wrong secret triggers nothing.
func TestReportGiteaWebhooks(t *testing.T) {
	ctx := t.Context()
	name := "report-hooks"
	wc, _, repo := reportRepo(t, name)
	src := &hookSource{repo: repo}
	opts := server.DefaultServerOptions()
	opts.WebhookSecret = []byte("e2e-hook-secret")
	opts.OnPullRequest = func(r ferryforge.Repo, number int, head, base string) {
		src.mu.Lock()
		defer src.mu.Unlock()
		src.prs = append(src.prs, fmt.Sprintf("%s#%d %s→%s", r, number, head[:7], base))
	}
	srv := httptest.NewServer(server.NewServer(src, opts))
	defer srv.Close()
	wrong := &hookSource{repo: repo}
	forged := httptest.NewServer(server.NewServer(wrong, server.ServerOptions{WebhookSecret: []byte("another secret")}))
	defer forged.Close()
	for url, secret := range map[string]string{srv.URL: "e2e-hook-secret", forged.URL: "wrong-secret"} {
		_, _, err := forge.Client.CreateRepoHook(repo.Owner, repo.Name, gitea.CreateHookOption{
			Type: gitea.HookTypeGitea, Active: true, Events: []string{"push", "pull_request"},
			Config: map[string]string{"url": url + "/hooks/gitea", "content_type": "json", "secret": secret},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pushed := time.Now()
	if _, err := wc.CommitAndPush(ctx, map[string]string{"envs/staging/cm.yaml": "v: 2\n"}, "Change staging"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.triggered) > 0, "no trigger from Gitea's push webhook"
	})
	src.mu.Lock()
	t.Logf("push to trigger: %s", src.triggered[0].Sub(pushed).Round(time.Millisecond))
	src.mu.Unlock()

	pr, head := branchAndPR(t, wc, name, "feature-hook")
	want := fmt.Sprintf("%s#%d %s→main", repo, pr.Index, head[:7])
	eventually(t, 20*time.Second, func() (bool, string) {
		src.mu.Lock()
		defer src.mu.Unlock()
		return slices.Contains(src.prs, want), fmt.Sprintf("pull request events %v, want %s", src.prs, want)
	})
	// The server whose secret differs refused every delivery.
	wrong.mu.Lock()
	defer wrong.mu.Unlock()
	if len(wrong.triggered) != 0 || len(wrong.prs) != 0 {
		t.Fatalf("deliveries signed with another secret triggered %d polls", len(wrong.triggered))
	}
}
