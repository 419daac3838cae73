package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// TestEverydayCommands runs `ferry run` as a process and drives it with the
// everyday commands, checking their output against the cluster's state:
// status (table, JSON, --watch), reconcile, suspend during a bad commit (no
// revert; status, badge and commit status say so), resume (the revert
// follows), version --server, and the pipeline graph of the status page in
// headless Chromium.
func TestEverydayCommands(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	p.health = "{timeout: 15s, interval: 250ms}"
	addr := freeAddr(t)
	cfg := p.config() + fmt.Sprintf("server: {addr: %q, externalURL: \"http://%s\"}\n", addr, addr) + p.giteaReport()
	cfgPath := writeConfig(t, cfg)
	bin := buildFerry(t)
	first := p.tip(t, "main")
	sandbox.StartFerry(t, bin, cfgPath)
	requireHealthy(t, p.waitDecided(t, "production", first, 2*time.Minute))
	requireHealthy(t, p.waitDecided(t, "staging", first, 2*time.Minute))
	cli := func(args ...string) (string, int) {
		t.Helper()
		return ferryCLI(t, bin, cfgPath, args...)
	}

	t.Log("status agrees with the state in the cluster")
	out, code := cli("status", "-o", "json")
	var rows []map[string]string
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("status -o json: exit %d, %v\n%s", code, err, out)
	}
	for _, row := range rows {
		st := p.state(t, row["name"])
		if row["phase"] != string(st.Phase) || row["applied"] != st.LastApplied.Commit || row["lastHealthy"] != st.LastHealthy.Commit || row["tip"] != st.Target.Commit {
			t.Errorf("status row %v does not match the state: phase %s, applied %s, healthy %s", row, st.Phase, st.LastApplied.Commit, st.LastHealthy.Commit)
		}
	}
	if len(rows) != 2 || rows[0]["name"] != "staging" || rows[0]["next"] != "promoted to production" || rows[1]["name"] != "production" {
		t.Errorf("status rows: %v", rows)
	}
	out, code = cli("status", "staging")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ENVIRONMENT") || !strings.HasPrefix(lines[1], "staging") ||
		!strings.Contains(lines[1], first[:7]) || !strings.Contains(lines[1], "Healthy") {
		t.Errorf("status staging: exit %d\n%s", code, out)
	}
	if out, code := cli("status", "qa"); code == 0 || !strings.Contains(out, `"qa" is not configured`) {
		t.Errorf("status qa: exit %d\n%s", code, out)
	}

	t.Log("status --watch prints the table, then changes")
	wctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	watch := exec.CommandContext(wctx, bin, "status", "--watch", "--config", cfgPath)
	watch.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	wout, _ := watch.Output()
	cancel()
	if strings.Count(string(wout), "ENVIRONMENT") != 1 || !strings.Contains(string(wout), "production") {
		t.Errorf("status --watch printed:\n%s", wout)
	}

	t.Log("reconcile waits and prints the verdict")
	out, code = cli("reconcile", "staging")
	if code != 0 || !strings.HasPrefix(out, "staging: Healthy at "+first[:7]+"\nverdict: Healthy") {
		t.Errorf("reconcile staging: exit %d\n%s", code, out)
	}

	t.Log("suspend during a bad commit: no revert")
	bad := p.pushMain(t, withPodAnnotation("v2", sandbox.FailNeverReady), "Deploy web v2")
	eventually(t, time.Minute, func() (bool, string) {
		st := p.state(t, "staging")
		return st.Phase == state.PhaseVerifying && st.Target.Commit == bad, fmt.Sprintf("staging %s at %v", st.Phase, st.Target)
	})
	cmd := exec.CommandContext(t.Context(), bin, "suspend", "staging", "--reason", "incident 42", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "FERRY_USER=alice")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "staging: suspended: incident 42 (by alice)\n" {
		t.Fatalf("suspend: %v\n%s", err, out)
	}
	v := p.waitVerdict(t, "staging", bad, time.Minute)
	if v.Outcome != state.OutcomeTimedOut {
		t.Fatalf("bad commit: %+v", v)
	}
	consistently(t, 4*time.Second, func() (bool, string) {
		v, _ := p.state(t, "staging").VerdictFor(bad)
		tip := p.tip(t, "main")
		return v.Action.IsZero() && tip == bad, fmt.Sprintf("suspended staging decided %q; main at %s", v.Action, tip[:7])
	})
	const suspended = "suspended: incident 42 (by alice)"
	if out, _ := cli("status", "staging"); !strings.Contains(out, suspended) {
		t.Errorf("status does not show the suspension:\n%s", out)
	}
	if badge := httpGet(t, "http://"+addr+"/badge/staging.svg"); !strings.Contains(badge, suspended) {
		t.Errorf("badge does not show the suspension:\n%s", badge)
	}
	eventually(t, time.Minute, func() (bool, string) {
		got := ferryStatuses(t, p.repo, bad, "ferry/staging")
		return len(got) > 0 && got[len(got)-1] == "pending: "+suspended, fmt.Sprintf("statuses %q", got)
	})

	t.Log("resume: the revert follows")
	out, code = cli("resume", "staging", "--wait")
	v = p.waitDecided(t, "staging", bad, time.Minute)
	if !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("after resume: %+v", v)
	}
	// --wait prints the pass that handled the request: the revert itself
	// (exit 1, the verdict on the bad commit) or, when the loop had
	// reverted before it read the request, the revert commit, healthy.
	revert := p.tip(t, "main")
	switch {
	case code == 1 && strings.Contains(out, "staging: Failed at "+bad[:7]) && strings.Contains(out, "next: reverted by "+revert[:7]):
	case code == 0 && strings.Contains(out, "staging: Healthy at "+revert[:7]):
	default:
		t.Errorf("resume --wait: exit %d\n%s", code, out)
	}
	if !strings.HasPrefix(out, "staging: resumed\n") {
		t.Errorf("resume --wait: %s", out)
	}

	t.Log("version --server")
	out, code = cli("version", "--server")
	if code != 0 || !strings.Contains(out, "client: ") || !strings.Contains(out, "\nserver: ") {
		t.Errorf("version --server: exit %d\n%s", code, out)
	}

	t.Log("the pipeline graph in headless Chromium")
	prod := p.state(t, "production")
	dom := chromium(t, "--dump-dom", "http://"+addr+"/environments")
	for _, want := range []string{
		`role="img"`, "Pipeline of 2 environments", ">staging</text>", ">production</text>",
		">revision " + state.Short(prod.LastApplied.Commit) + "</text>", ">verdict Healthy</text>", "staging promotes to production.",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the environments page in Chromium lacks %q", want)
		}
	}
	shots := os.Getenv("FERRY_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	shot := filepath.Join(shots, "pipeline-graph.png")
	chromium(t, "--window-size=1200,900", "--screenshot="+shot, "http://"+addr+"/environments")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("no screenshot of the graph: %v", err)
	}
}
