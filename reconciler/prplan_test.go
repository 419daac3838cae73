package reconciler

import (
	"context"
	"errors"
	"testing"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/forge"
)

// fakeTrust answers as a forge would about one pull request.
type fakeTrust struct {
	fork    bool
	asked   []string
	writers map[string]bool
	err     error
}

func (f *fakeTrust) PullRequest(context.Context, forge.Repo, int) (forge.PullRequest, error) {
	return forge.PullRequest{Number: 3, Fork: f.fork, HeadRef: "refs/merge-requests/3/head"}, f.err
}
func (f *fakeTrust) PlanRequesters(context.Context, forge.Repo, int) ([]string, error) {
	return f.asked, nil
}
func (f *fakeTrust) CanWrite(_ context.Context, _ forge.Repo, user string) (bool, error) {
	return f.writers[user], nil
}

// TestTrusted pins who gets a pull request planned: its own repository's
// always; a fork's only with report.planForks or a "/ferry plan" from a
// user with write access.
func TestTrusted(t *testing.T) {
	down := errors.New("forge down")
	for _, tc := range []struct {
		name      string
		trust     *fakeTrust
		planForks bool
		want      string // "" planned, else the reason
		err       error
	}{
		{"same repository", &fakeTrust{}, false, "", nil},
		{"fork", &fakeTrust{fork: true}, false, skippedFork, nil},
		{"fork, planForks", &fakeTrust{fork: true}, true, "", nil},
		{"fork, asked by a reader", &fakeTrust{fork: true, asked: []string{"mallory"}}, false, skippedFork, nil},
		{"fork, asked by a writer", &fakeTrust{fork: true, asked: []string{"mallory", "alice"}, writers: map[string]bool{"alice": true}}, false, "", nil},
		{"forge down", &fakeTrust{err: down}, false, "", down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{cfg: &config.Config{Report: config.Report{Provider: "gitlab", PlanForks: tc.planForks}}, trust: tc.trust}
			ref, why, err := m.trusted(t.Context(), forge.Repo{Owner: "acme", Name: "app"}, 3)
			if !errors.Is(err, tc.err) || why != tc.want {
				t.Fatalf("trusted = %q, %q, %v; want %q, %v", ref, why, err, tc.want, tc.err)
			}
			if err == nil && why == "" && ref != "refs/merge-requests/3/head" {
				t.Errorf("ref %q", ref)
			}
		})
	}
}
