package reconciler

import (
	"context"
	"fmt"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/scope"
	"ferry.dev/ferry/source"
)

// Preview is what applying a branch's tip to an environment would change.
type Preview struct {
	Revision *source.Revision
	Digest   string
	Plan     *apply.Plan
}

// PlanEnvironment renders the tip of env's branch (or ref, when not empty)
// and dry-runs it against env's cluster, including what would be pruned,
// as the environment's ServiceAccount. A rendering outside the
// environment's scope is refused before the dry-run. Nothing is written to
// the cluster or the state.
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
	keys, err := keyLoader{decryption: env.Decryption, client: wd.client, namespace: cfg.Namespace}.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, errKeys, err)
	}
	res, err := render.NewRenderer(render.DefaultOptions()).RenderWith(ctx, rev.Tree, env.Source.Path, render.Input{Limits: wd.limits(), Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("%s render %s: %w", name, env.Source.Path, err)
	}
	// A plan never shows what the environment may not write.
	if err := scope.Check(wd.scope(), res.Objects, res.Files, wd.namespaced()); err != nil {
		return nil, fmt.Errorf("%s: not applied: %w", name, err)
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
