package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// TestSuspensionSurvivesRestart: `ferry suspend` on a running `ferry run`,
// a crash-looping commit pushed while suspended, and a restart of ferry
// (SIGTERM, then a new process). The new ferry keeps its hands off: the
// state, `ferry status` and the badge still say who suspended it and why,
// nothing of the bad commit reaches the cluster, and no revert is pushed.
// `ferry resume` then lets ferry decide what it held: the bad commit is
// reverted, by a commit whose Ferry-Reverted trailer names it.
func TestSuspensionSurvivesRestart(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	// The crash loop fails fast; the timeout only bounds a slow cluster.
	p.health = "{timeout: 30s, interval: 250ms}"
	addr := freeAddr(t)
	cfgPath := writeConfig(t, p.config()+fmt.Sprintf("server: {addr: %q}\n", addr))
	bin := buildFerry(t)
	t.Setenv("FERRY_USER", "carol")
	cli := func(args ...string) (string, int) {
		t.Helper()
		return ferryCLI(t, bin, cfgPath, args...)
	}
	first := p.tip(t, "main")
	running := sandbox.StartFerry(t, bin, cfgPath)
	requireHealthy(t, p.waitDecided(t, "staging", first, 2*time.Minute))

	const suspended = "suspended: incident 43 (by carol)"
	if out, code := cli("suspend", "staging", "--reason", "incident 43"); code != 0 || out != "staging: "+suspended+"\n" {
		t.Fatalf("suspend: exit %d\n%s", code, out)
	}
	bad := p.pushMain(t, withPodAnnotation("v2", sandbox.FailCrashLoop), "Deploy web v2")
	// untouched says what a suspended staging must show with bad at the
	// tip of main: no verdict on it, no revert, the cluster still on v1.
	untouched := func() (bool, string) {
		st := p.state(t, "staging")
		v, decided := st.VerdictFor(bad)
		tip := p.tip(t, "main")
		web := p.webTemplate(t, p.ns)
		switch {
		case st.Suspended == nil || st.Suspended.String() != suspended:
			return false, fmt.Sprintf("staging's suspension is %v", st.Suspended)
		case decided:
			return false, fmt.Sprintf("staging has a verdict on the bad commit: %s, %s", v.Outcome, v.Action)
		case tip != bad:
			return false, "main moved to " + tip[:7] + ": " + p.git(t, "log", "-1", "--format=%s", tip)
		case web["image"] != "registry.invalid/web:v1" || web[sandbox.FailAnnotation] != "":
			return false, fmt.Sprintf("the cluster runs the bad commit's pods: %v", web)
		}
		return true, ""
	}
	// A reconcile request returns once ferry handled a pass over the tip
	// of main, the bad commit: the suspension held it.
	reconciled := func(who string) {
		t.Helper()
		out, code := cli("reconcile", "staging")
		if code != 0 || !strings.Contains(out, "next: "+suspended+"\n") {
			t.Fatalf("reconcile staging with %s: exit %d\n%s", who, code, out)
		}
		if ok, msg := untouched(); !ok {
			t.Fatalf("with %s: %s", who, msg)
		}
	}
	reconciled("the first ferry")

	t.Log("SIGTERM, and a new ferry process")
	stopFerryProcess(t, running)
	sandbox.StartFerry(t, bin, cfgPath)
	reconciled("the restarted ferry")
	// A negative check needs a window: the restarted ferry polls main
	// every second and corrects drift on each interval, so a suspension
	// lost in the restart would show as an apply of v2 or a revert on
	// main within a few passes. Five seconds covers several of them.
	consistently(t, 5*time.Second, untouched)
	out, code := cli("status", "staging")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.Contains(lines[1], suspended) {
		t.Errorf("status staging after the restart: exit %d\n%s", code, out)
	}
	if badge := httpGet(t, "http://"+addr+"/badge/staging.svg"); !strings.Contains(badge, suspended) {
		t.Errorf("the badge after the restart does not show the suspension:\n%s", badge)
	}

	t.Log("resume: the held bad commit is reverted")
	if out, code := cli("resume", "staging"); code != 0 || out != "staging: resumed\n" {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	v := p.waitDecided(t, "staging", bad, 2*time.Minute)
	if v.Outcome != state.OutcomeFailed || !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("after resume: %s (%s), %s", v.Outcome, v.Reason, v.Action)
	}
	revert := p.tip(t, "main")
	msg := p.git(t, "log", "-1", "--format=%B", revert)
	if !slices.Contains(source.Trailer(msg, source.TrailerReverted), bad) {
		t.Errorf("main's tip %s has no %s trailer naming %s:\n%s", revert[:7], source.TrailerReverted, bad[:7], msg)
	}
	if v.Action.String() != "reverted by "+state.Short(revert) {
		t.Errorf("staging's decision %q does not name main's tip %s", v.Action, revert[:7])
	}
	if parent := p.git(t, "rev-parse", revert+"^"); parent != bad || !p.sameTree(t, revert, first) {
		t.Errorf("the revert's parent is %s (want %s), or its tree is not the last healthy one", parent[:7], bad[:7])
	}
	p.waitImage(t, "registry.invalid/web:v1")
	if out, _ := cli("status", "staging"); strings.Contains(out, "suspended") {
		t.Errorf("status still shows a suspension after resume:\n%s", out)
	}
}

