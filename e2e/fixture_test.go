package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// This file is the one fixture of the end-to-end tests: a repository on the
// package's Gitea, namespaces on its cluster, ferry's configuration for
// them, ferry run in-process or as a binary, and the waits on what a person
// would see (state, verdicts, decisions, objects, commits).

// fixture is one test's setup. newEnv gives one environment, "env", that
// follows main at envs/staging. newPipeline gives two: staging follows main
// at envs/staging and promotes to production, which follows the branch
// production at envs/production.
type fixture struct {
	repo, tokenFile, stateNS string
	wc                       *sandbox.Clone
	c                        client.Client
	// name and ns are the first environment's name ("env" or "staging")
	// and namespace; prodNS is production's namespace in a pipeline.
	name, ns, prodNS string
	// health is the first environment's health settings.
	health string
	// extra is YAML appended to the first environment's configuration.
	extra string
}

// newEnv creates a repository holding files on main, and the namespaces of
// one environment.
func newEnv(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	return newFixture(t, "env", "r-", files, "Initial environment")
}

// newPipeline creates a repository holding files on main and production,
// and the namespaces of staging and production.
func newPipeline(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	f := newFixture(t, "staging", "p-", files, "Initial application")
	f.prodNS = newNamespace(t)
	if err := f.wc.Push(t.Context(), "main:production"); err != nil {
		t.Fatal(err)
	}
	return f
}

func newFixture(t *testing.T, name, repoPrefix string, files map[string]string, message string) *fixture {
	t.Helper()
	f := &fixture{name: name, c: kubeClient(t), health: "{timeout: 2m, interval: 250ms}"}
	f.ns, f.stateNS = newNamespace(t), newNamespace(t)
	f.repo = repoPrefix + f.ns
	f.wc, _ = newRepo(t, f.repo, files, message)
	f.tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f.tokenFile, []byte(forge.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// newRepo creates a repository on the forge and a working copy of it; with
// files, it commits them on main with message, pushes, and returns the
// commit.
func newRepo(t *testing.T, name string, files map[string]string, message string) (*sandbox.Clone, string) {
	t.Helper()
	if _, err := forge.CreateRepo(name); err != nil {
		t.Fatal(err)
	}
	wc, err := forge.Clone(t.Context(), name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if files == nil {
		return wc, ""
	}
	sha, err := wc.CommitAndPush(t.Context(), files, message)
	if err != nil {
		t.Fatal(err)
	}
	return wc, sha
}

// config is ferry's configuration for the fixture's environments.
func (f *fixture) config() string {
	if f.prodNS == "" {
		return fmt.Sprintf(`namespace: %s
environments:
  - name: %s
    source:
      url: %s
      branch: main
      path: envs/staging
      interval: 1s
      auth: {tokenFile: %s}
    cluster: {kubeconfig: %s}
    namespace: %s
    health: %s
%s`, f.stateNS, f.name, forge.CloneURL(f.repo), f.tokenFile, cluster.Kubeconfig, f.ns, f.health, f.extra)
	}
	return fmt.Sprintf(`namespace: %[1]s
environments:
  - name: staging
    source: {url: %[2]s, branch: main, path: envs/staging, interval: 1s, auth: {tokenFile: %[3]s}}
    cluster: {kubeconfig: %[4]s}
    namespace: %[5]s
    health: %[7]s
    onFailure: revert
    promote: {to: production, mode: push}
%[8]s  - name: production
    source: {url: %[2]s, branch: production, path: envs/production, interval: 1s, auth: {tokenFile: %[3]s}}
    cluster: {kubeconfig: %[4]s}
    namespace: %[6]s
    health: {timeout: 2m, interval: 250ms}
    onFailure: revert
`, f.stateNS, forge.CloneURL(f.repo), f.tokenFile, cluster.Kubeconfig, f.ns, f.prodNS, f.health, f.extra)
}

// start runs ferry in-process with the fixture's configuration until the
// test ends.
func (f *fixture) start(t *testing.T) { startFerry(t, f.config()) }

// startFerry runs ferry in-process with the configuration until the test
// ends, and returns a function that stops it earlier.
func startFerry(t *testing.T, cfgYAML string) (stop func()) {
	t.Helper()
	return startFerryWith(t, cfgYAML, nil)
}

// startFerryWith is startFerry with a hook to adjust the manager's options.
func startFerryWith(t *testing.T, cfgYAML string, adjust func(*reconciler.Options)) (stop func()) {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgYAML))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, cfgYAML)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := reconciler.Options{CacheDir: t.TempDir(), Log: log}
	if adjust != nil {
		adjust(&opts)
	}
	m, err := reconciler.NewManager(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// buildFerry builds the ferry binary into the test's temporary directory.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/ferry")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ferry: %v\n%s", err, out)
	}
	return bin
}

