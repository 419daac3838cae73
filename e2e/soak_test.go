package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/state"
)

// TestSoakCatchesALateFailure: pods that turn ready and fail five seconds
// later pass a check without soak, but fail the verdict with a soak.
func TestSoakCatchesALateFailure(t *testing.T) {
	files := appFiles("v1")
	// kwok's chaos stage fails a Running, ready container after a delay.
	files["base/deployment.yaml"] = strings.Replace(files["base/deployment.yaml"], "      labels: {app: web}\n    spec:",
		"      labels: {app: web, pod-container-running-failed.stage.kwok.x-k8s.io: \"true\"}\n"+
			"      annotations: {pod-container-running-failed.stage.kwok.x-k8s.io/delay: \"6s\", pod-container-running-failed.stage.kwok.x-k8s.io/jitter-delay: \"7s\", pod-container-running-failed.stage.kwok.x-k8s.io/reason: OOMKilled, pod-container-running-failed.stage.kwok.x-k8s.io/exit-code: \"137\"}\n    spec:", 1)
	e := newEnv(t, files)
	e.health = "{timeout: 1m, interval: 250ms, soak: 20s}"
	first := e.head(t)
	e.start(t)
	eventually(t, 30*time.Second, func() (bool, string) {
		st := e.state(t, e.name)
		return st.Phase == state.PhaseVerifying && st.Message == "verifying (soak 20s)", fmt.Sprintf("phase %s: %s", st.Phase, st.Message)
	})
	v := e.waitVerdict(t, e.name, first, time.Minute)
	if v.Outcome != state.OutcomeFailed || !strings.Contains(v.Reason, "OOMKilled") {
		t.Fatalf("verdict: %s %q, want Failed naming OOMKilled", v.Outcome, v.Reason)
	}
	if d := v.Finished.Sub(v.Started); d < 5*time.Second {
		t.Fatalf("failed after %s, before the pods were ever ready: the soak was not what caught it", d)
	}
	t.Logf("soak caught it after %s: %s", v.Finished.Sub(v.Started).Round(time.Millisecond), v.Reason)
}
