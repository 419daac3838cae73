package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"ferry.dev/ferry/config"
	ferryforge "ferry.dev/ferry/forge"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// pipelineEnv is one environment of a multi-environment pipeline test:
// its branch, its namespace and the rest of its configuration.
type pipelineEnv struct {
	name, branch, ns, extra string
	// health is the environment's health settings; empty is a 2m timeout
	// polled every 250ms.
	health string
}

// multiFiles is a base and one overlay per environment at tag; failIn
// names environments whose overlay makes the web pods fail with mode.
func multiFiles(tag string, envs []string, failIn map[string]string) map[string]string {
	files := appFiles(tag)
	delete(files, "envs/staging/extra.yaml")
	for _, e := range envs {
		k := "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: " + tag + "\n"
		if mode, ok := failIn[e]; ok {
			k += fmt.Sprintf("patches:\n  - target: {kind: Deployment, name: web}\n    patch: |-\n      - op: add\n        path: /spec/template/metadata/annotations\n        value: {%s: %s}\n", sandbox.FailAnnotation, mode)
		}
		files["envs/"+e+"/kustomization.yaml"] = k
	}
	return files
}

// newMulti creates a repository with files on main, a branch per
// environment from it, and a namespace per environment; it returns the
// fixture (its first environment is envs[0]) and ferry's configuration.
func newMulti(t *testing.T, envs []pipelineEnv, files map[string]string, tail string) (*fixture, string) {
	t.Helper()
	f := newFixture(t, envs[0].name, "m-", files, "Initial application")
	var b strings.Builder
	fmt.Fprintf(&b, "namespace: %s\nenvironments:\n", f.stateNS)
	for i := range envs {
		e := &envs[i]
		if e.branch != "main" {
			if err := f.wc.Push(t.Context(), "main:"+e.branch); err != nil {
				t.Fatal(err)
			}
		}
		e.ns = newNamespace(t)
		if e.health == "" {
			e.health = "{timeout: 2m, interval: 250ms}"
		}
		if i == 0 {
			f.ns = e.ns
		}
		fmt.Fprintf(&b, `  - name: %s
    source: {url: %s, branch: %s, path: envs/%s, interval: 1s, auth: {tokenFile: %s}}
    cluster: {kubeconfig: %s}
    namespace: %s
    health: %s
    onFailure: revert
%s`, e.name, forge.CloneURL(f.repo), e.branch, e.name, f.tokenFile, cluster.Kubeconfig, e.ns, e.health, e.extra)
	}
	b.WriteString(tail)
	return f, b.String()
}

func (f *fixture) giteaReport() string {
	return fmt.Sprintf("report: {provider: gitea, url: %q, tokenFile: %s}\n", strings.TrimSuffix(forge.URL, "/"), f.tokenFile)
}

// giteaReporter posts an in-process ferry's commit statuses to the
// package's Gitea until the test ends, as `ferry run` does.
func giteaReporter(t *testing.T) func(*reconciler.Options) {
	t.Helper()
	provider, err := ferryforge.NewGitea(strings.TrimSuffix(forge.URL, "/"), forge.Token)
	if err != nil {
		t.Fatal(err)
	}
	r := ferryforge.NewReporter(provider, ferryforge.DefaultReporterOptions())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func(o *reconciler.Options) { o.Reporter = r }
}

// sameTree reports whether two commits of the fixture's repository hold
// the same tree.
func (f *fixture) sameTree(t *testing.T, a, b string) bool {
	t.Helper()
	return f.git(t, "rev-parse", a+"^{tree}") == f.git(t, "rev-parse", b+"^{tree}")
}