// stopFerryProcess stops a ferry started by sandbox.StartFerry with
// SIGTERM, as a rollout or a node drain does, and fails the test unless it
// exits cleanly within 20s.
func stopFerryProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ferry run after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ferry run did not stop within 20s of SIGTERM")
	}
}

// ferryCLI runs the ferry binary with the configuration and returns its
// output and exit code.
func ferryCLI(t *testing.T, bin, cfgPath string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, append(args, "--config", cfgPath)...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// writeConfig writes cfgYAML to a file in the test's temporary directory.
func writeConfig(t *testing.T, cfgYAML string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(path, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// state loads env's state from ferry's state store.
func (f *fixture) state(t *testing.T, env string) *state.State {
	t.Helper()
	st, err := state.NewStore(f.c, f.stateNS).Load(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitVerdict waits until env has a verdict on commit and returns it.
func (f *fixture) waitVerdict(t *testing.T, env, commit string, timeout time.Duration) state.Verdict {
	t.Helper()
	return f.waitOn(t, env, commit, timeout, false)
}

// waitDecided waits until env has a verdict on commit and a decision on
// it (an action), and returns it.
func (f *fixture) waitDecided(t *testing.T, env, commit string, timeout time.Duration) state.Verdict {
	t.Helper()
	return f.waitOn(t, env, commit, timeout, true)
}

func (f *fixture) waitOn(t *testing.T, env, commit string, timeout time.Duration, decided bool) state.Verdict {
	t.Helper()
	var v state.Verdict
	eventually(t, timeout, func() (bool, string) {
		st := f.state(t, env)
		var ok bool
		v, ok = st.VerdictFor(commit)
		if decided && ok && v.Action.String() == "" {
			ok = false
		}
		return ok, fmt.Sprintf("%s: no decision on %s yet (verdict %+v); phase %s: %s", env, commit[:7], v, st.Phase, st.Message)
	})
	return v
}

// git runs git in the working copy and fails the test on an error.
func (f *fixture) git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := f.wc.Git(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// head returns the SHA of the working copy's HEAD.
func (f *fixture) head(t *testing.T) string {
	t.Helper()
	return f.git(t, "rev-parse", "HEAD")
}

// tip fetches and returns the SHA at the tip of branch on the forge.
func (f *fixture) tip(t *testing.T, branch string) string {
	t.Helper()
	f.git(t, "fetch", "--quiet", "origin")
	return f.git(t, "rev-parse", "origin/"+branch)
}

// push removes the paths in remove, writes files, commits them on the
// current branch with message, pushes, and returns the commit.
func (f *fixture) push(t *testing.T, files map[string]string, remove []string, message string) string {
	t.Helper()
	for _, p := range remove {
		if err := f.wc.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	sha, err := f.wc.CommitAndPush(t.Context(), files, message)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// pushMain commits files on main, after syncing with origin, and pushes.
func (f *fixture) pushMain(t *testing.T, files map[string]string, message string) string {
	t.Helper()
	f.git(t, "fetch", "--quiet", "origin")
	f.git(t, "checkout", "--quiet", "-B", "main", "origin/main")
	return f.push(t, files, nil, message)
}

// deployment returns the Deployment web in ns, if there is one.
func (f *fixture) deployment(t *testing.T, ns string) (*appsv1.Deployment, bool) {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
		return nil, false
	}
	return d, true
}

// waitImage waits until the Deployment web in the first environment runs image.
func (f *fixture) waitImage(t *testing.T, image string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		d, ok := f.deployment(t, f.ns)
		if !ok {
			return false, "no Deployment yet"
		}
		got := d.Spec.Template.Spec.Containers[0].Image
		return got == image, "image " + got
	})
}

// webTemplate returns the pod template annotations of the Deployment web in
// ns, with its image under the key "image".
func (f *fixture) webTemplate(t *testing.T, ns string) map[string]string {
	t.Helper()
	d, ok := f.deployment(t, ns)
	if !ok {
		t.Fatalf("no Deployment web in %s", ns)
	}
	ann := d.Spec.Template.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	ann["image"] = d.Spec.Template.Spec.Containers[0].Image
	return ann
}

// requireHealthy fails the test unless v is Healthy.
func requireHealthy(t *testing.T, v state.Verdict) {
	t.Helper()
	if v.Outcome != state.OutcomeHealthy {
		t.Fatalf("verdict on %s: %s (%s), want Healthy", v.Commit[:7], v.Outcome, v.Reason)
	}
}

// eventually polls cond until it returns true or timeout passes, then fails
// the test with the last message cond gave.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, msg := cond()
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("not reached within %s: %s", timeout, msg)
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %s", msg)
		case <-tick.C:
		}
	}
}

// consistently checks cond until d has passed and fails the test the first
// time it returns false. It is the wait for a negative check: that nothing
// more happens (no second revert, no second pull request) while ferry
// reconciles the same commit again.
func consistently(t *testing.T, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, msg := cond(); !ok {
			t.Fatalf("changed within %s: %s", d, msg)
		}
		select {
		case <-end.C:
			if ok, msg := cond(); !ok {
				t.Fatalf("changed within %s: %s", d, msg)
			}
			return
		case <-t.Context().Done():
			t.Fatal("test ended while checking")
		case <-tick.C:
		}
	}
}

// newNamespace creates a namespace named after the test, deleted when the
// test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := cluster.NewNamespace(t.Context(), "e2e-"+sanitize(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cluster.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
	return ns
}

