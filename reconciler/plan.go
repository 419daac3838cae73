package reconciler

import (
	"context"
	"fmt"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/source"
)

// Preview is what applying a branch's tip to an environment would change.
type Preview struct {
	Revision *source.Revision
	Digest   string
	Plan     *apply.Plan
}

// PlanEnvironment renders the tip of env's branch (or ref, when not empty)
// and dry-runs it against env's cluster, including what would be pruned.
// Nothing is written to the cluster or the state.
func PlanEnvironment(ctx context.Context, cfg *config.Config, name, ref string, opts Options) (*Preview, error) {
	wd, repo, err := newWiring(cfg, opts).wireWithRepository(ctx, name)
	if err != nil {
		return nil, err
	}
	env := wd.env
	if ref == "" {
		ref = env.Source.Branch
	}
	rev, err := repo.Fetch(ctx, ref)
	if err != nil {
		return nil, err
	}
	res, err := render.NewRenderer(render.DefaultOptions()).Render(ctx, rev.Tree, env.Source.Path)
	if err != nil {
		return nil, fmt.Errorf("%s render %s: %w", name, env.Source.Path, err)
	}
	st, err := wd.store.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	plan, err := wd.applier().Plan(ctx, res.Objects, st.Inventory)
	if err != nil {
		return nil, fmt.Errorf("%s dry-run: %w", name, err)
	}
	return &Preview{Revision: rev, Digest: res.Digest, Plan: plan}, nil
}
