package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// envHandle is what a one-shot command needs of one environment.
type envHandle struct {
	env    *config.Environment
	client client.Client
	store  *state.Store
	repo   *source.Repository
}

func openEnvironment(ctx context.Context, cfg *config.Config, name string, opts Options) (*envHandle, error) {
	env, ok := cfg.Environment(name)
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", name)
	}
	opts = opts.withDefaults()
	c, err := NewClient(env.Cluster)
	if err != nil {
		return nil, err
	}
	creds, err := credentials(ctx, c, cfg.Namespace, env.Source.Auth)
	if err != nil {
		return nil, err
	}
	repo, err := source.Open(env.Source.URL, creds, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	return &envHandle{env: env, client: c, store: state.NewStore(c, cfg.Namespace), repo: repo}, nil
}

// LoadState returns the state of a configured environment.
func LoadState(ctx context.Context, cfg *config.Config, name string, opts Options) (*state.State, error) {
	env, ok := cfg.Environment(name)
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", name)
	}
	c, err := NewClient(env.Cluster)
	if err != nil {
		return nil, err
	}
	return state.NewStore(c, cfg.Namespace).Load(ctx, name)
}

// Release lifts the quarantine of a digest (or of the commit that was
// reverted for it), so the loop evaluates the commits rendering to it again.
func Release(ctx context.Context, cfg *config.Config, name, digestOrSHA string, opts Options) ([]state.Quarantined, error) {
	env, ok := cfg.Environment(name)
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", name)
	}
	c, err := NewClient(env.Cluster)
	if err != nil {
		return nil, err
	}
	var released []state.Quarantined
	_, err = state.NewStore(c, cfg.Namespace).Update(ctx, name, func(st *state.State) error {
		released = st.Release(digestOrSHA)
		if len(released) == 0 {
			return fmt.Errorf("%s: nothing quarantined matches %q", name, digestOrSHA)
		}
		return nil
	})
	return released, err
}

// Rollback is a person's one-command rollback: a revert commit on the
// environment's branch whose tree is the last healthy revision's (or to's,
// which must have been healthy), naming every commit it undoes, pushed as
// a compare-and-swap on the current tip. It returns the new commit.
func Rollback(ctx context.Context, cfg *config.Config, name, to string, opts Options) (*source.Revision, error) {
	h, err := openEnvironment(ctx, cfg, name, opts)
	if err != nil {
		return nil, err
	}
	st, err := h.store.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	tip, err := h.repo.Fetch(ctx, h.env.Source.Branch)
	if err != nil {
		return nil, err
	}
	target := ""
	switch {
	case to == "" && st.LastHealthy == nil:
		return nil, fmt.Errorf("%s has no healthy revision to roll back to; name one with --to", name)
	case to == "":
		target = st.LastHealthy.Commit
	default:
		for _, v := range st.History {
			if v.Outcome == state.OutcomeHealthy && len(to) >= 7 && len(v.Commit) >= len(to) && v.Commit[:len(to)] == to {
				target = v.Commit
				break
			}
		}
		if target == "" {
			return nil, fmt.Errorf("%s: %s is not a healthy revision in the history (see `ferry history %s`)", name, to, name)
		}
	}
	if target == tip.Hash().String() {
		return nil, fmt.Errorf("%s is already at %s", name, state.Short(target))
	}
	undone, err := h.repo.FirstParents(tip.Hash(), plumbing.NewHash(target), 500)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	targetRev, err := h.repo.Revision(plumbing.NewHash(target))
	if err != nil {
		return nil, err
	}
	msg := revertMessage(undone, "rolled back by a person to "+state.Short(target)+" (ferry rollback)")
	rev, err := h.repo.CommitTree(targetRev.Commit.TreeHash, []plumbing.Hash{tip.Hash()}, msg, time.Now())
	if err != nil {
		return nil, err
	}
	if err := h.repo.Push(ctx, h.env.Source.Branch, rev.Hash(), tip.Hash()); err != nil {
		return nil, err
	}
	return rev, nil
}
