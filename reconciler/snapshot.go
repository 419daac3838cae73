package reconciler

import (
	"context"
	"fmt"
	"slices"

	"ferry.dev/ferry/report"
)

// Environments lists the configured environments in configuration order.
func (m *Manager) Environments() []string {
	out := make([]string, 0, len(m.cfg.Environments))
	for _, e := range m.cfg.Environments {
		out = append(out, e.Name)
	}
	return out
}

// Snapshot returns env's state for the status API, page and badges.
func (m *Manager) Snapshot(ctx context.Context, env string) (*report.Snapshot, error) {
	store, ok := m.stores[env]
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", env)
	}
	st, err := store.Load(ctx, env)
	if err != nil {
		return nil, err
	}
	e, _ := m.cfg.Environment(env)
	snap := &report.Snapshot{Name: env, Branch: e.Source.Branch, Path: e.Source.Path, Phase: string(st.Phase),
		Message: st.Message, SourceError: st.SourceError,
		Target: revision(st.Target), LastApplied: revision(st.LastApplied), LastHealthy: revision(st.LastHealthy)}
	for _, v := range st.History {
		snap.History = append(snap.History, report.Entry{Commit: v.Commit, Digest: v.Digest, Outcome: string(v.Outcome),
			Reason: v.Reason, Started: v.Started, Finished: v.Finished, Action: v.Action})
	}
	return snap, nil
}

func revision(r *Revision) *report.Revision {
	if r == nil {
		return nil
	}
	return &report.Revision{Commit: r.Commit, Digest: r.Digest, Time: r.Time}
}

// Watches returns the environments that follow branch of repo.
func (m *Manager) Watches(repo report.Repo, branch string) []string {
	var out []string
	for _, e := range m.cfg.Environments {
		if r, err := report.ParseRepo(e.Source.URL); err == nil && r.Is(repo) && e.Source.Branch == branch {
			out = append(out, e.Name)
		}
	}
	slices.Sort(out)
	return out
}