// verdictOnTree waits for env's decided verdict on a commit holding the
// tree of commit (promotion commits carry the tree under a new hash).
func (f *fixture) verdictOnTree(t *testing.T, env, commit string, timeout time.Duration) state.Verdict {
	t.Helper()
	var found state.Verdict
	eventually(t, timeout, func() (bool, string) {
		st := f.state(t, env)
		f.git(t, "fetch", "--quiet", "origin")
		for _, v := range st.History {
			if !v.Action.IsZero() && f.sameTree(t, v.Commit, commit) {
				found = v
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s: no decided verdict on the tree of %s; phase %s: %s", env, commit[:7], st.Phase, st.Message)
	})
	return found
}

// TestPipelineWaves: dev → staging → [prod-eu, prod-us], prod-us requiring
// prod-eu. A good commit travels through all four in order, shown by the
// branch tips, the verdicts' times and Gitea's statuses; a commit that is
// healthy in dev and fails in staging is reverted there and stops: the
// production regions never receive it, and staging says so.
func TestPipelineWaves(t *testing.T) {
	names := []string{"dev", "staging", "prod-eu", "prod-us"}
	envs := []pipelineEnv{
		{name: "dev", branch: "main", extra: "    promote: {to: staging}\n"},
		{name: "staging", branch: "staging", extra: "    promote: {to: [prod-eu, prod-us]}\n"},
		{name: "prod-eu", branch: "prod-eu"},
		{name: "prod-us", branch: "prod-us", extra: "    requires: [prod-eu]\n"},
	}
	f, cfg := newMulti(t, envs, multiFiles("v1", names, nil), "")
	cfg += f.giteaReport()
	first := f.tip(t, "main")
	startFerryWith(t, cfg, giteaReporter(t))
	for _, e := range names {
		requireHealthy(t, f.waitDecided(t, e, first, 2*time.Minute))
	}

	t.Log("a good commit moves through all four, prod-us after prod-eu")
	good := f.pushMain(t, multiFiles("v2", names, nil), "Deploy web v2")
	var verdicts []state.Verdict
	for _, e := range names {
		v := f.verdictOnTree(t, e, good, 2*time.Minute)
		requireHealthy(t, v)
		verdicts = append(verdicts, v)
	}
	for i, e := range names {
		if tip := f.tip(t, envs[i].branch); !f.sameTree(t, tip, good) {
			t.Errorf("%s's branch %s is at %s, not the tree of %s", e, envs[i].branch, tip[:7], good[:7])
		}
	}
	dev, staging, eu, us := verdicts[0], verdicts[1], verdicts[2], verdicts[3]
	if staging.Started.Before(dev.Finished) || eu.Started.Before(staging.Finished) || us.Started.Before(staging.Finished) {
		t.Errorf("out of order: dev finished %s, staging started %s finished %s, prod-eu started %s, prod-us started %s",
			dev.Finished, staging.Started, staging.Finished, eu.Started, us.Started)
	}
	if us.Started.Before(eu.Finished) {
		t.Errorf("prod-us started %s before prod-eu was healthy at %s", us.Started.Format(time.StampMilli), eu.Finished.Format(time.StampMilli))
	}
	if staging.Action.String() != "promoted to prod-eu, prod-us" || len(staging.Hops) != 2 {
		t.Errorf("staging's decision: %s, hops %+v", staging.Action, staging.Hops)
	}
	for _, h := range staging.Hops {
		if h.Action.String() != "promoted to "+h.To {
			t.Errorf("hop to %s: %s", h.To, h.Action)
		}
	}
	if dev.Action.String() != "promoted to staging" {
		t.Errorf("dev's decision: %s", dev.Action)
	}
	// Every branch moved by fast-forward: the statuses are on the commit.
	waitStatuses(t, f.repo, good, "ferry/dev", []string{"pending: applying", "pending: verifying", "success: healthy at " + good[:7], "success: promoted to staging"})
	waitStatuses(t, f.repo, good, "ferry/staging", []string{"pending: applying", "pending: verifying", "success: healthy at " + good[:7], "success: promoted to prod-eu", "success: promoted to prod-us"})
	waitStatuses(t, f.repo, good, "ferry/prod-eu", []string{"pending: applying", "pending: verifying", "success: healthy at " + good[:7]})
	waitStatuses(t, f.repo, good, "ferry/prod-us", []string{"pending: applying", "pending: verifying", "success: healthy at " + good[:7]})

	t.Log("a commit healthy in dev and failing in staging stops at staging")
	bad := f.pushMain(t, multiFiles("v3", names, map[string]string{"staging": sandbox.FailCrashLoop}), "Deploy web v3")
	requireHealthy(t, f.waitDecided(t, "dev", bad, 2*time.Minute))
	v := f.waitDecided(t, "staging", bad, 2*time.Minute)
	if v.Outcome != state.OutcomeFailed || !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("bad commit in staging: %+v", v)
	}
	if !strings.HasPrefix(v.Stopped, "stopped at staging (") || !strings.HasSuffix(v.Stopped, "); prod-eu, prod-us will not receive it") {
		t.Errorf("staging's verdict does not say where the tree stopped: %q", v.Stopped)
	}
	consistently(t, 3*time.Second, func() (bool, string) {
		for _, e := range []string{"prod-eu", "prod-us"} {
			if tip := f.tip(t, e); !f.sameTree(t, tip, good) {
				return false, e + " moved to " + tip[:7]
			}
			if img := f.webTemplate(t, envs[slices.Index(names, e)].ns)["image"]; img != "registry.invalid/web:v2" {
				return false, e + " runs " + img
			}
		}
		return true, ""
	})
}

// TestPipelineFanIn: main promotes to qa and perf, and prod requires both.
// perf soaks longer, so prod receives a commit only once perf is healthy
// too.
func TestPipelineFanIn(t *testing.T) {
	names := []string{"main", "qa", "perf", "prod"}
	envs := []pipelineEnv{
		{name: "main", branch: "main", extra: "    promote: {to: [qa, perf]}\n"},
		{name: "qa", branch: "qa", extra: "    promote: {to: prod}\n"},
		{name: "perf", branch: "perf", extra: "    promote: {to: prod}\n"},
		{name: "prod", branch: "prod", extra: "    requires: [qa, perf]\n"},
	}
	envs[2].health = "{timeout: 2m, interval: 250ms, soak: 4s}"
	f, cfg := newMulti(t, envs, multiFiles("v1", names, nil), "")
	first := f.tip(t, "main")
	startFerry(t, cfg)
	for _, e := range names {
		requireHealthy(t, f.waitDecided(t, e, first, 2*time.Minute))
	}
	good := f.pushMain(t, multiFiles("v2", names, nil), "Deploy web v2")
	qa := f.verdictOnTree(t, "qa", good, 2*time.Minute)
	perf := f.verdictOnTree(t, "perf", good, 2*time.Minute)
	prod := f.verdictOnTree(t, "prod", good, 2*time.Minute)
	requireHealthy(t, prod)
	if prod.Started.Before(qa.Finished) || prod.Started.Before(perf.Finished) {
		t.Errorf("prod started %s before both sources were healthy (qa %s, perf %s)",
			prod.Started.Format(time.StampMilli), qa.Finished.Format(time.StampMilli), perf.Finished.Format(time.StampMilli))
	}
	if !perf.Finished.After(qa.Finished) {
		t.Logf("perf (soak 4s) finished before qa; the order check above still holds")
	}
	if tip := f.tip(t, "prod"); !f.sameTree(t, tip, good) {
		t.Errorf("prod at %s, not the tree of %s", tip[:7], good[:7])
	}
}

// The CRD of TestDependsOnWaitsForInfra, held by the infra environment.
const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.pipelines.e2e.ferry.dev
spec:
  group: pipelines.e2e.ferry.dev
  scope: Namespaced
  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestDependsOnWaitsForInfra: an app environment using a custom resource
// depends on the infra environment holding its CRD. The app waits, with
// the phase Waiting naming infra, and applies only once infra is healthy.
func TestDependsOnWaitsForInfra(t *testing.T) {
	files := map[string]string{
		"envs/infra/crd.yaml":           gadgetCRD,
		"envs/infra/kustomization.yaml": "resources:\n  - crd.yaml\n",
		"envs/app/gadget.yaml":          "apiVersion: pipelines.e2e.ferry.dev/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  size: 1\n",
		"envs/app/kustomization.yaml":   "resources:\n  - gadget.yaml\n",
	}
	envs := []pipelineEnv{
		// infra soaks, so the app sees it Verifying for a while; its
		// scope lets it write the CRD, which is cluster-scoped.
		{name: "infra", branch: "main", health: "{timeout: 2m, interval: 250ms, soak: 4s}",
			extra: "    scope: {clusterKinds: [Namespace, CustomResourceDefinition]}\n"},
		{name: "app", branch: "app", extra: "    dependsOn: [infra]\n"},
	}
	f, cfg := newMulti(t, envs, files, "")
	t.Cleanup(func() {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		crd.SetName("gadgets.pipelines.e2e.ferry.dev")
		_ = f.c.Delete(context.Background(), crd)
	})
	first := f.tip(t, "main")
	startFerry(t, cfg)
	var waited string
	eventually(t, time.Minute, func() (bool, string) {
		st := f.state(t, "app")
		if st.Phase == state.PhaseWaiting && strings.HasPrefix(st.Message, "infra is Verifying ") {
			waited = st.Message
			return true, ""
		}
		return false, fmt.Sprintf("app phase %s: %s", st.Phase, st.Message)
	})
	if !strings.HasPrefix(waited, "infra is ") || !strings.Contains(waited, first[:7]) {
		t.Errorf("app waits with %q; want \"infra is <phase> %s\"", waited, first[:7])
	}
	infra := f.waitDecided(t, "infra", first, 2*time.Minute)
	requireHealthy(t, infra)
	app := f.waitDecided(t, "app", first, 2*time.Minute)
	requireHealthy(t, app)
	if app.Started.Before(infra.Finished) {
		t.Errorf("app's first apply started %s, before infra was healthy at %s", app.Started.Format(time.StampMilli), infra.Finished.Format(time.StampMilli))
	}
	inv := fmt.Sprint(f.state(t, "app").Inventory)
	if !strings.Contains(inv, "Gadget") || !strings.Contains(inv, "g1") {
		t.Errorf("the Gadget is not in app's inventory: %s", inv)
	}
}

// TestPromotionWindow: outside the window (the test's clock), a verified
// commit waits in staging with a visible reason and production does not
// move; when the clock enters the window, it is promoted.
func TestPromotionWindow(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	var mu sync.Mutex
	// Saturday 2026-12-05 12:00 UTC; the window is Monday 09:00-10:00.
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg := strings.Replace(p.config(), "promote: {to: production, mode: push}",
		`promote: {to: production, mode: push, window: {days: [Mon], hours: "09:00-10:00", timeZone: UTC}}`, 1)
	first := p.tip(t, "main")
	startFerryWith(t, cfg, func(o *reconciler.Options) { o.Now = clock })
	requireHealthy(t, p.waitVerdict(t, "staging", first, 2*time.Minute))
	eventually(t, time.Minute, func() (bool, string) {
		st := p.state(t, "staging")
		return strings.Contains(st.Message, "waiting for the promotion window Mon 09:00-10:00 UTC, opens Mon 09:00 UTC"), "staging says: " + st.Message
	})
	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	requireHealthy(t, p.waitVerdict(t, "staging", good, 2*time.Minute))
	consistently(t, 3*time.Second, func() (bool, string) {
		tip := p.tip(t, "production")
		v, _ := p.state(t, "staging").VerdictFor(good)
		return tip == first && v.Action.IsZero(), fmt.Sprintf("production at %s, staging decided %s", tip[:7], v.Action)
	})
	if st := p.state(t, "staging"); !strings.Contains(st.Message, "production: waiting for the promotion window") {
		t.Errorf("staging's message: %q", st.Message)
	}

	t.Log("the window opens")
	mu.Lock()
	now = time.Date(2026, 12, 7, 9, 0, 30, 0, time.UTC)
	mu.Unlock()
	if v := p.waitDecided(t, "staging", good, time.Minute); v.Action.String() != "promoted to production" {
		t.Fatalf("staging's decision once the window opened: %s", v.Action)
	}
	if tip := p.tip(t, "production"); tip != good {
		t.Errorf("production at %s, want %s", tip[:7], good[:7])
	}

	t.Log("the window closes again; ferry promote --now overrides it and records who")
	mu.Lock()
	now = time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	mu.Unlock()
	next := p.pushMain(t, pipelineFiles("v3"), "Deploy web v3")
	requireHealthy(t, p.waitVerdict(t, "staging", next, 2*time.Minute))
	eventually(t, time.Minute, func() (bool, string) {
		st := p.state(t, "staging")
		return strings.Contains(st.Message, "production: waiting for the promotion window"), "staging says: " + st.Message
	})
	parsed, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reconciler.Promote(t.Context(), parsed, "staging", "", true, "tester", reconciler.Options{}); err != nil {
		t.Fatal(err)
	}
	if v := p.waitDecided(t, "staging", next, time.Minute); v.Action.String() != "promoted to production (by tester)" {
		t.Fatalf("staging's decision after promote --now: %s", v.Action)
	}
	if tip := p.tip(t, "production"); tip != next {
		t.Errorf("production at %s, want %s", tip[:7], next[:7])
	}
}
