package server

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/state"
)

// source is a Source over fixed snapshots that records triggers.
type source struct {
	mu        sync.Mutex
	snaps     map[string]*state.Environment
	order     []string
	watch     map[string][]string // "owner/name branch" → environments
	triggered []string
	fail      bool
	// refuse makes Trigger fail, as when a request to the replica holding
	// an environment cannot be recorded.
	refuse bool
}

func (s *source) Environments() []string { return s.order }

func (s *source) Environment(_ context.Context, env string) (*state.Environment, error) {
	if s.fail {
		return nil, errors.New("configmaps is forbidden: token " + testToken)
	}
	snap, ok := s.snaps[env]
	if !ok {
		return nil, fmt.Errorf("no environment %s", env)
	}
	return snap, nil
}

func (s *source) Trigger(_ context.Context, env string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.snaps[env]; !ok || s.refuse {
		return false
	}
	s.triggered = append(s.triggered, env)
	return true
}

func (s *source) Edges() []GraphEdge {
	return []GraphEdge{{From: "staging", To: "production", Kind: "promotes"}}
}

func (s *source) Triggered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.triggered)
}

func (s *source) Watches(repo forge.Repo, branch string) []string {
	for k, envs := range s.watch {
		owner, rest, _ := strings.Cut(k, "/")
		name, b, _ := strings.Cut(rest, " ")
		if repo.Is(forge.Repo{Owner: owner, Name: name}) && b == branch {
			return envs
		}
	}
	return nil
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func testSource() *source {
	return &source{
		order: []string{"staging", "production", "fresh"},
		snaps: map[string]*state.Environment{
			"staging": {Name: "staging", Branch: "main", Path: "envs/staging", State: state.State{Phase: state.PhaseVerifying,
				Message:     "soaking for 2m",
				SourceError: "fetch https://ferry:" + testToken + "@git.example.com/acme/app.git: timeout",
				Target:      &state.Revision{Commit: commitC, Time: t0.Add(time.Hour)},
				LastApplied: &state.Revision{Commit: commitC, Digest: "sha256:cc", Time: t0.Add(time.Hour)},
				LastHealthy: &state.Revision{Commit: commitA, Digest: "sha256:aa", Time: t0},
				Inventory:   apply.Inventory{{ID: "app_web_apps_Deployment", Version: "v1"}},
				History: []state.Verdict{
					{Commit: commitB, Outcome: state.OutcomeFailed, Reason: `pod web-1: CrashLoopBackOff <script>alert(1)</script>`,
						Action: state.Reverted(commitD), Started: t0.Add(10 * time.Minute), Finished: t0.Add(12 * time.Minute)},
					{Commit: commitA, Outcome: state.OutcomeHealthy, Action: state.Promoted("production", ""), Started: t0.Add(-3 * time.Minute), Finished: t0},
				}}},
			"production": {Name: "production", Branch: "production", State: state.State{Phase: state.PhaseHealthy,
				Target:      &state.Revision{Commit: commitA, Time: t0},
				LastHealthy: &state.Revision{Commit: commitA, Time: t0},
				History:     []state.Verdict{{Commit: commitA, Outcome: state.OutcomeHealthy, Started: t0, Finished: t0.Add(time.Minute)}}}},
			"fresh": {Name: "fresh"},
		},
		watch: map[string][]string{"acme/app main": {"staging"}, "acme/app production": {"production"}},
	}
}

const hookSecret = "It's a Secret to Everybody"

func testServer(t *testing.T, src *source, mutate func(*ServerOptions)) *httptest.Server {
	opts := DefaultServerOptions()
	opts.WebhookSecret = []byte(hookSecret)
	opts.Log = quietLog()
	if mutate != nil {
		mutate(&opts)
	}
	srv := httptest.NewServer(NewServer(src, opts))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// svgBadge is what a badge SVG must hold, read back with encoding/xml.
type svgBadge struct {
	XMLName   xml.Name `xml:"http://www.w3.org/2000/svg svg"`
	AriaLabel string   `xml:"aria-label,attr"`
	Title     string   `xml:"title"`
	Rects     []struct {
		Fill string `xml:"fill,attr"`
	} `xml:"g>rect"`
	Texts []string `xml:"g>text"`
}

// parseBadge parses an SVG strictly as XML, every token, and returns it.
func parseBadge(t *testing.T, body []byte) svgBadge {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("badge is not valid XML: %v\n%s", err, body)
		}
	}
	var b svgBadge
	if err := xml.Unmarshal(body, &b); err != nil {
		t.Fatalf("badge: %v\n%s", err, body)
	}
	return b
}

