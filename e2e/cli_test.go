package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/state"
)

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

// TestRollbackHistoryRelease drives the person-facing commands: history
// shows verdicts and actions, rollback writes a revert to the last healthy
// revision, release lifts a quarantine.
func TestRollbackHistoryRelease(t *testing.T) {
	e := newTestEnv(t, appFiles("v1"))
	e.extra = "    onFailure: revert\n"
	first, _ := e.wc.Git(t.Context(), "rev-parse", "HEAD")
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, first, 2*time.Minute))
	bin := buildFerry(t)
	cfgPath := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(cfgPath, []byte(e.configYAML()), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("rollback of a healthy but unwanted change")
	second := e.push(t, appFiles("v2"), nil, "Deploy web v2")
	requireHealthy(t, e.waitVerdict(t, second, 2*time.Minute))
	out, code := ferryCLI(t, bin, cfgPath, "rollback", e.name, "--to", first[:7])
	if code != 0 || !strings.Contains(out, `Revert "Deploy web v2"`) {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	e.wc.Git(t.Context(), "fetch", "--quiet", "origin")
	rb, _ := e.wc.Git(t.Context(), "rev-parse", "origin/main")
	tree := func(rev string) string { s, _ := e.wc.Git(t.Context(), "rev-parse", rev+"^{tree}"); return s }
	if tree(rb) != tree(first) {
		t.Fatal("rollback's tree is not the chosen revision's tree")
	}
	requireHealthy(t, e.waitVerdict(t, rb, 2*time.Minute))
	e.waitImage(t, "registry.invalid/web:v1")
	if out, code := ferryCLI(t, bin, cfgPath, "rollback", e.name, "--to", "deadbee"); code == 0 || !strings.Contains(out, "not a healthy revision") {
		t.Fatalf("rollback to an unknown revision: exit %d\n%s", code, out)
	}

	t.Log("a failure is reverted, its rendering quarantined, and released")
	e.wc.Git(t.Context(), "checkout", "--quiet", "-B", "main", "origin/main")
	bad := e.push(t, withPodAnnotation("v3", harness.FailCrashLoop), nil, "Deploy web v3")
	eventually(t, time.Minute, func() (bool, string) {
		v, _ := e.state(t).VerdictFor(bad)
		return strings.HasPrefix(v.Action.String(), "reverted by "), v.Action.String()
	})
	out, code = ferryCLI(t, bin, cfgPath, "history", e.name)
	for _, want := range []string{"REVISION", bad[:7], "Failed", "reverted by", "CrashLoopBackOff", second[:7], "Healthy", "quarantined:"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q", want)
		}
	}
	if code != 0 || t.Failed() {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	out, code = ferryCLI(t, bin, cfgPath, "release", e.name, bad[:7])
	if code != 0 || !strings.Contains(out, "released") {
		t.Fatalf("release: exit %d\n%s", code, out)
	}
	if st := e.state(t); len(st.Quarantine) != 0 {
		t.Fatalf("still quarantined: %+v", st.Quarantine)
	}
	if out, code := ferryCLI(t, bin, cfgPath, "release", e.name, bad[:7]); code == 0 || !strings.Contains(out, "nothing quarantined") {
		t.Fatalf("second release: exit %d\n%s", code, out)
	}
	_ = state.OutcomeHealthy
}
