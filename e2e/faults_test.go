package e2e

import (
	"bytes"
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

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryforge "ferry.dev/ferry/forge"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/sandbox/faultproxy"
	"ferry.dev/ferry/state"
)

// These tests put fault proxies between ferry and the API server, and
// between ferry and Gitea, and check that faults never decide a verdict:
// resets are retried, an outage does not time a revision out, a wrong
// token stalls without a storm of requests, and a forge outage loses no
// status.

// proxied is ferry's configuration for a fixture with every link to the
// API server and to Gitea's git going through a fault proxy.
type proxied struct {
	kube, git *faultproxy.Proxy
	cfg       string
}

// throughProxies starts the proxies for f and rewrites its configuration
// to use them.
func (f *fixture) throughProxies(t *testing.T) *proxied {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var kube *faultproxy.Proxy
	for _, c := range kc.Clusters {
		p, url, err := faultproxy.StartFor(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		c.Server, kube = url, p
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	git, gitURL, err := faultproxy.StartFor(forge.CloneURL(f.repo))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(git.Close)
	cfg := strings.ReplaceAll(f.config(), cluster.Kubeconfig, kubeconfig)
	cfg = strings.ReplaceAll(cfg, forge.CloneURL(f.repo), gitURL)
	return &proxied{kube: kube, git: git, cfg: cfg}
}

// logBook keeps ferry's log lines, and passes them on to the test's log.
type logBook struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBook) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	return l.out.Write(p)
}

