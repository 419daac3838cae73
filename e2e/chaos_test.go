package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/sandbox/faultproxy"
	"ferry.dev/ferry/state"
)

// The chaos soak: a person sends N commits to staging in bursts (good
// changes, changes that crash-loop, reverts by hand, hotfixes straight on
// production and their merges back), while faults strike ferry's links
// and the parts it runs against (latency and resets on the API server and
// forge links, the control plane stopped and started, Gitea restarted,
// ferry SIGKILLed and started again). At the end it checks from git, the
// cluster and the forge that no fault decided anything (see
// chaos_check_test.go), and prints what it injected and what held.
//
// `make test` runs 30 commits; `make soak` runs 200. FERRY_SOAK_SEED
// replays a run's plan (see chaos_plan_test.go).

// Timing of the soak's environments and of its checks.
const (
	// soakHealthTimeout is both environments' health timeout.
	soakHealthTimeout = 20 * time.Second
	// soakRecovery is how long after a fault ends ferry may still be
	// recovering from it: its step retries back off (1s, 2s, 4s, ...) and
	// its watches reconnect. Time within it does not count as quiet.
	soakRecovery = 20 * time.Second
	// soakLongEnough is how long a bad commit must stay main's tip, in one
	// stretch of quiet time (ferry up, no fault, no recovery from one),
	// to be due for a revert: the health timeout plus 10s for the poll,
	// the apply and the push of the revert.
	soakLongEnough = soakHealthTimeout + 10*time.Second
	// soakBurstWait bounds the wait for a burst's tip to be decided.
	soakBurstWait = 2 * time.Minute
	// soakSettle bounds the quiet period at the end.
	soakSettle = 3 * time.Minute
)

// chaos is one soak run.
type chaos struct {
	t        *testing.T
	f        *fixture
	plan     soakPlan
	settings soakSettings
	kube     *faultproxy.Proxy
	forgeAPI *faultproxy.Proxy
	ferry    *ferryProc
	obs      *observer
	repoDir  string
	started  time.Time

	mu sync.Mutex
	// injected are the faults injected, with when they lasted.
	injected []injectedFault
	// hotfixes are the commits a person pushed straight on production.
	hotfixes map[string]bool
	// person are the commits a person pushed on main, by kind.
	person map[string]changeKind
	// notes are things worth a line in the report.
	notes []string
	// rev numbers the person's changes; each renders uniquely.
	rev int
	// baseline and end are ferry's figures at the plan's baseline and at
	// the end; baselineStarts is how many times ferry had started then.
	baseline, end  procMetrics
	baselineStarts int
	baselineTaken  bool
}

// injectedFault is one fault as it happened.
type injectedFault struct {
	plannedFault
	when span
	err  error
}

func TestChaosSoak(t *testing.T) {
	settings := soakSettingsFromEnv(t)
	c := &chaos{t: t, settings: settings, plan: newSoakPlan(settings.commits, settings.seed),
		hotfixes: map[string]bool{}, person: map[string]changeKind{}}
	t.Logf("chaos soak: %d commits in %d bursts, seed %d (replay: FERRY_SOAK_SEED=%d FERRY_SOAK_COMMITS=%d make soak)",
		settings.commits, len(c.plan.bursts), settings.seed, settings.seed, settings.commits)
	c.setUp()
	for i, b := range c.plan.bursts {
		c.runBurst(i, b)
		if !c.baselineTaken && b.first+len(b.changes) >= c.plan.baselineAt {
			c.takeBaseline()
		}
	}
	c.settle()
	c.report(c.check())
}

