package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// TestReconcileLifecycle walks an environment through the changes people
// make: first deploy, a new image, a deleted file, a git revert of that,
// a hand edit, and a broken commit.
func TestReconcileLifecycle(t *testing.T) {
	e := newEnv(t, appFiles("v1"))
	// An object in the environment's namespace that ferry did not create.
	handmade := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "handmade"}}
	if err := e.c.Create(t.Context(), handmade); err != nil {
		t.Fatal(err)
	}
	first := e.head(t)
	e.start(t)

	t.Log("first deploy: the objects appear and the verdict is healthy")
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))
	e.waitImage(t, "registry.invalid/web:v1")
	if st := e.state(t, e.name); st.LastHealthy == nil || st.LastHealthy.Commit != first || len(st.Inventory) != 3 {
		t.Fatalf("state after first deploy: lastHealthy %+v, inventory %v", st.LastHealthy, st.Inventory)
	}

	t.Log("a new image tag rolls out")
	second := e.push(t, map[string]string{"envs/staging/kustomization.yaml": strings.Replace(appFiles("v2")["envs/staging/kustomization.yaml"], "v1", "v2", 1)}, nil, "Deploy web v2")
	requireHealthy(t, e.waitVerdict(t, e.name, second, 2*time.Minute))
	e.waitImage(t, "registry.invalid/web:v2")
	d, _ := e.deployment(t, e.ns)
	if d.Status.UpdatedReplicas != 2 || d.Status.AvailableReplicas != 2 {
		t.Fatalf("rollout not complete at the healthy verdict: %+v", d.Status)
	}

	t.Log("deleting a file prunes its object")
	third := e.push(t, map[string]string{"envs/staging/kustomization.yaml": "resources:\n  - ../../base\nimages:\n  - name: registry.invalid/web\n    newTag: v2\n"},
		[]string{"envs/staging/extra.yaml"}, "Remove extra")
	requireHealthy(t, e.waitVerdict(t, e.name, third, 2*time.Minute))
	if _, ok := getCM(t, e.c, e.ns, "extra"); ok {
		t.Fatal("extra was not pruned")
	}

	t.Log("a person's git revert brings it back")
	e.git(t, "revert", "--no-edit", "HEAD")
	if err := e.wc.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	fourth := e.head(t)
	requireHealthy(t, e.waitVerdict(t, e.name, fourth, 2*time.Minute))
	if _, ok := getCM(t, e.c, e.ns, "extra"); !ok {
		t.Fatal("extra not restored by the revert")
	}

	t.Log("an object edited by hand is restored")
	cm, _ := getCM(t, e.c, e.ns, "app-config")
	cm.Data["greeting"] = "edited by hand"
	if err := e.c.Update(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		cm, _ := getCM(t, e.c, e.ns, "app-config")
		return cm.Data["greeting"] == "hello", "greeting " + cm.Data["greeting"]
	})

	t.Log("a commit with broken YAML changes nothing and records file and line")
	broken := e.push(t, map[string]string{
		"envs/staging/extra.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v\n  bad: [unclosed\n",
		"envs/staging/kustomization.yaml": "resources:\n  - ../../base\n  - extra.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v3\n",
	}, nil, "Break the overlay")
	v := e.waitVerdict(t, e.name, broken, time.Minute)
	if v.Outcome != state.OutcomeError || !strings.Contains(v.Reason, "extra.yaml") || !strings.Contains(v.Reason, "line") {
		t.Fatalf("verdict on broken commit: %s %q; want Error naming extra.yaml and the line", v.Outcome, v.Reason)
	}
	e.waitImage(t, "registry.invalid/web:v2") // unchanged: v3 was not applied
	if st := e.state(t, e.name); st.LastHealthy.Commit != fourth {
		t.Fatalf("last healthy moved to %s after a broken commit", st.LastHealthy.Commit[:7])
	}

	t.Log("a kustomize error is recorded too")
	kerr := e.push(t, map[string]string{"envs/staging/kustomization.yaml": "resources:\n  - ../../base\n  - missing.yaml\n"}, nil, "Reference a missing file")
	v = e.waitVerdict(t, e.name, kerr, time.Minute)
	if v.Outcome != state.OutcomeError || !strings.Contains(v.Reason, "missing.yaml") {
		t.Fatalf("verdict on kustomize error: %s %q", v.Outcome, v.Reason)
	}

	if _, ok := getCM(t, e.c, e.ns, "handmade"); !ok {
		t.Fatal("an object ferry did not create was pruned")
	}
	if _, ok := getCM(t, e.c, e.ns, "extra"); !ok {
		t.Fatal("an object was pruned after a failed render")
	}
}

