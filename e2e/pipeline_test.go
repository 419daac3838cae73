package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/state"
)

// pipeline is a repository with two environments: staging follows main
// at envs/staging and promotes to production, which follows production
// at envs/production.
type pipeline struct {
	stateNS, stagingNS, prodNS, repo, tokenFile string
	wc                                          *harness.Clone
	c                                           client.Client
	stagingHealth                               string
}

func pipelineFiles(tag string) map[string]string {
	files := appFiles(tag)
	files["envs/production/kustomization.yaml"] = "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: " + tag + "\n"
	return files
}

func newPipeline(t *testing.T, files map[string]string) *pipeline {
	t.Helper()
	ctx := t.Context()
	p := &pipeline{c: kubeClient(t), stagingHealth: "{timeout: 2m, interval: 250ms}"}
	p.stagingNS, p.prodNS, p.stateNS = newNamespace(t), newNamespace(t), newNamespace(t)
	p.repo = "p-" + p.stagingNS
	if _, err := forge.CreateRepo(p.repo); err != nil {
		t.Fatal(err)
	}
	wc, err := forge.Clone(ctx, p.repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p.wc = wc
	if _, err := wc.CommitAndPush(ctx, files, "Initial application"); err != nil {
		t.Fatal(err)
	}
	if err := wc.Push(ctx, "main:production"); err != nil {
		t.Fatal(err)
	}
	p.tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p.tokenFile, []byte(forge.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pipeline) config() string {
	return fmt.Sprintf(`namespace: %[1]s
environments:
  - name: staging
    source: {url: %[2]s, branch: main, path: envs/staging, interval: 1s, auth: {tokenFile: %[3]s}}
    cluster: {kubeconfig: %[4]s}
    namespace: %[5]s
    health: %[7]s
    onFailure: revert
    promote: {to: production, mode: push}
  - name: production
    source: {url: %[2]s, branch: production, path: envs/production, interval: 1s, auth: {tokenFile: %[3]s}}
    cluster: {kubeconfig: %[4]s}
    namespace: %[6]s
    health: {timeout: 2m, interval: 250ms}
    onFailure: revert
`, p.stateNS, forge.CloneURL(p.repo), p.tokenFile, cluster.Kubeconfig, p.stagingNS, p.prodNS, p.stagingHealth)
}

func (p *pipeline) state(t *testing.T, env string) *state.State {
	t.Helper()
	st, err := state.NewStore(p.c, p.stateNS).Load(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitDecided waits until env has a verdict on commit and a decision on it.
func (p *pipeline) waitDecided(t *testing.T, env, commit string, timeout time.Duration) state.Verdict {
	t.Helper()
	var v state.Verdict
	eventually(t, timeout, func() (bool, string) {
		st := p.state(t, env)
		var ok bool
		v, ok = st.VerdictFor(commit)
		return ok && !v.Action.IsZero(), fmt.Sprintf("%s: no decision on %s yet (verdict %+v); phase %s: %s", env, commit[:7], v, st.Phase, st.Message)
	})
	return v
}

// tip fetches and returns the SHA at the tip of branch.
func (p *pipeline) tip(t *testing.T, branch string) string {
	t.Helper()
	if _, err := p.wc.Git(t.Context(), "fetch", "--quiet", "origin"); err != nil {
		t.Fatal(err)
	}
	sha, err := p.wc.Git(t.Context(), "rev-parse", "origin/"+branch)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

func (p *pipeline) git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.wc.Git(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pushMain commits files on main (after syncing with origin) and pushes.
func (p *pipeline) pushMain(t *testing.T, files map[string]string, message string) string {
	t.Helper()
	p.git(t, "fetch", "--quiet", "origin")
	p.git(t, "checkout", "--quiet", "-B", "main", "origin/main")
	sha, err := p.wc.CommitAndPush(t.Context(), files, message)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

func (p *pipeline) webTemplate(t *testing.T, ns string) map[string]string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := p.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	ann := d.Spec.Template.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	ann["image"] = d.Spec.Template.Spec.Containers[0].Image
	return ann
}

// TestPromoteAndRevert: a good commit is promoted to production by a
// fast-forward; a bad commit fails in staging within seconds and is
// reverted in git to the last healthy tree; production never sees it; a
// person's revert of the revert is held as quarantined until released.
func TestPromoteAndRevert(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	startFerry(t, p.config())
	if v := p.waitDecided(t, "staging", first, 2*time.Minute); v.Outcome != state.OutcomeHealthy || v.Action.String() != "promoted to production" {
		t.Fatalf("first commit in staging: %+v", v)
	}
	p.waitDecided(t, "production", first, 2*time.Minute)

	t.Log("a good commit is promoted by fast-forward")
	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	if v := p.waitDecided(t, "staging", good, 2*time.Minute); v.Outcome != state.OutcomeHealthy || v.Action.String() != "promoted to production" {
		t.Fatalf("good commit in staging: %+v", v)
	}
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production at %s, want the fast-forward to %s", tip[:7], good[:7])
	}
	if v := p.waitDecided(t, "production", good, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("good commit in production: %+v", v)
	}
	if img := p.webTemplate(t, p.prodNS)["image"]; img != "registry.invalid/web:v2" {
		t.Fatalf("production runs %s", img)
	}

	t.Log("a bad commit fails in staging and is reverted in git")
	start := time.Now()
	bad := p.pushMain(t, withPodAnnotation("v3", harness.FailCrashLoop), "Deploy web v3")
	v := p.waitDecided(t, "staging", bad, time.Minute)
	if v.Outcome != state.OutcomeFailed || !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("bad commit in staging: %+v", v)
	}
	revert := p.tip(t, "main")
	t.Logf("bad commit reverted after %s: %s", time.Since(start).Round(time.Millisecond), v.Action.String())
	msg := p.git(t, "log", "-1", "--format=%B", revert)
	for _, want := range []string{`Revert "Deploy web v3"`, "This reverts commit " + bad + ".", "Ferry-Reverted: " + bad, "Ferry-Reason: Deployment"} {
		if !strings.Contains(msg, want) {
			t.Errorf("revert message lacks %q:\n%s", want, msg)
		}
	}
	if parent := p.git(t, "rev-parse", revert+"^"); parent != bad {
		t.Errorf("revert's parent %s, want the failed commit %s", parent[:7], bad[:7])
	}
	if p.git(t, "rev-parse", revert+"^{tree}") != p.git(t, "rev-parse", good+"^{tree}") {
		t.Error("revert's tree is not the last healthy revision's tree")
	}
	if rv := p.waitDecided(t, "staging", revert, 2*time.Minute); rv.Outcome != state.OutcomeHealthy {
		t.Fatalf("revert commit in staging: %+v", rv)
	}
	if ann := p.webTemplate(t, p.stagingNS); ann[harness.FailAnnotation] != "" || ann["image"] != "registry.invalid/web:v2" {
		t.Fatalf("staging not back on the last healthy objects: %v", ann)
	}
	// The revert renders like the good commit, so production has nothing to take.
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production moved to %s, want it still at %s", tip[:7], good[:7])
	}
	if ann := p.webTemplate(t, p.prodNS); ann[harness.FailAnnotation] != "" {
		t.Fatal("production saw the bad commit")
	}

	t.Log("a person's revert of the revert is held as quarantined")
	p.git(t, "fetch", "--quiet", "origin")
	p.git(t, "checkout", "--quiet", "-B", "main", "origin/main")
	p.git(t, "revert", "--no-edit", "HEAD")
	if err := p.wc.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	again := p.git(t, "rev-parse", "HEAD")
	qv := p.waitDecided(t, "staging", again, time.Minute)
	if qv.Outcome != state.OutcomeQuarantined || !strings.Contains(qv.Reason, "identical to reverted "+bad[:7]) {
		t.Fatalf("revert of the revert: %+v", qv)
	}
	if ann := p.webTemplate(t, p.stagingNS); ann[harness.FailAnnotation] != "" {
		t.Fatal("the quarantined rendering was applied")
	}

	t.Log("releasing it lets the loop evaluate it again")
	if _, err := state.NewStore(p.c, p.stateNS).Update(t.Context(), "staging", func(st *state.State) error {
		if released := st.Release(bad[:7]); len(released) != 1 {
			return fmt.Errorf("released %v", released)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rv := p.waitDecided(t, "staging", again, time.Minute)
	if rv.Outcome != state.OutcomeFailed {
		t.Fatalf("released commit: %+v, want it applied and failed again", rv)
	}
}
