package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/sandbox"
)

// TestPullRequestPlan: an open pull request into main gets the status
// ferry/plan/staging with the dry-run summary and one comment with the
// diff; a new push to it updates both, the comment in place.
func TestPullRequestPlan(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	cfg := p.config() + fmt.Sprintf("server: {addr: %q}\nreport: {provider: gitea, url: %q, tokenFile: %s}\n",
		freeAddr(t), strings.TrimSuffix(forge.URL, "/"), p.tokenFile)
	cfgPath := writeConfig(t, cfg)
	first := p.tip(t, "main")
	sandbox.StartFerry(t, buildFerry(t), cfgPath)
	p.waitDecided(t, "staging", first, 2*time.Minute)

	p.git(t, "checkout", "--quiet", "-B", "change", "origin/main")
	files := pipelineFiles("v2")
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: v2\n"
	head, err := p.wc.CommitAndPush(t.Context(), files, "Deploy v2, drop extra")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.wc.Push(t.Context(), "change"); err != nil {
		t.Fatal(err)
	}
	pr, err := forge.OpenPullRequest(p.repo, "change", "main", "Deploy v2")
	if err != nil {
		t.Fatal(err)
	}
	waitStatuses(t, p.repo, head, "ferry/plan/staging", []string{"success: 0 created, 1 changed, 1 pruned"})
	comment := func() (int, string) { return planComments(t, p.repo, pr.Index) }
	eventually(t, time.Minute, func() (bool, string) {
		n, body := comment()
		return n == 1 && strings.Contains(body, head[:7]) && strings.Contains(body, "registry.invalid/web:v2"), fmt.Sprintf("%d plan comments: %s", n, body)
	})

	t.Log("a new push to the pull request")
	files["envs/staging/extra.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra2\ndata:\n  k: v\n"
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v2\n"
	head2, err := p.wc.CommitAndPush(t.Context(), files, "Rename extra")
	if err != nil {
		t.Fatal(err)
	}
	waitStatuses(t, p.repo, head2, "ferry/plan/staging", []string{"success: 1 created, 1 changed, 1 pruned"})
	eventually(t, time.Minute, func() (bool, string) {
		n, body := comment()
		return n == 1 && strings.Contains(body, head2[:7]), fmt.Sprintf("%d plan comments: %s", n, body)
	})

	t.Log("a push that does not render")
	files["envs/staging/extra.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra2\ndata: [unclosed\n"
	head3, err := p.wc.CommitAndPush(t.Context(), files, "Break extra")
	if err != nil {
		t.Fatal(err)
	}
	waitStatuses(t, p.repo, head3, "ferry/plan/staging", []string{"failure: render envs/staging"})
	eventually(t, time.Minute, func() (bool, string) {
		n, body := comment()
		return n == 1 && strings.Contains(body, "Plan failed") && strings.Contains(body, "extra.yaml"), fmt.Sprintf("%d plan comments: %s", n, body)
	})
}
