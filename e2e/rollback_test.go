package e2e

import (
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/sandbox"
)

// TestRollbackHistoryRelease drives the person-facing commands: history
// shows verdicts and actions, rollback writes a revert to the last healthy
// revision, release lifts a quarantine.
func TestRollbackHistoryRelease(t *testing.T) {
	e := newEnv(t, appFiles("v1"))
	e.extra = "    onFailure: revert\n"
	first := e.head(t)
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))
	bin := buildFerry(t)
	cfgPath := writeConfig(t, e.config())

	t.Log("rollback of a healthy but unwanted change")
	second := e.push(t, appFiles("v2"), nil, "Deploy web v2")
	requireHealthy(t, e.waitVerdict(t, e.name, second, 2*time.Minute))
	out, code := ferryCLI(t, bin, cfgPath, "rollback", e.name, "--to", first[:7])
	if code != 0 || !strings.Contains(out, `Revert "Deploy web v2"`) {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	rb := e.tip(t, "main")
	tree := func(rev string) string { return e.git(t, "rev-parse", rev+"^{tree}") }
	if tree(rb) != tree(first) {
		t.Fatal("rollback's tree is not the chosen revision's tree")
	}
	requireHealthy(t, e.waitVerdict(t, e.name, rb, 2*time.Minute))
	e.waitImage(t, "registry.invalid/web:v1")
	if out, code := ferryCLI(t, bin, cfgPath, "rollback", e.name, "--to", "deadbee"); code == 0 || !strings.Contains(out, "not a healthy revision") {
		t.Fatalf("rollback to an unknown revision: exit %d\n%s", code, out)
	}

	t.Log("a failure is reverted, its rendering quarantined, and released")
	e.git(t, "checkout", "--quiet", "-B", "main", "origin/main")
	bad := e.push(t, withPodAnnotation("v3", sandbox.FailCrashLoop), nil, "Deploy web v3")
	eventually(t, time.Minute, func() (bool, string) {
		v, _ := e.state(t, e.name).VerdictFor(bad)
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
	if st := e.state(t, e.name); len(st.Quarantine) != 0 {
		t.Fatalf("still quarantined: %+v", st.Quarantine)
	}
	if out, code := ferryCLI(t, bin, cfgPath, "release", e.name, bad[:7]); code == 0 || !strings.Contains(out, "nothing quarantined") {
		t.Fatalf("second release: exit %d\n%s", code, out)
	}
}
