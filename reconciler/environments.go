package reconciler

import (
	"context"
	"fmt"
	"slices"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

// Environments lists the configured environments in configuration order.
func (m *Manager) Environments() []string {
	out := make([]string, 0, len(m.cfg.Environments))
	for _, e := range m.cfg.Environments {
		out = append(out, e.Name)
	}
	return out
}

// Environment returns env's state for the status API, page and badges.
func (m *Manager) Environment(ctx context.Context, env string) (*state.Environment, error) {
	store, ok := m.Store(env)
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", env)
	}
	st, err := store.Load(ctx, env)
	if err != nil {
		return nil, err
	}
	e, _ := m.cfg.Environment(env)
	return &state.Environment{Name: env, Branch: e.Source.Branch, Path: e.Source.Path, State: *st}, nil
}

// Watches returns the environments that follow branch of repo.
func (m *Manager) Watches(repo forge.Repo, branch string) []string {
	var out []string
	for _, e := range m.cfg.Environments {
		if r, err := forge.ParseRepo(e.Source.URL); err == nil && r.Is(repo) && e.Source.Branch == branch {
			out = append(out, e.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Edges are the arrows of the pipeline graph, for the status page.
func (m *Manager) Edges() []server.GraphEdge {
	var out []server.GraphEdge
	for _, e := range m.cfg.Graph().Edges() {
		out = append(out, server.GraphEdge{From: e.From, To: e.To, Kind: string(e.Kind)})
	}
	return out
}
