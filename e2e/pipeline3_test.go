package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	ferryforge "ferry.dev/ferry/forge"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/state"
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
	time.Sleep(3 * time.Second) // more reconciles of the same commit open nothing more
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

// TestPromotionAfterProductionRevert: after production reverted a
// production-only failure, a commit rendering production identical to the
// reverted one is not promoted; a fixed one is promoted with a promotion
// commit on production's revert, carrying the verified tree.
func TestPromotionAfterProductionRevert(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	startFerry(t, p.config())
	p.waitDecided(t, "production", first, 2*time.Minute)
	bad := p.pushMain(t, map[string]string{"envs/production/kustomization.yaml": productionCrashPatch}, "Tune production")
	if v := p.waitDecided(t, "production", bad, time.Minute); !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("production: %+v", v)
	}
	revert := p.tip(t, "production")

	t.Log("a staging-only change still carrying production's reverted rendering")
	same := p.pushMain(t, map[string]string{"envs/staging/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v2\n"}, "Tune staging")
	v := p.waitDecided(t, "staging", same, 2*time.Minute)
	if v.Outcome != state.OutcomeHealthy || !strings.Contains(v.Action.String(), "held: production renders identical to "+bad[:7]) {
		t.Fatalf("promotion of a quarantined rendering: %+v", v)
	}
	if tip := p.tip(t, "production"); tip != revert {
		t.Fatalf("production moved to %s", tip[:7])
	}

	t.Log("the fix is promoted with a promotion commit")
	fix := p.pushMain(t, map[string]string{"envs/production/kustomization.yaml": pipelineFiles("v1")["envs/production/kustomization.yaml"]}, "Fix production")
	if v := p.waitDecided(t, "staging", fix, 2*time.Minute); v.Action.String() != "promoted to production" {
		t.Fatalf("fix: %+v", v)
	}
	promo := p.tip(t, "production")
	if parent := p.git(t, "rev-parse", promo+"^"); parent != revert {
		t.Fatalf("promotion commit's parent %s, want production's revert %s", parent[:7], revert[:7])
	}
	if p.git(t, "rev-parse", promo+"^{tree}") != p.git(t, "rev-parse", fix+"^{tree}") {
		t.Fatal("the promotion commit's tree is not the verified tree")
	}
	if msg := p.git(t, "log", "-1", "--format=%B", promo); !strings.Contains(msg, "Ferry-Promoted-From: staging@"+fix) {
		t.Fatalf("promotion commit message:\n%s", msg)
	}
	if v := p.waitDecided(t, "production", promo, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("production on the promotion commit: %+v", v)
	}
}
