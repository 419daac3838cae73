package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

func TestRowOf(t *testing.T) {
	a, b := "1a2b3c4d5e6f7a8b9c0d", "0f0f0f0f0f0f0f0f0f0f"
	tests := []struct {
		name string
		env  state.Environment
		want statusRow
	}{
		{"never reconciled", state.Environment{Name: "qa", Branch: "qa"}, statusRow{Name: "qa", Branch: "qa", Phase: "Unknown"}},
		{"healthy, promoted to two", state.Environment{Name: "staging", Branch: "main", State: state.State{
			Phase: state.PhaseHealthy, Target: &state.Revision{Commit: a}, LastApplied: &state.Revision{Commit: a}, LastHealthy: &state.Revision{Commit: a},
			History: []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Reason: "all Current", Action: state.Promoted("prod-eu, prod-us", "")}},
		}}, statusRow{Name: "staging", Branch: "main", Tip: a, Applied: a, Phase: "Healthy", Verdict: "Healthy", Healthy: a, Next: "promoted to prod-eu, prod-us"}},
		{"a hop waits for the window", state.Environment{Name: "staging", State: state.State{
			Phase: state.PhaseHealthy, Target: &state.Revision{Commit: a},
			History: []state.Verdict{{Commit: a, Outcome: state.OutcomeHealthy, Hops: []state.Hop{
				{To: "prod-eu", Action: state.Promoted("prod-eu", "")},
				{To: "prod-us", Waiting: "waiting for the promotion window Mon-Thu 09:00-16:00 UTC, opens Mon 09:00 UTC"}}}},
		}}, statusRow{Name: "staging", Tip: a, Phase: "Healthy", Verdict: "Healthy",
			Next: "promote to prod-us waiting for the promotion window Mon-Thu 09:00-16:00 UTC, opens Mon 09:00 UTC"}},
		{"failed and reverted", state.Environment{Name: "staging", State: state.State{
			Phase: state.PhaseFailed, Target: &state.Revision{Commit: b}, LastHealthy: &state.Revision{Commit: a}, SourceError: "fetch: timeout",
			History: []state.Verdict{{Commit: b, Outcome: state.OutcomeFailed, Reason: "Deployment web: CrashLoopBackOff", Action: state.Reverted("9e9e9e9e9e"),
				Stopped: "stopped at staging (Deployment web: CrashLoopBackOff); prod-eu, prod-us will not receive it"}},
		}}, statusRow{Name: "staging", Tip: b, Phase: "Failed", Verdict: "Failed: Deployment web: CrashLoopBackOff", Healthy: a,
			Next: "reverted by 9e9e9e9; stopped at staging (Deployment web: CrashLoopBackOff); prod-eu, prod-us will not receive it", SourceError: "fetch: timeout"}},
		{"waiting for a dependency", state.Environment{Name: "app", State: state.State{
			Phase: state.PhaseWaiting, Message: "infra is Verifying 1a2b3c4", Target: &state.Revision{Commit: b},
		}}, statusRow{Name: "app", Tip: b, Phase: "Waiting: infra is Verifying 1a2b3c4", Next: "apply when infra is Verifying 1a2b3c4 turns healthy"}},
		{"suspended", state.Environment{Name: "prod", State: state.State{
			Phase: state.PhaseHealthy, Suspended: &state.Suspension{Reason: "incident 42", By: "alice", Time: time.Now()},
		}}, statusRow{Name: "prod", Phase: "Healthy", Next: "suspended: incident 42 (by alice)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rowOf(tt.env); got != tt.want {
				t.Errorf("rowOf =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPrintOutcomeExitCode(t *testing.T) {
	var b bytes.Buffer
	st := &state.State{Phase: state.PhaseFailed, Target: &state.Revision{Commit: "0f0f0f0f0f"},
		History: []state.Verdict{{Commit: "0f0f0f0f0f", Outcome: state.OutcomeFailed, Reason: "Deployment web: CrashLoopBackOff"}}}
	err := printOutcome(&b, "staging", st)
	ee, ok := err.(*exitError)
	if !ok || ee.code != 1 {
		t.Errorf("a failed verdict: %v, want exit code 1", err)
	}
	if want := "staging: Failed at 0f0f0f0\nverdict: Failed (Deployment web: CrashLoopBackOff)\n"; b.String() != want {
		t.Errorf("output %q, want %q", b.String(), want)
	}
	b.Reset()
	st = &state.State{Phase: state.PhaseHealthy, Target: &state.Revision{Commit: "1a2b3c4d5e"},
		History: []state.Verdict{{Commit: "1a2b3c4d5e", Outcome: state.OutcomeHealthy, Action: state.Promoted("production", "")}}}
	if err := printOutcome(&b, "staging", st); err != nil || !strings.Contains(b.String(), "next: promoted to production") {
		t.Errorf("healthy: %v, %q", err, b.String())
	}
}

func TestVersionServer(t *testing.T) {
	opts := server.DefaultServerOptions()
	opts.Version = server.Version{Version: "v9.9.9", Commit: "abcdef0123456789", GoVersion: "go1.26.8"}
	srv := httptest.NewServer(server.NewServer(nil, opts))
	defer srv.Close()
	var b bytes.Buffer
	root := newRoot()
	root.SetOut(&b)
	root.SetArgs([]string{"version", "--server", "--server-url", srv.URL})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "server: v9.9.9 (commit abcdef012345, go1.26.8)\n") || !strings.HasPrefix(b.String(), "client: ") {
		t.Errorf("ferry version --server = %q", b.String())
	}
}

// TestPromoteRefusesWhatConfigForbids: `ferry promote` checks the
// configuration before it asks any cluster.
func TestPromoteRefusesWhatConfigForbids(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	cfg := `environments:
  - {name: staging, source: {url: https://git.example.com/app.git, branch: main, path: .}, promote: {to: [prod-eu, prod-us]}}
  - {name: prod-eu, source: {url: https://git.example.com/app.git, branch: prod-eu, path: .}}
  - {name: prod-us, source: {url: https://git.example.com/app.git, branch: prod-us, path: .}}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"promote", "prod-eu"}, "prod-eu promotes nowhere"},
		{[]string{"promote", "staging", "--to", "qa"}, `staging does not promote to "qa"; its targets: prod-eu, prod-us`},
		{[]string{"promote", "nowhere"}, `environment "nowhere" is not configured`},
	} {
		root := newRoot()
		root.SetArgs(append(tc.args, "--config", path))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ferry %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