// lines returns the lines that hold s.
func (l *logBook) lines(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// count is how many lines hold s.
func (l *logBook) count(s string) int { return len(l.lines(s)) }

// startLogged runs ferry with cfg, its log kept in the returned logBook;
// adjust may change further options.
func startLogged(t *testing.T, cfg string, adjust func(*reconciler.Options)) *logBook {
	t.Helper()
	book := &logBook{out: &testWriter{t: t}}
	startFerryWith(t, cfg, func(o *reconciler.Options) {
		o.Log = slog.New(slog.NewTextHandler(book, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if adjust != nil {
			adjust(o)
		}
	})
	return book
}

// retriedDryRuns are the log lines of dry-runs that failed and were
// retried.
func retriedDryRuns(log *logBook) []string {
	var out []string
	for _, l := range log.lines("apply failed, will retry") {
		if strings.Contains(l, "dry-run failed") {
			out = append(out, l)
		}
	}
	return out
}

// cutDuringDryRun pushes a good commit to main (its content numbered by
// attempt) and cuts the API server's large client writes for 2 s once
// staging has written its inventory, which comes right before the
// dry-run. Slow answers meanwhile give the test time to act between
// ferry's requests.
func (f *fixture) cutDuringDryRun(t *testing.T, px *proxied, attempt int) string {
	t.Helper()
	slow, err := px.kube.Inject(faultproxy.Fault{Kind: faultproxy.Latency, Direction: faultproxy.Downstream, Latency: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer slow()
	files := pipelineFiles(fmt.Sprintf("v%d", attempt+1))
	// A new ConfigMap each attempt: the inventory changes, so staging
	// writes it, and the test sees when.
	files["envs/staging/more.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: more-%d\ndata:\n  k: v\n", attempt)
	files["envs/staging/kustomization.yaml"] = strings.Replace(files["envs/staging/kustomization.yaml"], "  - extra.yaml\n", "  - extra.yaml\n  - more.yaml\n", 1)
	commit := f.pushMain(t, files, fmt.Sprintf("Bump web to v%d and add a ConfigMap", attempt+1))
	if !f.waitDryRun(t, "staging", commit) {
		return commit // too late for this one: the attempt misses
	}
	// Why cut writes and not every connection: client-go retries reads
	// cut by a reset by itself; the dry-run and apply patches it does not.
	if err := px.kube.InjectFor(t.Context(), faultproxy.Fault{Kind: faultproxy.CutWrites, Direction: faultproxy.Upstream, MinBytes: 400}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// why a sleep: the cut lasts 2 s; the slow answers stay for as long.
	time.Sleep(2 * time.Second)
	return commit
}

// waitPhase waits until env reconciles commit in phase.
func (f *fixture) waitPhase(t *testing.T, env, commit string, phase state.Phase, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		st := f.state(t, env)
		ok := st.Phase == phase && st.Target != nil && st.Target.Commit == commit
		return ok, fmt.Sprintf("%s: phase %s (%s), want %s of %s", env, st.Phase, st.Message, phase, commit[:7])
	})
}

// noFaultVerdicts fails the test if env's history holds a TimedOut or Error
// verdict.
func (f *fixture) noFaultVerdicts(t *testing.T, env string) {
	t.Helper()
	for _, v := range f.state(t, env).History {
		if v.Outcome == state.OutcomeTimedOut || v.Outcome == state.OutcomeError {
			t.Errorf("%s: verdict %s on %s (%s): a fault decided", env, v.Outcome, v.Commit[:7], v.Reason)
		}
	}
}

// TestFaultsResetsDuringApply: the API server's connections are cut
// while a good commit is dry-run and applied. The apply is retried, the
// commit is verified healthy and promoted, and no revert is written.
func TestFaultsResetsDuringApply(t *testing.T) {
	f := newPipeline(t, pipelineFiles("v1"))
	first := f.head(t)
	px := f.throughProxies(t)
	log := startLogged(t, px.cfg, nil)
	if v := f.waitDecided(t, "staging", first, 2*time.Minute); v.Action.Kind != state.ActionPromoted {
		t.Fatalf("first commit: %s, %s; want promoted", v.Outcome, v.Action)
	}

	// The cut must land on the dry-run, whose timing the test can only
	// approach: when it misses (the dry-run finished before the cut began),
	// the attempt proves nothing, and a new commit tries again. On a
	// machine busy with the rest of the suite three attempts all missed
	// once; five leave room.
	var second string
	for attempt := 1; ; attempt++ {
		before := len(retriedDryRuns(log))
		second = f.cutDuringDryRun(t, px, attempt)
		v := f.waitDecided(t, "staging", second, 3*time.Minute)
		requireHealthy(t, v)
		if v.Action.Kind != state.ActionPromoted {
			t.Fatalf("commit of attempt %d: %s, want promoted", attempt, v.Action)
		}
		if retried := retriedDryRuns(log); len(retried) > before {
			for _, line := range retried[before:] {
				t.Logf("retried: %s", line)
			}
			break
		}
		if attempt == 5 {
			t.Fatal("the log shows no retried dry-run in 5 attempts: the cuts missed it")
		}
		t.Logf("attempt %d: the cut missed the dry-run; again with a new commit", attempt)
	}
	f.noFaultVerdicts(t, "staging")
	if tip := f.tip(t, "main"); tip != second {
		t.Fatalf("main is at %s, want %s: something was pushed on it", tip[:7], second[:7])
	}
	if subjects := f.git(t, "log", "--format=%s", "origin/main"); strings.Contains(subjects, "Revert") {
		t.Fatalf("a revert on main:\n%s", subjects)
	}
}

// waitDryRun waits until env, applying commit, has written its planned
// inventory: its next requests are the dry-run patches. It reads the
// state ConfigMap every 20ms, well within the latency the test puts on
// ferry's answers; on a busy machine it can still see env past Applying
// first, and then reports false.
func (f *fixture) waitDryRun(t *testing.T, env, commit string) bool {
	t.Helper()
	key := client.ObjectKey{Namespace: f.stateNS, Name: state.ConfigMapName(env)}
	applyingAt := ""
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		cm := &corev1.ConfigMap{}
		if err := f.c.Get(t.Context(), key, cm); err != nil {
			t.Fatal(err)
		}
		st := f.state(t, env)
		switch {
		case applyingAt == "" && st.Phase == state.PhaseApplying && st.Target != nil && st.Target.Commit == commit:
			applyingAt = cm.ResourceVersion
		case applyingAt != "" && cm.ResourceVersion != applyingAt:
			if st.Phase != state.PhaseApplying {
				t.Logf("%s left Applying (%s) before the test saw its inventory written", env, st.Phase)
				return false
			}
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no inventory written while applying %s", env, commit[:7])
	return false
}

// TestFaultsAPIBlackholeDuringVerify: the API server is unreachable for
// 60 s during verification with a 45 s health timeout. The outage does not
// count against the timeout: the revision is Healthy, not TimedOut.
func TestFaultsAPIBlackholeDuringVerify(t *testing.T) {
	f := newEnv(t, appFiles("v1"))
	f.health = "{timeout: 45s, interval: 1s, soak: 10s}"
	first := f.head(t)
	px := f.throughProxies(t)
	startLogged(t, px.cfg, nil)
	f.waitPhase(t, "env", first, state.PhaseVerifying, 2*time.Minute)
	start := time.Now()
	if err := px.kube.InjectFor(t.Context(), faultproxy.Fault{Kind: faultproxy.Blackhole, Direction: faultproxy.Both}, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	v := f.waitVerdict(t, "env", first, 4*time.Minute)
	requireHealthy(t, v)
	if d := time.Since(start); d < 60*time.Second {
		t.Fatalf("verdict %s after the blackhole began, before it ended", d)
	}
	f.noFaultVerdicts(t, "env")
	t.Logf("Healthy %s after a 60s blackhole began: %s", time.Since(start).Round(time.Second), v.Reason)
}

// TestFaultsWrongTokenIsTerminal: a wrong token stalls the source with a
// message naming the fix and makes no storm of requests to the forge; the
// rotated token resumes at once.
func TestFaultsWrongTokenIsTerminal(t *testing.T) {
	f := newEnv(t, appFiles("v1"))
	if _, _, err := forge.Client.EditRepo(forge.User, f.repo, gitea.EditRepoOption{Private: gitea.OptionalBool(true)}); err != nil {
		t.Fatal(err)
	}
	const wrong = "0123456789abcdef0123456789abcdef01234567"
	if err := os.WriteFile(f.tokenFile, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	first := f.head(t)
	px := f.throughProxies(t)
	startLogged(t, px.cfg, nil)
	eventually(t, time.Minute, func() (bool, string) {
		msg := f.state(t, "env").SourceError
		return strings.Contains(msg, "authentication failed") && strings.Contains(msg, "check the token in "+f.tokenFile), "source error: " + msg
	})
	// With a poll interval of 1s, the outage backoff would poll about five
	// times in 10s; a terminal error waits for the credential instead.
	before := px.git.Writes()
	time.Sleep(10 * time.Second)
	if n := px.git.Writes() - before; n != 0 {
		t.Fatalf("%d requests to the forge in 10s after a wrong token, want none", n)
	}
	if err := os.WriteFile(f.tokenFile, []byte(forge.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	requireHealthy(t, f.waitVerdict(t, "env", first, time.Minute))
	eventually(t, 30*time.Second, func() (bool, string) {
		msg := f.state(t, "env").SourceError
		return msg == "", "source error after rotation: " + msg
	})
}

// TestFaultsForgeBlackholeDuringVerdict: the forge's API is unreachable
// when the verdict is posted; the status arrives once it is back.
func TestFaultsForgeBlackholeDuringVerdict(t *testing.T) {
	f := newEnv(t, appFiles("v1"))
	f.health = "{timeout: 1m, interval: 250ms, soak: 5s}"
	first := f.head(t)
	px := f.throughProxies(t)
	api, apiURL, err := faultproxy.StartFor(forge.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	p, err := ferryforge.NewGitea(apiURL, forge.Token)
	if err != nil {
		t.Fatal(err)
	}
	ropts := ferryforge.DefaultReporterOptions()
	ropts.MinBackoff, ropts.MaxBackoff, ropts.Timeout = 500*time.Millisecond, 3*time.Second, 3*time.Second
	r := ferryforge.NewReporter(p, ropts)
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	startLogged(t, px.cfg, func(o *reconciler.Options) { o.Reporter = r })

	f.waitPhase(t, "env", first, state.PhaseVerifying, 2*time.Minute)
	const outage = 20 * time.Second
	end := time.Now().Add(outage)
	if err := api.InjectFor(t.Context(), faultproxy.Fault{Kind: faultproxy.Blackhole, Direction: faultproxy.Both}, outage); err != nil {
		t.Fatal(err)
	}
	v := f.waitVerdict(t, "env", first, time.Minute)
	requireHealthy(t, v)
	if !v.Finished.Before(end) {
		t.Fatalf("verdict at %s, after the forge came back (%s): the test proves nothing", v.Finished, end)
	}
	ctxName := ferryforge.EnvironmentContext("env")
	eventually(t, 90*time.Second, func() (bool, string) {
		got := ferryStatuses(t, f.repo, first, ctxName)
		return len(got) > 0 && strings.HasPrefix(got[len(got)-1], "success"), fmt.Sprintf("statuses %q", got)
	})
	if time.Now().Before(end) {
		t.Fatal("the success status arrived during the outage")
	}
}