func TestEnvironmentBadges(t *testing.T) {
	src := testSource()
	src.snaps["failed"] = &state.Environment{Name: "failed", State: state.State{Phase: state.PhaseFailed, Target: &state.Revision{Commit: commitB}, LastApplied: &state.Revision{Commit: commitA}}}
	src.snaps["stalled"] = &state.Environment{Name: "stalled", State: state.State{Phase: state.PhaseStalled, Target: &state.Revision{Commit: commitB}}}
	src.snaps["applying"] = &state.Environment{Name: "applying", State: state.State{Phase: state.PhaseApplying, Target: &state.Revision{Commit: commitD}}}
	src.order = append(src.order, "failed", "stalled", "applying")
	srv := testServer(t, src, nil)
	for _, tc := range []struct {
		env, message, colour string
	}{
		{"production", "healthy @ 0123456", ColourHealthy},
		{"staging", "verifying @ fedcba9", ColourPending},
		{"applying", "applying @ aaaaaaa", ColourPending},
		{"failed", "failed @ 89abcde", ColourFailed},
		{"stalled", "stalled @ 89abcde", ColourUnknown},
		{"fresh", "unknown", ColourUnknown},
	} {
		resp, body := get(t, srv.URL+"/badge/"+tc.env+".svg")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml; charset=utf-8" ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
			t.Errorf("%s: %d %v", tc.env, resp.StatusCode, resp.Header)
		}
		b := parseBadge(t, body)
		if b.Title != tc.env+": "+tc.message || b.AriaLabel != b.Title {
			t.Errorf("%s: title %q, want %q", tc.env, b.Title, tc.env+": "+tc.message)
		}
		if len(b.Rects) < 2 || b.Rects[1].Fill != tc.colour {
			t.Errorf("%s: rects %v, want message colour %s", tc.env, b.Rects, tc.colour)
		}
		if !slices.Contains(b.Texts, tc.message) || !slices.Contains(b.Texts, tc.env) {
			t.Errorf("%s: texts %v", tc.env, b.Texts)
		}
	}
}

func TestCommitBadges(t *testing.T) {
	srv := testServer(t, testSource(), nil)
	for _, tc := range []struct {
		path, message, colour string
		code                  int
	}{
		{"staging/" + commitA, "healthy @ 0123456", ColourHealthy, 200},
		{"staging/" + state.Short(commitB), "failed @ 89abcde", ColourFailed, 200},
		{"staging/" + commitC, "verifying @ fedcba9", ColourPending, 200},
		{"production/" + commitB, "unknown", ColourUnknown, 200},
		{"staging/nothex", "not a commit", ColourUnknown, 400},
		{"nowhere/" + commitA, "no such environment", ColourUnknown, 404},
	} {
		resp, body := get(t, srv.URL+"/badge/"+tc.path+".svg")
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		b := parseBadge(t, body)
		if !strings.HasSuffix(b.Title, ": "+tc.message) || b.Rects[1].Fill != tc.colour {
			t.Errorf("%s: %q %s, want %q %s", tc.path, b.Title, b.Rects[1].Fill, tc.message, tc.colour)
		}
	}
}

// TestBadgeEscapes: whatever the names, the badge stays valid XML and says
// them as they are.
func TestBadgeEscapes(t *testing.T) {
	for _, label := range []string{`a<b&c"d'e>`, "]]><svg onload=alert(1)>", "tab\there\x00nul", "日本語"} {
		b := Badge{Label: label, Message: "healthy @ <&>", Colour: `red"/><script>`}
		got := parseBadge(t, b.SVG())
		wantLabel := strings.ToValidUTF8(strings.NewReplacer("\x00", "\uFFFD").Replace(label), "\uFFFD")
		if !slices.Contains(got.Texts, wantLabel) || !slices.Contains(got.Texts, "healthy @ <&>") {
			t.Errorf("%q: texts %q", label, got.Texts)
		}
		if got.Rects[1].Fill != ColourUnknown {
			t.Errorf("%q: a made-up colour reached the SVG: %q", label, got.Rects[1].Fill)
		}
	}
}