// TestPromoteCommand runs `ferry promote` as the binary against a `ferry
// run` whose promotion window stays closed: a healthy staging revision
// waits, `ferry promote staging` without --now keeps it waiting and says
// why, and `ferry promote staging --to production --now` promotes it at
// once, recording who asked.
func TestPromoteCommand(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	// The binary has no test clock, so the window is one weekday that is
	// neither today nor tomorrow in UTC: closed for the whole test, even
	// one that runs across midnight.
	day := time.Now().UTC().AddDate(0, 0, 3).Weekday().String()[:3]
	cfg := strings.Replace(p.config(), "promote: {to: production, mode: push}",
		fmt.Sprintf("promote: {to: production, mode: push, window: {days: [%s], timeZone: UTC}}", day), 1)
	cfgPath := writeConfig(t, cfg)
	bin := buildFerry(t)
	t.Setenv("FERRY_USER", "dave")
	cli := func(args ...string) (string, int) {
		t.Helper()
		return ferryCLI(t, bin, cfgPath, args...)
	}
	first := p.tip(t, "main")
	sandbox.StartFerry(t, bin, cfgPath)
	requireHealthy(t, p.waitVerdict(t, "staging", first, 2*time.Minute))
	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	requireHealthy(t, p.waitVerdict(t, "staging", good, 2*time.Minute))
	waiting := "production: waiting for the promotion window " + day + " 00:00-24:00 UTC, opens " + day + " 00:00 UTC"
	eventually(t, time.Minute, func() (bool, string) {
		st := p.state(t, "staging")
		return strings.Contains(st.Message, waiting), "staging says: " + st.Message
	})
	// A negative check needs a window: staging polls every second and
	// decides its healthy revision on each pass; a window that does not
	// hold would show as a push to production within a few of them.
	unpromoted := func() (bool, string) {
		tip := p.tip(t, "production")
		v, _ := p.state(t, "staging").VerdictFor(good)
		return tip == first && v.Action.IsZero(), fmt.Sprintf("production at %s, staging decided %q", tip[:7], v.Action)
	}
	consistently(t, 3*time.Second, unpromoted)
	if out, code := cli("status", "staging"); code != 0 || !strings.Contains(out, "promote to production waiting for the promotion window "+day) {
		t.Errorf("status staging: exit %d\n%s", code, out)
	}

	t.Log("promote without --now keeps to the window")
	out, code := cli("promote", "staging")
	if code != 0 || out != "staging → "+waiting+"\n" {
		t.Errorf("promote staging: exit %d\n%s", code, out)
	}
	if ok, msg := unpromoted(); !ok {
		t.Fatalf("after promote without --now: %s", msg)
	}
	if out, code := cli("promote", "staging", "--to", "qa"); code == 0 || !strings.Contains(out, `staging does not promote to "qa"; its targets: production`) {
		t.Errorf("promote staging --to qa: exit %d\n%s", code, out)
	}

	t.Log("promote --now overrides the window and records who asked")
	out, code = cli("promote", "staging", "--to", "production", "--now")
	if code != 0 || out != "staging → production: promoted to production (by dave)\n" {
		t.Errorf("promote staging --now: exit %d\n%s", code, out)
	}
	if tip := p.tip(t, "production"); tip != good || !p.sameTree(t, tip, good) {
		t.Errorf("production at %s, want the verified %s", tip[:7], good[:7])
	}
	if v, _ := p.state(t, "staging").VerdictFor(good); v.Action.String() != "promoted to production (by dave)" {
		t.Errorf("staging's decision on %s: %q", good[:7], v.Action)
	}
	requireHealthy(t, p.waitDecided(t, "production", good, 2*time.Minute))
}