// setUp creates the pipeline, its proxies and ferry, and waits until the
// first commit is healthy in both environments: from then on staging has a
// last healthy revision to revert to.
func (c *chaos) setUp() {
	t := c.t
	files := c.files(0, 1, false)
	files["envs/production/hotfix.yaml"] = hotfixFile(0)
	c.f = newPipeline(t, files)
	c.f.health = fmt.Sprintf("{timeout: %s, interval: 250ms}", soakHealthTimeout)
	c.repoDir = forge.RepoDir(c.f.repo)
	// The forge's own record of every update of main and production.
	if out, err := c.f.wc.Git(t.Context(), "--git-dir", c.repoDir, "config", "core.logAllRefUpdates", "always"); err != nil {
		t.Fatalf("enable the forge's reflog: %v\n%s", err, out)
	}
	px := c.f.throughProxies(t)
	c.kube = px.kube
	// The forge link: git and the API share Gitea's host:port, so one
	// proxy carries both.
	c.forgeAPI = px.git
	addr := freeAddr(t)
	apiURL := strings.TrimSuffix(c.forgeAPI.Rewrite(forge.URL), "/")
	cfg := strings.ReplaceAll(px.cfg, "health: {timeout: 2m, interval: 250ms}", "health: "+c.f.health)
	cfg += fmt.Sprintf("server: {addr: %q}\nreport: {provider: gitea, url: %q, tokenFile: %s}\n", addr, apiURL, c.f.tokenFile)
	cfgPath := writeConfig(t, cfg)
	bin := buildFerry(t)
	c.obs = startObserver(t, c.f)
	c.started = time.Now()
	c.ferry = startSupervised(t, bin, cfgPath, addr)
	first := c.f.head(t)
	if v := c.f.waitDecided(t, "staging", first, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("first commit in staging: %s (%s)", v.Outcome, v.Reason)
	}
	if v := c.f.waitDecided(t, "production", first, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("first commit in production: %s (%s)", v.Outcome, v.Reason)
	}
}

// files is the application at change rev: image tag v<tag>, a config
// that names rev (so each change renders uniquely, and no change is held
// as identical to one ferry reverted), and crash-looping pods when bad.
// envs/production/hotfix.yaml is left as the branch has it.
func (c *chaos) files(rev, tag int, bad bool) map[string]string {
	var files map[string]string
	if bad {
		files = withPodAnnotation(fmt.Sprintf("v%d", tag), sandbox.FailCrashLoop)
	} else {
		files = appFiles(fmt.Sprintf("v%d", tag))
	}
	files["base/deployment.yaml"] = strings.Replace(files["base/deployment.yaml"], "replicas: 2", "replicas: 1", 1)
	files["base/config.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  greeting: hello\n  rev: %q\n", fmt.Sprint(rev))
	files["envs/production/kustomization.yaml"] = fmt.Sprintf("resources:\n  - ../../base\n  - hotfix.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v%d\n", tag)
	return files
}

// hotfixFile is production's own ConfigMap at hotfix n.
func hotfixFile(n int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hotfix\ndata:\n  n: %q\n", fmt.Sprint(n))
}

// runBurst pushes a burst's commits, strikes its fault meanwhile, and
// waits until main's tip is decided in staging (or soakBurstWait passes:
// the checks at the end judge what ferry did then).
func (c *chaos) runBurst(i int, b burst) {
	t := c.t
	start := time.Now()
	var wg sync.WaitGroup
	if b.fault != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.inject(*b.fault, start) }()
	}
	if b.mergeHotfix {
		c.mergeHotfix()
	}
	var pushed, shas []string
	for j, k := range b.changes {
		if j > 0 {
			// why a sleep: the gap between two pushes of a burst is part
			// of the seeded plan (people pushing in quick succession).
			time.Sleep(b.gap)
		}
		sha, did := c.change(k, b.tags[j])
		pushed = append(pushed, fmt.Sprintf("%s %s", did, sha[:7]))
		shas = append(shas, sha)
	}
	if b.hotfix {
		c.hotfix()
		pushed = append(pushed, "hotfix on production")
	}
	fault := "no fault"
	if b.fault != nil {
		fault = b.fault.String()
	}
	t.Logf("burst %d/%d (commits %d-%d): %s; %s", i+1, len(c.plan.bursts), b.first+1, b.first+len(b.changes), strings.Join(pushed, ", "), fault)
	wg.Wait()
	if !c.waitTipDecided(soakBurstWait) {
		c.note(fmt.Sprintf("burst %d: main's tip not decided in staging within %s", i+1, soakBurstWait))
	}
	for _, sha := range shas {
		c.mu.Lock()
		good := c.person[sha] == changeGood
		c.mu.Unlock()
		if v, ok := c.obs.verdict("staging", sha); ok && v.Outcome != state.OutcomeHealthy && good {
			c.t.Logf("good %s %s in staging (%s); the pods now:\n%s\nkwok-controller:\n%s", sha[:7], v.Outcome, v.Reason, c.describePods(c.f.ns), cluster.ComponentLog("kwok-controller", 30))
		}
	}
}