func TestAPI(t *testing.T) {
	srv := testServer(t, testSource(), nil)
	resp, body := get(t, srv.URL+"/api/v1/environments")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var list struct {
		Environments []state.Environment `json:"environments"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Environments) != 3 || list.Environments[0].Name != "staging" {
		t.Fatalf("environments %+v", list.Environments)
	}
	resp, body = get(t, srv.URL+"/api/v1/environments/staging")
	var snap map[string]any
	if err := json.Unmarshal(body, &snap); resp.StatusCode != 200 || err != nil {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	for _, k := range []string{"name", "phase", "branch", "target", "lastApplied", "lastHealthy", "history", "sourceError"} {
		if _, ok := snap[k]; !ok {
			t.Errorf("field %s missing: %s", k, body)
		}
	}
	if _, ok := snap["inventory"]; ok {
		t.Errorf("the API shows the inventory, ferry's bookkeeping: %s", body)
	}
	if h := snap["history"].([]any); h[0].(map[string]any)["action"] != "reverted by "+state.Short(commitD) {
		t.Errorf("the API does not carry the action's text: %s", body)
	}
	if lkg := snap["lastHealthy"].(map[string]any); lkg["commit"] != commitA {
		t.Errorf("lastHealthy %v", lkg)
	}
	if h := snap["history"].([]any); len(h) != 2 || h[0].(map[string]any)["outcome"] != "Failed" {
		t.Errorf("history %v", h)
	}
	if strings.Contains(string(body), testToken) || !strings.Contains(string(body), "https://[redacted]@git.example.com") {
		t.Errorf("the source error's credentials are not removed: %s", snap["sourceError"])
	}
	resp, _ = get(t, srv.URL+"/api/v1/environments/nowhere")
	if resp.StatusCode != 404 {
		t.Errorf("unknown environment: %d", resp.StatusCode)
	}
}

func TestStatusPage(t *testing.T) {
	srv := testServer(t, testSource(), nil)
	resp, body := get(t, srv.URL+"/environments/staging?commit="+state.Short(commitB))
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"<h1>staging", "verifying @ fedcba9", "Last healthy", `title="` + commitA + `"`,
		`<tr id="` + commitB + `" class="selected">`, "reverted by aaaaaaa", "promoted to production",
		"CrashLoopBackOff &lt;script&gt;alert(1)&lt;/script&gt;", "2m0s",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, testToken) {
		t.Errorf("page shows a script or the token:\n%s", page)
	}
	resp, body = get(t, srv.URL+"/environments")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `href="/environments/production"`) {
		t.Errorf("index: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := get(t, srv.URL+"/environments/nowhere"); resp.StatusCode != 404 {
		t.Errorf("unknown environment page: %d", resp.StatusCode)
	}
}

// TestStateErrorsStayInTheLog: a failure to read state answers 500
// without its details, which may name credentials.
func TestStateErrorsStayInTheLog(t *testing.T) {
	src := testSource()
	src.fail = true
	srv := testServer(t, src, nil)
	for _, path := range []string{"/api/v1/environments", "/api/v1/environments/staging", "/environments/staging", "/badge/staging.svg", "/environments"} {
		resp, body := get(t, srv.URL+path)
		if path != "/environments" && resp.StatusCode != 500 {
			t.Errorf("%s: %d, want 500", path, resp.StatusCode)
		}
		if strings.Contains(string(body), testToken) || strings.Contains(string(body), "forbidden") {
			t.Errorf("%s shows the error: %s", path, body)
		}
	}
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	ready := false
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init("staging")
	srv := testServer(t, testSource(), func(o *ServerOptions) {
		o.Ready = func() bool { return ready }
		o.Registry = reg
	})
	if resp, _ := get(t, srv.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/readyz"); resp.StatusCode != 503 {
		t.Errorf("readyz before ready: %d", resp.StatusCode)
	}
	ready = true
	if resp, _ := get(t, srv.URL+"/readyz"); resp.StatusCode != 200 {
		t.Errorf("readyz when ready: %d", resp.StatusCode)
	}
	resp, body := get(t, srv.URL+"/metrics")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `ferry_environment_healthy{environment="staging"} 0`) {
		t.Errorf("metrics %d:\n%s", resp.StatusCode, body)
	}
}
