package e2e

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/sandbox"
)

// TestCommitStatusesAndBadges runs `ferry run` with Gitea as its forge and
// checks the exact status sequence a person sees: on a healthy promoted
// commit, on the head of the pull request that was squash-merged into it,
// in production, and on a reverted commit; then the badges, the status API
// and the metrics.
func TestCommitStatusesAndBadges(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	addr := freeAddr(t)
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(secretFile, []byte("s3cret-hook"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only Gitea's webhooks make ferry look at the branches quickly: the
	// poll interval is an hour.
	cfg := strings.ReplaceAll(p.config(), "interval: 1s", "interval: 1h") + fmt.Sprintf("server: {addr: %q, externalURL: \"http://%s\"}\nreport: {provider: gitea, url: %q, tokenFile: %s, webhookSecretFile: %s}\n",
		addr, addr, strings.TrimSuffix(forge.URL, "/"), p.tokenFile, secretFile)
	cfgPath := writeConfig(t, cfg)
	if _, _, err := forge.Client.CreateRepoHook(forge.User, p.repo, gitea.CreateHookOption{
		Type: gitea.HookTypeGitea, Active: true, Events: []string{"push", "pull_request"},
		Config: map[string]string{"url": "http://" + addr + "/hooks/gitea", "content_type": "json", "secret": "s3cret-hook"},
	}); err != nil {
		t.Fatal(err)
	}
	first := p.tip(t, "main")
	sandbox.StartFerry(t, buildFerry(t), cfgPath)
	p.waitDecided(t, "production", first, 2*time.Minute)

	t.Log("a pull request squash-merged into main")
	p.git(t, "checkout", "--quiet", "-B", "feature", "origin/main")
	head, err := p.wc.CommitAndPush(t.Context(), pipelineFiles("v2"), "Deploy web v2")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := forge.OpenPullRequest(p.repo, "feature", "main", "Deploy web v2")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := forge.MergePullRequest(p.repo, pr.Index, gitea.MergeStyleSquash)
	if err != nil {
		t.Fatal(err)
	}
	squash := *merged.MergedCommitID
	p.waitDecided(t, "staging", squash, 2*time.Minute)
	p.waitDecided(t, "production", squash, 2*time.Minute)
	healthyThenPromoted := []string{"pending: applying", "pending: verifying", "success: healthy at " + squash[:7], "success: promoted to production"}
	waitStatuses(t, p.repo, squash, "ferry/staging", healthyThenPromoted)
	waitStatuses(t, p.repo, head, "ferry/staging", healthyThenPromoted)
	waitStatuses(t, p.repo, squash, "ferry/production", []string{"pending: applying", "pending: verifying", "success: healthy at " + squash[:7]})

	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	before := get("/metrics")
	for _, want := range []string{`ferry_reverts_total{environment="staging"} 0`, `ferry_promotions_total{from="staging",to="production"} 2`,
		`ferry_environment_healthy{environment="staging"} 1`} {
		if !strings.Contains(before, want) {
			t.Errorf("metrics before the revert lack %s", want)
		}
	}

	t.Log("a bad commit, reverted")
	bad := p.pushMain(t, withPodAnnotation("v3", sandbox.FailCrashLoop), "Deploy web v3")
	v := p.waitDecided(t, "staging", bad, time.Minute)
	revert := strings.TrimPrefix(v.Action.String(), "reverted by ")
	waitStatuses(t, p.repo, bad, "ferry/staging", []string{"pending: applying", "pending: verifying", "failure: Deployment", "failure: reverted by " + revert})
	if got := ferryStatuses(t, p.repo, bad, "ferry/production"); len(got) != 0 {
		t.Fatalf("production posted on the bad commit: %q", got)
	}

	t.Log("badges, status API, page and metrics")
	for _, path := range []string{"/badge/staging.svg", "/badge/staging/" + bad + ".svg"} {
		svg := get(path)
		if err := xml.Unmarshal([]byte(svg), new(struct{ XMLName xml.Name })); err != nil {
			t.Fatalf("%s is not XML: %v", path, err)
		}
		if !strings.Contains(svg, "staging") {
			t.Fatalf("%s lacks the environment: %s", path, svg)
		}
	}
	if api := get("/api/v1/environments/staging"); !strings.Contains(api, bad) || !strings.Contains(api, "reverted by") {
		t.Fatalf("status API lacks the revert: %s", api)
	}
	if page := get("/environments/staging"); !strings.Contains(page, bad[:7]) {
		t.Fatal("status page lacks the history")
	}
	checkInChromium(t, addr, get("/badge/staging.svg"), bad[:7])

	t.Log("Kubernetes Events on the state ConfigMap")
	events := &corev1.EventList{}
	if err := p.c.List(t.Context(), events, client.InNamespace(p.stateNS)); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, ev := range events.Items {
		if ev.InvolvedObject.Name == "ferry-state-staging" {
			reasons[ev.Reason] = true
		}
	}
	for _, want := range []string{"Healthy", "Promoted", "Failed", "Reverted"} {
		if !reasons[want] {
			t.Errorf("no %s event on ferry-state-staging (have %v)", want, reasons)
		}
	}
	metrics := get("/metrics")
	for _, want := range []string{`ferry_verdicts_total{environment="staging",outcome="Failed"} 1`, `ferry_reverts_total{environment="staging"} 1`,
		`ferry_promotions_total{from="staging",to="production"} 3`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{forge.Token, "s3cret-hook"} {
		for _, path := range []string{"/api/v1/environments", "/environments/staging", "/metrics"} {
			if strings.Contains(get(path), secret) {
				t.Fatalf("%s shows a secret", path)
			}
		}
	}
}