// describePods lists the pods of ns, one line each, for the log of a run
// where a good commit failed.
func (c *chaos) describePods(ns string) string {
	pods := &corev1.PodList{}
	if err := c.f.c.List(c.t.Context(), pods, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "  %s node=%s phase=%s deleting=%v", p.Name, p.Spec.NodeName, p.Status.Phase, p.DeletionTimestamp != nil)
		for _, cs := range p.Status.ContainerStatuses {
			waiting := ""
			if cs.State.Waiting != nil {
				waiting = cs.State.Waiting.Reason
			}
			fmt.Fprintf(&b, " ready=%v restarts=%d waiting=%s", cs.Ready, cs.RestartCount, waiting)
		}
		b.WriteString("\n")
	}
	rss := &appsv1.ReplicaSetList{}
	if err := c.f.c.List(c.t.Context(), rss, client.InNamespace(ns)); err == nil {
		for _, rs := range rss.Items {
			fmt.Fprintf(&b, "  rs %s spec=%d replicas=%d ready=%d available=%d\n", rs.Name, *rs.Spec.Replicas, rs.Status.Replicas, rs.Status.ReadyReplicas, rs.Status.AvailableReplicas)
		}
	}
	if d, ok := c.f.deployment(c.t, ns); ok {
		fmt.Fprintf(&b, "  deployment gen=%d observed=%d replicas=%d updated=%d ready=%d available=%d\n", d.Generation, d.Status.ObservedGeneration,
			d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas)
	}
	return b.String()
}

// waitTipDecided waits until staging has decided on main's tip, and
// reports whether it did in time. Errors (the forge or the control plane
// down) only mean: not yet.
func (c *chaos) waitTipDecided(timeout time.Duration) bool {
	return waitUntil(c.t.Context(), timeout, func() bool {
		tip, err := c.remoteTip("main")
		if err != nil {
			return false
		}
		v, ok := c.obs.verdict("staging", tip)
		return ok && !v.Action.IsZero()
	})
}

// waitUntil polls cond every 250ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// remoteTip is branch's tip on the forge, asked directly (not through the
// fault proxy).
func (c *chaos) remoteTip(branch string) (string, error) {
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	out, err := c.f.wc.Git(ctx, "ls-remote", "origin", "refs/heads/"+branch)
	if err != nil {
		return "", err
	}
	sha, _, _ := strings.Cut(out, "\t")
	if len(sha) != 40 {
		return "", fmt.Errorf("ls-remote %s: %q", branch, out)
	}
	return sha, nil
}

// note records a line for the report.
func (c *chaos) note(s string) {
	c.t.Log(s)
	c.mu.Lock()
	c.notes = append(c.notes, s)
	c.mu.Unlock()
}

// person runs a person's git work on branch: it syncs the working copy
// with the forge, lets edit commit, and pushes. A push that loses a race
// (ferry pushed a revert or a promotion meanwhile) or finds the forge down
// is done again on the new tip, for up to two minutes.
func (c *chaos) personPush(branch string, edit func() (string, error)) string {
	t := c.t
	var last error
	ok := waitUntil(t.Context(), 2*time.Minute, func() bool {
		g := func(args ...string) error {
			_, err := c.f.wc.Git(t.Context(), args...)
			return err
		}
		if last = g("fetch", "--quiet", "origin"); last != nil {
			return false
		}
		// A person starts each try from a clean copy of the branch.
		if last = g("reset", "--quiet", "--hard"); last != nil {
			return false
		}
		if last = g("checkout", "--quiet", "-B", branch, "origin/"+branch); last != nil {
			return false
		}
		var msg string
		if msg, last = edit(); last != nil {
			return false
		}
		if msg == "" {
			return true // nothing to commit
		}
		if last = g("push", "--quiet", "origin", "HEAD:refs/heads/"+branch); last != nil {
			return false
		}
		return true
	})
	if !ok {
		t.Fatalf("a person could not push to %s within 2m: %v", branch, last)
	}
	return c.f.head(t)
}