// sanitize makes a test name a valid part of a namespace name.
func sanitize(name string) string {
	out := make([]byte, 0, len(name))
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			out = append(out, c)
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		default:
			out = append(out, '-')
		}
	}
	if len(out) > 40 {
		out = out[:40]
	}
	return string(out)
}

// testWriter sends log lines to t.Log until the test ends.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)

// appFiles is a small application: a base with a Deployment and a
// ConfigMap, and a staging overlay that adds a ConfigMap and sets the tag.
func appFiles(tag string) map[string]string {
	return map[string]string{
		"base/kustomization.yaml": "resources:\n  - deployment.yaml\n  - config.yaml\n",
		"base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.invalid/web:v0
`,
		"base/config.yaml":                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  greeting: hello\n",
		"envs/staging/kustomization.yaml": "resources:\n  - ../../base\n  - extra.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: " + tag + "\n",
		"envs/staging/extra.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v\n",
	}
}

// pipelineFiles is appFiles with a production overlay at the same tag.
func pipelineFiles(tag string) map[string]string {
	files := appFiles(tag)
	files["envs/production/kustomization.yaml"] = "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: " + tag + "\n"
	return files
}

// withPodAnnotation returns appFiles(tag) whose web pods carry a failure stage annotation.
func withPodAnnotation(tag, mode string) map[string]string {
	files := appFiles(tag)
	files["base/deployment.yaml"] = strings.Replace(files["base/deployment.yaml"],
		"      labels: {app: web}\n    spec:", fmt.Sprintf("      labels: {app: web}\n      annotations: {%s: %s}\n    spec:", sandbox.FailAnnotation, mode), 1)
	return files
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ferryStatuses returns ferry's statuses on commit for context, oldest first,
// as "state: description".
func ferryStatuses(t *testing.T, repo, commit, context string) []string {
	t.Helper()
	all, _, err := forge.Client.ListStatuses(forge.User, repo, commit, gitea.ListStatusesOption{ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b *gitea.Status) int { return int(a.ID - b.ID) })
	var out []string
	for _, s := range all {
		if s.Context == context {
			out = append(out, fmt.Sprintf("%s: %s", s.State, s.Description))
		}
	}
	return out
}

func waitStatuses(t *testing.T, repo, commit, context string, want []string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		got := ferryStatuses(t, repo, commit, context)
		if len(got) != len(want) {
			return false, fmt.Sprintf("%s on %s: %q, want %q", context, commit[:7], got, want)
		}
		for i := range got {
			if !strings.HasPrefix(got[i], want[i]) {
				return false, fmt.Sprintf("%s on %s: %q, want %q", context, commit[:7], got, want)
			}
		}
		return true, ""
	})
}

// httpGet returns the body of url, failing the test unless it answers 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// planComments counts the plan comments on pull request index of repo,
// and returns the body of the last one.
func planComments(t *testing.T, repo string, index int64) (int, string) {
	t.Helper()
	cs, _, err := forge.Client.ListIssueComments(forge.User, repo, index, gitea.ListIssueCommentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, body := 0, ""
	for _, c := range cs {
		if strings.Contains(c.Body, "ferry plan for") {
			n, body = n+1, c.Body
		}
	}
	return n, body
}