// TestReconcileCrashLoopFailsFast: a crash-looping rollout gets a failed
// verdict long before the health timeout, naming the reason.
func TestReconcileCrashLoopFailsFast(t *testing.T) {
	e := newEnv(t, appFiles("v1"))
	first := e.head(t)
	e.extra = "" // health timeout 2m
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))

	files := withPodAnnotation("v2", sandbox.FailCrashLoop)
	start := time.Now()
	bad := e.push(t, files, nil, "Deploy a crashing web")
	v := e.waitVerdict(t, e.name, bad, time.Minute)
	took := time.Since(start)
	if v.Outcome != state.OutcomeFailed || !strings.Contains(v.Reason, "CrashLoopBackOff") {
		t.Fatalf("verdict: %s %q; want Failed with CrashLoopBackOff", v.Outcome, v.Reason)
	}
	if took > time.Minute {
		t.Fatalf("failed after %s; the health timeout is 2m, fail-fast should be much sooner", took)
	}
	t.Logf("crash loop failed after %s: %s", took.Round(time.Millisecond), v.Reason)
	if st := e.state(t, e.name); st.LastHealthy.Commit != first || st.Phase != state.PhaseFailed {
		t.Fatalf("state: phase %s, last healthy %s", st.Phase, st.LastHealthy.Commit[:7])
	}
}

// TestReconcileWrongToken: a wrong token is reported with the URL and
// without the token; the right token makes the environment converge.
func TestReconcileWrongToken(t *testing.T) {
	e := newEnv(t, appFiles("v1"))
	first := e.head(t)
	wrong := "0123456789abcdef0123456789abcdef01234567"
	if err := os.WriteFile(e.tokenFile, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	var msg string
	eventually(t, 30*time.Second, func() (bool, string) {
		msg = e.state(t, e.name).SourceError
		return msg != "", "no source error recorded yet"
	})
	if !strings.Contains(msg, forge.CloneURL(e.repo)) || !strings.Contains(strings.ToLower(msg), "auth") || strings.Contains(msg, wrong) {
		t.Fatalf("source error %q: want an auth error naming the URL and not the token", msg)
	}
	if _, ok := e.deployment(t, e.ns); ok {
		t.Fatal("objects applied without a successful fetch")
	}
	if err := os.WriteFile(e.tokenFile, []byte(forge.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))
	eventually(t, 30*time.Second, func() (bool, string) {
		msg = e.state(t, e.name).SourceError
		return msg == "", "source error still recorded: " + msg
	})
}

// TestReconcileNewerCommitCancelsVerify: while a commit that never turns
// ready is being verified, a newer commit cancels that check and is
// reconciled at once.
func TestReconcileNewerCommitCancelsVerify(t *testing.T) {
	e := newEnv(t, appFiles("v1"))
	first := e.head(t)
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))

	stuck := e.push(t, withPodAnnotation("v2", sandbox.FailNeverReady), nil, "Deploy a never-ready web")
	eventually(t, time.Minute, func() (bool, string) {
		st := e.state(t, e.name)
		return st.Phase == state.PhaseVerifying && st.Target != nil && st.Target.Commit == stuck, "phase " + string(st.Phase)
	})
	start := time.Now()
	fix := e.push(t, appFiles("v3"), nil, "Fix web")
	requireHealthy(t, e.waitVerdict(t, e.name, fix, time.Minute))
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the fix waited %s behind the stuck verification (health timeout 2m)", took)
	}
	if v, ok := e.state(t, e.name).VerdictFor(stuck); ok {
		t.Fatalf("the cancelled commit got a verdict: %+v", v)
	}
}

// TestReconcileTimeout: a rollout that never turns ready times out, and the
// verdict names what was not ready.
func TestReconcileTimeout(t *testing.T) {
	e := newEnv(t, withPodAnnotation("v1", sandbox.FailNeverReady))
	e.health = "{timeout: 5s, interval: 250ms}"
	first := e.head(t)
	e.start(t)
	v := e.waitVerdict(t, e.name, first, time.Minute)
	if v.Outcome != state.OutcomeTimedOut || !strings.Contains(v.Reason, "Deployment") || !strings.Contains(v.Reason, "web") {
		t.Fatalf("verdict: %s %q, want TimedOut naming the Deployment", v.Outcome, v.Reason)
	}
	if st := e.state(t, e.name); st.LastHealthy != nil {
		t.Fatalf("a timed-out first deploy became the last healthy revision")
	}
}