// change pushes one commit of kind k on main and returns it with what it
// did.
func (c *chaos) change(k changeKind, tag int) (string, changeKind) {
	t := c.t
	did := k
	sha := c.personPush("main", func() (string, error) {
		did = k
		if k == changeRevert {
			if ok, err := c.revertable(); err != nil {
				return "", err
			} else if ok {
				out, err := c.f.wc.Git(t.Context(), "revert", "--no-edit", "HEAD")
				if err != nil {
					return "", fmt.Errorf("git revert: %w\n%s", err, out)
				}
				return "revert", nil
			}
			did = changeGood
		}
		c.mu.Lock()
		c.rev++
		rev := c.rev
		c.mu.Unlock()
		if err := c.f.wc.WriteFiles(c.files(rev, tag, did == changeBad)); err != nil {
			return "", err
		}
		msg := fmt.Sprintf("Change %d: web v%d", rev, tag)
		if did == changeBad {
			msg = fmt.Sprintf("Change %d: web v%d with a crash loop", rev, tag)
		}
		_, err := c.f.wc.Commit(t.Context(), msg)
		return msg, err
	})
	c.mu.Lock()
	c.person[sha] = did
	c.mu.Unlock()
	return sha, did
}

// revertable reports whether a person would revert main's tip (HEAD of
// the working copy): a good change of theirs whose parent is good too, so
// the revert is a good tree.
func (c *chaos) revertable() (bool, error) {
	head := c.f.head(c.t)
	c.mu.Lock()
	k, mine := c.person[head]
	c.mu.Unlock()
	if !mine || k != changeGood {
		return false, nil
	}
	bad, err := c.badTree(head + "^")
	return !bad, err
}

// badTree reports whether rev's tree makes the web pods crash-loop.
func (c *chaos) badTree(rev string) (bool, error) {
	out, err := c.f.wc.Git(c.t.Context(), "show", rev+":base/deployment.yaml")
	if err != nil {
		return false, err
	}
	return strings.Contains(out, sandbox.FailAnnotation), nil
}

// hotfix pushes a change straight on production, as a person fixing
// production in a hurry does.
func (c *chaos) hotfix() {
	t := c.t
	c.mu.Lock()
	c.rev++
	rev := c.rev
	c.mu.Unlock()
	sha := c.personPush("production", func() (string, error) {
		if err := c.f.wc.Write("envs/production/hotfix.yaml", hotfixFile(rev)); err != nil {
			return "", err
		}
		msg := fmt.Sprintf("Hotfix %d on production", rev)
		_, err := c.f.wc.Commit(t.Context(), msg)
		return msg, err
	})
	c.mu.Lock()
	c.hotfixes[sha] = true
	c.mu.Unlock()
	t.Logf("hotfix %s on production", sha[:7])
}

// mergeHotfix brings production's hotfix to main, as the person who made
// it does next: a merge of production that keeps main's files and takes
// production's hotfix file. Until then, ferry holds promotions.
func (c *chaos) mergeHotfix() {
	t := c.t
	sha := c.personPush("main", func() (string, error) {
		if out, err := c.f.wc.Git(t.Context(), "merge", "--quiet", "-s", "ours", "--no-commit", "origin/production"); err != nil {
			return "", fmt.Errorf("git merge: %w\n%s", err, out)
		}
		if out, err := c.f.wc.Git(t.Context(), "checkout", "origin/production", "--", "envs/production/hotfix.yaml"); err != nil {
			return "", fmt.Errorf("git checkout: %w\n%s", err, out)
		}
		msg := "Merge production's hotfix into main"
		_, err := c.f.wc.Commit(t.Context(), msg)
		return msg, err
	})
	c.mu.Lock()
	c.person[sha] = "merge"
	c.mu.Unlock()
	t.Logf("merged production's hotfix into main: %s", sha[:7])
}

