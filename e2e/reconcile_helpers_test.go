package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/state"
)

// testEnv is one environment under test: a Gitea repository, a namespace
// for its objects, a namespace for ferry's state, and a running ferry.
type testEnv struct {
	name, ns, stateNS, repo, tokenFile string
	wc                                 *harness.Clone
	c                                  client.Client
	extra                              string // YAML appended to the environment's config
	health                             string // the environment's health settings
}

// newTestEnv creates a repository holding files on main, and the namespaces.
func newTestEnv(t *testing.T, files map[string]string) *testEnv {
	t.Helper()
	ctx := t.Context()
	e := &testEnv{name: "env", c: kubeClient(t), health: "{timeout: 2m, interval: 250ms}"}
	e.ns = newNamespace(t)
	e.stateNS = newNamespace(t)
	e.repo = "r-" + e.ns
	if _, err := forge.CreateRepo(e.repo); err != nil {
		t.Fatal(err)
	}
	wc, err := forge.Clone(ctx, e.repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.wc = wc
	if _, err := wc.CommitAndPush(ctx, files, "Initial environment"); err != nil {
		t.Fatal(err)
	}
	e.tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(e.tokenFile, []byte(forge.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *testEnv) configYAML() string {
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
%s`, e.stateNS, e.name, forge.CloneURL(e.repo), e.tokenFile, cluster.Kubeconfig, e.ns, e.health, e.extra)
}

// start runs ferry in-process until the test ends.
func (e *testEnv) start(t *testing.T) { startFerry(t, e.configYAML()) }

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

func (e *testEnv) state(t *testing.T) *state.State {
	t.Helper()
	st, err := state.NewStore(e.c, e.stateNS).Load(t.Context(), e.name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitVerdict waits for ferry's verdict on commit and returns it.
func (e *testEnv) waitVerdict(t *testing.T, commit string, timeout time.Duration) state.Verdict {
	t.Helper()
	var v state.Verdict
	eventually(t, timeout, func() (bool, string) {
		st := e.state(t)
		var ok bool
		v, ok = st.VerdictFor(commit)
		return ok, fmt.Sprintf("no verdict on %s yet; phase %s: %s", commit[:7], st.Phase, st.Message)
	})
	return v
}

func (e *testEnv) push(t *testing.T, files map[string]string, remove []string, message string) string {
	t.Helper()
	for _, f := range remove {
		if err := e.wc.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	sha, err := e.wc.CommitAndPush(t.Context(), files, message)
	if err != nil {
		t.Fatal(err)
	}
	return sha
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

// withPodAnnotation returns appFiles(tag) whose web pods carry a failure stage annotation.
func withPodAnnotation(tag, mode string) map[string]string {
	files := appFiles(tag)
	files["base/deployment.yaml"] = strings.Replace(files["base/deployment.yaml"],
		"      labels: {app: web}\n    spec:", fmt.Sprintf("      labels: {app: web}\n      annotations: {%s: %s}\n    spec:", harness.FailAnnotation, mode), 1)
	return files
}