// inject strikes f at its planned time after start, and records it.
func (c *chaos) inject(f plannedFault, start time.Time) {
	t := c.t
	select {
	case <-t.Context().Done():
		return
	// why a sleep: the fault's offset in its burst is part of the plan.
	case <-time.After(time.Until(start.Add(f.at))):
	}
	ctx := t.Context()
	from := time.Now()
	var err error
	hold := func(d time.Duration) {
		select {
		case <-ctx.Done():
		// why a sleep: the fault lasts d.
		case <-time.After(d):
		}
	}
	proxyFault := func(p *faultproxy.Proxy, fault faultproxy.Fault) {
		var remove func()
		if remove, err = p.Inject(fault); err == nil {
			hold(f.dur)
			remove()
		}
	}
	switch f.kind {
	case faultKubeLatency:
		proxyFault(c.kube, faultproxy.Fault{Kind: faultproxy.Latency, Direction: faultproxy.Both, Latency: f.latency, Jitter: f.latency / 4})
	case faultForgeLatency:
		proxyFault(c.forgeAPI, faultproxy.Fault{Kind: faultproxy.Latency, Direction: faultproxy.Both, Latency: f.latency, Jitter: f.latency / 4})
	case faultKubeReset:
		proxyFault(c.kube, faultproxy.Fault{Kind: faultproxy.Reset, Direction: faultproxy.Upstream, Toxicity: f.toxicity})
	case faultForgeReset:
		proxyFault(c.forgeAPI, faultproxy.Fault{Kind: faultproxy.Reset, Direction: faultproxy.Upstream, Toxicity: f.toxicity})
	case faultControlPlane:
		if err = cluster.StopControlPlane(ctx); err == nil {
			hold(f.dur)
			err = cluster.StartControlPlane(ctx)
		}
	case faultGitea:
		err = forge.Restart(ctx)
	case faultKillFerry:
		starts := c.ferry.startCount()
		if err = c.ferry.kill(f.dur); err == nil && !waitUntil(ctx, time.Minute, func() bool { return c.ferry.startCount() > starts }) {
			err = errors.New("ferry was not started again within a minute")
		}
	}
	c.mu.Lock()
	c.injected = append(c.injected, injectedFault{plannedFault: f, when: span{from, time.Now()}, err: err})
	c.mu.Unlock()
	if err != nil {
		// The fault itself failed: the sandbox is not what the soak
		// assumes any more, so nothing after this proves anything.
		t.Errorf("inject %s: %v", f, err)
	}
}

// takeBaseline reads ferry's RSS and goroutines once the plan's first
// commits are decided.
func (c *chaos) takeBaseline() {
	m, err := c.ferry.steadyMetrics(c.t.Context())
	if err != nil {
		c.note(fmt.Sprintf("baseline metrics: %v", err))
		return
	}
	c.baseline, c.baselineStarts, c.baselineTaken = m, c.ferry.startCount(), true
	c.t.Logf("baseline after %d commits: RSS %.1f MiB, %v goroutines", c.plan.baselineAt, m.rss/(1<<20), m.goroutines)
}

// settle ends the run: no fault is left, a pending hotfix is merged, and
// both environments come to rest (their tips decided, their phases
// final, production at staging's last healthy tree, nothing moving for
// 5s), or soakSettle passes.
func (c *chaos) settle() {
	t := c.t
	c.kube.Clear()
	c.forgeAPI.Clear()
	if last := c.plan.bursts[len(c.plan.bursts)-1]; last.hotfix {
		c.mergeHotfix()
	}
	quiet := time.Now()
	var tips [2]string
	rest := func() bool {
		m, err1 := c.remoteTip("main")
		p, err2 := c.remoteTip("production")
		if err1 != nil || err2 != nil {
			return false
		}
		if [2]string{m, p} != tips {
			tips, quiet = [2]string{m, p}, time.Now()
		}
		sv, ok1 := c.obs.verdict("staging", m)
		pv, ok2 := c.obs.verdict("production", p)
		if !ok1 || !ok2 || sv.Action.IsZero() || pv.Action.IsZero() {
			return false
		}
		return time.Since(quiet) >= 5*time.Second
	}
	if !waitUntil(t.Context(), soakSettle, rest) {
		c.note(fmt.Sprintf("the environments did not come to rest within %s", soakSettle))
	}
	if c.baselineTaken {
		m, err := c.ferry.steadyMetrics(t.Context())
		if err != nil {
			c.note(fmt.Sprintf("end metrics: %v", err))
		}
		c.end = m
	}
}

// writeTable also writes the report to $FERRY_SOAK_TABLE when set.
func writeTable(table string) error {
	path := os.Getenv("FERRY_SOAK_TABLE")
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(table), 0o644)
}
